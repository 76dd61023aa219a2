// Kubernetes' channel protocols above the transport (cri/stream/channels.h): byte layouts as the
// kubelet and client-go produce them.
#include "cri/stream/channels.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace berth::stream {
namespace {

TEST(Negotiate, FirstOfferedThatIsSupportedWins) {
  std::vector<std::string> server = {kRemoteCommandV4, kRemoteCommandV3, kRemoteCommandV1};
  EXPECT_EQ(Negotiate({kRemoteCommandV5, kRemoteCommandV3, kRemoteCommandV4}, server),
            std::string(kRemoteCommandV3));
  EXPECT_EQ(Negotiate({"x", "y"}, server), std::nullopt);
  EXPECT_EQ(Negotiate({}, server), std::nullopt);
}

TEST(Negotiate, HeaderValuesAreSplitOnCommas) {
  EXPECT_EQ(SplitProtocols({"v4.channel.k8s.io, v3.channel.k8s.io", "channel.k8s.io", " , "}),
            (std::vector<std::string>{"v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"}));
}

TEST(RemoteCommandProtocol, WhatEachVersionCarries) {
  auto v1 = ParseRemoteCommandProtocol("channel.k8s.io");
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->version, 1);
  EXPECT_FALSE(v1->json_status || v1->resize || v1->base64 || v1->close_signal);
  auto b64 = ParseRemoteCommandProtocol("v4.base64.channel.k8s.io");
  ASSERT_TRUE(b64);
  EXPECT_TRUE(b64->base64 && b64->json_status && b64->resize);
  auto v3 = ParseRemoteCommandProtocol("v3.channel.k8s.io");
  ASSERT_TRUE(v3);
  EXPECT_TRUE(v3->resize);
  EXPECT_FALSE(v3->json_status);
  auto v5 = ParseRemoteCommandProtocol("v5.channel.k8s.io");
  ASSERT_TRUE(v5);
  EXPECT_TRUE(v5->close_signal && v5->json_status);
  EXPECT_FALSE(ParseRemoteCommandProtocol("portforward.k8s.io"));
  EXPECT_FALSE(ParseRemoteCommandProtocol(""));
}

TEST(ChannelMessage, BinaryIsOnePrefixByte) {
  EXPECT_EQ(EncodeChannelMessage(kStdout, "hi\n", false), std::string("\x01hi\n", 4));
  EXPECT_EQ(EncodeChannelMessage(kStdin, "", false), std::string(1, '\0'));
  auto m = DecodeChannelMessage(std::string("\x02oops", 5), false);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->channel, kStderr);
  EXPECT_EQ(m->data, "oops");
  EXPECT_FALSE(DecodeChannelMessage("", false).ok());
}

TEST(ChannelMessage, Base64IsADigitAndBase64) {
  // wsstream's base64 codec: '0' + channel, then standard base64 of the data.
  EXPECT_EQ(EncodeChannelMessage(kStdout, "hello", true), "1aGVsbG8=");
  auto m = DecodeChannelMessage("0aGk=", true);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->channel, kStdin);
  EXPECT_EQ(m->data, "hi");
  EXPECT_FALSE(DecodeChannelMessage("xaGk=", true).ok());  // not a digit
  EXPECT_FALSE(DecodeChannelMessage("0a*k=", true).ok());  // not base64
}

TEST(TerminalSize, AStreamOfJsonObjects) {
  EXPECT_EQ(EncodeTerminalSize({80, 24}), "{\"Width\":80,\"Height\":24}\n");
  std::string buf = "{\"Width\":80,\"Height\":24}\n{\"Width\":100,\"Height\":30} {\"Wid";
  auto sizes = TakeTerminalSizes(&buf);
  ASSERT_TRUE(sizes.ok()) << sizes.status();
  EXPECT_EQ(*sizes, (std::vector<TerminalSize>{{80, 24}, {100, 30}}));
  EXPECT_EQ(buf, "{\"Wid");  // the incomplete tail stays
  buf += "th\":1,\"Height\":2}";
  sizes = TakeTerminalSizes(&buf);
  ASSERT_TRUE(sizes.ok());
  EXPECT_EQ(*sizes, (std::vector<TerminalSize>{{1, 2}}));
  EXPECT_EQ(buf, "");
  buf = "[1,2]";
  EXPECT_FALSE(TakeTerminalSizes(&buf).ok());
  buf = "{\"Width\":-1}";
  EXPECT_FALSE(TakeTerminalSizes(&buf).ok());
  buf = "{\"Width\":70000}";
  EXPECT_FALSE(TakeTerminalSizes(&buf).ok());
  buf = "{" + std::string(5000, ' ');
  EXPECT_FALSE(TakeTerminalSizes(&buf).ok());
}

TEST(Status, TheKubeletsJsonAndItsReading) {
  EXPECT_EQ(SuccessStatusJson(), R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(ExitCodeStatusJson(3),
            R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero )"
            R"(exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":)"
            R"([{"reason":"ExitCode","message":"3"}]}})");
  EXPECT_EQ(ParseRemoteStatus(SuccessStatusJson(), true).exit_code, 0);
  RemoteStatus s = ParseRemoteStatus(ExitCodeStatusJson(3), true);
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_EQ(s.message, "");
  // client-go reads the code as a byte.
  EXPECT_EQ(ParseRemoteStatus(ExitCodeStatusJson(300), true).exit_code, 255);
  s = ParseRemoteStatus(FailureStatusJson("container not running"), true);
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_EQ(s.message, "container not running");
  EXPECT_EQ(ParseRemoteStatus("", true).exit_code, 0);  // nothing said: success (attach)
  s = ParseRemoteStatus("not json", true);
  EXPECT_NE(s.message.find("malformed"), std::string::npos);
  // Before v4: text; an exit code in it is recognised.
  s = ParseRemoteStatus("command terminated with non-zero exit code: exit status 7", false);
  EXPECT_EQ(s.exit_code, 7);
  EXPECT_EQ(s.message, "");
  s = ParseRemoteStatus("some error", false);
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_EQ(s.message, "some error");
}

TEST(PortForward, PortPrefixIsLittleEndian) {
  EXPECT_EQ(EncodePortPrefix(8080), std::string("\x90\x1f", 2));
  EXPECT_EQ(EncodePortPrefix(80), std::string("\x50\x00", 2));
}

}  // namespace
}  // namespace berth::stream

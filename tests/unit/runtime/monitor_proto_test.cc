#include "runtime/monitor_proto.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

std::string Header(uint32_t len) {
  return std::string{static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                     static_cast<char>(len >> 8), static_cast<char>(len)};
}

std::string RawFrame(absl::string_view text) {
  return Header(static_cast<uint32_t>(text.size())) + std::string(text);
}

struct Pair {
  UniqueFd a, b;
};

Pair SocketPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return Pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

TEST(EncodeFrame, LengthPrefixBigEndian) {
  std::string frame = EncodeFrame(nlohmann::json{{"op", "ping"}});
  EXPECT_EQ(frame, RawFrame(R"({"op":"ping"})"));
  std::string big = EncodeFrame(nlohmann::json{{"s", std::string(300, 'x')}});
  EXPECT_EQ(big.substr(0, 4), Header(308));
}

TEST(EncodeFrame, InvalidUtf8DoesNotThrow) {
  std::string frame = EncodeFrame(nlohmann::json{{"s", std::string("a\xff")}});
  EXPECT_GT(frame.size(), 4u);
}

TEST(FrameDecoder, RoundTrip) {
  nlohmann::json msg = {{"op", "start"}, {"id", "c1"}, {"args", {"sh", "-c", "true"}}, {"n", 3}};
  FrameDecoder d;
  d.Feed(EncodeFrame(msg));
  auto got = d.Next();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, msg);
  auto none = d.Next();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameDecoder, ByteByByte) {
  nlohmann::json msg = {{"op", "wait"}, {"id", "abc"}};
  std::string frame = EncodeFrame(msg);
  FrameDecoder d;
  for (size_t i = 0; i < frame.size(); ++i) {
    auto before = d.Next();
    ASSERT_TRUE(before.ok()) << before.status();
    ASSERT_FALSE(before->has_value()) << i;
    d.Feed(frame.substr(i, 1));
  }
  auto got = d.Next();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, msg);
}

TEST(FrameDecoder, TwoFramesInOneFeed) {
  FrameDecoder d;
  d.Feed(EncodeFrame({{"n", 1}}) + EncodeFrame({{"n", 2}}) + EncodeFrame({{"n", 3}}).substr(0, 6));
  auto a = d.Next();
  auto b = d.Next();
  auto c = d.Next();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(a->has_value() && b->has_value());
  EXPECT_EQ((**a)["n"], 1);
  EXPECT_EQ((**b)["n"], 2);
  EXPECT_FALSE(c->has_value());
  d.Feed(EncodeFrame({{"n", 3}}).substr(6));
  auto e = d.Next();
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((**e)["n"], 3);
}

TEST(FrameDecoder, OversizedLength) {
  FrameDecoder d;
  d.Feed(Header(kMaxFrame + 1));
  auto got = d.Next();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  // Unusable afterwards, even after valid input.
  d.Feed(EncodeFrame({{"n", 1}}));
  EXPECT_EQ(d.Next().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FrameDecoder, MaxLengthIsAccepted) {
  FrameDecoder d;
  d.Feed(Header(kMaxFrame));
  auto got = d.Next();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->has_value());
}

TEST(FrameDecoder, InvalidJson) {
  FrameDecoder d;
  d.Feed(RawFrame("{\"op\":"));
  EXPECT_EQ(d.Next().status().code(), absl::StatusCode::kInvalidArgument);
  FrameDecoder empty;
  empty.Feed(RawFrame(""));
  EXPECT_EQ(empty.Next().status().code(), absl::StatusCode::kInvalidArgument);
  FrameDecoder deep;
  deep.Feed(RawFrame(std::string(1000, '[') + std::string(1000, ']')));
  EXPECT_EQ(deep.Next().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FrameDecoder, NonObjectJson) {
  for (const char* text : {"[1,2]", "\"s\"", "42", "null"}) {
    FrameDecoder d;
    d.Feed(RawFrame(text));
    EXPECT_EQ(d.Next().status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(ReadWriteFrame, OverSocketPair) {
  Pair p = SocketPair();
  nlohmann::json msg = {{"op", "ping"}, {"payload", std::string(100000, 'z')}};
  // 100 KB exceeds the socket buffer on some systems: write from a thread.
  std::thread writer([&] {
    EXPECT_TRUE(WriteFrame(p.a.get(), msg).ok());
    EXPECT_TRUE(WriteFrame(p.a.get(), {{"n", 2}}).ok());
  });
  auto got = ReadFrame(p.b.get(), absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, msg);
  auto second = ReadFrame(p.b.get(), absl::Now() + absl::Seconds(10));
  writer.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)["n"], 2);
}

TEST(ReadWriteFrame, WriteRefusesOversizedMessage) {
  Pair p = SocketPair();
  nlohmann::json msg = {{"s", std::string(kMaxFrame, 'x')}};
  EXPECT_EQ(WriteFrame(p.a.get(), msg).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReadWriteFrame, Timeout) {
  Pair p = SocketPair();
  absl::Time start = absl::Now();
  auto got = ReadFrame(p.b.get(), start + absl::Milliseconds(100));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  // Half a frame, then silence.
  std::string half = EncodeFrame({{"op", "x"}}).substr(0, 6);
  ASSERT_EQ(::write(p.a.get(), half.data(), half.size()), static_cast<ssize_t>(half.size()));
  got = ReadFrame(p.b.get(), absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded) << got.status();
}

TEST(ReadWriteFrame, EofIsUnavailable) {
  Pair p = SocketPair();
  p.a.reset();
  auto got = ReadFrame(p.b.get(), absl::Now() + absl::Seconds(5));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();

  Pair q = SocketPair();
  std::string half = EncodeFrame({{"op", "x"}}).substr(0, 7);
  ASSERT_EQ(::write(q.a.get(), half.data(), half.size()), static_cast<ssize_t>(half.size()));
  q.a.reset();
  got = ReadFrame(q.b.get(), absl::Now() + absl::Seconds(5));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
}

TEST(ReadWriteFrame, BadLengthAndJson) {
  Pair p = SocketPair();
  std::string bad = Header(kMaxFrame + 1);
  ASSERT_EQ(::write(p.a.get(), bad.data(), bad.size()), 4);
  EXPECT_EQ(ReadFrame(p.b.get(), absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  Pair q = SocketPair();
  std::string arr = RawFrame("[1]");
  ASSERT_EQ(::write(q.a.get(), arr.data(), arr.size()), static_cast<ssize_t>(arr.size()));
  EXPECT_EQ(ReadFrame(q.b.get(), absl::Now() + absl::Seconds(5)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReadWriteFrame, WriteToClosedPeerIsAnErrorNotSigpipe) {
  Pair p = SocketPair();
  p.b.reset();
  EXPECT_FALSE(WriteFrame(p.a.get(), {{"op", "x"}}).ok());
}

class CallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-monitor-test.XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    ASSERT_NE(dir, nullptr);
    dir_ = dir;
    path_ = dir_ + "/monitor.sock";
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener_.valid());
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    ASSERT_EQ(::bind(listener_.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(listener_.get(), 4), 0);
  }

  void TearDown() override {
    listener_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_, path_;
  UniqueFd listener_;
};

TEST_F(CallTest, RequestReply) {
  std::thread server([this] {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.valid());
    auto req = ReadFrame(conn.get(), absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(req.ok()) << req.status();
    EXPECT_TRUE(WriteFrame(conn.get(), {{"ok", true}, {"echo", (*req)["op"]}}).ok());
  });
  auto reply = Call(path_, {{"op", "status"}}, absl::Seconds(10));
  server.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ((*reply)["ok"], true);
  EXPECT_EQ((*reply)["echo"], "status");
}

TEST_F(CallTest, ServerClosesWithoutReply) {
  std::thread server([this] {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.valid());
    (void)ReadFrame(conn.get(), absl::Now() + absl::Seconds(10));
  });
  auto reply = Call(path_, {{"op", "status"}}, absl::Seconds(10));
  server.join();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_NE(reply.status().message().find(path_), absl::string_view::npos);
}

TEST_F(CallTest, TimeoutWhenServerIsSilent) {
  // The connection sits in the backlog; nobody accepts or replies.
  absl::Time start = absl::Now();
  auto reply = Call(path_, {{"op", "status"}}, absl::Milliseconds(100));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

TEST_F(CallTest, ConnectErrorIsUnavailableWithPath) {
  std::string missing = path_ + ".missing";
  auto reply = Call(missing, {{"op", "status"}}, absl::Seconds(1));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_NE(reply.status().message().find(missing), absl::string_view::npos);
  // A path with nothing listening (the socket file exists, the listener is gone).
  listener_.reset();
  reply = Call(path_, {{"op", "status"}}, absl::Seconds(1));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_NE(reply.status().message().find(path_), absl::string_view::npos);
}

}  // namespace
}  // namespace berth::runtime

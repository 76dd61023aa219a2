#include "network/cni_config.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::network {
namespace {

class CniConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-cni-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(MkdirAll(dir_ + "/net.d").ok());
    ASSERT_TRUE(MkdirAll(dir_ + "/bin").ok());
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  void Conf(const std::string& name, const std::string& text) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/net.d/" + name, text).ok());
  }
  void Plugin(const std::string& name) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/bin/" + name, "#!/bin/sh\n", 0755).ok());
  }
  std::string dir_;
};

constexpr char kBridgeList[] = R"({"cniVersion":"1.0.0","name":"berth","plugins":[
  {"type":"bridge","bridge":"berth0","ipam":{"type":"host-local"}},{"type":"portmap"}]})";

TEST_F(CniConfigTest, EmptyDirIsNotReady) {
  NetworkReadiness r = CheckCniReadiness(dir_ + "/net.d", {dir_ + "/bin"}, "");
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.reason, "NetworkPluginNotReady");
  EXPECT_NE(r.message.find("no valid CNI network config found in " + dir_ + "/net.d"),
            std::string::npos);
}

TEST_F(CniConfigTest, MissingDirIsNotReady) {
  NetworkReadiness r = CheckCniReadiness(dir_ + "/absent", {dir_ + "/bin"}, "");
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.message.find(dir_ + "/absent"), std::string::npos);
}

TEST_F(CniConfigTest, ConfigWithoutPluginBinaryIsNotReady) {
  Conf("10-berth.conflist", kBridgeList);
  Plugin("bridge");
  NetworkReadiness r = CheckCniReadiness(dir_ + "/net.d", {dir_ + "/bin"}, "");
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.message.find("\"portmap\" not found"), std::string::npos) << r.message;
  Plugin("portmap");
  r = CheckCniReadiness(dir_ + "/net.d", {dir_ + "/bin"}, "");
  EXPECT_TRUE(r.ready) << r.message;
  EXPECT_EQ(r.network, "berth");
  EXPECT_TRUE(r.reason.empty());
}

TEST_F(CniConfigTest, LexicallyFirstValidWinsAndInvalidAreSkipped) {
  Conf("00-broken.conflist", "{not json");
  Conf("05-noplugins.conflist", R"({"cniVersion":"1.0.0","name":"x","plugins":[]})");
  Conf("10-single.conf", R"({"cniVersion":"0.4.0","name":"single","type":"bridge"})");
  Conf("20-list.conflist", kBridgeList);
  Conf("ignored.txt", kBridgeList);
  absl::StatusOr<CniConfigList> net = FindCniNetwork(dir_ + "/net.d", "");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->name, "single");
  EXPECT_EQ(net->cni_version, "0.4.0");
  ASSERT_EQ(net->plugins.size(), 1u);
  EXPECT_EQ(net->plugins[0]["type"], "bridge");

  absl::StatusOr<CniConfigList> named = FindCniNetwork(dir_ + "/net.d", "berth");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->plugins.size(), 2u);
  absl::StatusOr<CniConfigList> absent = FindCniNetwork(dir_ + "/net.d", "nope");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(absent.status().message().find("00-broken.conflist: not valid JSON"),
            std::string::npos);
}

TEST_F(CniConfigTest, RefusesPluginTypesThatArePaths) {
  Conf("10.conflist", R"({"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]})");
  absl::StatusOr<CniConfigList> r = LoadCniConfigFile(dir_ + "/net.d/10.conflist");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CniConfigTest, FindPluginNeedsExecutable) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bin/noexec", "x", 0644).ok());
  EXPECT_FALSE(FindCniPlugin("noexec", {dir_ + "/bin"}).ok());
  Plugin("loopback");
  EXPECT_EQ(*FindCniPlugin("loopback", {"/nonexistent", dir_ + "/bin"}), dir_ + "/bin/loopback");
}

}  // namespace
}  // namespace berth::network

#include "cri/client/endpoint.h"

#include <stdlib.h>

#include <string>

#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::cri::client {
namespace {

TEST(Endpoint, Normalize) {
  EXPECT_EQ(*NormalizeEndpoint("unix:///run/x.sock"), "unix:///run/x.sock");
  EXPECT_EQ(*NormalizeEndpoint("/run/x.sock"), "unix:///run/x.sock");
  EXPECT_FALSE(NormalizeEndpoint("tcp://127.0.0.1:1").ok());
  EXPECT_FALSE(NormalizeEndpoint("unix://relative").ok());
  EXPECT_FALSE(NormalizeEndpoint("").ok());
  EXPECT_EQ(SocketPathOf("unix:///run/x.sock"), "/run/x.sock");
}

class ResolveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-ep-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(ResolveTest, FlagThenEnvThenCrictlYamlThenDefault) {
  std::string yaml = dir_ + "/crictl.yaml";
  ASSERT_TRUE(WriteFileAtomic(yaml,
                              "# crictl config\n"
                              "runtime-endpoint: \"unix:///run/containerd/containerd.sock\"\n"
                              "image-endpoint: unix:///run/containerd/containerd.sock # same\n"
                              "timeout: 2\n")
                  .ok());
  EXPECT_EQ(*ResolveEndpoint("unix:///flag.sock", "unix:///env.sock", yaml), "unix:///flag.sock");
  EXPECT_EQ(*ResolveEndpoint("", "/env.sock", yaml), "unix:///env.sock");
  EXPECT_EQ(*ResolveEndpoint("", "", yaml), "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(*ResolveEndpoint("", "", dir_ + "/missing.yaml"), kDefaultEndpoint);
  auto cfg = ReadCrictlConfig(yaml);
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->at("image-endpoint"), "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(cfg->at("timeout"), "2");
}

TEST_F(ResolveTest, BadEndpointAnywhereIsAnError) {
  std::string yaml = dir_ + "/crictl.yaml";
  ASSERT_TRUE(WriteFileAtomic(yaml, "runtime-endpoint: tcp://x:1\n").ok());
  EXPECT_FALSE(ResolveEndpoint("", "", yaml).ok());
  EXPECT_FALSE(ResolveEndpoint("npipe://x", "", yaml).ok());
}

}  // namespace
}  // namespace berth::cri::client

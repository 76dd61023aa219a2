// NetworkManager without running plugins: what it would hand them.
#include "network/network_manager.h"

#include <stdlib.h>

#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::network {
namespace {

TEST(ParseBandwidth, KubernetesQuantities) {
  EXPECT_EQ(*ParseBandwidth("10M"), 10000000u);
  EXPECT_EQ(*ParseBandwidth("1Gi"), 1073741824u);
  EXPECT_EQ(*ParseBandwidth("500k"), 500000u);
  EXPECT_EQ(*ParseBandwidth("1000"), 1000u);
  EXPECT_EQ(*ParseBandwidth("1.5M"), 1500000u);
  EXPECT_FALSE(ParseBandwidth("999").ok());  // below 1k
  EXPECT_FALSE(ParseBandwidth("2P").ok());   // above 1P
  EXPECT_FALSE(ParseBandwidth("fast").ok());
  EXPECT_FALSE(ParseBandwidth("-5M").ok());
  EXPECT_FALSE(ParseBandwidth("").ok());
}

class NetworkManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-nm-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto m = NetworkManager::Create(
        {.conf_dir = dir_ + "/net.d", .bin_dirs = {dir_ + "/bin"}, .cache_dir = dir_ + "/cni"});
    ASSERT_TRUE(m.ok()) << m.status();
    m_ = std::move(*m);
  }
  void TearDown() override {
    m_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  std::string dir_;
  std::unique_ptr<NetworkManager> m_;
};

TEST_F(NetworkManagerTest, RuntimeConfCarriesArgsAndCapabilities) {
  PodNetworkRequest r;
  r.sandbox_id = "sb1";
  r.pod_name = "web";
  r.pod_namespace = "prod";
  r.pod_uid = "u-1";
  r.netns_path = "/run/berth/pods/sb1/netns";
  r.port_mappings = {
      {.protocol = "UDP", .container_port = 53, .host_port = 5353},
      {.protocol = "tcp", .container_port = 80, .host_port = 0},  // not published
      {.protocol = "tcp", .container_port = 443, .host_port = 8443, .host_ip = "127.0.0.1"}};
  r.annotations = {{"kubernetes.io/ingress-bandwidth", "10M"}, {"team", "a"}};
  r.dns = {
      .servers = {"10.96.0.10"}, .searches = {"prod.svc.cluster.local"}, .options = {"ndots:5"}};
  r.cgroup_parent = "/kubepods/burstable/podu-1";
  ASSERT_TRUE(m_->SetPodCidrs("10.244.0.0/24").ok());

  absl::StatusOr<CniRuntimeConf> rt = m_->RuntimeConfFor(r);
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ(rt->container_id, "sb1");
  EXPECT_EQ(rt->ifname, "eth0");
  EXPECT_EQ(rt->netns, "/run/berth/pods/sb1/netns");
  std::vector<std::pair<std::string, std::string>> args = {{"IgnoreUnknown", "1"},
                                                           {"K8S_POD_NAMESPACE", "prod"},
                                                           {"K8S_POD_NAME", "web"},
                                                           {"K8S_POD_INFRA_CONTAINER_ID", "sb1"},
                                                           {"K8S_POD_UID", "u-1"}};
  EXPECT_EQ(rt->args, args);
  const nlohmann::json& c = rt->capability_args;
  ASSERT_EQ(c["portMappings"].size(), 2u);
  EXPECT_EQ(c["portMappings"][0],
            (nlohmann::json{{"hostPort", 5353}, {"containerPort", 53}, {"protocol", "udp"}}));
  EXPECT_EQ(c["portMappings"][1]["hostIP"], "127.0.0.1");
  EXPECT_EQ(c["bandwidth"]["ingressRate"], 10000000u);
  EXPECT_EQ(c["bandwidth"]["ingressBurst"], 4294967295u);
  EXPECT_FALSE(c["bandwidth"].contains("egressRate"));
  EXPECT_EQ(c["dns"]["servers"][0], "10.96.0.10");
  EXPECT_EQ(c["ipRanges"], nlohmann::json::parse(R"([[{"subnet":"10.244.0.0/24"}]])"));
  EXPECT_EQ(c["cgroupPath"], "/kubepods/burstable/podu-1");
  EXPECT_EQ(c["io.kubernetes.cri.pod-annotations"]["team"], "a");
}

TEST_F(NetworkManagerTest, BadPortMappingsAndBandwidthAreRefused) {
  PodNetworkRequest r;
  r.sandbox_id = "sb";
  r.port_mappings = {{.protocol = "icmp", .container_port = 1, .host_port = 1}};
  EXPECT_EQ(m_->RuntimeConfFor(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.port_mappings = {{.protocol = "tcp", .container_port = 80, .host_port = 70000}};
  EXPECT_FALSE(m_->RuntimeConfFor(r).ok());
  r.port_mappings.clear();
  r.annotations = {{"kubernetes.io/egress-bandwidth", "lots"}};
  absl::StatusOr<CniRuntimeConf> rt = m_->RuntimeConfFor(r);
  EXPECT_FALSE(rt.ok());
  EXPECT_NE(rt.status().message().find("kubernetes.io/egress-bandwidth"), std::string::npos);
}

TEST_F(NetworkManagerTest, SetUpWithoutConfigSaysWhy) {
  PodNetworkRequest r;
  r.sandbox_id = "sb";
  auto s = m_->SetUp(r);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find(dir_ + "/net.d"), std::string::npos) << s.status();
}

}  // namespace
}  // namespace berth::network

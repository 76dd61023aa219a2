// The services called in-process (no socket): the answers a kubelet depends on.
#include "cri/runtime_service.h"

#include <stdlib.h>

#include <string>

#include "absl/time/clock.h"
#include "base/file.h"
#include "cri/image_service.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace berth::cri {
namespace {

class RuntimeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-rs-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.root = dir_ + "/root";
    config_.state = dir_ + "/state";
    config_.cni.conf_dir = dir_ + "/net.d";
    config_.cni.bin_dirs = {dir_ + "/bin"};
    ASSERT_TRUE(MkdirAll(config_.root).ok());
    ASSERT_TRUE(MkdirAll(config_.state).ok());
    ASSERT_TRUE(MkdirAll(config_.cni.conf_dir).ok());
    ASSERT_TRUE(MkdirAll(dir_ + "/bin").ok());
  }
  void TearDown() override {
    network_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  network::NetworkManager* Network() {
    if (!network_) {
      auto m = network::NetworkManager::Create({.conf_dir = config_.cni.conf_dir,
                                                .bin_dirs = config_.cni.bin_dirs,
                                                .cache_dir = dir_ + "/cni"});
      EXPECT_TRUE(m.ok()) << m.status();
      network_ = std::move(*m);
    }
    return network_.get();
  }
  std::string dir_;
  Config config_;
  std::unique_ptr<network::NetworkManager> network_;
};

TEST_F(RuntimeServiceTest, Version) {
  RuntimeService svc(config_, Network(), nullptr);
  v1::VersionRequest req;
  v1::VersionResponse resp;
  ASSERT_TRUE(svc.Version(nullptr, &req, &resp).ok());
  EXPECT_EQ(resp.version(), "0.1.0");
  EXPECT_EQ(resp.runtime_name(), "berth");
  EXPECT_EQ(resp.runtime_version().rfind("0.1.0", 0), 0u) << resp.runtime_version();
  EXPECT_EQ(resp.runtime_api_version(), "v1");
}

TEST_F(RuntimeServiceTest, StatusFollowsCniConfigAndStateDirs) {
  RuntimeService svc(config_, Network(), nullptr);
  v1::StatusRequest req;
  req.set_verbose(true);
  v1::StatusResponse resp;
  ASSERT_TRUE(svc.Status(nullptr, &req, &resp).ok());
  ASSERT_EQ(resp.status().conditions_size(), 2);
  EXPECT_EQ(resp.status().conditions(0).type(), "RuntimeReady");
  EXPECT_TRUE(resp.status().conditions(0).status());
  EXPECT_EQ(resp.status().conditions(1).type(), "NetworkReady");
  EXPECT_FALSE(resp.status().conditions(1).status());
  EXPECT_EQ(resp.status().conditions(1).reason(), "NetworkPluginNotReady");
  EXPECT_NE(resp.status().conditions(1).message().find(config_.cni.conf_dir), std::string::npos);
  for (const char* key : {"config", "runtime", "network"}) {
    ASSERT_TRUE(resp.info().contains(key)) << key;
    EXPECT_FALSE(nlohmann::json::parse(resp.info().at(key)).is_discarded());
  }
  EXPECT_EQ(nlohmann::json::parse(resp.info().at("config"))["root"], config_.root);

  // A valid network whose plugin exists flips NetworkReady.
  ASSERT_TRUE(
      WriteFileAtomic(config_.cni.conf_dir + "/10-x.conflist",
                      R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"loopback"}]})")
          .ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/bin/loopback", "#!/bin/sh\n", 0755).ok());
  // The conf dir is watched: the change shows without a restart.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    resp.Clear();
    ASSERT_TRUE(svc.Status(nullptr, &req, &resp).ok());
  } while (!resp.status().conditions(1).status() && absl::Now() < deadline &&
           (absl::SleepFor(absl::Milliseconds(10)), true));
  EXPECT_TRUE(resp.status().conditions(1).status());
  EXPECT_TRUE(resp.status().conditions(1).reason().empty());

  // Losing the state dir makes the runtime not ready.
  std::system(("rm -rf " + config_.state).c_str());
  resp.Clear();
  ASSERT_TRUE(svc.Status(nullptr, &req, &resp).ok());
  EXPECT_FALSE(resp.status().conditions(0).status());
  EXPECT_NE(resp.status().conditions(0).message().find(config_.state), std::string::npos);
}

TEST_F(RuntimeServiceTest, StatusListsTheRuntimeHandlers) {
  config_.runtime.handlers = {{"runc", {"/usr/sbin/runc", "/run/x"}},
                              {"crun", {"/usr/bin/crun", "/run/y"}}};
  RuntimeService svc(config_, Network(), nullptr);
  v1::StatusRequest req;
  v1::StatusResponse resp;
  ASSERT_TRUE(svc.Status(nullptr, &req, &resp).ok());
  ASSERT_EQ(resp.runtime_handlers_size(), 3);
  EXPECT_EQ(resp.runtime_handlers(0).name(), "");  // the default: berth's own runtime
  EXPECT_EQ(resp.runtime_handlers(1).name(), "crun");
  EXPECT_EQ(resp.runtime_handlers(2).name(), "runc");
  for (const v1::RuntimeHandler& h : resp.runtime_handlers()) {
    EXPECT_FALSE(h.features().user_namespaces()) << h.name();
    if (!h.name().empty()) {
      EXPECT_FALSE(h.features().recursive_read_only_mounts()) << h.name();
    }
  }
  EXPECT_TRUE(resp.info().empty()) << "not verbose";
}

TEST_F(RuntimeServiceTest, UpdateRuntimeConfigStoresPodCidr) {
  RuntimeService svc(config_, Network(), nullptr);
  v1::UpdateRuntimeConfigRequest req;
  v1::UpdateRuntimeConfigResponse resp;
  req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(
      "10.244.3.0/24,fd00:10::/64");
  ASSERT_TRUE(svc.UpdateRuntimeConfig(nullptr, &req, &resp).ok());
  EXPECT_EQ(Network()->PodCidrs(), (std::vector<std::string>{"10.244.3.0/24", "fd00:10::/64"}));
  req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr("not-a-cidr");
  EXPECT_EQ(svc.UpdateRuntimeConfig(nullptr, &req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Network()->PodCidrs().size(), 2u);  // unchanged
}

TEST_F(RuntimeServiceTest, RuntimeConfigReportsCgroupfs) {
  RuntimeService svc(config_, Network(), nullptr);
  v1::RuntimeConfigRequest req;
  v1::RuntimeConfigResponse resp;
  ASSERT_TRUE(svc.RuntimeConfig(nullptr, &req, &resp).ok());
  EXPECT_EQ(resp.linux().cgroup_driver(), v1::CGROUPFS);
}

TEST_F(RuntimeServiceTest, NotYetImplementedRpcsSayWhich) {
  RuntimeService rs(config_, Network(), nullptr);
  v1::ListMetricDescriptorsRequest req;
  v1::ListMetricDescriptorsResponse resp;
  grpc::Status st = rs.ListMetricDescriptors(nullptr, &req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(st.error_message().find("ListMetricDescriptors"), std::string::npos);

  v1::CheckpointContainerRequest creq;
  v1::CheckpointContainerResponse cresp;
  st = rs.CheckpointContainer(nullptr, &creq, &cresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(st.error_message().find("CheckpointContainer"), std::string::npos);
}

// Without a streaming server (this service alone), the streaming RPCs say so instead of
// handing out URLs that lead nowhere.
TEST_F(RuntimeServiceTest, StreamingRpcsNeedTheStreamingServer) {
  RuntimeService rs(config_, Network(), nullptr);
  v1::ExecRequest req;
  v1::ExecResponse resp;
  EXPECT_EQ(rs.Exec(nullptr, &req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::AttachRequest areq;
  v1::AttachResponse aresp;
  EXPECT_EQ(rs.Attach(nullptr, &areq, &aresp).error_code(), grpc::StatusCode::UNAVAILABLE);
  v1::PortForwardRequest preq;
  v1::PortForwardResponse presp;
  EXPECT_EQ(rs.PortForward(nullptr, &preq, &presp).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace berth::cri

// runtime.v1.RuntimeService: CRI messages in, PodManager calls, CRI messages out. Every RPC
// that is not implemented yet answers UNIMPLEMENTED with a message naming it.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "cri/api/cri.h"
#include "cri/config.h"
#include "cri/pod_manager.h"
#include "network/network_manager.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// The runtime API version this server speaks, answered in VersionResponse.version.
inline constexpr char kKubeletApiVersion[] = "0.1.0";
inline constexpr char kRuntimeName[] = "berth";
inline constexpr char kRuntimeApiVersion[] = "v1";

// berth's own version string: "0.1.0" or "0.1.0+g<commit>".
std::string RuntimeVersion();

// Declares the override of a unary RPC `Name(NameRequest) returns (NameResponse)`.
#define BERTH_UNARY_RPC(Name)                                               \
  grpc::Status Name(grpc::ServerContext* ctx, const v1::Name##Request* req, \
                    v1::Name##Response* resp) override

// Declares the override of a server-streaming RPC `Name(NameRequest) returns (stream
// NameResponse)`.
#define BERTH_STREAM_RPC(Name)                                              \
  grpc::Status Name(grpc::ServerContext* ctx, const v1::Name##Request* req, \
                    grpc::ServerWriter<v1::Name##Response>* writer) override

class RuntimeService final : public v1::RuntimeService::Service {
 public:
  // `streaming` may be null (unit tests): Exec and PortForward then answer UNAVAILABLE.
  RuntimeService(const Config& config, network::NetworkManager* network, PodManager* pods,
                 StreamingServer* streaming = nullptr);

  BERTH_UNARY_RPC(Version);
  BERTH_UNARY_RPC(Status);

  BERTH_UNARY_RPC(RunPodSandbox);
  BERTH_UNARY_RPC(StopPodSandbox);
  BERTH_UNARY_RPC(RemovePodSandbox);
  BERTH_UNARY_RPC(PodSandboxStatus);
  BERTH_UNARY_RPC(ListPodSandbox);
  BERTH_UNARY_RPC(CreateContainer);
  BERTH_UNARY_RPC(StartContainer);
  BERTH_UNARY_RPC(StopContainer);
  BERTH_UNARY_RPC(RemoveContainer);
  BERTH_UNARY_RPC(ListContainers);
  BERTH_UNARY_RPC(ContainerStatus);
  BERTH_UNARY_RPC(UpdateContainerResources);
  BERTH_UNARY_RPC(ReopenContainerLog);
  BERTH_UNARY_RPC(ExecSync);
  BERTH_UNARY_RPC(Exec);
  BERTH_UNARY_RPC(Attach);
  BERTH_UNARY_RPC(PortForward);
  BERTH_UNARY_RPC(ContainerStats);
  BERTH_UNARY_RPC(ListContainerStats);
  BERTH_UNARY_RPC(PodSandboxStats);
  BERTH_UNARY_RPC(ListPodSandboxStats);
  BERTH_UNARY_RPC(UpdateRuntimeConfig);
  BERTH_UNARY_RPC(CheckpointContainer);
  BERTH_UNARY_RPC(ListMetricDescriptors);
  BERTH_UNARY_RPC(ListPodSandboxMetrics);
  BERTH_UNARY_RPC(RuntimeConfig);
  BERTH_UNARY_RPC(UpdatePodSandboxResources);
  BERTH_STREAM_RPC(StreamPodSandboxes);
  BERTH_STREAM_RPC(StreamContainers);
  BERTH_STREAM_RPC(StreamContainerStats);
  BERTH_STREAM_RPC(StreamPodSandboxStats);
  BERTH_STREAM_RPC(StreamPodSandboxMetrics);
  grpc::Status GetContainerEvents(grpc::ServerContext* ctx, const v1::GetEventsRequest* req,
                                  grpc::ServerWriter<v1::ContainerEventResponse>* writer) override;

 private:
  Config config_;
  network::NetworkManager* network_;  // owned by the daemon
  PodManager* pods_;
  StreamingServer* streaming_;        // owned by the daemon
  absl::Time started_;
};

}  // namespace berth::cri

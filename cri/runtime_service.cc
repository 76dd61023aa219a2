#include "cri/runtime_service.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/version.h"
#include "cgroups/mode.h"
#include "cri/grpc_status.h"
#include "network/cni_config.h"

namespace berth::cri {

std::string RuntimeVersion() {
  std::string v = kVersion;
  if (kGitCommit[0] != '\0') absl::StrAppend(&v, "+g", kGitCommit);
  return v;
}

RuntimeService::RuntimeService(const Config& config, network::NetworkManager* network,
                               PodManager* pods, StreamingServer* streaming)
    : config_(config),
      network_(network),
      pods_(pods),
      streaming_(streaming),
      started_(absl::Now()) {}

grpc::Status RuntimeService::Version(grpc::ServerContext*, const v1::VersionRequest*,
                                     v1::VersionResponse* resp) {
  resp->set_version(kKubeletApiVersion);
  resp->set_runtime_name(kRuntimeName);
  resp->set_runtime_version(RuntimeVersion());
  resp->set_runtime_api_version(kRuntimeApiVersion);
  return grpc::Status::OK;
}

namespace {

// The runtime can work when its state directories are usable.
std::string RuntimeProblem(const Config& config) {
  for (const std::string& dir : {config.root, config.state}) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::StrCat("state directory ", dir, " is missing");
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      return absl::StrCat("state directory ", dir, " is not writable");
    }
  }
  return "";
}

// The native runtime makes read-only mounts recursive with mount_setattr(2) (Linux 5.12).
bool KernelHasMountSetattr() {
#ifdef SYS_mount_setattr
  // Invalid on purpose: EBADF/EINVAL when the call exists, ENOSYS when it does not.
  long r = ::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0);
  return !(r < 0 && errno == ENOSYS);
#else
  return false;
#endif
}

}  // namespace

grpc::Status RuntimeService::Status(grpc::ServerContext*, const v1::StatusRequest* req,
                                    v1::StatusResponse* resp) {
  v1::RuntimeCondition* runtime = resp->mutable_status()->add_conditions();
  runtime->set_type("RuntimeReady");
  std::string problem = RuntimeProblem(config_);
  runtime->set_status(problem.empty());
  if (!problem.empty()) {
    runtime->set_reason("RuntimeStateUnavailable");
    runtime->set_message(problem);
  }

  network::NetworkReadiness net = network_->Readiness();
  v1::RuntimeCondition* network = resp->mutable_status()->add_conditions();
  network->set_type("NetworkReady");
  network->set_status(net.ready);
  network->set_reason(net.reason);
  network->set_message(net.message);

  // The default handler is berth's own runtime; the others are runc-compatible CLIs, whose
  // recursive read-only support is not probed (reported false, as the kubelet then refuses
  // recursive read-only mounts rather than getting plain read-only ones).
  static const bool rro = KernelHasMountSetattr();
  v1::RuntimeHandler* native = resp->add_runtime_handlers();
  native->set_name("");
  native->mutable_features()->set_recursive_read_only_mounts(rro);
  native->mutable_features()->set_user_namespaces(false);
  for (const auto& [name, handler] : config_.runtime.handlers) {
    if (name.empty()) continue;
    v1::RuntimeHandler* h = resp->add_runtime_handlers();
    h->set_name(name);
    h->mutable_features()->set_recursive_read_only_mounts(false);
    h->mutable_features()->set_user_namespaces(false);
  }

  if (req->verbose()) {
    auto& info = *resp->mutable_info();
    info["config"] = config_.ToJson().dump();

    nlohmann::json rt;
    rt["name"] = kRuntimeName;
    rt["version"] = RuntimeVersion();
    rt["api_version"] = kRuntimeApiVersion;
    rt["pid"] = ::getpid();
    rt["started_at"] = absl::FormatTime(absl::RFC3339_full, started_, absl::UTCTimeZone());
    absl::StatusOr<cgroups::Mode> mode = cgroups::DetectMode();
    rt["cgroup_mode"] = mode.ok() ? std::string(cgroups::ModeName(*mode))
                                  : absl::StrCat("unknown: ", mode.status().message());
    info["runtime"] = rt.dump();

    nlohmann::json nj;
    nj["ready"] = net.ready;
    nj["conf_dir"] = config_.cni.conf_dir;
    nj["bin_dirs"] = config_.cni.bin_dirs;
    nj["pod_cidrs"] = network_->PodCidrs();
    if (net.ready) {
      nj["network"] = net.network;
      nj["config_file"] = net.file;
    } else {
      nj["message"] = net.message;
    }
    info["network"] = nj.dump();
    if (pods_ != nullptr) {
      absl::StatusOr<size_t> pods = pods_->PodCount();
      info["pods"] = pods.ok() ? nlohmann::json(*pods).dump()
                               : nlohmann::json(std::string(pods.status().message())).dump();
    }
  }
  return grpc::Status::OK;
}

grpc::Status RuntimeService::RunPodSandbox(grpc::ServerContext*,
                                           const v1::RunPodSandboxRequest* req,
                                           v1::RunPodSandboxResponse* resp) {
  absl::StatusOr<std::string> id = pods_->RunPodSandbox(req->config(), req->runtime_handler());
  if (!id.ok()) return ToGrpcStatus(id.status());
  resp->set_pod_sandbox_id(*id);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::StopPodSandbox(grpc::ServerContext*,
                                            const v1::StopPodSandboxRequest* req,
                                            v1::StopPodSandboxResponse*) {
  return ToGrpcStatus(pods_->StopPodSandbox(req->pod_sandbox_id()));
}

grpc::Status RuntimeService::RemovePodSandbox(grpc::ServerContext*,
                                              const v1::RemovePodSandboxRequest* req,
                                              v1::RemovePodSandboxResponse*) {
  return ToGrpcStatus(pods_->RemovePodSandbox(req->pod_sandbox_id()));
}

grpc::Status RuntimeService::PodSandboxStatus(grpc::ServerContext*,
                                              const v1::PodSandboxStatusRequest* req,
                                              v1::PodSandboxStatusResponse* resp) {
  absl::StatusOr<v1::PodSandboxStatusResponse> r =
      pods_->PodSandboxStatus(req->pod_sandbox_id(), req->verbose());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::ListPodSandbox(grpc::ServerContext*,
                                            const v1::ListPodSandboxRequest* req,
                                            v1::ListPodSandboxResponse* resp) {
  absl::StatusOr<std::vector<v1::PodSandbox>> r =
      pods_->ListPodSandbox(req->has_filter() ? &req->filter() : nullptr);
  if (!r.ok()) return ToGrpcStatus(r.status());
  for (v1::PodSandbox& p : *r) *resp->add_items() = std::move(p);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::CreateContainer(grpc::ServerContext*,
                                             const v1::CreateContainerRequest* req,
                                             v1::CreateContainerResponse* resp) {
  absl::StatusOr<std::string> id =
      pods_->CreateContainer(req->pod_sandbox_id(), req->config(), req->sandbox_config());
  if (!id.ok()) return ToGrpcStatus(id.status());
  resp->set_container_id(*id);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::StartContainer(grpc::ServerContext*,
                                            const v1::StartContainerRequest* req,
                                            v1::StartContainerResponse*) {
  return ToGrpcStatus(pods_->StartContainer(req->container_id()));
}

grpc::Status RuntimeService::StopContainer(grpc::ServerContext*,
                                           const v1::StopContainerRequest* req,
                                           v1::StopContainerResponse*) {
  return ToGrpcStatus(pods_->StopContainer(req->container_id(), req->timeout()));
}

grpc::Status RuntimeService::RemoveContainer(grpc::ServerContext*,
                                             const v1::RemoveContainerRequest* req,
                                             v1::RemoveContainerResponse*) {
  return ToGrpcStatus(pods_->RemoveContainer(req->container_id()));
}

grpc::Status RuntimeService::ListContainers(grpc::ServerContext*,
                                            const v1::ListContainersRequest* req,
                                            v1::ListContainersResponse* resp) {
  absl::StatusOr<std::vector<v1::Container>> r =
      pods_->ListContainers(req->has_filter() ? &req->filter() : nullptr);
  if (!r.ok()) return ToGrpcStatus(r.status());
  for (v1::Container& c : *r) *resp->add_containers() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::ContainerStatus(grpc::ServerContext*,
                                             const v1::ContainerStatusRequest* req,
                                             v1::ContainerStatusResponse* resp) {
  absl::StatusOr<v1::ContainerStatusResponse> r =
      pods_->ContainerStatus(req->container_id(), req->verbose());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::ReopenContainerLog(grpc::ServerContext*,
                                                const v1::ReopenContainerLogRequest* req,
                                                v1::ReopenContainerLogResponse*) {
  return ToGrpcStatus(pods_->ReopenContainerLog(req->container_id()));
}

grpc::Status RuntimeService::ExecSync(grpc::ServerContext*, const v1::ExecSyncRequest* req,
                                      v1::ExecSyncResponse* resp) {
  std::vector<std::string> cmd(req->cmd().begin(), req->cmd().end());
  absl::StatusOr<ExecSyncResult> r =
      pods_->ExecSync(req->container_id(), cmd, absl::Seconds(req->timeout()));
  if (!r.ok()) return ToGrpcStatus(r.status());
  resp->set_stdout(std::move(r->stdout_data));
  resp->set_stderr(std::move(r->stderr_data));
  resp->set_exit_code(r->exit_code);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::UpdateContainerResources(
    grpc::ServerContext*, const v1::UpdateContainerResourcesRequest* req,
    v1::UpdateContainerResourcesResponse*) {
  return ToGrpcStatus(pods_->UpdateContainerResources(req->container_id(), req->linux()));
}

grpc::Status RuntimeService::ContainerStats(grpc::ServerContext*,
                                            const v1::ContainerStatsRequest* req,
                                            v1::ContainerStatsResponse* resp) {
  absl::StatusOr<v1::ContainerStats> r = pods_->ContainerStats(req->container_id());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp->mutable_stats() = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::ListContainerStats(grpc::ServerContext*,
                                                const v1::ListContainerStatsRequest* req,
                                                v1::ListContainerStatsResponse* resp) {
  absl::StatusOr<std::vector<v1::ContainerStats>> r =
      pods_->ListContainerStats(req->has_filter() ? &req->filter() : nullptr);
  if (!r.ok()) return ToGrpcStatus(r.status());
  for (v1::ContainerStats& s : *r) *resp->add_stats() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::PodSandboxStats(grpc::ServerContext*,
                                             const v1::PodSandboxStatsRequest* req,
                                             v1::PodSandboxStatsResponse* resp) {
  absl::StatusOr<v1::PodSandboxStats> r = pods_->PodSandboxStats(req->pod_sandbox_id());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp->mutable_stats() = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::ListPodSandboxStats(grpc::ServerContext*,
                                                 const v1::ListPodSandboxStatsRequest* req,
                                                 v1::ListPodSandboxStatsResponse* resp) {
  absl::StatusOr<std::vector<v1::PodSandboxStats>> r =
      pods_->ListPodSandboxStats(req->has_filter() ? &req->filter() : nullptr);
  if (!r.ok()) return ToGrpcStatus(r.status());
  for (v1::PodSandboxStats& s : *r) *resp->add_stats() = std::move(s);
  return grpc::Status::OK;
}

namespace {

// Exec, Attach, PortForward: the request is checked, then answered with a URL on the streaming
// server, where the client takes it from there.
template <typename Request, typename Response>
grpc::Status AnswerWithUrl(PodManager* pods, StreamingServer* streaming, const Request& req,
                           Response* resp) {
  if (streaming == nullptr) return grpc::Status(grpc::UNAVAILABLE, "no streaming server");
  if (absl::Status st = pods->Validate(req); !st.ok()) return ToGrpcStatus(st);
  absl::StatusOr<std::string> url = streaming->Url(req);
  if (!url.ok()) return ToGrpcStatus(url.status());
  resp->set_url(*url);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status RuntimeService::Exec(grpc::ServerContext*, const v1::ExecRequest* req,
                                  v1::ExecResponse* resp) {
  return AnswerWithUrl(pods_, streaming_, *req, resp);
}

grpc::Status RuntimeService::Attach(grpc::ServerContext*, const v1::AttachRequest* req,
                                    v1::AttachResponse* resp) {
  return AnswerWithUrl(pods_, streaming_, *req, resp);
}

grpc::Status RuntimeService::PortForward(grpc::ServerContext*, const v1::PortForwardRequest* req,
                                         v1::PortForwardResponse* resp) {
  return AnswerWithUrl(pods_, streaming_, *req, resp);
}

BERTH_UNIMPLEMENTED_RPC(RuntimeService, CheckpointContainer)
BERTH_UNIMPLEMENTED_RPC(RuntimeService, ListMetricDescriptors)
BERTH_UNIMPLEMENTED_RPC(RuntimeService, ListPodSandboxMetrics)
BERTH_UNIMPLEMENTED_RPC(RuntimeService, UpdatePodSandboxResources)
BERTH_UNIMPLEMENTED_STREAM_RPC(RuntimeService, StreamPodSandboxes)
BERTH_UNIMPLEMENTED_STREAM_RPC(RuntimeService, StreamContainers)
BERTH_UNIMPLEMENTED_STREAM_RPC(RuntimeService, StreamContainerStats)
BERTH_UNIMPLEMENTED_STREAM_RPC(RuntimeService, StreamPodSandboxStats)
BERTH_UNIMPLEMENTED_STREAM_RPC(RuntimeService, StreamPodSandboxMetrics)

grpc::Status RuntimeService::UpdateRuntimeConfig(grpc::ServerContext*,
                                                 const v1::UpdateRuntimeConfigRequest* req,
                                                 v1::UpdateRuntimeConfigResponse*) {
  // The kubelet sends the node's pod CIDR(s); plugins that declare the ipRanges capability
  // get them. An empty CIDR means "no change", as in containerd.
  const std::string& cidr = req->runtime_config().network_config().pod_cidr();
  if (cidr.empty()) return grpc::Status::OK;
  absl::Status st = network_->SetPodCidrs(cidr);
  if (!st.ok()) return ToGrpcStatus(st);
  log::Info("pod CIDR updated", {{"pod_cidr", cidr}});
  return grpc::Status::OK;
}

grpc::Status RuntimeService::RuntimeConfig(grpc::ServerContext*, const v1::RuntimeConfigRequest*,
                                           v1::RuntimeConfigResponse* resp) {
  // The kubelet (KubeletCgroupDriverFromCRI) takes its cgroup driver from here.
  resp->mutable_linux()->set_cgroup_driver(v1::CGROUPFS);
  return grpc::Status::OK;
}

grpc::Status RuntimeService::GetContainerEvents(
    grpc::ServerContext* ctx, const v1::GetEventsRequest*,
    grpc::ServerWriter<v1::ContainerEventResponse>* writer) {
  std::shared_ptr<EventSubscription> sub = pods_->SubscribeEvents();
  absl::Cleanup unsubscribe = [&] { pods_->UnsubscribeEvents(sub); };
  // Subscribed: the client may rely on seeing everything that happens after the headers.
  writer->SendInitialMetadata();
  // Woken by an event or the subscription's end (shutdown); the timeout bounds how long a
  // cancelled client holds the call.
  while (ctx == nullptr || !ctx->IsCancelled()) {
    std::optional<v1::ContainerEventResponse> event = sub->Next(absl::Milliseconds(200));
    if (!event) {
      if (sub->closed()) break;
      continue;
    }
    if (!writer->Write(*event)) break;
  }
  if (uint64_t dropped = sub->dropped(); dropped > 0) {
    log::Warn("a container event stream fell behind; its oldest events were dropped",
              {{"dropped", static_cast<int64_t>(dropped)}});
  }
  return grpc::Status::OK;
}

}  // namespace berth::cri

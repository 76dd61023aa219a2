// Pods and containers: what RunPodSandbox ... RemoveContainer do, in absl::Status terms (the
// RuntimeService turns them into CRI responses). Every side effect is recorded in the CriStore
// before it is made, and undone idempotently from the record: by the failing call itself, by
// Stop/Remove, or by Recover() after a crash of berthd.
//
// On disk:
//   <state>/pods/<pod>/                  pod dir: netns/ipcns/utsns pins, hostname, hosts,
//                                        resolv.conf, shm/ (tmpfs), monitor.sock, monitor.log
//   <state>/pods/<pod>/containers/<c>/   bundle: config.json, rootfs/ (overlay), exit record
//   <root>/containers/<c>/               upper/ and work/ of the overlay, volumes/
//   <state>/runtime/                     the runtime library's container state (berth-oci's)
//
// Thread-safe: calls for one pod are serialised; different pods proceed in parallel.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/api/cri.h"
#include "cri/event_hub.h"
#include "cri/store.h"
#include "cri/streaming_server.h"
#include "images/image_store.h"
#include "network/network_manager.h"

namespace berth::cgroups {
class Manager;
}

namespace berth::cri {

namespace v1 = ::runtime::v1;

namespace records {
struct LoadedContainer;
struct LoadedPod;
}  // namespace records

// An OCI runtime for a RuntimeClass handler: empty binary means berth's own runtime library.
struct RuntimeHandler {
  std::string binary;  // a runc-compatible CLI, e.g. /usr/sbin/runc
  std::string root;    // its --root
};

// The OCI runtime CLI of a pod's handler (berth-oci for the runtime library).
struct OciCli {
  std::string binary, root;
};

namespace records {
struct PodRecord;  // cri/pod_records.h
}

struct PodManagerOptions {
  std::string root = "/var/lib/berth";
  std::string state = "/run/berth";
  std::string monitor_binary;                      // berth-monitor
  std::string oci_binary;                          // berth-oci (ExecSync with the native runtime)
  std::map<std::string, RuntimeHandler> handlers;  // "" is the default handler
  size_t log_max_line = 16 * 1024;
  int64_t shm_size = 64 << 20;             // bytes of the pod's /dev/shm
  size_t exec_sync_max_output = 16 << 20;  // per stream
};

struct ExecSyncResult {
  std::string stdout_data, stderr_data;
  int exit_code = 0;
};

// Holds a pod's lock (and the lock's life).
class PodGuard {
 public:
  explicit PodGuard(std::shared_ptr<std::mutex> m) : m_(std::move(m)), lock_(*m_) {}

 private:
  std::shared_ptr<std::mutex> m_;
  std::lock_guard<std::mutex> lock_;
};

class PodManager : public StreamingRuntime {
 public:
  ~PodManager();

  static absl::StatusOr<std::unique_ptr<PodManager>> Create(PodManagerOptions options,
                                                            CriStore* store,
                                                            images::ImageStore* images,
                                                            network::NetworkManager* network);

  // Start-up: half-created pods and containers are undone; the rest is adopted as it is.
  absl::Status Recover();

  absl::StatusOr<std::string> RunPodSandbox(const v1::PodSandboxConfig& config,
                                            const std::string& runtime_handler);
  absl::Status StopPodSandbox(const std::string& id);
  absl::Status RemovePodSandbox(const std::string& id);
  absl::StatusOr<v1::PodSandboxStatusResponse> PodSandboxStatus(const std::string& id,
                                                                bool verbose);
  absl::StatusOr<std::vector<v1::PodSandbox>> ListPodSandbox(const v1::PodSandboxFilter* filter);

  absl::StatusOr<std::string> CreateContainer(const std::string& pod_id,
                                              const v1::ContainerConfig& config,
                                              const v1::PodSandboxConfig& sandbox_config);
  absl::Status StartContainer(const std::string& id);
  absl::Status StopContainer(const std::string& id, int64_t timeout_seconds);
  absl::Status RemoveContainer(const std::string& id);
  absl::StatusOr<v1::ContainerStatusResponse> ContainerStatus(const std::string& id, bool verbose);
  absl::StatusOr<std::vector<v1::Container>> ListContainers(const v1::ContainerFilter* filter);
  absl::Status ReopenContainerLog(const std::string& id);
  absl::StatusOr<ExecSyncResult> ExecSync(const std::string& id,
                                          const std::vector<std::string>& cmd,
                                          absl::Duration timeout);

  // Streaming (pod_streaming.cc): what the streaming server runs for Exec, Attach and
  // PortForward. Validate checks a request when the URL is issued (the CRI call).
  absl::Status Validate(const v1::ExecRequest& request);
  absl::Status Validate(const v1::AttachRequest& request);
  absl::Status Validate(const v1::PortForwardRequest& request);
  absl::StatusOr<std::unique_ptr<StreamTarget>> StartExec(const v1::ExecRequest& request) override;
  absl::StatusOr<std::unique_ptr<StreamTarget>> StartAttach(
      const v1::AttachRequest& request) override;
  absl::StatusOr<UniqueFd> DialPort(const std::string& pod_id, int32_t port) override;

  // Applies new cgroup limits to a created or running container's live cgroup (berthd writes
  // them itself, whatever the runtime handler) and records them in its config, so that
  // ContainerStatus.resources shows them. Unspecified (zero) fields keep their value.
  absl::Status UpdateContainerResources(const std::string& id,
                                        const v1::LinuxContainerResources& resources);

  // Stats (pod_stats.cc). usage_nano_cores is computed from the previous sample of the same
  // container or pod (0 on the first).
  absl::StatusOr<v1::ContainerStats> ContainerStats(const std::string& id);
  absl::StatusOr<std::vector<v1::ContainerStats>> ListContainerStats(
      const v1::ContainerStatsFilter* filter);
  absl::StatusOr<v1::PodSandboxStats> PodSandboxStats(const std::string& id);
  absl::StatusOr<std::vector<v1::PodSandboxStats>> ListPodSandboxStats(
      const v1::PodSandboxStatsFilter* filter);

  // Container lifecycle events (GetContainerEvents): CREATED after CreateContainer, STARTED
  // after StartContainer, STOPPED once an exit is seen (by StopContainer or any status or list
  // call), DELETED after RemoveContainer.
  std::shared_ptr<EventSubscription> SubscribeEvents();
  void UnsubscribeEvents(const std::shared_ptr<EventSubscription>& subscription);
  // Ends every event stream (berthd shutting down).
  void Shutdown();

  // Pod sandboxes that exist (created ones, ready or not).
  absl::StatusOr<size_t> PodCount();

 private:
  PodManager(PodManagerOptions options, CriStore* store, images::ImageStore* images,
             network::NetworkManager* network);
  // The lock serialising calls for one pod. Shared: a caller waiting on it keeps it alive
  // when RemovePodSandbox drops the pod's entry meanwhile.
  std::shared_ptr<std::mutex> PodLock(const std::string& pod_id);
  // The OCI CLI of the pod's handler, for work done without the monitor.
  OciCli OciFor(const records::PodRecord& pod) const;

  // Publishes an event about `c` with its pod's status and the statuses of the pod's
  // containers (c's first).
  void Emit(v1::ContainerEventType type, const records::LoadedContainer& c);
  // Publishes CONTAINER_STOPPED the first time `c` is seen exited.
  void NoteExit(const records::LoadedContainer& c);
  // The container `requested` names (an id or a unique prefix); FailedPrecondition unless it
  // is running.
  absl::StatusOr<records::LoadedContainer> RunningContainer(const std::string& requested);
  // The container of an Exec / Attach request, checked as the RPC requires.
  absl::StatusOr<records::LoadedContainer> ExecContainer(const v1::ExecRequest& request);
  absl::StatusOr<records::LoadedContainer> AttachContainer(const v1::AttachRequest& request);
  // Drops what is kept in memory about a removed container or pod.
  void Forget(const std::string& id);

  absl::StatusOr<cgroups::Manager*> Cgroups();
  v1::ContainerStats BuildContainerStats(const records::LoadedContainer& c);
  v1::PodSandboxStats BuildPodStats(const records::LoadedPod& pod);
  uint64_t NanoCores(const std::string& id, int64_t timestamp_ns, uint64_t usage_ns);

  PodManagerOptions options_;
  UniqueFd monitor_image_;  // LoadMonitorImage's memfd, or empty
  CriStore* store_;
  images::ImageStore* images_;
  network::NetworkManager* network_;
  std::mutex locks_mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> pod_locks_;

  EventHub events_;
  std::mutex stopped_mu_;
  std::set<std::string> stopped_sent_;  // containers whose CONTAINER_STOPPED went out
  std::set<std::string> starting_;      // containers in StartContainer's monitor call

  struct CpuSample {
    int64_t timestamp_ns = 0;
    uint64_t usage_ns = 0;
  };
  std::mutex samples_mu_;
  std::map<std::string, CpuSample> cpu_samples_;  // by container or pod id

  std::mutex cgroups_mu_;
  std::unique_ptr<cgroups::Manager> cgroups_;  // created on first use
};

}  // namespace berth::cri

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
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/api/cri.h"
#include "cri/store.h"
#include "images/image_store.h"
#include "network/network_manager.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// An OCI runtime for a RuntimeClass handler: empty binary means berth's own runtime library.
struct RuntimeHandler {
  std::string binary;  // a runc-compatible CLI, e.g. /usr/sbin/runc
  std::string root;    // its --root
};

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

class PodManager {
 public:
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

 private:
  PodManager(PodManagerOptions options, CriStore* store, images::ImageStore* images,
             network::NetworkManager* network);
  std::mutex& PodLock(const std::string& pod_id);

  PodManagerOptions options_;
  CriStore* store_;
  images::ImageStore* images_;
  network::NetworkManager* network_;
  std::mutex locks_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> pod_locks_;
};

}  // namespace berth::cri

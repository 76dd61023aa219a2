// The pod network as the CRI needs it: which CNI network is configured (watched with inotify),
// whether it is ready, and attaching / detaching a pod's pinned network namespace to it.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "network/cni.h"
#include "network/cni_config.h"
#include "network/pod_files.h"

namespace berth::network {

struct PortMapping {
  std::string protocol = "tcp";  // tcp, udp, sctp
  int32_t container_port = 0;
  int32_t host_port = 0;  // 0: not published on the node (not sent to CNI)
  std::string host_ip;
};

struct PodNetworkRequest {
  std::string sandbox_id;
  std::string pod_name, pod_namespace, pod_uid;
  std::string netns_path;  // the pinned network namespace
  std::vector<PortMapping> port_mappings;
  std::map<std::string, std::string> annotations;  // bandwidth; passed on to plugins
  DnsConfig dns;
  std::string cgroup_parent;
};

struct PodNetworkStatus {
  std::string network;           // the CNI network's name
  std::vector<std::string> ips;  // primary first (IPv4 before IPv6)
  CniResult result;
};

class NetworkManager {
 public:
  struct Options {
    std::string conf_dir = "/etc/cni/net.d";
    std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
    std::string network_name;  // empty: lexically first valid config
    std::string cache_dir;     // results cache and saved runtime config
    absl::Duration plugin_timeout = absl::Seconds(60);
    absl::Duration rescan_interval = absl::Seconds(5);  // also catches dirs created later
    std::string ifname = "eth0";
  };

  // Loads the config and starts watching the conf and bin dirs.
  static absl::StatusOr<std::unique_ptr<NetworkManager>> Create(
      Options options, std::shared_ptr<PluginExecutor> executor = nullptr);
  ~NetworkManager();

  // Readiness as of the last change in the watched dirs.
  NetworkReadiness Readiness() const;

  // The pod CIDRs from UpdateRuntimeConfig ("10.244.1.0/24,fd00::/64"), kept across restarts
  // and passed as the ipRanges capability to plugins that declare it.
  absl::Status SetPodCidrs(absl::string_view cidrs);
  std::vector<std::string> PodCidrs() const;

  // CNI ADD of the pod's netns to the configured network. A failure leaves nothing behind.
  absl::StatusOr<PodNetworkStatus> SetUp(const PodNetworkRequest& request);

  // CNI CHECK of an attached pod.
  absl::Status Check(const PodNetworkRequest& request);

  // CNI DEL of everything recorded for the sandbox, with the config and args recorded at ADD
  // time (the conf dir may have changed, berthd may have restarted, the netns may be gone).
  // Idempotent.
  absl::Status TearDown(const std::string& sandbox_id);

  // The recorded attachment of a sandbox, if any (for status after a restart).
  absl::StatusOr<std::optional<PodNetworkStatus>> Attached(const std::string& sandbox_id);

  CniInvoker& invoker() { return *invoker_; }

  // Builds the CNI runtime conf for a request (exposed for tests).
  absl::StatusOr<CniRuntimeConf> RuntimeConfFor(const PodNetworkRequest& request) const;

 private:
  explicit NetworkManager(Options options, std::shared_ptr<PluginExecutor> executor);
  void Reload();
  void Watch();
  void AddWatches();

  Options options_;
  std::unique_ptr<CniInvoker> invoker_;

  mutable std::mutex mu_;
  NetworkReadiness readiness_;
  std::optional<CniConfigList> network_;
  std::vector<std::string> pod_cidrs_;

  UniqueFd inotify_;
  UniqueFd wake_;                       // eventfd: stops the watcher
  std::map<int, std::string> watched_;  // watch descriptor -> dir (watcher thread only)
  std::thread watcher_;
};

// Parses a Kubernetes bandwidth quantity ("10M", "1Gi", "500k") to bits per second; the
// kubelet's bounds (1k..1P) apply.
absl::StatusOr<uint64_t> ParseBandwidth(absl::string_view quantity);

}  // namespace berth::network

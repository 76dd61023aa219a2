// Invoking a CNI network configuration list the way libcni does (spec 1.0.0, older results
// accepted): ADD through the chain with prevResult, CHECK, DEL in reverse, the capability
// args each plugin asked for, and an on-disk result cache in libcni's format so that DEL after
// a restart sends the same config and prevResult.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "network/cni_config.h"
#include "network/cni_exec.h"
#include "network/cni_result.h"
#include "nlohmann/json.hpp"

namespace berth::network {

// What identifies one attachment of a container to a network.
struct CniRuntimeConf {
  std::string container_id;  // the pod sandbox ID
  std::string netns;         // the pinned netns path (may be gone by DEL time)
  std::string ifname = "eth0";
  std::vector<std::pair<std::string, std::string>> args;      // CNI_ARGS, in order
  nlohmann::json capability_args = nlohmann::json::object();  // portMappings, bandwidth, ...
};

// An entry of the result cache: everything DEL needs, even if the conf dir changed.
struct CachedAttachment {
  std::string path;  // the cache file
  CniConfigList config;
  CniRuntimeConf runtime;
  std::optional<CniResult> result;  // absent when berthd stopped between recording and ADD
};

class CniInvoker {
 public:
  struct Options {
    std::vector<std::string> bin_dirs;
    std::string cache_dir;  // results/ lives below it
    absl::Duration plugin_timeout = absl::Seconds(60);
    int del_attempts = 3;  // DEL is retried with backoff
  };
  CniInvoker(Options options, std::shared_ptr<PluginExecutor> executor);

  // Records the attachment in the cache, then runs ADD through the chain. On failure, the
  // plugins already run are undone (DEL of the whole list) and the record is removed, so a
  // failed ADD leaves nothing behind.
  absl::StatusOr<CniResult> Add(const CniConfigList& list, const CniRuntimeConf& rt);

  // CHECK with the cached result (lists of cniVersion >= 0.4.0 without disableCheck).
  absl::Status Check(const CniConfigList& list, const CniRuntimeConf& rt);

  // DEL in reverse order with the cached result as prevResult; retried; fine when the netns
  // is already gone (CNI_NETNS is then left empty). Removes the cache entry on success.
  absl::Status Del(const CniConfigList& list, const CniRuntimeConf& rt);

  // DEL of every cached attachment of `container_id`, using the cached config and args (what
  // a restarted berthd or a changed conf dir needs). No entry: nothing to do.
  absl::Status DelCached(const std::string& container_id);

  // The cached attachments of `container_id` (all networks, all interfaces).
  absl::StatusOr<std::vector<CachedAttachment>> CachedAttachments(const std::string& container_id);

  // The time the plugins themselves took in the last Add/Del on this thread (for benchmarks).
  static absl::Duration LastPluginTime();

 private:
  absl::StatusOr<CniResult> RunAdd(const CniConfigList& list, const CniRuntimeConf& rt);
  absl::Status RunDel(const CniConfigList& list, const CniRuntimeConf& rt,
                      const std::optional<CniResult>& prev);
  absl::StatusOr<std::string> RunPlugin(const std::string& command, const CniConfigList& list,
                                        const nlohmann::json& plugin, const CniRuntimeConf& rt,
                                        const std::optional<CniResult>& prev);
  std::string CachePath(const std::string& network, const CniRuntimeConf& rt) const;
  absl::Status WriteCache(const CniConfigList& list, const CniRuntimeConf& rt,
                          const std::optional<CniResult>& result);
  absl::StatusOr<CachedAttachment> ReadCache(const std::string& path);

  Options options_;
  std::shared_ptr<PluginExecutor> executor_;
};

// CNI_ARGS as containerd and CRI-O send them for a pod (fixed order, as CRI-O does).
std::vector<std::pair<std::string, std::string>> KubernetesCniArgs(const std::string& pod_namespace,
                                                                   const std::string& pod_name,
                                                                   const std::string& sandbox_id,
                                                                   const std::string& pod_uid);

}  // namespace berth::network

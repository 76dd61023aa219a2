// Pod namespaces that outlive any process: a network, IPC or UTS namespace is created on a
// short-lived thread (so the caller's namespaces never change) and pinned by bind-mounting its
// nsfs file onto a path under the run dir. The pin is what the CNI plugins, the containers and
// a restarted berthd find the namespace by.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::network {

enum class NsType { kNet, kIpc, kUts };

absl::string_view NsTypeName(NsType type);  // "net", "ipc", "uts"

struct NsPin {
  NsType type;
  std::string path;  // the pin file; its directory must exist
};

// What to set up inside the new namespaces before they are pinned.
struct NamespaceSetup {
  std::string hostname;  // UTS: sethostname (empty: keep the inherited one)
  // Namespaced sysctls, e.g. {"net.ipv4.ip_unprivileged_port_start", "0"} or
  // {"kernel.shm_rmid_forced", "1"}: net.* go to the network namespace; kernel.shm*,
  // kernel.msg*, kernel.sem and fs.mqueue.* to the IPC namespace. Anything else is node-wide
  // and refused, as is a sysctl whose namespace is not being created.
  std::vector<std::pair<std::string, std::string>> sysctls;
  bool loopback_up = true;  // NET: bring `lo` up
};

// Creates one namespace per pin (at most one of each type), sets them up, and pins them. All
// or nothing: on any failure the pins made so far are removed.
absl::Status CreatePinnedNamespaces(const std::vector<NsPin>& pins, const NamespaceSetup& setup);

// Unmounts and removes a pin. Fine if it is already gone or was never mounted.
absl::Status RemovePinnedNamespace(const std::string& pin_path);

// True when `path` is a mounted namespace file (an nsfs bind mount).
bool IsPinnedNamespace(const std::string& path);

// Runs `fn` on a thread that has joined the namespace pinned at `pin_path`; the caller's
// thread stays where it is. The status of `fn`, or why the namespace could not be joined.
absl::Status RunInNamespace(const std::string& pin_path, NsType type,
                            const std::function<absl::Status()>& fn);

// Checks a sysctl name and value and says which namespace it belongs to (kNet or kIpc).
absl::StatusOr<NsType> SysctlNamespace(absl::string_view name, absl::string_view value);

}  // namespace berth::network

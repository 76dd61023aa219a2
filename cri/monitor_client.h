// berthd's side of the per-pod monitor (runtime/monitor.h): starting one for a sandbox, calling
// it, and recognising it again after a restart.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "nlohmann/json.hpp"

namespace berth::cri {

struct MonitorProcess {
  pid_t pid = 0;
  uint64_t start_time = 0;  // identifies pid (/proc/PID/stat field 22)
  pid_t holder_pid = 0;     // the pod's pid-namespace holder, 0 when none
  uint64_t holder_start_time = 0;
};

// berth-monitor's executable copied into a sealed memfd, which monitors are started from.
// Page-cache folios of a file its writer (a build, a package install) just wrote can be large,
// and a process maps a folio whole on a fault: the idle monitor's few code pages would map ~1
// MiB of it. The memfd's pages are small (shmem), all monitors share them, and an upgrade of
// the file on disk does not change what running berthd starts.
absl::StatusOr<UniqueFd> LoadMonitorImage(const std::string& path);

struct MonitorSpawn {
  std::string binary;  // berth-monitor (argv[0]; executed unless image_fd is given)
  int image_fd = -1;   // LoadMonitorImage's memfd
  std::string pod_dir;
  std::string runtime_root;
  bool pid_holder = false;
  size_t log_max_line = 16 * 1024;
  absl::Duration ready_timeout = absl::Seconds(10);
};

// Starts a monitor in a session of its own, not a child of berthd (a double fork: it is
// reparented to init and lives on when berthd stops), and waits until it serves its socket.
// Its own messages go to <pod_dir>/monitor.log.
absl::StatusOr<MonitorProcess> SpawnMonitor(const MonitorSpawn& spawn);

// One request to the monitor of `pod_dir`; a reply with "ok": false becomes its status.
absl::StatusOr<nlohmann::json> CallMonitor(const std::string& pod_dir,
                                           const nlohmann::json& request,
                                           absl::Duration timeout = absl::Seconds(30));

// The same for a request answered with descriptors (attach): they are appended to `*fds`, and
// the connection stays open in `*conn`.
absl::StatusOr<nlohmann::json> CallMonitorWithFds(const std::string& pod_dir,
                                                  const nlohmann::json& request,
                                                  absl::Duration timeout,
                                                  std::vector<UniqueFd>* fds, UniqueFd* conn);

// True when `pid` is still the process that was started at `start_time`.
bool SameProcess(pid_t pid, uint64_t start_time);

// Asks the monitor to exit; when it does not answer, kills it (and the holder) by pid, but
// only when pid and start time still name them. Idempotent.
absl::Status StopMonitor(const std::string& pod_dir, const MonitorProcess& monitor);

}  // namespace berth::cri

// One interface over the host's cgroup layout: create a cgroup by path, place processes in it,
// give it resources, read its stats, freeze it, kill everything in it and remove it. The driver
// is chosen from the host's mode (mode.h): v2 for unified hosts, v1 for hybrid and legacy ones.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "cgroups/mode.h"
#include "cgroups/resources.h"

namespace berth::cgroups {

struct Stats {
  struct Cpu {
    uint64_t usage_ns = 0, user_ns = 0, system_ns = 0;
    uint64_t periods = 0, throttled_periods = 0, throttled_ns = 0;
  } cpu;
  struct Memory {
    uint64_t usage = 0, working_set = 0, rss = 0, cache = 0, swap = 0, limit = 0;
    uint64_t page_faults = 0, major_page_faults = 0;
    uint64_t oom_events = 0, oom_kills = 0;
  } memory;
  struct Pids {
    uint64_t current = 0;
    std::optional<uint64_t> limit;
  } pids;
  struct BlockDevice {
    int64_t major = 0, minor = 0;
    uint64_t read_bytes = 0, write_bytes = 0, read_ops = 0, write_ops = 0;
  };
  std::vector<BlockDevice> block_io;
  struct Pressure {
    double avg10 = 0, avg60 = 0, avg300 = 0;
    uint64_t total_us = 0;
  };
  struct PsiResource {
    Pressure some, full;
  };
  std::optional<PsiResource> cpu_pressure, memory_pressure,
      io_pressure;  // where the kernel has PSI
};

// Tells about OOM kills in one cgroup: poll fd() for readability, then call Consume().
class OomWatcher {
 public:
  virtual ~OomWatcher() = default;
  virtual int fd() const = 0;
  // OOM kills since the previous call (0 when the wakeup was for something else, such as the
  // cgroup going away).
  virtual absl::StatusOr<uint64_t> Consume() = 0;
};

class Cgroup {
 public:
  virtual ~Cgroup() = default;
  // The path as given (relative to the hierarchy roots), e.g. "kubepods/burstable/pod1/c1".
  virtual const std::string& path() const = 0;
  virtual absl::Status AddProcess(pid_t pid) = 0;
  // An fd of the cgroup directory for clone3(CLONE_INTO_CGROUP): v2 only.
  virtual absl::StatusOr<UniqueFd> OpenDirectory() = 0;
  // v1: each hierarchy's "tasks" file, open for writing, for a process to move itself in with
  // PlaceSelf. A thread that writes "0" there skips the kernel's threadgroup lock, whose RCU
  // grace period makes every cgroup.procs write of a pid cost milliseconds; the caller must be
  // single-threaded (as a freshly cloned container init is). v2: Unimplemented (a process is
  // cloned straight into its cgroup there).
  virtual absl::StatusOr<std::vector<UniqueFd>> OpenSelfPlacement() = 0;
  virtual absl::Status Apply(const Resources& resources) = 0;
  virtual absl::StatusOr<Stats> GetStats() = 0;
  virtual absl::StatusOr<std::vector<pid_t>> Processes() = 0;
  virtual absl::Status Freeze() = 0;
  virtual absl::Status Thaw() = 0;
  // Sends `signal` to every process in it (SIGKILL: until it is empty).
  virtual absl::Status Kill(int signal) = 0;
  // Removes it (waiting up to `timeout` for it to empty). Fine if already gone.
  virtual absl::Status Remove(absl::Duration timeout) = 0;
  // Starts watching for OOM kills (v1: an eventfd on memory.oom_control; v2: inotify on
  // memory.events).
  virtual absl::StatusOr<std::unique_ptr<OomWatcher>> WatchOom() = 0;
};

class Manager {
 public:
  virtual ~Manager() = default;
  virtual Mode mode() const = 0;
  // Creates the cgroup (and missing parents) and applies `resources`.
  virtual absl::StatusOr<std::unique_ptr<Cgroup>> Create(const std::string& path,
                                                         const Resources& resources) = 0;
  // A handle on an existing cgroup (NotFound when it does not exist).
  virtual absl::StatusOr<std::unique_ptr<Cgroup>> Load(const std::string& path) = 0;
  // Which controllers this host lets berth use.
  virtual std::vector<std::string> Controllers() const = 0;
};

// Moves the calling (single-threaded) process into the cgroup whose OpenSelfPlacement fds
// these are. Allocates nothing: it runs in a cloned child.
absl::Status PlaceSelf(const std::vector<int>& task_fds);

// The driver for this host. `root` is where cgroups are mounted (default /sys/fs/cgroup).
absl::StatusOr<std::unique_ptr<Manager>> NewManager(const std::string& root = "/sys/fs/cgroup");

// Checks a cgroupsPath: relative to the hierarchy roots, no "..", no empty components.
// A leading '/' is accepted and dropped (OCI absolute paths are relative to the root).
absl::StatusOr<std::string> CleanCgroupPath(absl::string_view path);

}  // namespace berth::cgroups

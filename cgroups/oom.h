// OOM watchers for both drivers (private to cgroups/).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cgroups/cgroup.h"

namespace berth::cgroups {

// v1: registers an eventfd for memory.oom_control in `memory_dir` (cgroup.event_control).
absl::StatusOr<std::unique_ptr<OomWatcher>> WatchOomV1(const std::string& memory_dir);
// v2: inotify on `dir`/memory.events; counts its oom_kill field.
absl::StatusOr<std::unique_ptr<OomWatcher>> WatchOomV2(const std::string& dir);

}  // namespace berth::cgroups

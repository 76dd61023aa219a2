// Which cgroup layout the host runs: the first thing every cgroup operation needs to know.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace berth::cgroups {

enum class Mode {
  kUnified,  // pure cgroup v2 at the root
  kHybrid,   // v1 controller hierarchies plus a cgroup2 mount at <root>/unified
  kLegacy,   // v1 controller hierarchies only
};

absl::string_view ModeName(Mode mode);  // "unified", "hybrid", "legacy"

// Returns the filesystem magic (statfs f_type) of a path.
using FsTypeFn = std::function<absl::StatusOr<long>(const std::string& path)>;

// Detects the host's mode from the filesystems mounted at `root` (default /sys/fs/cgroup).
absl::StatusOr<Mode> DetectMode(const std::string& root = "/sys/fs/cgroup");

// The same, with the statfs call replaced (for tests).
absl::StatusOr<Mode> DetectModeWith(const std::string& root, const FsTypeFn& fs_type);

}  // namespace berth::cgroups

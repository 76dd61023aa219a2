// The pieces of container and pod stats that are not cgroup files: a network namespace's
// interface counters and the disk usage of a container's writable layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cri {

struct InterfaceCounters {
  std::string name;
  uint64_t rx_bytes = 0, rx_errors = 0, tx_bytes = 0, tx_errors = 0;
};

// /proc/net/dev: two header lines, then "name: rx_bytes rx_packets rx_errs ... (8 rx fields)
// tx_bytes tx_packets tx_errs ...". Malformed lines are skipped.
std::vector<InterfaceCounters> ParseNetDev(absl::string_view text);

// The interfaces of the network namespace pinned at `pin` (read from /proc/thread-self/net/dev
// on a thread that joined it).
absl::StatusOr<std::vector<InterfaceCounters>> ReadNamespaceInterfaces(const std::string& pin);

struct DiskUsage {
  uint64_t bytes = 0;   // allocated blocks (st_blocks * 512), hard links counted once
  uint64_t inodes = 0;  // distinct inodes, the root directory included
};

// Walks `root` with openat/fstatat, never following a symlink and staying on its filesystem
// (what a container wrote into its overlay upper dir). Entries that vanish while walking are
// skipped; directories nested deeper than `max_depth` are not descended into.
absl::StatusOr<DiskUsage> WalkDiskUsage(const std::string& root, int max_depth = 256);

}  // namespace berth::cri

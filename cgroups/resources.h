// The resources a cgroup can be given: the OCI runtime spec's LinuxResources, and the pure
// arithmetic that maps it onto cgroup files (shared by the v1 and v2 drivers and unit-tested
// without a kernel).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cgroups {

struct DeviceRule {
  bool allow = false;
  char type = 'a';     // 'a' (all), 'c', 'b'
  int64_t major = -1;  // -1: any
  int64_t minor = -1;  // -1: any
  std::string access = "rwm";
};

struct ThrottleDevice {
  int64_t major = 0, minor = 0;
  uint64_t rate = 0;
};

struct WeightDevice {
  int64_t major = 0, minor = 0;
  std::optional<uint16_t> weight, leaf_weight;
};

struct Resources {
  struct Cpu {
    std::optional<uint64_t> shares;
    std::optional<int64_t> quota;    // microseconds per period; -1 or absent: unlimited
    std::optional<uint64_t> period;  // microseconds
    std::optional<int64_t> realtime_runtime;
    std::optional<uint64_t> realtime_period;
    std::string cpus, mems;  // cpuset lists, e.g. "0-1,3"
    std::optional<int64_t> idle;
  } cpu;
  struct Memory {
    std::optional<int64_t> limit;        // bytes; -1 unlimited
    std::optional<int64_t> reservation;  // soft limit / memory.low
    std::optional<int64_t> swap;         // OCI: memory + swap together; -1 unlimited
    std::optional<uint64_t> swappiness;
    std::optional<bool> disable_oom_killer;
  } memory;
  std::optional<int64_t> pids_limit;  // 0 or -1: unlimited
  struct BlockIo {
    std::optional<uint16_t> weight, leaf_weight;
    std::vector<WeightDevice> weight_device;
    std::vector<ThrottleDevice> read_bps, write_bps, read_iops, write_iops;
  } block_io;
  std::map<std::string, uint64_t> hugepage_limits;  // page size ("2MB") -> bytes
  std::vector<DeviceRule> devices;
  std::map<std::string, std::string> unified;  // cgroup v2 file -> value, written as given
};

// cpu.shares (v1, 2..262144) -> cpu.weight (v2, 1..10000), the linear mapping runc 1.1 and
// crun use: 2 -> 1, 1024 -> 39, 262144 -> 10000; 0 stays 0 ("not set").
uint64_t SharesToWeight(uint64_t shares);

// OCI memory.swap is memory+swap; cgroup v2 memory.swap.max is swap alone. -1 means max.
// Returns the value for memory.swap.max, or nullopt when nothing should be written.
absl::StatusOr<std::optional<int64_t>> SwapForV2(std::optional<int64_t> swap,
                                                 std::optional<int64_t> limit);

// "max" for negative values, the number otherwise.
std::string LimitValue(int64_t v);

// cpu.max: "<quota|max> <period>".
std::string CpuMax(std::optional<int64_t> quota, std::optional<uint64_t> period);

// A key of the `unified` map must name a file in the cgroup itself: "<controller>.<name>",
// no '/', no "..", not cgroup.procs/threads/subtree_control (those are the runtime's).
absl::Status ValidateUnifiedKey(absl::string_view key);

// A cpuset list ("0-3,5"): digits, ',' and '-' only, ranges ascending.
absl::Status ValidateCpuList(absl::string_view list, absl::string_view what);

}  // namespace berth::cgroups

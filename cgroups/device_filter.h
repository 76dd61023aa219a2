// cgroup v2 device control: the OCI device rules compiled into a BPF_PROG_TYPE_CGROUP_DEVICE
// program and attached to the cgroup, as runc and crun do (v2 has no devices.allow/deny).
#pragma once

#include <linux/bpf.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cgroups/resources.h"

namespace berth::cgroups {

// The rules' meaning, as with the v1 devices controller: a rule for all devices ('a', any
// major/minor, all of rwm) sets the default and drops earlier rules; the other rules are
// exceptions, and the last one matching a request decides. With no "all" rule the default is
// to deny (what a container spec that lists devices means).
// Returns the program: allow = 1, deny = 0.
absl::StatusOr<std::vector<bpf_insn>> CompileDeviceFilter(const std::vector<DeviceRule>& rules);

// What the program decides for one request; the reference the compiler is tested against.
// `type` 'c' or 'b', `access` a subset of "rwm".
bool DeviceAllowed(const std::vector<DeviceRule>& rules, char type, int64_t major, int64_t minor,
                   absl::string_view access);

// Loads the program for `rules` and attaches it to the cgroup directory `cgroup_fd`
// (BPF_F_ALLOW_MULTI), then detaches the programs berth attached before, so an update
// replaces the filter without a window where no filter is attached.
absl::Status AttachDeviceFilter(int cgroup_fd, const std::vector<DeviceRule>& rules);

}  // namespace berth::cgroups

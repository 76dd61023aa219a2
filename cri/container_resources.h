// UpdateContainerResources: the CRI's LinuxContainerResources, validated and mapped onto the
// cgroups library's model (the OCI LinuxResources), which berthd applies to a container's
// live cgroup itself, for every runtime handler.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cgroups/resources.h"
#include "cri/api/cri.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Field semantics as the CRI has them: 0 / "" is "unspecified" (left as it is), cpu_quota and
// memory_swap_limit_in_bytes take -1 for "unlimited". cpu_shares is clamped to 2..262144 (a
// warning is appended); oom_score_adj is ignored (it belongs to the processes, not the
// cgroup). InvalidArgument names the field: "linux.cpu_period: 10 is below 1000 (1 ms)".
// `unified` needs cgroup v2.
absl::StatusOr<cgroups::Resources> ToCgroupResources(const v1::LinuxContainerResources& r,
                                                     bool cgroup_v2,
                                                     std::vector<std::string>* warnings = nullptr);

// The resources a container has after an update: every specified field of `update` replaces
// the one of `current`; hugepage limits and unified keys are merged by page size / key.
v1::LinuxContainerResources MergeResources(const v1::LinuxContainerResources& current,
                                           const v1::LinuxContainerResources& update);

}  // namespace berth::cri

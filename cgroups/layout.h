// The kubelet's cgroupfs layout for pods, for when berth places pods itself (no kubelet): the
// same parents the kubelet would pass as cgroup_parent.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cgroups {

enum class QosClass { kGuaranteed, kBurstable, kBestEffort };

// "kubepods/pod<uid>" (Guaranteed), "kubepods/burstable/pod<uid>",
// "kubepods/besteffort/pod<uid>". The UID must look like one (letters, digits, '-').
absl::StatusOr<std::string> PodCgroupParent(QosClass qos, absl::string_view pod_uid);

}  // namespace berth::cgroups

// The process-security steps of a container's init (and of exec): rlimits, user and groups,
// capabilities, no_new_privs, oom_score_adj and the seccomp filter. Everything that can fail
// on bad input is prepared in the runtime process before clone (PrepareSeccomp compiles the
// BPF program, capability names are already numbers), so the child only makes syscalls.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/spec.h"

namespace berth::runtime {

// A seccomp filter compiled to classic BPF, ready to be loaded.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
  unsigned flags = 0;  // SECCOMP_FILTER_FLAG_* from the spec's "flags"
};

// Compiles the spec's filter with libseccomp (seccomp_export_bpf). Syscall names unknown to
// libseccomp are skipped, as runc does (profiles name syscalls of newer kernels). Unknown
// actions, bad argument indexes or operators, unknown architectures and flags are refused, and
// so is SCMP_ACT_NOTIFY (no listener support yet), each with a message naming the value.
absl::StatusOr<SeccompProgram> PrepareSeccomp(const Seccomp& seccomp);
// Loads it into the calling thread with seccomp(SECCOMP_SET_MODE_FILTER). Requires
// no_new_privs or CAP_SYS_ADMIN.
absl::Status LoadSeccomp(const SeccompProgram& program);

// setrlimit for each, in order.
absl::Status ApplyRlimits(const std::vector<Rlimit>& rlimits);

// Drops every capability not in `bounding` from the bounding set (needs CAP_SETPCAP, so it is
// done before the user changes).
absl::Status DropBoundingSet(const Capabilities& caps);
// setgroups(additional_gids), setgid, setuid, keeping the permitted set across the uid change
// (PR_SET_KEEPCAPS) so that ApplyCapabilities can set the final sets afterwards.
absl::Status SetUser(const User& user);
// capset(effective, permitted, inheritable), then raises each ambient capability.
absl::Status ApplyCapabilities(const Capabilities& caps);
absl::Status SetNoNewPrivileges();

// Writes /proc/self/oom_score_adj. When the kernel refuses a value (lowering it needs
// CAP_SYS_RESOURCE), the nearest value it allows is written instead (the current one, for a
// refused lower value) and `warning` says what happened; only other errors fail.
absl::Status SetOomScoreAdj(int value, std::string* warning);

}  // namespace berth::runtime

// The container's init, between clone and exec: it runs in the child of clone3, enters or
// builds the namespaces, the filesystem and the process's security context, waits for `start`
// and execs the container's process through the sealed exec stub. The same path serves `exec`
// into a running container (`join` set, no filesystem to build, no fifo to wait on).
//
// The runtime side and the init talk over a SOCK_SEQPACKET pair with small fixed messages.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cgroups/mode.h"
#include "runtime/security.h"
#include "runtime/spec.h"

namespace berth::runtime {

enum class SyncType : uint32_t {
  kGo = 1,         // runtime -> init: ids mapped, cgroup joined; carry on
  kHooks = 2,      // init -> runtime: filesystem ready; run prestart/createRuntime hooks
  kHooksDone = 3,  // runtime -> init
  kReady = 4,      // init -> runtime: about to wait for start (create) or to exec (exec)
  kError = 5,      // init -> runtime: text is the error; the init exits
  kWarning = 6,    // init -> runtime: text is logged
};

struct SyncMessage {
  SyncType type = SyncType::kGo;
  int32_t code = 0;  // absl::StatusCode for kError
  std::string text;  // kGo: the hook state JSON (it has the init's pid)
};

absl::Status SendSync(int fd, SyncType type, absl::string_view text = {}, int32_t code = 0);
// Blocks for the next message; Unavailable on EOF (the peer is gone).
absl::StatusOr<SyncMessage> ReceiveSync(int fd);

// Everything the init needs, prepared by the runtime before clone so that the init does no
// parsing and makes no decisions that could fail on input.
struct InitConfig {
  const Spec* spec = nullptr;
  const Process* process = nullptr;  // spec->process for create, the exec'd one for exec
  std::string bundle;
  std::string rootfs;  // absolute
  int sync_fd = -1;
  int state_dir_fd = -1;  // create: holds exec.fifo; -1 for exec
  int console_fd = -1;    // a connected --console-socket, or -1
  int stub_fd = -1;       // the sealed exec stub
  const SeccompProgram* seccomp = nullptr;
  // Namespaces to join in the init: (CLONE_NEW* flag, fd), user first. For exec, one pidfd
  // with every flag to join.
  std::vector<std::pair<int, int>> join;
  int exec_pidfd = -1;
  int exec_join_flags = 0;
  // v1: the cgroup's "tasks" files; the init moves itself in first thing (cgroups::PlaceSelf).
  std::vector<int> cgroup_task_fds;
  int unshare_flags = 0;  // created after clone (cgroup, time; all but pid when
                          // joining a user namespace)
  bool new_user_namespace = false;
  bool new_mount_namespace = false;
  bool new_uts_namespace = false;
  bool no_pivot = false;
  int preserve_fds = 0;
  cgroups::Mode cgroup_mode = cgroups::Mode::kUnified;
  bool is_exec = false;
};

// The init's body. Never returns on success (the container's process runs in its place);
// on failure reports over sync_fd and returns the exit code for the child.
int RunInit(const InitConfig& config);

}  // namespace berth::runtime

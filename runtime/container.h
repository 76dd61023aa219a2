// berth's OCI runtime: create, start, kill, delete, exec and inspect containers from OCI
// bundles. Containers are identified by id under a state root (one directory each, see
// state.h). The caller must be single-threaded: the init is cloned from it without exec.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/spec.h"
#include "runtime/state.h"

namespace berth::runtime {

struct CreateOptions {
  std::string bundle;          // directory holding config.json
  std::string pid_file;        // written with the init's pid once it is ready
  std::string console_socket;  // unix socket that receives the pty master (process.terminal)
  bool no_pivot = false;
  int preserve_fds = 0;  // fds 3..3+N-1 are passed to the container
  // When set, these fds become the init's stdin, stdout and stderr (-1: inherit the caller's).
  // A caller that holds a container's stdio (the pod monitor) passes its pipe ends here.
  int stdio[3] = {-1, -1, -1};
  // A connected socket (instead of console_socket's path) that receives the pty master.
  int console_socket_fd = -1;
};

struct ExecOptions {
  std::string pid_file;
  std::string console_socket;
  bool detach = false;
  int preserve_fds = 0;
  int stdio[3] = {-1, -1, -1};  // as CreateOptions::stdio
  int console_socket_fd = -1;   // as CreateOptions::console_socket_fd
};

// Where warnings go (the CLI logs them).
using WarningSink = std::function<void(absl::string_view)>;

struct ContainerInfo {
  ContainerState state;
  Status status = Status::kStopped;
};

class Runtime {
 public:
  explicit Runtime(std::string root, WarningSink warn = nullptr);

  // Creates the container: its init is set up and waits for Start. Returns the init's pid.
  // On failure nothing is left behind (state, cgroup, process).
  absl::StatusOr<pid_t> Create(const std::string& id, const CreateOptions& options);
  // Lets a created container's process run; then runs the poststart hooks.
  absl::Status Start(const std::string& id);
  absl::StatusOr<ContainerInfo> State(const std::string& id);
  // The config.json the container was created from.
  absl::StatusOr<Spec> Config(const std::string& id);
  absl::StatusOr<std::vector<ContainerInfo>> List();
  // Sends `signal` to the init, or with `all` to every process of the container.
  absl::Status Kill(const std::string& id, int signal, bool all);
  // Removes a stopped (or created) container: poststop hooks, cgroup, state. With `force` a
  // running one is killed first. Idempotent except that an unknown id is NotFound.
  absl::Status Delete(const std::string& id, bool force);
  absl::Status Pause(const std::string& id);
  absl::Status Resume(const std::string& id);
  absl::StatusOr<std::vector<pid_t>> Processes(const std::string& id);
  // Runs `process` in the running container. Foreground: waits and returns the wait status.
  // Detached: returns the pid.
  absl::StatusOr<int> Exec(const std::string& id, const Process& process,
                           const ExecOptions& options);
  // Waits for a container's init, which must be a child of the caller (after Create in this
  // process); returns its wait status. Signals in `forward` received meanwhile go to it.
  absl::StatusOr<int> WaitInit(pid_t pid, bool forward_signals);

 private:
  void Warn(absl::string_view message) const;
  void RunHooksWarning(const std::vector<Hook>& hooks, const std::string& state,
                       absl::string_view kind) const;
  std::string root_;
  WarningSink warn_;
};

}  // namespace berth::runtime

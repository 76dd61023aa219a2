// A terminal for a foreground `run` or `exec --tty` given no --console-socket (runc's
// behaviour): berth-oci listens on a private socket, receives the pty master from the init,
// and copies between its own stdio and the pty until the process exits.
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace berth::runtime {

// Receives the pty master a runtime (ours or runc) sends over a connected console socket
// (SCM_RIGHTS; the message's bytes, the terminal's name, are not used). Blocks until it comes.
absl::StatusOr<UniqueFd> ReceiveTerminal(int socket);

class ConsoleRelay {
 public:
  // Listens on a new socket in `dir` (created 0700 if missing).
  static absl::StatusOr<std::unique_ptr<ConsoleRelay>> Listen(const std::string& dir);
  ~ConsoleRelay();

  // The path to give as the console socket.
  const std::string& path() const { return path_; }
  // Takes the pty master the init sent (it was sent during setup, so this does not block for
  // long); the socket is removed.
  absl::Status Accept();
  // Copies stdin -> pty and pty -> stdout until `pid` (a child of the caller) exits, with the
  // caller's terminal, if any, in raw mode and its size given to the pty. Returns the wait
  // status.
  absl::StatusOr<int> RelayUntilExit(pid_t pid);

 private:
  ConsoleRelay() = default;
  std::string path_;
  UniqueFd listener_;
  UniqueFd master_;
  bool restore_ = false;
  struct termios saved_ {};
};

}  // namespace berth::runtime

// A forked child that waits for a go signal: tests place it (in a cgroup, a namespace) before
// it runs its body. Killed and reaped on destruction.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <type_traits>

namespace berth::testing {

// A child that waits for a byte on a pipe, then runs `body` and exits with its result. A body
// that takes an int gets a descriptor to write one byte to once it is ready (WaitReady).
class ForkedChild {
 public:
  template <typename F>
  explicit ForkedChild(F body) {
    int p[2];
    int r[2];
    if (::pipe2(p, O_CLOEXEC) != 0 || ::pipe2(r, O_CLOEXEC) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[1]);
      ::close(r[0]);
      char c;
      if (::read(p[0], &c, 1) != 1) ::_exit(100);
      if constexpr (std::is_invocable_v<F, int>) {
        ::_exit(body(r[1]));
      } else {
        ::_exit(body());
      }
    }
    ::close(p[0]);
    ::close(r[1]);
    go_ = p[1];
    ready_ = r[0];
  }
  ~ForkedChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (go_ >= 0) ::close(go_);
    if (ready_ >= 0) ::close(ready_);
  }
  pid_t pid() const { return pid_; }
  void Go() {
    (void)!::write(go_, "x", 1);
    ::close(go_);
    go_ = -1;
  }
  // Blocks until the body wrote its ready byte; false if it exited first.
  bool WaitReady() {
    char c;
    return ::read(ready_, &c, 1) == 1;
  }
  int Wait() {  // raw wait status
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return st;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  int ready_ = -1;
};

}  // namespace berth::testing

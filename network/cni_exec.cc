#include "network/cni_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::network {

namespace {

struct Pipe {
  UniqueFd read, write;
};

absl::StatusOr<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return LastErrnoError("pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads what is available; false at EOF.
bool Drain(int fd, std::string& out, size_t cap) {
  char buf[16384];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  size_t room = cap > out.size() ? cap - out.size() : 0;
  out.append(buf, std::min(room, static_cast<size_t>(n)));
  return true;
}

}  // namespace

absl::StatusOr<PluginOutput> ProcessPluginExecutor::Run(const PluginRun& run) {
  ASSIGN_OR_RETURN(Pipe in, MakePipe());
  ASSIGN_OR_RETURN(Pipe out, MakePipe());
  ASSIGN_OR_RETURN(Pipe err, MakePipe());

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);  // berthd blocks signals; plugins must not inherit it
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: a timeout kills its children too
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_USEVFORK);

  std::vector<char*> argv = {const_cast<char*>(run.path.c_str()), nullptr};
  std::vector<char*> envp;
  for (const std::string& e : run.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  const absl::Time start = absl::Now();
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, run.path.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError(rc, absl::StrCat("run CNI plugin ", run.path));
  in.read.reset();
  out.write.reset();
  err.write.reset();
  ::fcntl(in.write.get(), F_SETFL, O_NONBLOCK);

  PluginOutput result;
  size_t written = 0;
  if (run.stdin_data.empty()) in.write.reset();
  bool out_open = true, err_open = true;
  const absl::Time deadline = start + run.timeout;
  bool timed_out = false;
  while (out_open || err_open) {
    struct pollfd fds[3];
    int n = 0;
    int in_idx = -1, out_idx = -1, err_idx = -1;
    if (in.write) {
      in_idx = n;
      fds[n++] = {in.write.get(), POLLOUT, 0};
    }
    if (out_open) {
      out_idx = n;
      fds[n++] = {out.read.get(), POLLIN, 0};
    }
    if (err_open) {
      err_idx = n;
      fds[n++] = {err.read.get(), POLLIN, 0};
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    int ready = ::poll(fds, n, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      timed_out = true;  // cannot watch it any more: treat as stuck, kill below
      break;
    }
    if (in_idx >= 0 && fds[in_idx].revents) {
      if (fds[in_idx].revents & (POLLERR | POLLHUP)) {
        in.write.reset();  // the plugin closed stdin without reading it all: its business
      } else {
        ssize_t w = ::write(in.write.get(), run.stdin_data.data() + written,
                            run.stdin_data.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == run.stdin_data.size()) {
          in.write.reset();
        }
      }
    }
    if (out_idx >= 0 && fds[out_idx].revents)
      out_open = Drain(out.read.get(), result.out, kMaxStdout);
    if (err_idx >= 0 && fds[err_idx].revents)
      err_open = Drain(err.read.get(), result.err, kMaxStderr);
  }

  // Output closed: the plugin is exiting, or closed its pipes and lingers; wait, bounded.
  int status = 0;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  while (!timed_out) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR)
      return LastErrnoError(absl::StrCat("wait for CNI plugin ", run.path));
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    if (pidfd) {
      // Readable when the process exits: no polling delay on the hot path.
      struct pollfd p = {pidfd.get(), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    } else {
      absl::SleepFor(absl::Microseconds(200));  // kernels without pidfd_open (< 5.3)
    }
  }
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return absl::DeadlineExceededError(absl::StrCat("CNI plugin ", run.path,
                                                    " did not finish within ",
                                                    absl::FormatDuration(run.timeout), "; killed"));
  }
  result.elapsed = absl::Now() - start;
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace berth::network

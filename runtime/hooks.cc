#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::runtime {

namespace {

std::vector<char*> Pointers(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

absl::Status RunHook(const Hook& hook, const std::string& state_json) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return LastErrnoError("pipe for a hook");
  UniqueFd read_end(in[0]);
  UniqueFd write_end(in[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, read_end.get(), 0);
  std::vector<std::string> args = hook.args;
  if (args.empty()) args.push_back(hook.path);
  std::vector<char*> argv = Pointers(args);
  std::vector<char*> envp = Pointers(hook.env);
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, hook.path.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoError(err, absl::StrCat("run hook ", hook.path));
  read_end.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  // A hook need not read its stdin: SIGPIPE is ignored while the state is written, and a
  // short write is not an error.
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  size_t done = 0;
  while (done < state_json.size()) {
    ssize_t n = ::write(write_end.get(), state_json.data() + done, state_json.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::sigaction(SIGPIPE, &old, nullptr);
  write_end.reset();

  absl::Time deadline =
      hook.timeout ? absl::Now() + absl::Seconds(*hook.timeout) : absl::InfiniteFuture();
  bool timed_out = false;
  if (pidfd) {
    for (;;) {
      int wait_ms = -1;
      if (deadline != absl::InfiniteFuture()) {
        wait_ms = static_cast<int>(
            std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
      }
      struct pollfd p = {.fd = pidfd.get(), .events = POLLIN, .revents = 0};
      int r = ::poll(&p, 1, wait_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) {
        timed_out = true;
        ::kill(pid, SIGKILL);
      }
      break;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return LastErrnoError(absl::StrCat("wait for hook ", hook.path));
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("hook ", hook.path, " timed out after ", *hook.timeout, "s"));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat("hook ", hook.path, " exited with status ", WEXITSTATUS(status)));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("hook ", hook.path, " was killed by signal ", WTERMSIG(status)));
}

absl::Status RunHooks(const std::vector<Hook>& hooks, const std::string& state_json,
                      absl::string_view kind) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    absl::Status st = RunHook(hooks[i], state_json);
    if (!st.ok()) return Annotate(st, absl::StrCat(kind, " hook #", i));
  }
  return absl::OkStatus();
}

}  // namespace berth::runtime

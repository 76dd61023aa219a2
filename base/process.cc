#include "base/process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "base/status.h"
#include "base/unique_fd.h"

namespace berth {

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, int in, int out, int err) {
  if (args.empty()) return absl::InvalidArgumentError("Spawn: no program");
  // Everything the child needs is prepared before the fork: between fork and exec only
  // async-signal-safe calls are made.
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null) return LastErrnoError("open /dev/null");
  const int stdio[3] = {in >= 0 ? in : null.get(), out >= 0 ? out : null.get(),
                        err >= 0 ? err : null.get()};
  pid_t pid = ::fork();
  if (pid < 0) return LastErrnoError("fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    // The child is single-threaded: sigprocmask is pthread_sigmask there.
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // NOLINT(concurrency-mt-unsafe)
    for (int fd = 0; fd < 3; ++fd) {
      if (::dup2(stdio[fd], fd) < 0) ::_exit(127);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace berth

#include "cri/monitor_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "runtime/monitor_proto.h"
#include "runtime/state.h"

namespace berth::cri {

using json = nlohmann::json;

bool SameProcess(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  absl::StatusOr<uint64_t> now = runtime::ProcessStartTime(pid);
  return now.ok() && *now == start_time;
}

absl::StatusOr<MonitorProcess> SpawnMonitorOnce(const MonitorSpawn& spawn);

namespace {

// The monitor of `pod_dir` by its pid file, if that process is still it (its command line
// names the pod dir). {monitor pid, holder pid}; zeros when there is none.
std::pair<pid_t, pid_t> MonitorFromPidFile(const std::string& pod_dir) {
  absl::StatusOr<std::string> text = ReadFile(pod_dir + "/monitor.pid", 256);
  if (!text.ok()) return {0, 0};
  std::vector<std::string> f = absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ');
  pid_t pid = 0, holder = 0;
  if (f.empty() || !absl::SimpleAtoi(f[0], &pid) || pid <= 0) return {0, 0};
  if (f.size() > 1) (void)absl::SimpleAtoi(f[1], &holder);
  absl::StatusOr<std::string> cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"), 1 << 16);
  if (!cmdline.ok() || !absl::StrContains(*cmdline, absl::StrCat("--pod-dir", std::string(1, '\0'),
                                                                 pod_dir, std::string(1, '\0')))) {
    return {0, 0};
  }
  return {pid, holder};
}

// Kills a monitor found by its pid file (and its holder, which it alone parents).
void KillStrayMonitor(const std::string& pod_dir) {
  auto [pid, holder] = MonitorFromPidFile(pod_dir);
  if (pid <= 0) return;
  if (holder > 0) ::kill(holder, SIGKILL);
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) ::usleep(2000);
}

}  // namespace

absl::StatusOr<UniqueFd> LoadMonitorImage(const std::string& path) {
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) return LastErrnoError("open " + path);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return LastErrnoError("stat " + path);
  UniqueFd image(static_cast<int>(
      ::syscall(SYS_memfd_create, "berth-monitor", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
  if (!image) return LastErrnoError("memfd_create");
  off_t offset = 0;
  while (offset < st.st_size) {
    ssize_t n = ::sendfile(image.get(), file.get(), &offset, static_cast<size_t>(st.st_size - offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return LastErrnoError("copy " + path + " into a memfd");
  }
  if (::fcntl(image.get(), F_ADD_SEALS,
              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return LastErrnoError("seal the monitor image");
  }
  return image;
}

absl::StatusOr<MonitorProcess> SpawnMonitor(const MonitorSpawn& spawn) {
  absl::StatusOr<MonitorProcess> m = SpawnMonitorOnce(spawn);
  // A monitor that started but was not confirmed is not left running.
  if (!m.ok()) KillStrayMonitor(spawn.pod_dir);
  return m;
}

absl::StatusOr<MonitorProcess> SpawnMonitorOnce(const MonitorSpawn& spawn) {
  // Everything the children need is made before fork: berthd is multi-threaded, so between
  // fork and exec only async-signal-safe calls are allowed.
  std::vector<std::string> args = {spawn.binary,
                                   "--pod-dir",
                                   spawn.pod_dir,
                                   "--runtime-root",
                                   spawn.runtime_root,
                                   "--log-max-line",
                                   absl::StrCat(spawn.log_max_line),
                                   "--ready-fd",
                                   "3"};
  if (spawn.pid_holder) args.push_back("--pid-holder");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {
      const_cast<char*>("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
      nullptr};

  UniqueFd log(::open((spawn.pod_dir + "/monitor.log").c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return LastErrnoError("open " + spawn.pod_dir + "/monitor.log");
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null) return LastErrnoError("open /dev/null");
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return LastErrnoError("pipe");
  UniqueFd ready_read(p[0]), ready_write(p[1]);

  pid_t child = ::fork();
  if (child < 0) return LastErrnoError("fork");
  if (child == 0) {
    if (::setsid() < 0) ::_exit(1);
    // A raw clone: fork() would run the atfork handlers of berthd's libraries (gRPC's) in a
    // child of a multi-threaded process.
    pid_t grandchild = static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    if (grandchild != 0) ::_exit(grandchild < 0 ? 1 : 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // fd 3 is the ready pipe; the rest of berthd's fds must not leak into the monitor.
    if (::dup2(null.get(), 0) < 0 || ::dup2(null.get(), 1) < 0 || ::dup2(log.get(), 2) < 0 ||
        ::dup2(ready_write.get(), 3) < 0) {
      ::_exit(1);
    }
    // dup2 onto itself keeps close-on-exec: clear it when the pipe already was fd 3.
    if (::fcntl(3, F_SETFD, 0) < 0) ::_exit(1);
    if (spawn.image_fd >= 0) {
      // fd 4, close-on-exec (an ELF image runs from it all the same): the monitor gets none.
      if (::dup2(spawn.image_fd, 4) < 0 || ::fcntl(4, F_SETFD, FD_CLOEXEC) < 0) ::_exit(1);
    }
    ::syscall(SYS_close_range, spawn.image_fd >= 0 ? 5u : 4u, ~0u, 0u);
    if (::chdir("/") != 0) ::_exit(1);
    if (spawn.image_fd >= 0) {
      ::syscall(SYS_execveat, 4, "", argv.data(), envp, AT_EMPTY_PATH);
    } else {
      ::execve(argv[0], argv.data(), envp);
    }
    ::_exit(127);
  }
  ready_write.reset();
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return LastErrnoError("wait for the monitor's launcher");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("starting the monitor failed (status ", status, ")"));
  }
  // One JSON line, or EOF when the monitor died before it got there.
  std::string line;
  absl::Time deadline = absl::Now() + spawn.ready_timeout;
  for (;;) {
    struct pollfd pfd = {ready_read.get(), POLLIN, 0};
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return absl::DeadlineExceededError("the monitor did not become ready");
    int n = ::poll(&pfd, 1, static_cast<int>(ms));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LastErrnoError("poll");
    if (n == 0) continue;
    char buf[512];
    ssize_t r = ::read(ready_read.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return LastErrnoError("read the monitor's ready line");
    if (r == 0) break;
    line.append(buf, static_cast<size_t>(r));
    if (line.size() > 4096) return absl::InternalError("the monitor's ready line is too long");
  }
  json ready = json::parse(line, nullptr, false);
  if (ready.is_discarded() || !ready.is_object()) {
    std::string tail;
    absl::StatusOr<std::string> text = ReadFile(spawn.pod_dir + "/monitor.log", 1 << 20);
    if (text.ok()) tail = std::string(absl::StripTrailingAsciiWhitespace(*text));
    return absl::InternalError(absl::StrCat("the monitor exited before it was ready: ", tail));
  }
  if (ready.contains("error")) {
    return absl::InternalError(
        absl::StrCat("the monitor failed to start: ", ready["error"].get<std::string>()));
  }
  MonitorProcess m;
  m.pid = ready.value("pid", 0);
  m.holder_pid = ready.value("holder_pid", 0);
  absl::StatusOr<uint64_t> st = runtime::ProcessStartTime(m.pid);
  if (!st.ok()) return Annotate(st.status(), "the monitor vanished after start");
  m.start_time = *st;
  if (m.holder_pid > 0) {
    absl::StatusOr<uint64_t> ht = runtime::ProcessStartTime(m.holder_pid);
    if (!ht.ok()) return Annotate(ht.status(), "the pid namespace holder vanished after start");
    m.holder_start_time = *ht;
  }
  return m;
}

namespace {

// A monitor's reply, or the error it carries.
absl::StatusOr<json> CheckReply(json reply) {
  if (reply.value("ok", false)) return reply;
  int code = reply.value("code", static_cast<int>(absl::StatusCode::kInternal));
  if (code <= 0 || code > 16) code = static_cast<int>(absl::StatusCode::kInternal);
  return absl::Status(static_cast<absl::StatusCode>(code),
                      absl::StrCat("monitor: ", reply.value("error", std::string("failed"))));
}

}  // namespace

absl::StatusOr<json> CallMonitor(const std::string& pod_dir, const json& request,
                                 absl::Duration timeout) {
  ASSIGN_OR_RETURN(json reply, runtime::Call(pod_dir + "/monitor.sock", request, timeout));
  return CheckReply(std::move(reply));
}

absl::StatusOr<json> CallMonitorWithFds(const std::string& pod_dir, const json& request,
                                        absl::Duration timeout, std::vector<UniqueFd>* fds,
                                        UniqueFd* conn) {
  ASSIGN_OR_RETURN(json reply, runtime::CallWithFds(pod_dir + "/monitor.sock", request, timeout,
                                                    fds, conn));
  return CheckReply(std::move(reply));
}

absl::Status StopMonitor(const std::string& pod_dir, const MonitorProcess& monitor) {
  // Recorded before it was known (a crash right after the spawn): found by its pid file.
  if (monitor.pid <= 0) {
    KillStrayMonitor(pod_dir);
    return absl::OkStatus();
  }
  if (SameProcess(monitor.pid, monitor.start_time)) {
    absl::StatusOr<json> r = CallMonitor(pod_dir, {{"op", "shutdown"}}, absl::Seconds(5));
    if (!r.ok() && SameProcess(monitor.pid, monitor.start_time)) ::kill(monitor.pid, SIGKILL);
    // It is not our child: wait for it to be gone (it exits right after its reply).
    for (int i = 0; i < 500 && SameProcess(monitor.pid, monitor.start_time); ++i) ::usleep(2000);
  }
  if (SameProcess(monitor.holder_pid, monitor.holder_start_time)) {
    ::kill(monitor.holder_pid, SIGKILL);
    for (int i = 0; i < 500 && SameProcess(monitor.holder_pid, monitor.holder_start_time); ++i) {
      ::usleep(2000);
    }
  }
  if (SameProcess(monitor.pid, monitor.start_time)) {
    return absl::InternalError(absl::StrCat("the monitor (pid ", monitor.pid, ") did not exit"));
  }
  return absl::OkStatus();
}

}  // namespace berth::cri

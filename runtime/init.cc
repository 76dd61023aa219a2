#include "runtime/init.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cgroups/cgroup.h"
#include "runtime/hooks.h"
#include "runtime/mounts.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace berth::runtime {

absl::Status SendSync(int fd, SyncType type, absl::string_view text, int32_t code) {
  uint32_t t = static_cast<uint32_t>(type);
  std::string buf(8, '\0');
  std::memcpy(buf.data(), &t, 4);
  std::memcpy(buf.data() + 4, &code, 4);
  buf.append(text.data(), std::min<size_t>(text.size(), 60000));
  ssize_t n;
  do {
    n = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(buf.size())) return LastErrnoError("send to the sync socket");
  return absl::OkStatus();
}

absl::StatusOr<SyncMessage> ReceiveSync(int fd) {
  std::string buf(65536, '\0');
  ssize_t n;
  do {
    n = ::recv(fd, buf.data(), buf.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return LastErrnoError("receive from the sync socket");
  if (n == 0) return absl::UnavailableError("the other side of the sync socket is gone");
  if (n < 8) return absl::DataLossError("short message on the sync socket");
  SyncMessage m;
  uint32_t t = 0;
  std::memcpy(&t, buf.data(), 4);
  std::memcpy(&m.code, buf.data() + 4, 4);
  m.type = static_cast<SyncType>(t);
  m.text.assign(buf.data() + 8, static_cast<size_t>(n) - 8);
  return m;
}

namespace {

// The exec fifo once `start` opened it: errors after that point go there.
int g_fifo_fd = -1;

absl::Status Expect(int fd, SyncType type) {
  ASSIGN_OR_RETURN(SyncMessage m, ReceiveSync(fd));
  if (m.type != type) return absl::InternalError("unexpected message on the sync socket");
  return absl::OkStatus();
}

// runc's lookup: a name with a slash is used as is; otherwise the process's own PATH (the
// last PATH= in its environment), then a default.
absl::StatusOr<std::string> LookPath(const std::string& file, const std::vector<std::string>& env) {
  auto executable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (absl::StrContains(file, '/')) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      return LastErrnoError(absl::StrCat("exec: \"", file, "\""));
    }
    return file;
  }
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const std::string& e : env) {
    if (absl::StartsWith(e, "PATH=")) path = e.substr(5);
  }
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", file);
    if (executable(candidate)) return candidate;
  }
  return absl::NotFoundError(
      absl::StrCat("exec: \"", file, "\": executable file not found in $PATH"));
}

absl::Status SendFd(int socket, int fd, absl::string_view name) {
  char control[CMSG_SPACE(sizeof(int))] = {};
  struct iovec iov = {.iov_base = const_cast<char*>(name.data()), .iov_len = name.size()};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return LastErrnoError("send the terminal to the console socket");
  return absl::OkStatus();
}

// A new pty from the container's devpts: the master goes to the console socket, the slave
// becomes stdio and the controlling terminal (and /dev/console for the init).
absl::Status SetUpTerminal(const InitConfig& c) {
  if (c.console_fd < 0) {
    return absl::InvalidArgumentError("process.terminal is set but no console socket was given");
  }
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return LastErrnoError("open /dev/ptmx");
  int unlock = 0;
  if (::ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) return LastErrnoError("unlock the pty");
  unsigned int number = 0;
  if (::ioctl(master.get(), TIOCGPTN, &number) != 0) return LastErrnoError("pty number");
  UniqueFd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return LastErrnoError("open the pty's peer");
  if (c.process->console_size) {
    struct winsize ws {};
    ws.ws_row = c.process->console_size->height;
    ws.ws_col = c.process->console_size->width;
    if (::ioctl(slave.get(), TIOCSWINSZ, &ws) != 0) return LastErrnoError("set the window size");
  }
  std::string name = absl::StrCat("/dev/pts/", number);
  RETURN_IF_ERROR(SendFd(c.console_fd, master.get(), name));
  if (!c.is_exec) {
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    absl::StatusOr<UniqueFd> console = EnsureInRoot(root.get(), "/dev/console", false);
    if (console.ok() &&
        ::mount(name.c_str(), FdPath(console->get()).c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return LastErrnoError("bind the terminal on /dev/console");
    }
  }
  for (int fd = 0; fd < 3; ++fd) {
    if (::dup2(slave.get(), fd) < 0) return LastErrnoError("dup the terminal");
  }
  if (::ioctl(0, TIOCSCTTY, 0) != 0) return LastErrnoError("set the controlling terminal");
  return absl::OkStatus();
}

absl::Status WriteSysctls(const std::map<std::string, std::string>& sysctls) {
  for (const auto& [key, value] : sysctls) {
    std::string path = absl::StrCat("/proc/sys/", absl::StrReplaceAll(key, {{".", "/"}}));
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return LastErrnoError(absl::StrCat("sysctl ", key));
    if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
      return LastErrnoError(absl::StrCat("sysctl ", key, "=", value));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteTimeOffsets(const std::map<std::string, TimeOffset>& offsets) {
  std::string text;
  for (const auto& [clock, o] : offsets) {
    absl::StrAppend(&text, clock, " ", o.secs, " ", o.nanosecs, "\n");
  }
  UniqueFd fd(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return LastErrnoError("write the time namespace offsets");
  }
  return absl::OkStatus();
}

absl::Status BuildFilesystem(const InitConfig& c, const std::string& cgroup_lines) {
  const Spec& spec = *c.spec;
  // Nothing mounted from here on may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return LastErrnoError("make / rslave");
  }
  // The rootfs must be a mount point for pivot_root.
  if (::mount(c.rootfs.c_str(), c.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return LastErrnoError(absl::StrCat("bind the rootfs ", c.rootfs));
  }
  UniqueFd root(::open(c.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return LastErrnoError(absl::StrCat("open the rootfs ", c.rootfs));
  MountContext ctx{
      .root_fd = root.get(),
      .bundle = c.bundle,
      .user_namespace = c.new_user_namespace || spec.linux.Find(NamespaceType::kUser) != nullptr,
      .cgroup_mode = c.cgroup_mode,
      .cgroup_lines = cgroup_lines};
  bool dev_tmpfs = false;
  for (const Mount& m : spec.mounts) {
    RETURN_IF_ERROR(MountOne(ctx, m));
    if (m.destination == "/dev" && m.type != "bind" &&
        std::find(m.options.begin(), m.options.end(), "bind") == m.options.end() &&
        std::find(m.options.begin(), m.options.end(), "rbind") == m.options.end()) {
      dev_tmpfs = true;
    }
  }
  RETURN_IF_ERROR(CreateDevices(ctx, spec.linux.devices, dev_tmpfs));
  RETURN_IF_ERROR(SendSync(c.sync_fd, SyncType::kHooks));
  RETURN_IF_ERROR(Expect(c.sync_fd, SyncType::kHooksDone));
  return absl::OkStatus();
}

absl::Status Init(const InitConfig& c) {
  const Spec& spec = *c.spec;
  const Process& proc = *c.process;
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return LastErrnoError("PR_SET_PDEATHSIG");
  // v1: into the container's cgroup before anything is charged (v2 was cloned into it).
  RETURN_IF_ERROR(cgroups::PlaceSelf(c.cgroup_task_fds));
  ASSIGN_OR_RETURN(SyncMessage go, ReceiveSync(c.sync_fd));
  if (go.type != SyncType::kGo) return absl::InternalError("expected go on the sync socket");
  // The state for createContainer hooks ("creating"), then NUL and the one for startContainer
  // hooks ("created").
  const std::string hook_state = go.text.substr(0, go.text.find('\0'));
  const std::string& all_states = go.text;
  // While this process is still the runtime's binary, nothing in the container may open its
  // /proc/PID/exe or ptrace it (exec joins a pid namespace with live container processes).
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) return LastErrnoError("PR_SET_DUMPABLE");

  std::string cgroup_lines;
  if (!c.is_exec) {
    // Read before a cgroup namespace hides the host paths.
    ASSIGN_OR_RETURN(cgroup_lines, ReadFile("/proc/self/cgroup", 1 << 16));
  }
  if (c.is_exec) {
    if (c.exec_join_flags != 0 && ::setns(c.exec_pidfd, c.exec_join_flags) != 0) {
      return LastErrnoError("join the container's namespaces");
    }
  } else {
    for (const auto& [flag, fd] : c.join) {
      if (::setns(fd, flag) != 0) {
        return LastErrnoError(absl::StrCat("join namespace ", flag));
      }
    }
  }
  if (c.unshare_flags != 0 && ::unshare(c.unshare_flags) != 0) {
    return LastErrnoError("unshare the container's namespaces");
  }
  if ((c.unshare_flags & CLONE_NEWTIME) && !spec.linux.time_offsets.empty()) {
    RETURN_IF_ERROR(WriteTimeOffsets(spec.linux.time_offsets));
  }
  if (c.new_user_namespace) {
    // Become the namespace's root (the runtime mapped it) for the setup below.
    if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) {
      return LastErrnoError("become root in the user namespace");
    }
  }
  if ((!c.is_exec || proc.terminal) && ::setsid() < 0) return LastErrnoError("setsid");

  if (!c.is_exec) {
    if (c.new_uts_namespace) {
      if (!spec.hostname.empty() &&
          ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
        return LastErrnoError("sethostname");
      }
      if (!spec.domainname.empty() &&
          ::setdomainname(spec.domainname.data(), spec.domainname.size()) != 0) {
        return LastErrnoError("setdomainname");
      }
    }
    RETURN_IF_ERROR(BuildFilesystem(c, cgroup_lines));
    RETURN_IF_ERROR(RunHooks(spec.hooks.create_container, hook_state, "createContainer"));
    RETURN_IF_ERROR(EnterRoot(c.rootfs, c.no_pivot));
    RETURN_IF_ERROR(SetRootPropagation(spec.linux.rootfs_propagation));
    RETURN_IF_ERROR(WriteSysctls(spec.linux.sysctl));
    RETURN_IF_ERROR(MaskPaths(spec.linux.masked_paths));
    RETURN_IF_ERROR(ReadonlyPaths(spec.linux.readonly_paths));
  }
  if (proc.terminal) RETURN_IF_ERROR(SetUpTerminal(c));
  if (!c.is_exec && spec.root.readonly) RETURN_IF_ERROR(ReadonlyRoot());

  RETURN_IF_ERROR(ApplyRlimits(proc.rlimits));
  if (!c.is_exec && proc.oom_score_adj) {
    std::string warning;
    RETURN_IF_ERROR(SetOomScoreAdj(*proc.oom_score_adj, &warning));
    if (!warning.empty()) RETURN_IF_ERROR(SendSync(c.sync_fd, SyncType::kWarning, warning));
  }
  if (spec.linux.personality) {
    unsigned long persona = *spec.linux.personality == "LINUX32" ? PER_LINUX32 : PER_LINUX;
    if (::personality(persona) < 0) return LastErrnoError("personality");
  }
  if (proc.capabilities) RETURN_IF_ERROR(DropBoundingSet(*proc.capabilities));
  // Without no_new_privs a filter can only be loaded while CAP_SYS_ADMIN is still held, so it
  // goes in before the user changes (and then also covers the remaining setup syscalls).
  if (c.seccomp && !proc.no_new_privileges) RETURN_IF_ERROR(LoadSeccomp(*c.seccomp));
  RETURN_IF_ERROR(SetUser(proc.user));
  ::umask(proc.user.umask.value_or(022));
  if (proc.capabilities) RETURN_IF_ERROR(ApplyCapabilities(*proc.capabilities));
  if (::chdir(proc.cwd.c_str()) != 0) {
    return LastErrnoError(absl::StrCat("chdir to cwd (\"", proc.cwd, "\") set in config.json"));
  }
  ASSIGN_OR_RETURN(std::string executable, LookPath(proc.args[0], proc.env));

  // The runtime may exit once it has the ready message (create, exec --detach): from here the
  // process outlives it (`delete` finds an init through the state the runtime recorded).
  if (::prctl(PR_SET_PDEATHSIG, 0) != 0) return LastErrnoError("clear PR_SET_PDEATHSIG");
  RETURN_IF_ERROR(SendSync(c.sync_fd, SyncType::kReady));
  UniqueFd fifo;
  if (!c.is_exec) {
    // Opening the fifo for writing blocks until `start` opens it for reading. It then stays
    // open (close-on-exec): `start` reads until EOF, i.e. until the exec, so that poststart
    // hooks run after the process started, and an error written here reaches `start`.
    fifo.reset(::openat(c.state_dir_fd, "exec.fifo", O_WRONLY | O_CLOEXEC));
    if (!fifo) return LastErrnoError("open the exec fifo");
    if (::write(fifo.get(), "0", 1) != 1) return LastErrnoError("write the exec fifo");
    g_fifo_fd = fifo.get();
    size_t nul = all_states.find('\0');
    std::string created_state = nul == std::string::npos ? hook_state : all_states.substr(nul + 1);
    RETURN_IF_ERROR(RunHooks(spec.hooks.start_container, created_state, "startContainer"));
  }
  if (proc.no_new_privileges) RETURN_IF_ERROR(SetNoNewPrivileges());
  if (c.seccomp && proc.no_new_privileges) RETURN_IF_ERROR(LoadSeccomp(*c.seccomp));

  // Only stdio and the preserved fds reach the container (CVE-2024-21626): every other fd is
  // close-on-exec by now; this makes sure of it for any inherited one.
  for (int fd = 3; fd < 3 + c.preserve_fds; ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0) ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
  }
  if (::syscall(SYS_close_range, 3 + c.preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    return LastErrnoError("close_range");
  }
  std::vector<char*> argv;
  argv.push_back(executable.data());
  for (const std::string& a : proc.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : proc.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ::syscall(SYS_execveat, c.stub_fd, "", argv.data(), envp.data(), AT_EMPTY_PATH);
  return LastErrnoError("exec the container's process");
}

}  // namespace

int RunInit(const InitConfig& config) {
  absl::Status st = Init(config);
  // After kReady the runtime of a create is gone: then the error goes to `start` through the
  // fifo if it is open, and to stderr, which is the container's.
  if (g_fifo_fd >= 0) {
    std::string text(st.message());
    (void)!::write(g_fifo_fd, text.data(), text.size());
  }
  if (!SendSync(config.sync_fd, SyncType::kError, st.message(), static_cast<int32_t>(st.code()))
           .ok()) {
    std::string line = absl::StrCat("berth-oci init: ", st.message(), "\n");
    (void)!::write(2, line.data(), line.size());
  }
  return 127;
}

}  // namespace berth::runtime

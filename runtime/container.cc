#include "runtime/container.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cgroups/cgroup.h"
#include "runtime/exec_stub.h"
#include "runtime/hooks.h"
#include "runtime/init.h"
#include "runtime/mounts.h"
#include "runtime/security.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace berth::runtime {

namespace {

constexpr size_t kMaxConfigSize = 16 << 20;

absl::StatusOr<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr)
    return LastErrnoError(absl::StrCat("resolve ", path));
  return std::string(buf);
}

absl::StatusOr<UniqueFd> ConnectConsole(const std::string& path) {
  if (path.empty()) return UniqueFd();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return LastErrnoError("socket for the console socket");
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("console socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    return LastErrnoError(absl::StrCat("connect to the console socket ", path));
  }
  return fd;
}

void ResetSignals() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) (void)::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
}

pid_t Clone3(uint64_t flags, int cgroup_fd) {
  struct clone_args args {};
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

absl::Status WriteIdMap(pid_t pid, const char* file, const std::vector<IdMapping>& mappings) {
  std::string text;
  for (const IdMapping& m : mappings) {
    absl::StrAppend(&text, m.container_id, " ", m.host_id, " ", m.size, "\n");
  }
  std::string path = absl::StrCat("/proc/", pid, "/", file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return LastErrnoError(absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return LastErrnoError("waitpid");
  }
  return status;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// The runtime side of the init's setup: answers its requests until it is ready.
absl::Status Supervise(int sync_fd, pid_t pid, const Spec& spec, const std::string& hook_state,
                       const WarningSink& warn) {
  for (;;) {
    absl::StatusOr<SyncMessage> m = ReceiveSync(sync_fd);
    if (!m.ok()) {
      if (!absl::IsUnavailable(m.status())) return m.status();
      // Peek at how it ended; the caller reaps it.
      siginfo_t info{};
      std::string how = "unknown status";
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0) {
        how = info.si_code == CLD_EXITED ? absl::StrCat("exit status ", info.si_status)
                                         : absl::StrCat("signal ", info.si_status);
      }
      return absl::InternalError(
          absl::StrCat("the container's init exited during setup (", how, ")"));
    }
    switch (m->type) {
      case SyncType::kHooks: {
        RETURN_IF_ERROR(RunHooks(spec.hooks.prestart, hook_state, "prestart"));
        RETURN_IF_ERROR(RunHooks(spec.hooks.create_runtime, hook_state, "createRuntime"));
        RETURN_IF_ERROR(SendSync(sync_fd, SyncType::kHooksDone));
        break;
      }
      case SyncType::kWarning:
        if (warn) warn(m->text);
        break;
      case SyncType::kError: return absl::Status(static_cast<absl::StatusCode>(m->code), m->text);
      case SyncType::kReady: return absl::OkStatus();
      default: return absl::InternalError("unexpected message from the container's init");
    }
  }
}

// The device cgroup rules: the spec's, then what every container needs (as runc): mknod of
// any node (access is still checked on open), the default devices, ptys and tun, and each
// device the spec creates.
cgroups::Resources WithDefaultDevices(const Spec& spec) {
  cgroups::Resources r = spec.linux.resources.value_or(cgroups::Resources{});
  using Rule = cgroups::DeviceRule;
  for (const Rule& rule : {Rule{true, 'c', -1, -1, "m"}, Rule{true, 'b', -1, -1, "m"},
                           Rule{true, 'c', 5, 1, "rwm"}, Rule{true, 'c', 5, 2, "rwm"},
                           Rule{true, 'c', 136, -1, "rwm"}, Rule{true, 'c', 10, 200, "rwm"}}) {
    r.devices.push_back(rule);
  }
  // The nodes the init creates (mounts.cc), then the spec's own.
  for (const std::vector<Device>& devices : {DefaultDevices(), spec.linux.devices}) {
    for (const Device& d : devices) {
      if (d.type == 'p') continue;
      r.devices.push_back(Rule{true, d.type == 'b' ? 'b' : 'c', d.major, d.minor, "rwm"});
    }
  }
  return r;
}

// The namespaces the init creates or joins, from the spec.
struct NamespacePlan {
  uint64_t clone_flags = 0;
  int unshare_flags = 0;
  std::vector<std::pair<int, int>> join;  // (flag, fd)
  std::vector<UniqueFd> fds;
  bool own_pid = false;
  bool new_user = false;
  bool new_mount = false;
  bool new_uts = false;
};

absl::StatusOr<NamespacePlan> PlanNamespaces(const Spec& spec) {
  NamespacePlan plan;
  bool join_user = false;
  for (const Namespace& ns : spec.linux.namespaces) {
    int flag = NamespaceCloneFlag(ns.type);
    if (ns.path.empty()) {
      if (ns.type == NamespaceType::kCgroup || ns.type == NamespaceType::kTime) {
        plan.unshare_flags |= flag;  // after the init is in its cgroup / to set the offsets
      } else {
        plan.clone_flags |= static_cast<uint64_t>(flag);
      }
      plan.own_pid |= ns.type == NamespaceType::kPid;
      plan.new_user |= ns.type == NamespaceType::kUser;
      plan.new_mount |= ns.type == NamespaceType::kMount;
      plan.new_uts |= ns.type == NamespaceType::kUts;
      continue;
    }
    UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return LastErrnoError(
          absl::StrCat("open the ", NamespaceName(ns.type), " namespace ", ns.path));
    }
    if (ns.type == NamespaceType::kPid) {
      // Only children enter a joined pid namespace: the runtime joins it before clone.
      if (::setns(fd.get(), CLONE_NEWPID) != 0) {
        return LastErrnoError(absl::StrCat("join the pid namespace ", ns.path));
      }
      continue;
    }
    if (ns.type == NamespaceType::kUser) {
      join_user = true;
      plan.join.insert(plan.join.begin(), {flag, fd.get()});
    } else {
      plan.join.push_back({flag, fd.get()});
    }
    plan.fds.push_back(std::move(fd));
  }
  if (join_user) {
    // Namespaces created by clone would belong to the runtime's user namespace: they are
    // created by the init after it joined the given one.
    plan.unshare_flags |= static_cast<int>(plan.clone_flags & ~static_cast<uint64_t>(CLONE_NEWPID));
    plan.clone_flags &= CLONE_NEWPID;
  }
  if (!plan.new_mount) {
    return absl::InvalidArgumentError(
        "config.json: linux.namespaces: a new mount namespace is required");
  }
  if ((!spec.hostname.empty() || !spec.domainname.empty()) && !plan.new_uts) {
    return absl::InvalidArgumentError("config.json: hostname/domainname need a new uts namespace");
  }
  if (plan.new_user && (spec.linux.uid_mappings.empty() || spec.linux.gid_mappings.empty())) {
    return absl::InvalidArgumentError(
        "config.json: a new user namespace needs linux.uidMappings and linux.gidMappings");
  }
  return plan;
}

// berth-oci applies no LSM profile or label. A spec that asks for one is refused rather than
// run unconfined: silently dropping a confinement the user asked for would be worse.
absl::Status CheckSecurityLabels(const Spec& spec, const Process& process) {
  struct stat st {};
  if (!process.apparmor_profile.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: process.apparmorProfile \"", process.apparmor_profile, "\": ",
                     ::stat("/sys/kernel/security/apparmor", &st) == 0
                         ? "AppArmor profiles are not supported by berth-oci yet"
                         : "this host has no AppArmor"));
  }
  if (!process.selinux_label.empty() || !spec.linux.mount_label.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: process.selinuxLabel/linux.mountLabel: ",
                     ::stat("/sys/fs/selinux/enforce", &st) == 0
                         ? "SELinux labels are not supported by berth-oci yet"
                         : "this host has no SELinux"));
  }
  return absl::OkStatus();
}

// Restores the runtime's own pid namespace for its children (after joining one for a clone).
class PidNamespaceRestore {
 public:
  PidNamespaceRestore() : fd_(::open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC)) {}
  ~PidNamespaceRestore() {
    if (fd_) (void)::setns(fd_.get(), CLONE_NEWPID);
  }

 private:
  UniqueFd fd_;
};

// What a clone of an init (create) or of an exec'd process needs besides its InitConfig: the
// cgroup to land in, the sealed exec stub, the console socket and the sync socket pair.
struct CloneKit {
  cgroups::Mode mode = cgroups::Mode::kUnified;
  UniqueFd cgroup_fd;              // v2: CLONE_INTO_CGROUP
  std::vector<UniqueFd> task_fds;  // v1: the child places itself
  UniqueFd stub, console, parent_end, child_end;
  const int* stdio = nullptr;  // three fds to become the child's 0, 1, 2 (-1: inherited)

  absl::Status Prepare(const cgroups::Manager& manager, cgroups::Cgroup& cgroup,
                       const std::string& console_socket, int console_socket_fd,
                       const int* stdio_fds) {
    stdio = stdio_fds;
    mode = manager.mode();
    if (mode == cgroups::Mode::kUnified) {
      ASSIGN_OR_RETURN(cgroup_fd, cgroup.OpenDirectory());
    } else {
      ASSIGN_OR_RETURN(task_fds, cgroup.OpenSelfPlacement());
    }
    ASSIGN_OR_RETURN(stub, SealedExecStub());
    if (console_socket_fd >= 0) {
      console.reset(::fcntl(console_socket_fd, F_DUPFD_CLOEXEC, 3));
      if (!console) return LastErrnoError("dup the console socket");
    } else {
      ASSIGN_OR_RETURN(console, ConnectConsole(console_socket));
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      return LastErrnoError("socketpair");
    }
    parent_end.reset(sv[0]);
    child_end.reset(sv[1]);
    return absl::OkStatus();
  }

  // Completes `config` with the kit's fds and clones the child into RunInit(config).
  absl::StatusOr<pid_t> Clone(uint64_t flags, InitConfig& config) {
    config.sync_fd = child_end.get();
    config.console_fd = console.get();
    config.stub_fd = stub.get();
    config.cgroup_mode = mode;
    for (const UniqueFd& fd : task_fds) config.cgroup_task_fds.push_back(fd.get());
    pid_t pid = Clone3(flags, cgroup_fd ? cgroup_fd.get() : -1);
    if (pid == 0) {
      parent_end.reset();
      // The container starts with default signal dispositions and nothing blocked, whatever
      // the caller (a monitor that ignores SIGPIPE and blocks SIGCHLD) had: ignored signals
      // and the mask would otherwise survive the exec.
      ResetSignals();
      // dup2 clears close-on-exec on the copies, so exactly these reach the container.
      for (int fd = 0; stdio != nullptr && fd < 3; ++fd) {
        if (stdio[fd] >= 0 && stdio[fd] != fd && ::dup2(stdio[fd], fd) < 0) ::_exit(126);
      }
      ::_exit(RunInit(config));
    }
    if (pid < 0) return LastErrnoError("clone3");
    child_end.reset();
    return pid;
  }
};

}  // namespace

Runtime::Runtime(std::string root, WarningSink warn)
    : root_(std::move(root)), warn_(std::move(warn)) {}

void Runtime::Warn(absl::string_view message) const {
  if (warn_) warn_(message);
}

void Runtime::RunHooksWarning(const std::vector<Hook>& hooks, const std::string& state,
                              absl::string_view kind) const {
  // The spec: a failing poststart or poststop hook is a warning, and the remaining hooks and
  // the lifecycle go on.
  for (size_t i = 0; i < hooks.size(); ++i) {
    absl::Status st = RunHook(hooks[i], state);
    if (!st.ok()) Warn(absl::StrCat(kind, " hook #", i, ": ", st.message()));
  }
}

absl::StatusOr<pid_t> Runtime::Create(const std::string& id, const CreateOptions& options) {
  ASSIGN_OR_RETURN(std::string bundle, RealPath(options.bundle.empty() ? "." : options.bundle));
  ASSIGN_OR_RETURN(std::string config_text, ReadFile(bundle + "/config.json", kMaxConfigSize));
  ASSIGN_OR_RETURN(Spec spec, ParseSpec(config_text));
  if (!spec.process) {
    return absl::InvalidArgumentError("config.json: process is required to create a container");
  }
  RETURN_IF_ERROR(CheckSecurityLabels(spec, *spec.process));
  if (spec.process->terminal && options.console_socket.empty() && options.console_socket_fd < 0) {
    return absl::InvalidArgumentError(
        "config.json: process.terminal needs --console-socket (or a foreground `run`, which "
        "relays the terminal itself)");
  }
  std::string rootfs_path =
      spec.root.path[0] == '/' ? spec.root.path : absl::StrCat(bundle, "/", spec.root.path);
  ASSIGN_OR_RETURN(std::string rootfs, RealPath(rootfs_path));
  std::string cgroup_path = spec.linux.cgroups_path.empty() ? id : spec.linux.cgroups_path;
  ASSIGN_OR_RETURN(cgroup_path, cgroups::CleanCgroupPath(cgroup_path));
  std::optional<SeccompProgram> seccomp;
  if (spec.linux.seccomp) {
    ASSIGN_OR_RETURN(seccomp, PrepareSeccomp(*spec.linux.seccomp));
  }
  PidNamespaceRestore restore_pid_ns;
  ASSIGN_OR_RETURN(NamespacePlan ns, PlanNamespaces(spec));

  ASSIGN_OR_RETURN(StateDir dir, StateDir::Create(root_, id));
  // From here every failure undoes what was done, in reverse.
  std::unique_ptr<cgroups::Cgroup> cgroup;
  pid_t child = -1;
  bool done = false;
  absl::Cleanup undo = [&] {
    if (done) return;
    if (child > 0) {
      ::kill(child, SIGKILL);
      (void)Reap(child);
    }
    if (cgroup) (void)cgroup->Remove(absl::Seconds(5));
    (void)dir.Remove();
  };
  ContainerState state;
  state.id = id;
  state.bundle = bundle;
  state.rootfs = rootfs;
  state.created = NowRfc3339Nano();
  state.cgroup_path = cgroup_path;
  state.own_pid_namespace = ns.own_pid;
  state.annotations = spec.annotations;
  RETURN_IF_ERROR(dir.Save(state));  // names the cgroup before it exists
  RETURN_IF_ERROR(WriteFileAtomic(dir.config_path(), config_text, 0600, /*sync=*/false));
  // 0622 whatever the umask: the init opens it after it became the container's user.
  if (::mkfifo(dir.fifo_path().c_str(), 0622) != 0 || ::chmod(dir.fifo_path().c_str(), 0622) != 0) {
    return LastErrnoError(absl::StrCat("mkfifo ", dir.fifo_path()));
  }
  UniqueFd dir_fd(::open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return LastErrnoError(absl::StrCat("open ", dir.path()));

  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
  ASSIGN_OR_RETURN(cgroup, manager->Create(cgroup_path, WithDefaultDevices(spec)));
  CloneKit kit;
  RETURN_IF_ERROR(kit.Prepare(*manager, *cgroup, options.console_socket, options.console_socket_fd,
                              options.stdio));
  InitConfig config;
  config.spec = &spec;
  config.process = &*spec.process;
  config.bundle = bundle;
  config.rootfs = rootfs;
  config.state_dir_fd = dir_fd.get();
  config.seccomp = seccomp ? &*seccomp : nullptr;
  config.join = ns.join;
  config.unshare_flags = ns.unshare_flags;
  config.new_user_namespace = ns.new_user;
  config.new_mount_namespace = ns.new_mount;
  config.new_uts_namespace = ns.new_uts;
  config.no_pivot = options.no_pivot;
  config.preserve_fds = options.preserve_fds;
  absl::StatusOr<pid_t> cloned = kit.Clone(ns.clone_flags, config);
  if (!cloned.ok()) return Annotate(cloned.status(), "the container's init");
  child = *cloned;
  if (ns.new_user) {
    RETURN_IF_ERROR(WriteIdMap(child, "uid_map", spec.linux.uid_mappings));
    RETURN_IF_ERROR(WriteIdMap(child, "gid_map", spec.linux.gid_mappings));
  }
  state.pid = child;
  ASSIGN_OR_RETURN(state.start_time, ProcessStartTime(child));
  RETURN_IF_ERROR(dir.Save(state));
  std::string hook_state = HookStateJson(state, Status::kCreating);
  RETURN_IF_ERROR(SendSync(
      kit.parent_end.get(), SyncType::kGo,
      absl::StrCat(hook_state, std::string(1, '\0'), HookStateJson(state, Status::kCreated))));
  RETURN_IF_ERROR(Supervise(kit.parent_end.get(), child, spec, hook_state, warn_));
  if (!options.pid_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(options.pid_file, absl::StrCat(child), 0644, false));
  }
  done = true;
  return child;
}

absl::Status Runtime::Start(const std::string& id) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  RETURN_IF_ERROR(dir.Lock());
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  Status status = CurrentStatus(state, Exists(dir.fifo_path()), false);
  if (status != Status::kCreated) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start a container that is ", StatusName(status)));
  }
  ASSIGN_OR_RETURN(UniqueFd init, OpenInit(state));
  UniqueFd fifo(::open(dir.fifo_path().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo) return LastErrnoError(absl::StrCat("open ", dir.fifo_path()));
  // The init writes "0" once it has the fifo open, keeps it open through the startContainer
  // hooks and closes it by exec'ing: so read to EOF. Anything after the "0" is its error. The
  // pidfd tells of an init that died before it ever opened the fifo.
  std::string got;
  bool opened = false;
  for (;;) {
    struct pollfd p[2] = {{.fd = fifo.get(), .events = POLLIN, .revents = 0},
                          {.fd = init.get(), .events = POLLIN, .revents = 0}};
    int r = ::poll(p, opened ? 1 : 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return LastErrnoError("poll the exec fifo");
    if (p[0].revents & (POLLIN | POLLHUP)) {
      char buf[4096];
      ssize_t n = ::read(fifo.get(), buf, sizeof buf);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) return LastErrnoError("read the exec fifo");
      if (n == 0 && opened) break;  // EOF after the writer was there: the exec happened
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        opened = true;
        continue;
      }
    }
    if (!opened && (p[1].revents & POLLIN)) {
      return absl::FailedPreconditionError("the container's init exited before it was started");
    }
  }
  if (::unlink(dir.fifo_path().c_str()) != 0 && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("remove ", dir.fifo_path()));
  }
  if (got.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("the container's process did not start: ", got.substr(1)));
  }
  absl::StatusOr<std::string> config = ReadFile(dir.config_path(), kMaxConfigSize);
  if (config.ok()) {
    absl::StatusOr<Spec> spec = ParseSpec(*config);
    if (spec.ok()) {
      RunHooksWarning(spec->hooks.poststart, HookStateJson(state, Status::kRunning), "poststart");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ContainerInfo> Runtime::State(const std::string& id) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  ContainerInfo info;
  info.status = CurrentStatus(state, Exists(dir.fifo_path()), Exists(dir.path() + "/paused"));
  info.state = std::move(state);
  return info;
}

absl::StatusOr<Spec> Runtime::Config(const std::string& id) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  ASSIGN_OR_RETURN(std::string text, ReadFile(dir.config_path(), kMaxConfigSize));
  return ParseSpec(text);
}

absl::StatusOr<std::vector<ContainerInfo>> Runtime::List() {
  std::vector<ContainerInfo> out;
  DIR* d = ::opendir(root_.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return LastErrnoError(absl::StrCat("open ", root_));
  }
  absl::Cleanup close = [d] { ::closedir(d); };
  while (struct dirent* e = ::readdir(d)) {  // NOLINT(concurrency-mt-unsafe): one thread
    std::string name = e->d_name;
    if (name == "." || name == ".." || !ValidateId(name).ok()) continue;
    absl::StatusOr<ContainerInfo> info = State(name);
    if (info.ok()) out.push_back(*std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const ContainerInfo& a, const ContainerInfo& b) {
    return a.state.created < b.state.created;
  });
  return out;
}

absl::Status Runtime::Kill(const std::string& id, int signal, bool all) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  if (all) {
    ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
    absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = manager->Load(state.cgroup_path);
    if (!cg.ok()) return cg.status();
    if (Exists(dir.path() + "/paused") && signal == SIGKILL) (void)(*cg)->Thaw();
    return (*cg)->Kill(signal);
  }
  absl::StatusOr<UniqueFd> init = OpenInit(state);
  if (!init.ok()) {
    if (absl::IsNotFound(init.status())) {
      return absl::FailedPreconditionError("container not running");
    }
    return init.status();
  }
  if (::syscall(SYS_pidfd_send_signal, init->get(), signal, nullptr, 0) != 0) {
    if (errno == ESRCH) return absl::FailedPreconditionError("container not running");
    return LastErrnoError(absl::StrCat("signal ", signal));
  }
  return absl::OkStatus();
}

absl::Status Runtime::Delete(const std::string& id, bool force) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  RETURN_IF_ERROR(dir.Lock());
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  const bool paused = Exists(dir.path() + "/paused");
  Status status = CurrentStatus(state, Exists(dir.fifo_path()), paused);
  if ((status == Status::kRunning || status == Status::kPaused) && !force) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot delete container ", id, " that is not stopped: ", StatusName(status)));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
  std::unique_ptr<cgroups::Cgroup> cgroup;
  if (!state.cgroup_path.empty()) {
    absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = manager->Load(state.cgroup_path);
    if (cg.ok()) {
      cgroup = *std::move(cg);
    } else if (!absl::IsNotFound(cg.status())) {
      return cg.status();
    }
  }
  if (status != Status::kStopped && status != Status::kCreating) {
    absl::StatusOr<UniqueFd> init = OpenInit(state);
    if (init.ok()) {
      if (paused && cgroup) (void)cgroup->Thaw();
      (void)::syscall(SYS_pidfd_send_signal, init->get(), SIGKILL, nullptr, 0);
      struct pollfd p = {.fd = init->get(), .events = POLLIN, .revents = 0};
      while (::poll(&p, 1, 10000) < 0 && errno == EINTR) {
      }
    }
  }
  // Whatever else is left in the cgroup (a shared pid namespace, exec'd processes) goes too.
  if (cgroup) RETURN_IF_ERROR(cgroup->Kill(SIGKILL));
  if (state.pid > 0) {
    absl::StatusOr<std::string> config = ReadFile(dir.config_path(), kMaxConfigSize);
    if (config.ok()) {
      absl::StatusOr<Spec> spec = ParseSpec(*config);
      if (spec.ok()) {
        RunHooksWarning(spec->hooks.poststop, HookStateJson(state, Status::kStopped), "poststop");
      }
    }
  }
  if (cgroup) RETURN_IF_ERROR(cgroup->Remove(absl::Seconds(10)));
  return dir.Remove();
}

absl::Status Runtime::Pause(const std::string& id) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  RETURN_IF_ERROR(dir.Lock());
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  Status status = CurrentStatus(state, Exists(dir.fifo_path()), Exists(dir.path() + "/paused"));
  if (status != Status::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot pause a container that is ", StatusName(status)));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Cgroup> cg, manager->Load(state.cgroup_path));
  RETURN_IF_ERROR(WriteFileAtomic(dir.path() + "/paused", "", 0600, false));
  return cg->Freeze();
}

absl::Status Runtime::Resume(const std::string& id) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  RETURN_IF_ERROR(dir.Lock());
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  if (!Exists(dir.path() + "/paused")) {
    return absl::FailedPreconditionError("the container is not paused");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Cgroup> cg, manager->Load(state.cgroup_path));
  RETURN_IF_ERROR(cg->Thaw());
  if (::unlink((dir.path() + "/paused").c_str()) != 0 && errno != ENOENT) {
    return LastErrnoError("remove the paused mark");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<pid_t>> Runtime::Processes(const std::string& id) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
  absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = manager->Load(state.cgroup_path);
  if (!cg.ok()) {
    if (absl::IsNotFound(cg.status())) return std::vector<pid_t>{};
    return cg.status();
  }
  return (*cg)->Processes();
}

absl::StatusOr<int> Runtime::Exec(const std::string& id, const Process& process,
                                  const ExecOptions& options) {
  ASSIGN_OR_RETURN(StateDir dir, StateDir::Open(root_, id));
  ASSIGN_OR_RETURN(ContainerState state, dir.Load());
  Status status = CurrentStatus(state, Exists(dir.fifo_path()), Exists(dir.path() + "/paused"));
  if (status != Status::kRunning && status != Status::kCreated) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot exec in a container that is ", StatusName(status)));
  }
  ASSIGN_OR_RETURN(std::string config_text, ReadFile(dir.config_path(), kMaxConfigSize));
  ASSIGN_OR_RETURN(Spec spec, ParseSpec(config_text));
  RETURN_IF_ERROR(CheckSecurityLabels(Spec{}, process));
  if (process.terminal && options.console_socket.empty() && options.console_socket_fd < 0) {
    return absl::InvalidArgumentError(
        "exec --tty needs --console-socket (or a foreground exec, which relays the terminal)");
  }
  std::optional<SeccompProgram> seccomp;
  if (spec.linux.seccomp) {
    ASSIGN_OR_RETURN(seccomp, PrepareSeccomp(*spec.linux.seccomp));
  }
  ASSIGN_OR_RETURN(UniqueFd init, OpenInit(state));
  // Join every namespace in which the init differs from us.
  int join = 0;
  for (auto [name, flag] : {std::pair{"user", CLONE_NEWUSER},
                            {"mnt", CLONE_NEWNS},
                            {"pid", CLONE_NEWPID},
                            {"net", CLONE_NEWNET},
                            {"ipc", CLONE_NEWIPC},
                            {"uts", CLONE_NEWUTS},
                            {"cgroup", CLONE_NEWCGROUP},
                            {"time", CLONE_NEWTIME}}) {
    struct stat ours {
    }, theirs{};
    if (::stat(absl::StrCat("/proc/self/ns/", name).c_str(), &ours) != 0) continue;
    if (::stat(absl::StrCat("/proc/", state.pid, "/ns/", name).c_str(), &theirs) != 0) {
      return LastErrnoError(absl::StrCat("the container's ", name, " namespace"));
    }
    if (ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev) join |= flag;
  }
  PidNamespaceRestore restore_pid_ns;
  if (join & CLONE_NEWPID) {
    if (::setns(init.get(), CLONE_NEWPID) != 0) {
      return LastErrnoError("join the container's pid namespace");
    }
    join &= ~CLONE_NEWPID;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Cgroup> cgroup, manager->Load(state.cgroup_path));
  CloneKit kit;
  RETURN_IF_ERROR(kit.Prepare(*manager, *cgroup, options.console_socket, options.console_socket_fd,
                              options.stdio));
  InitConfig config;
  config.spec = &spec;
  config.process = &process;
  config.bundle = state.bundle;
  config.rootfs = state.rootfs;
  config.seccomp = seccomp ? &*seccomp : nullptr;
  config.exec_pidfd = init.get();
  config.exec_join_flags = join;
  config.preserve_fds = options.preserve_fds;
  config.is_exec = true;
  absl::StatusOr<pid_t> cloned = kit.Clone(0, config);
  if (!cloned.ok()) return Annotate(cloned.status(), "the exec'd process");
  const pid_t child = *cloned;
  absl::Cleanup kill_child = [child] {
    ::kill(child, SIGKILL);
    (void)Reap(child);
  };
  RETURN_IF_ERROR(SendSync(kit.parent_end.get(), SyncType::kGo, HookStateJson(state, status)));
  RETURN_IF_ERROR(Supervise(kit.parent_end.get(), child, spec, "", warn_));
  std::move(kill_child).Cancel();
  if (!options.pid_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(options.pid_file, absl::StrCat(child), 0644, false));
  }
  if (options.detach) return static_cast<int>(child);
  return WaitInit(child, true);
}

absl::StatusOr<int> Runtime::WaitInit(pid_t pid, bool forward_signals) {
  if (!forward_signals) return Reap(pid);
  sigset_t set, old;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD}) {
    sigaddset(&set, s);
  }
  ::pthread_sigmask(SIG_BLOCK, &set, &old);
  absl::Cleanup restore = [&old] { ::pthread_sigmask(SIG_SETMASK, &old, nullptr); };
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return LastErrnoError("waitpid");
    siginfo_t info{};
    int sig = ::sigwaitinfo(&set, &info);
    if (sig < 0 || sig == SIGCHLD) continue;
    ::kill(pid, sig);
  }
}

}  // namespace berth::runtime

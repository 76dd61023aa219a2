// The RuntimeDefault seccomp profile (the allow-list of Docker's and containerd's default
// profile, moby profiles/seccomp/default.json) and the reader of Docker-format profile files.
//
// Both evaluate the profile's conditional rules as moby's seccomp.LoadProfile does: a rule with
// `includes` applies only if the host's architecture (Go's name: amd64, arm64, ...) is listed,
// every listed capability is in the container's set and the kernel is at least minKernel; a rule
// with `excludes` is dropped if the architecture is listed, any listed capability is held or the
// kernel is at least minKernel.
#include <sys/utsname.h>

#include <cstdint>
#include <exception>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/json.h"
#include "base/status.h"
#include "cri/spec_builder.h"
#include "runtime/spec.h"

namespace berth::cri {

namespace {

using nlohmann::json;

// The host's architecture, by Go's name (what profiles' includes/excludes.arches use), and the
// libseccomp architectures of its family (the native one first).
#if defined(__x86_64__)
constexpr const char* kGoArch = "amd64";
constexpr const char* kArchFamily[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
constexpr const char* kGoArch = "arm64";
constexpr const char* kArchFamily[] = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#elif defined(__i386__)
constexpr const char* kGoArch = "386";
constexpr const char* kArchFamily[] = {"SCMP_ARCH_X86"};
#elif defined(__arm__)
constexpr const char* kGoArch = "arm";
constexpr const char* kArchFamily[] = {"SCMP_ARCH_ARM"};
#elif defined(__s390x__)
constexpr const char* kGoArch = "s390x";
constexpr const char* kArchFamily[] = {"SCMP_ARCH_S390X", "SCMP_ARCH_S390"};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr const char* kGoArch = "ppc64le";
constexpr const char* kArchFamily[] = {"SCMP_ARCH_PPC64LE"};
#elif defined(__riscv) && __riscv_xlen == 64
constexpr const char* kGoArch = "riscv64";
constexpr const char* kArchFamily[] = {"SCMP_ARCH_RISCV64"};
#else
#error "berth's default seccomp profile does not know this architecture"
#endif

bool Contains(const std::vector<std::string>& list, absl::string_view s) {
  for (const std::string& e : list) {
    if (e == s) return true;
  }
  return false;
}

// The running kernel's "major.minor" as a comparable number (major * 1000 + minor).
int KernelVersion() {
  static const int version = [] {
    struct utsname u {};
    if (::uname(&u) != 0) return 0;
    std::vector<absl::string_view> parts = absl::StrSplit(u.release, absl::ByAnyChar(".-+"));
    int major = 0, minor = 0;
    if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &major) ||
        !absl::SimpleAtoi(parts[1], &minor)) {
      return 0;
    }
    return major * 1000 + minor;
  }();
  return version;
}

// "4.8" -> 4008; false when it is not "major.minor" (a patch level is ignored, as moby does).
bool ParseKernel(const std::string& s, int* out) {
  std::vector<absl::string_view> parts = absl::StrSplit(s, '.');
  int major = 0, minor = 0;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &major) ||
      !absl::SimpleAtoi(parts[1], &minor) || major < 0 || minor < 0 || minor >= 1000) {
    return false;
  }
  *out = major * 1000 + minor;
  return true;
}

// One rule's conditions. An empty list does not constrain.
struct Filter {
  std::vector<std::string> arches, caps;
  int min_kernel = 0;  // 0: none
};

bool Included(const Filter& f, const std::vector<std::string>& caps) {
  if (!f.arches.empty() && !Contains(f.arches, kGoArch)) return false;
  for (const std::string& c : f.caps) {
    if (!Contains(caps, c)) return false;
  }
  return f.min_kernel == 0 || KernelVersion() >= f.min_kernel;
}

bool Excluded(const Filter& f, const std::vector<std::string>& caps) {
  if (Contains(f.arches, kGoArch)) return true;
  for (const std::string& c : f.caps) {
    if (Contains(caps, c)) return true;
  }
  return f.min_kernel != 0 && KernelVersion() >= f.min_kernel;
}

// ---- the default profile ---------------------------------------------------------------------

struct Arg {
  unsigned index;
  uint64_t value;
  const char* op;
};

struct Rule {
  std::vector<const char*> names;
  const char* action = "SCMP_ACT_ALLOW";
  int errno_ret = -1;  // -1: none
  std::vector<Arg> args;
  Filter includes, excludes;
};

// Namespace flags of clone(2): CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID |
// NEWNET. Without CAP_SYS_ADMIN, clone is allowed only with none of them set.
constexpr uint64_t kCloneNamespaceFlags = 0x7E020000;
constexpr uint64_t kAfVsock = 40;
constexpr int kEnosys = 38;

// Everything any container may do.
// clang-format off
constexpr const char* kAlwaysAllowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
    "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr",
    "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
    "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
    "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev",
};
// clang-format on

Filter Caps(std::initializer_list<std::string> caps) {
  return Filter{.arches = {}, .caps = caps};
}

Filter Arches(std::initializer_list<std::string> arches) {
  return Filter{.arches = arches, .caps = {}};
}

// The conditional rules, in the upstream profile's order.
const std::vector<Rule>& ConditionalRules() {
  static const std::vector<Rule> rules = [] {
    std::vector<Rule> r;
    // ptrace and friends are safe without CAP_SYS_PTRACE from 4.8 on (seccomp is checked after
    // ptrace); berth needs openat2, so 5.6 at least.
    r.push_back({.names = {"process_vm_readv", "process_vm_writev", "ptrace"},
                 .includes = {.min_kernel = 4008}});
    // Every socket family but AF_VSOCK, which is not namespaced.
    r.push_back({.names = {"socket"}, .args = {{0, kAfVsock, "SCMP_CMP_NE"}}});
    // personality(2) only for PER_LINUX, PER_LINUX32, UNAME26 variants and the query.
    for (uint64_t persona : {0x0ULL, 0x8ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
      r.push_back({.names = {"personality"}, .args = {{0, persona, "SCMP_CMP_EQ"}}});
    }
    r.push_back({.names = {"sync_file_range2", "swapcontext"}, .includes = Arches({"ppc64le"})});
    r.push_back({.names = {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                           "breakpoint", "cacheflush", "set_tls"},
                 .includes = Arches({"arm", "arm64"})});
    r.push_back({.names = {"arch_prctl"}, .includes = Arches({"amd64", "x32"})});
    r.push_back({.names = {"modify_ldt"}, .includes = Arches({"amd64", "x32", "x86"})});
    r.push_back({.names = {"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"},
                 .includes = Arches({"s390", "s390x"})});
    r.push_back({.names = {"riscv_flush_icache"}, .includes = Arches({"riscv64"})});
    r.push_back({.names = {"open_by_handle_at"}, .includes = Caps({"CAP_DAC_READ_SEARCH"})});
    r.push_back(
        {.names = {"bpf",           "clone",         "clone3",      "fanotify_init",   "fsconfig",
                   "fsmount",       "fsopen",        "fspick",      "lookup_dcookie",  "mount",
                   "mount_setattr", "move_mount",    "open_tree",   "perf_event_open", "quotactl",
                   "quotactl_fd",   "setdomainname", "sethostname", "setns",           "syslog",
                   "umount",        "umount2",       "unshare"},
         .includes = Caps({"CAP_SYS_ADMIN"})});
    // clone without namespace flags (s390 swaps the first two arguments).
    r.push_back({.names = {"clone"},
                 .args = {{0, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ"}},
                 .excludes = {.arches = {"s390", "s390x"}, .caps = {"CAP_SYS_ADMIN"}}});
    r.push_back({.names = {"clone"},
                 .args = {{1, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ"}},
                 .includes = Arches({"s390", "s390x"}),
                 .excludes = Caps({"CAP_SYS_ADMIN"})});
    // clone3's flags are in memory, out of seccomp's reach: ENOSYS makes libcs fall back to
    // clone, which is checked above.
    r.push_back({.names = {"clone3"},
                 .action = "SCMP_ACT_ERRNO",
                 .errno_ret = kEnosys,
                 .excludes = Caps({"CAP_SYS_ADMIN"})});
    r.push_back({.names = {"reboot"}, .includes = Caps({"CAP_SYS_BOOT"})});
    r.push_back({.names = {"chroot"}, .includes = Caps({"CAP_SYS_CHROOT"})});
    r.push_back({.names = {"delete_module", "init_module", "finit_module"},
                 .includes = Caps({"CAP_SYS_MODULE"})});
    r.push_back({.names = {"acct"}, .includes = Caps({"CAP_SYS_PACCT"})});
    r.push_back({.names = {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                           "process_vm_writev", "ptrace"},
                 .includes = Caps({"CAP_SYS_PTRACE"})});
    r.push_back({.names = {"iopl", "ioperm"}, .includes = Caps({"CAP_SYS_RAWIO"})});
    r.push_back({.names = {"settimeofday", "stime", "clock_settime", "clock_settime64"},
                 .includes = Caps({"CAP_SYS_TIME"})});
    r.push_back({.names = {"vhangup"}, .includes = Caps({"CAP_SYS_TTY_CONFIG"})});
    r.push_back({.names = {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
                 .includes = Caps({"CAP_SYS_NICE"})});
    r.push_back({.names = {"syslog"}, .includes = Caps({"CAP_SYSLOG"})});
    r.push_back({.names = {"bpf"}, .includes = Caps({"CAP_BPF"})});
    r.push_back({.names = {"perf_event_open"}, .includes = Caps({"CAP_PERFMON"})});
    return r;
  }();
  return rules;
}

json Architectures() {
  json a = json::array();
  for (const char* arch : kArchFamily) a.push_back(arch);
  return a;
}

// ---- Docker-format profile files -------------------------------------------------------------

absl::Status Bad(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

absl::Status GetStrings(const json& obj, const char* key, const std::string& path,
                        std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  std::string kpath = absl::StrCat(path, ".", key);
  if (!it->is_array()) return Bad(kpath, "expected an array of strings");
  for (const json& e : *it) {
    if (!e.is_string()) return Bad(kpath, "expected an array of strings");
    out->push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

absl::StatusOr<Filter> ParseFilter(const json& rule, const char* key, const std::string& path) {
  Filter f;
  auto it = rule.find(key);
  if (it == rule.end() || it->is_null()) return f;
  std::string fpath = absl::StrCat(path, ".", key);
  if (!it->is_object()) return Bad(fpath, "expected an object");
  RETURN_IF_ERROR(GetStrings(*it, "arches", fpath, &f.arches));
  RETURN_IF_ERROR(GetStrings(*it, "caps", fpath, &f.caps));
  auto kernel = it->find("minKernel");
  if (kernel != it->end() && !kernel->is_null()) {
    if (!kernel->is_string() || kernel->get_ref<const std::string&>().empty() ||
        !ParseKernel(kernel->get<std::string>(), &f.min_kernel)) {
      return Bad(absl::StrCat(fpath, ".minKernel"), "expected a kernel version like \"4.8\"");
    }
  }
  return f;
}

absl::StatusOr<json> ConvertProfile(const json& in, const std::vector<std::string>& caps) {
  if (!in.is_object()) return Bad("profile", "expected a JSON object");
  json out = json::object();
  // Fields OCI shares with Docker's format go through as they are; ParseSpec checks them.
  for (const char* key :
       {"defaultAction", "defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"}) {
    auto it = in.find(key);
    if (it != in.end() && !it->is_null()) out[key] = *it;
  }
  if (!out.contains("defaultAction")) return Bad("defaultAction", "missing (required)");

  std::vector<std::string> arches;
  RETURN_IF_ERROR(GetStrings(in, "architectures", "profile", &arches));
  auto arch_map = in.find("archMap");
  if (arch_map != in.end() && !arch_map->is_null()) {
    if (!arches.empty()) return Bad("profile", "both architectures and archMap are set");
    if (!arch_map->is_array()) return Bad("archMap", "expected an array");
    // Only the entry of this host's architecture counts, with its sub-architectures.
    for (size_t i = 0; i < arch_map->size(); ++i) {
      const json& e = (*arch_map)[i];
      std::string epath = absl::StrCat("archMap[", i, "]");
      if (!e.is_object()) return Bad(epath, "expected an object");
      auto arch = e.find("architecture");
      if (arch == e.end() || !arch->is_string()) {
        return Bad(absl::StrCat(epath, ".architecture"), "expected a string");
      }
      std::vector<std::string> sub;
      RETURN_IF_ERROR(GetStrings(e, "subArchitectures", epath, &sub));
      if (arch->get_ref<const std::string&>() != kArchFamily[0]) continue;
      arches.push_back(arch->get<std::string>());
      arches.insert(arches.end(), sub.begin(), sub.end());
    }
  }
  if (!arches.empty()) out["architectures"] = arches;

  json syscalls = json::array();
  auto list = in.find("syscalls");
  if (list != in.end() && !list->is_null()) {
    if (!list->is_array()) return Bad("syscalls", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const json& s = (*list)[i];
      std::string path = absl::StrCat("syscalls[", i, "]");
      if (!s.is_object()) return Bad(path, "expected an object");
      std::vector<std::string> names;
      RETURN_IF_ERROR(GetStrings(s, "names", path, &names));
      auto name = s.find("name");
      if (name != s.end() && !name->is_null()) {
        if (!names.empty()) return Bad(path, "both name and names are set");
        if (!name->is_string()) return Bad(absl::StrCat(path, ".name"), "expected a string");
        names.push_back(name->get<std::string>());
      }
      if (names.empty()) return Bad(path, "no syscall names");
      ASSIGN_OR_RETURN(Filter includes, ParseFilter(s, "includes", path));
      ASSIGN_OR_RETURN(Filter excludes, ParseFilter(s, "excludes", path));
      if (!Included(includes, caps) || Excluded(excludes, caps)) continue;
      json call = json::object();
      call["names"] = names;
      for (const char* key : {"action", "errnoRet", "args"}) {
        auto it = s.find(key);
        if (it != s.end() && !it->is_null()) call[key] = *it;
      }
      syscalls.push_back(std::move(call));
    }
  }
  out["syscalls"] = std::move(syscalls);

  // What the runtime will make of it, checked now so the error names the profile.
  json doc = {{"ociVersion", "1.1.0"}, {"root", {{"path", "/"}}}, {"linux", {{"seccomp", out}}}};
  absl::StatusOr<runtime::Spec> parsed = runtime::ParseSpec(doc.dump());
  if (!parsed.ok()) return absl::InvalidArgumentError(parsed.status().message());
  return out;
}

}  // namespace

json DefaultSeccompProfile(const std::vector<std::string>& caps) {
  json syscalls = json::array();
  json always = json::array();
  for (const char* name : kAlwaysAllowed) always.push_back(name);
  syscalls.push_back(json{{"names", std::move(always)}, {"action", "SCMP_ACT_ALLOW"}});
  for (const Rule& r : ConditionalRules()) {
    if (!Included(r.includes, caps) || Excluded(r.excludes, caps)) continue;
    json call = json::object();
    json names = json::array();
    for (const char* name : r.names) names.push_back(name);
    call["names"] = std::move(names);
    call["action"] = r.action;
    if (r.errno_ret >= 0) call["errnoRet"] = r.errno_ret;
    if (!r.args.empty()) {
      json args = json::array();
      for (const Arg& a : r.args) {
        args.push_back(json{{"index", a.index}, {"value", a.value}, {"op", a.op}});
      }
      call["args"] = std::move(args);
    }
    syscalls.push_back(std::move(call));
  }
  return json{{"defaultAction", "SCMP_ACT_ERRNO"},
              {"defaultErrnoRet", 1},
              {"architectures", Architectures()},
              {"syscalls", std::move(syscalls)}};
}

absl::StatusOr<json> SeccompFromDockerProfile(absl::string_view profile_json,
                                              const std::vector<std::string>& caps) {
  constexpr size_t kMaxProfile = 4 << 20;
  if (profile_json.size() > kMaxProfile) {
    return absl::InvalidArgumentError(
        absl::StrCat(profile_json.size(), " bytes, more than the ", kMaxProfile, " allowed"));
  }
  if (!JsonNestingWithin(profile_json, 32)) {
    return absl::InvalidArgumentError("JSON nested too deeply");
  }
  json in = json::parse(profile_json.begin(), profile_json.end(), nullptr,
                        /*allow_exceptions=*/false);
  if (in.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  try {
    return ConvertProfile(in, caps);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
}

}  // namespace berth::cri

#include "runtime/security.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::runtime {

namespace {

// ---- seccomp ---------------------------------------------------------------------------------

struct SeccompReleaser {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using SeccompCtx = std::unique_ptr<void, SeccompReleaser>;

absl::Status SeccompError(absl::string_view path, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("seccomp: ", path, ": ", message));
}

// libseccomp reports failures as negative errno values.
absl::Status SeccompCallError(int rc, absl::string_view what) {
  return ErrnoError(-rc, absl::StrCat("seccomp: ", what));
}

absl::StatusOr<uint32_t> ParseAction(const std::string& action, std::optional<uint32_t> errno_ret,
                                     absl::string_view path) {
  // The kernel keeps only the low 16 bits of SECCOMP_RET_DATA; a larger value would silently
  // become a different errno.
  if (errno_ret && *errno_ret > 0xffff &&
      (action == "SCMP_ACT_ERRNO" || action == "SCMP_ACT_TRACE")) {
    return SeccompError(path, absl::StrCat("errnoRet ", *errno_ret, " is out of range (0..65535)"));
  }
  if (action == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
  if (action == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(errno_ret.value_or(0));
  if (action == "SCMP_ACT_KILL" || action == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (action == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (action == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (action == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (action == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (action == "SCMP_ACT_NOTIFY") {
    return absl::UnimplementedError(absl::StrCat(
        "seccomp: ", path, ": SCMP_ACT_NOTIFY is not supported (no seccomp listener support)"));
  }
  return SeccompError(path, absl::StrCat("unknown action \"", action, "\""));
}

absl::StatusOr<scmp_compare> ParseOperator(const std::string& op, absl::string_view path) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return SeccompError(path, absl::StrCat("unknown operator \"", op, "\""));
}

absl::StatusOr<uint32_t> ParseArchitecture(const std::string& arch, absl::string_view path) {
  constexpr absl::string_view kPrefix = "SCMP_ARCH_";
  uint32_t token = 0;
  if (absl::string_view(arch).substr(0, kPrefix.size()) == kPrefix &&
      arch.size() > kPrefix.size()) {
    // libseccomp names its architectures in lower case without the prefix: "x86_64", "aarch64".
    std::string name = absl::AsciiStrToLower(absl::string_view(arch).substr(kPrefix.size()));
    token = seccomp_arch_resolve_name(name.c_str());
  }
  if (token == 0) return SeccompError(path, absl::StrCat("unknown architecture \"", arch, "\""));
  return token;
}

absl::StatusOr<unsigned> ParseFlag(const std::string& flag, absl::string_view path) {
  if (flag == "SECCOMP_FILTER_FLAG_TSYNC") return SECCOMP_FILTER_FLAG_TSYNC;
  if (flag == "SECCOMP_FILTER_FLAG_LOG") return SECCOMP_FILTER_FLAG_LOG;
  if (flag == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  return SeccompError(path, absl::StrCat("unknown flag \"", flag, "\""));
}

// Adds one spec entry to the filter. `path` is "syscalls[i]" for messages.
absl::Status AddSyscallRule(scmp_filter_ctx ctx, const SeccompSyscall& syscall, uint32_t action,
                            uint32_t default_action, const std::string& path) {
  std::vector<scmp_arg_cmp> conditions;
  std::array<int, 6> per_index{};
  for (size_t i = 0; i < syscall.args.size(); ++i) {
    const SeccompArg& arg = syscall.args[i];
    std::string arg_path = absl::StrCat(path, ".args[", i, "]");
    if (arg.index >= per_index.size()) {
      return SeccompError(absl::StrCat(arg_path, ".index"),
                          absl::StrCat(arg.index, " is out of range (0..5)"));
    }
    ASSIGN_OR_RETURN(scmp_compare op, ParseOperator(arg.op, absl::StrCat(arg_path, ".op")));
    // For SCMP_CMP_MASKED_EQ, datum_a is the mask and datum_b the value, which is what the OCI
    // spec's value/valueTwo mean too.
    conditions.push_back(scmp_arg_cmp{arg.index, op, arg.value, arg.value_two});
    ++per_index[arg.index];
  }
  // Validation above runs before this so that a bad rule is refused even when it would be
  // skipped. libseccomp refuses a rule whose action is the default one; runc skips it.
  if (action == default_action) return absl::OkStatus();

  // libseccomp refuses two conditions on the same argument in one rule. As runc does, such an
  // entry becomes one rule per condition, so those conditions are OR-ed rather than AND-ed.
  bool split = std::any_of(per_index.begin(), per_index.end(), [](int n) { return n > 1; });

  for (const std::string& name : syscall.names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    // A name unknown to libseccomp on every architecture is skipped, as runc does: profiles
    // list syscalls newer than the library.
    if (nr == __NR_SCMP_ERROR) continue;
    auto add = [&](unsigned count, const scmp_arg_cmp* args) -> absl::Status {
      int rc = seccomp_rule_add_array(ctx, action, nr, count, args);
      if (rc < 0) {
        return SeccompCallError(rc, absl::StrCat(path, ": adding rule for \"", name, "\""));
      }
      return absl::OkStatus();
    };
    if (split) {
      for (const scmp_arg_cmp& condition : conditions) RETURN_IF_ERROR(add(1, &condition));
    } else {
      RETURN_IF_ERROR(add(conditions.size(), conditions.data()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<sock_filter>> ExportBpf(scmp_filter_ctx ctx) {
  // libseccomp 2.5 only exports to a file descriptor (seccomp_export_bpf_mem came in 2.6).
  UniqueFd fd(memfd_create("berth-seccomp", MFD_CLOEXEC));
  if (!fd) return LastErrnoError("seccomp: memfd_create");
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc < 0) return SeccompCallError(rc, "exporting the filter");
  off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return LastErrnoError("seccomp: lseek on the exported filter");
  if (size == 0 || size % sizeof(sock_filter) != 0) {
    return absl::InternalError(
        absl::StrCat("seccomp: exported filter has a bad size (", size, " bytes)"));
  }
  std::vector<sock_filter> instructions(size / sizeof(sock_filter));
  char* out = reinterpret_cast<char*>(instructions.data());
  off_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd.get(), out + done, size - done, done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LastErrnoError("seccomp: reading the exported filter");
    if (n == 0) return absl::InternalError("seccomp: exported filter shrank while reading it");
    done += n;
  }
  return instructions;
}

// ---- helpers for the child: they allocate only to build an error -----------------------------

// "CAP_SYS_ADMIN", for error messages.
std::string CapabilityName(int cap) {
  char* name = cap_to_name(cap);
  if (name == nullptr) return absl::StrCat("capability ", cap);
  std::string result = absl::AsciiStrToUpper(name);
  cap_free(name);
  return result;
}

// The last capability this kernel knows. libcap probes the kernel when it is loaded, so this
// is a plain read.
int LastCapability() {
  int bits = cap_max_bits();
  return bits > 0 ? bits - 1 : CAP_LAST_CAP;
}

// Reads a small /proc file into `buf` (NUL-terminated). Returns the length, or -1 with errno.
ssize_t ReadSmallFile(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do {
    n = read(fd, buf, size - 1);
  } while (n < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  errno = saved;
  if (n >= 0) buf[n] = '\0';
  return n;
}

// Writes `data` to a /proc file in one write. Returns 0, or -1 with errno.
int WriteSmallFile(const char* path, const char* data, size_t size) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do {
    n = write(fd, data, size);
  } while (n < 0 && errno == EINTR);
  int saved = errno;
  close(fd);
  if (n < 0) {
    errno = saved;
    return -1;
  }
  return 0;
}

// Whether setgroups(2) is permitted: in a user namespace whose /proc/self/setgroups says "deny"
// it always fails with EPERM. No file (kernels before 3.19) means allowed.
bool SetgroupsAllowed() {
  char buf[16];
  if (ReadSmallFile("/proc/self/setgroups", buf, sizeof buf) < 0) return true;
  return strncmp(buf, "deny", 4) != 0;
}

// The 32-bit-id syscalls: on 32-bit x86 and arm, SYS_setresuid and friends take 16-bit ids.
#ifdef SYS_setresuid32
constexpr long kSysSetresuid = SYS_setresuid32;
constexpr long kSysSetresgid = SYS_setresgid32;
constexpr long kSysSetgroups = SYS_setgroups32;
#else
constexpr long kSysSetresuid = SYS_setresuid;
constexpr long kSysSetresgid = SYS_setresgid;
constexpr long kSysSetgroups = SYS_setgroups;
#endif

static_assert(sizeof(gid_t) == sizeof(uint32_t), "additional_gids is passed to setgroups as is");

}  // namespace

absl::StatusOr<SeccompProgram> PrepareSeccomp(const Seccomp& seccomp) {
  SeccompProgram program;
  for (size_t i = 0; i < seccomp.flags.size(); ++i) {
    ASSIGN_OR_RETURN(unsigned flag, ParseFlag(seccomp.flags[i], absl::StrCat("flags[", i, "]")));
    program.flags |= flag;
  }
  ASSIGN_OR_RETURN(uint32_t default_action,
                   ParseAction(seccomp.default_action, seccomp.default_errno_ret, "defaultAction"));

  SeccompCtx ctx(seccomp_init(default_action));
  if (ctx == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("seccomp: libseccomp refused default action \"",
                                                   seccomp.default_action, "\""));
  }
  // no_new_privs is set by SetNoNewPrivileges when the spec asks for it, and LoadSeccomp loads
  // the program with the spec's flags, so libseccomp's load-time attributes must not add to it.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) return SeccompCallError(rc, "clearing SCMP_FLTATR_CTL_NNP");
  rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 0);
  if (rc < 0) return SeccompCallError(rc, "clearing SCMP_FLTATR_CTL_TSYNC");

  for (size_t i = 0; i < seccomp.architectures.size(); ++i) {
    std::string path = absl::StrCat("architectures[", i, "]");
    ASSIGN_OR_RETURN(uint32_t arch, ParseArchitecture(seccomp.architectures[i], path));
    rc = seccomp_arch_add(ctx.get(), arch);
    // The native architecture is already in a new filter.
    if (rc < 0 && rc != -EEXIST) {
      return SeccompCallError(
          rc, absl::StrCat(path, ": adding architecture \"", seccomp.architectures[i], "\""));
    }
  }

  for (size_t i = 0; i < seccomp.syscalls.size(); ++i) {
    const SeccompSyscall& syscall = seccomp.syscalls[i];
    std::string path = absl::StrCat("syscalls[", i, "]");
    ASSIGN_OR_RETURN(uint32_t action,
                     ParseAction(syscall.action, syscall.errno_ret, absl::StrCat(path, ".action")));
    RETURN_IF_ERROR(AddSyscallRule(ctx.get(), syscall, action, default_action, path));
  }

  ASSIGN_OR_RETURN(program.instructions, ExportBpf(ctx.get()));
  if (program.instructions.size() > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(
        absl::StrCat("seccomp: the filter compiles to ", program.instructions.size(),
                     " instructions, more than the kernel's limit of ", BPF_MAXINSNS));
  }
  return program;
}

absl::Status LoadSeccomp(const SeccompProgram& program) {
  if (program.instructions.empty()) {
    return absl::InvalidArgumentError("seccomp: empty filter program");
  }
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.instructions.size());
  // The kernel copies the program and never writes to it.
  prog.filter = const_cast<sock_filter*>(program.instructions.data());
  long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, program.flags, &prog);
  if (rc < 0) return LastErrnoError("seccomp(SECCOMP_SET_MODE_FILTER)");
  // With SECCOMP_FILTER_FLAG_TSYNC, a positive result is the id of a thread that could not be
  // synchronized.
  if (rc > 0) {
    return absl::FailedPreconditionError(absl::StrCat("seccomp(SECCOMP_SET_MODE_FILTER): thread ",
                                                      rc, " could not be synchronized (TSYNC)"));
  }
  return absl::OkStatus();
}

absl::Status ApplyRlimits(const std::vector<Rlimit>& rlimits) {
  for (const Rlimit& limit : rlimits) {
    rlimit value{};
    value.rlim_cur = limit.soft;
    value.rlim_max = limit.hard;
    if (setrlimit(limit.resource, &value) != 0) {
      int err = errno;
      std::string name = limit.name.empty() ? absl::StrCat("rlimit ", limit.resource) : limit.name;
      return ErrnoError(
          err, absl::StrCat("setrlimit ", name, " (soft ", limit.soft, ", hard ", limit.hard, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status DropBoundingSet(const Capabilities& caps) {
  uint64_t keep = 0;
  for (int cap : caps.bounding) {
    if (cap >= 0 && cap < 64) keep |= uint64_t{1} << cap;
  }
  int last = LastCapability();
  for (int cap = 0; cap <= last && cap < 64; ++cap) {
    if (keep & (uint64_t{1} << cap)) continue;
    int present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    // EINVAL: a capability this kernel does not know; 0: already gone (dropping it again would
    // still need CAP_SETPCAP).
    if (present <= 0) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      int err = errno;
      if (err == EINVAL) continue;
      return ErrnoError(err,
                        absl::StrCat("dropping ", CapabilityName(cap), " from the bounding set"));
    }
  }
  return absl::OkStatus();
}

absl::Status SetUser(const User& user) {
  // Keep the permitted set across the switch away from uid 0; ApplyCapabilities sets the final
  // sets afterwards.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return LastErrnoError("prctl(PR_SET_KEEPCAPS, 1)");
  // Raw syscalls: glibc's wrappers broadcast the change to every thread with signals, which is
  // not safe in a child made with clone(2); this thread is the only one anyway.
  if (!user.additional_gids.empty() || SetgroupsAllowed()) {
    if (syscall(kSysSetgroups, user.additional_gids.size(), user.additional_gids.data()) != 0) {
      int err = errno;
      return ErrnoError(err,
                        absl::StrCat("setgroups [", absl::StrJoin(user.additional_gids, " "), "]"));
    }
  }
  if (syscall(kSysSetresgid, user.gid, user.gid, user.gid) != 0) {
    int err = errno;
    return ErrnoError(err, absl::StrCat("setresgid ", user.gid));
  }
  if (syscall(kSysSetresuid, user.uid, user.uid, user.uid) != 0) {
    int err = errno;
    return ErrnoError(err, absl::StrCat("setresuid ", user.uid));
  }
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return LastErrnoError("prctl(PR_SET_KEEPCAPS, 0)");
  return absl::OkStatus();
}

absl::Status ApplyCapabilities(const Capabilities& caps) {
  // capset(2) directly rather than libcap's cap_init/cap_set_proc: those allocate, and this runs
  // in a child made with clone(2) where malloc's locks may be held by a thread that was not
  // copied.
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  struct Set {
    const std::vector<int>* caps;
    __u32 __user_cap_data_struct::*field;
  };
  const Set sets[] = {{&caps.effective, &__user_cap_data_struct::effective},
                      {&caps.permitted, &__user_cap_data_struct::permitted},
                      {&caps.inheritable, &__user_cap_data_struct::inheritable}};
  for (const Set& set : sets) {
    for (int cap : *set.caps) {
      if (cap < 0 || cap >= 32 * _LINUX_CAPABILITY_U32S_3) {
        return absl::InvalidArgumentError(
            absl::StrCat("capset: capability ", cap, " is out of range"));
      }
      data[cap / 32].*set.field |= __u32{1} << (cap % 32);
    }
  }
  if (syscall(SYS_capset, &header, data) != 0) return LastErrnoError("capset");

  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    // EINVAL: a kernel before 4.3 has no ambient set; fine as long as none is asked for.
    if (errno != EINVAL || !caps.ambient.empty()) {
      return LastErrnoError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
    }
  }
  for (int cap : caps.ambient) {
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      int err = errno;
      // The kernel raises only capabilities that are both permitted and inheritable. runc's
      // own default spec lists ambient capabilities without inheritable ones and runc skips
      // them: so do we.
      if (err == EPERM) continue;
      return ErrnoError(err, absl::StrCat("raising ambient capability ", CapabilityName(cap)));
    }
  }
  return absl::OkStatus();
}

absl::Status SetNoNewPrivileges() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return LastErrnoError("prctl(PR_SET_NO_NEW_PRIVS)");
  return absl::OkStatus();
}

absl::Status SetOomScoreAdj(int value, std::string* warning) {
  constexpr const char* kPath = "/proc/self/oom_score_adj";
  if (warning != nullptr) warning->clear();
  char buf[32];
  auto write_value = [&](int v) {
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;  // an int always fits
    return WriteSmallFile(kPath, buf, end - buf);
  };
  if (write_value(value) == 0) return absl::OkStatus();
  int refused_errno = errno;
  if (refused_errno != EACCES && refused_errno != EPERM) {
    return ErrnoError(refused_errno, absl::StrCat("writing ", value, " to ", kPath));
  }
  // Lowering the value below the process's minimum needs CAP_SYS_RESOURCE (which a runtime in a
  // container may lack even as root). Keep the current value rather than failing the container.
  char current_buf[32];
  ssize_t n = ReadSmallFile(kPath, current_buf, sizeof current_buf);
  if (n < 0) {
    int err = errno;
    return ErrnoError(err, absl::StrCat("reading ", kPath));
  }
  int current = 0;
  const char* begin = current_buf;
  while (*begin == ' ') ++begin;
  auto [ptr, ec] = std::from_chars(begin, current_buf + n, current);
  if (ec != std::errc()) {
    return absl::InternalError(absl::StrCat(kPath, ": not a number: \"", current_buf, "\""));
  }
  int kept = std::max(value, current);
  if (kept == value)
    return ErrnoError(refused_errno, absl::StrCat("writing ", value, " to ", kPath));
  if (write_value(kept) != 0) {
    int err = errno;
    return ErrnoError(err, absl::StrCat("writing ", kept, " to ", kPath));
  }
  if (warning != nullptr) {
    *warning =
        absl::StrCat("oom_score_adj ", value,
                     " refused by the kernel (lowering it needs CAP_SYS_RESOURCE); kept ", kept);
  }
  return absl::OkStatus();
}

}  // namespace berth::runtime

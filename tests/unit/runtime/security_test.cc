#include "runtime/security.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

// Every behaviour that changes the process runs in a forked child, so the test process keeps
// its filter, ids and capabilities. The child reports the first failed check on stderr and
// exits 1; 0 means every check passed.
#define CHILD_CHECK(cond)                                                            \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: child check failed: %s\n", __FILE__, __LINE__, #cond); \
      _exit(1);                                                                      \
    }                                                                                \
  } while (0)

#define CHILD_OK(expr)                                              \
  do {                                                              \
    absl::Status child_status_ = (expr);                            \
    if (!child_status_.ok()) {                                      \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
              child_status_.ToString().c_str());                    \
      _exit(1);                                                     \
    }                                                               \
  } while (0)

// Runs `body` in a forked child that exits 0 when it returns; returns the wait status.
int RunInChild(const std::function<void()>& body) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

void ExpectChildPassed(int status) {
  ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A /proc/self/status field parsed as hex ("CapEff"), or ~0 when missing.
uint64_t StatusHex(const std::string& field) {
  absl::StatusOr<std::string> status = ReadFile("/proc/self/status");
  if (!status.ok()) return ~uint64_t{0};
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(":\t", 1));
    uint64_t value = 0;
    if (parts.size() == 2 && parts[0] == field && absl::SimpleHexAtoi(parts[1], &value)) {
      return value;
    }
  }
  return ~uint64_t{0};
}

uint64_t Bit(int cap) {
  return uint64_t{1} << cap;
}

SeccompSyscall Rule(std::vector<std::string> names, std::string action,
                    std::optional<uint32_t> errno_ret = std::nullopt,
                    std::vector<SeccompArg> args = {}) {
  SeccompSyscall rule;
  rule.names = std::move(names);
  rule.action = std::move(action);
  rule.errno_ret = errno_ret;
  rule.args = std::move(args);
  return rule;
}

Seccomp AllowAllBut(std::vector<SeccompSyscall> rules) {
  Seccomp seccomp;
  seccomp.default_action = "SCMP_ACT_ALLOW";
  seccomp.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  seccomp.syscalls = std::move(rules);
  return seccomp;
}

void LoadInChild(const SeccompProgram& program) {
  CHILD_OK(SetNoNewPrivileges());
  CHILD_OK(LoadSeccomp(program));
}

TEST(SeccompTest, ErrnoRuleBlocksOnlyTheListedSyscall) {
  absl::StatusOr<SeccompProgram> program =
      PrepareSeccomp(AllowAllBut({Rule({"uname"}, "SCMP_ACT_ERRNO", ENOSYS)}));
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_FALSE(program->instructions.empty());
  EXPECT_EQ(program->flags, 0u);
  ExpectChildPassed(RunInChild([&] {
    LoadInChild(*program);
    utsname u;
    errno = 0;
    CHILD_CHECK(uname(&u) == -1 && errno == ENOSYS);
    CHILD_CHECK(getpid() > 0);
    CHILD_CHECK(access("/", F_OK) == 0);
  }));
}

TEST(SeccompTest, DefaultErrnoIsEperm) {
  absl::StatusOr<SeccompProgram> program =
      PrepareSeccomp(AllowAllBut({Rule({"uname"}, "SCMP_ACT_ERRNO")}));
  ASSERT_TRUE(program.ok()) << program.status();
  ExpectChildPassed(RunInChild([&] {
    LoadInChild(*program);
    utsname u;
    errno = 0;
    CHILD_CHECK(uname(&u) == -1 && errno == EPERM);
  }));
}

TEST(SeccompTest, ArgumentConditionBlocksOnlyMatchingCalls) {
  SeccompArg query;
  query.index = 0;
  query.value = 0xffffffff;
  query.op = "SCMP_CMP_EQ";
  absl::StatusOr<SeccompProgram> program =
      PrepareSeccomp(AllowAllBut({Rule({"personality"}, "SCMP_ACT_ERRNO", ENOSYS, {query})}));
  ASSERT_TRUE(program.ok()) << program.status();
  ExpectChildPassed(RunInChild([&] {
    int current = personality(0xffffffff);
    CHILD_CHECK(current != -1);
    LoadInChild(*program);
    errno = 0;
    CHILD_CHECK(personality(0xffffffff) == -1 && errno == ENOSYS);
    CHILD_CHECK(personality(current) == current);
  }));
}

TEST(SeccompTest, ConditionsOnTheSameArgumentAreAlternatives) {
  // As runc: two conditions on one argument become two rules, so either one matches.
  SeccompArg query{0, 0xffffffff, 0, "SCMP_CMP_EQ"};
  SeccompArg linux32{0, PER_LINUX32, 0, "SCMP_CMP_EQ"};
  absl::StatusOr<SeccompProgram> program = PrepareSeccomp(
      AllowAllBut({Rule({"personality"}, "SCMP_ACT_ERRNO", ENOSYS, {query, linux32})}));
  ASSERT_TRUE(program.ok()) << program.status();
  ExpectChildPassed(RunInChild([&] {
    int current = personality(0xffffffff);
    CHILD_CHECK(current != -1 && current != PER_LINUX32);
    LoadInChild(*program);
    errno = 0;
    CHILD_CHECK(personality(0xffffffff) == -1 && errno == ENOSYS);
    errno = 0;
    CHILD_CHECK(personality(PER_LINUX32) == -1 && errno == ENOSYS);
    CHILD_CHECK(personality(current) == current);
  }));
}

TEST(SeccompTest, MaskedEqualUsesValueAsMask) {
  // Block personality when (arg0 & 0xff00) == 0x0100: 0x0100 and 0x01ff match, 0 does not.
  SeccompArg masked{0, 0xff00, 0x0100, "SCMP_CMP_MASKED_EQ"};
  absl::StatusOr<SeccompProgram> program =
      PrepareSeccomp(AllowAllBut({Rule({"personality"}, "SCMP_ACT_ERRNO", ENOSYS, {masked})}));
  ASSERT_TRUE(program.ok()) << program.status();
  ExpectChildPassed(RunInChild([&] {
    LoadInChild(*program);
    errno = 0;
    CHILD_CHECK(personality(0x01ff) == -1 && errno == ENOSYS);
    CHILD_CHECK(personality(PER_LINUX) != -1);
  }));
}

TEST(SeccompTest, KillProcessKillsWithSigsys) {
  absl::StatusOr<SeccompProgram> program =
      PrepareSeccomp(AllowAllBut({Rule({"getppid"}, "SCMP_ACT_KILL_PROCESS")}));
  ASSERT_TRUE(program.ok()) << program.status();
  int status = RunInChild([&] {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    LoadInChild(*program);
    syscall(SYS_getppid);
    _exit(3);
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "wait status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompTest, UnknownSyscallNamesAreSkipped) {
  absl::StatusOr<SeccompProgram> program = PrepareSeccomp(AllowAllBut({
      Rule({"berth_no_such_syscall"}, "SCMP_ACT_ERRNO"),
      Rule({"berth_no_such_syscall", "uname"}, "SCMP_ACT_ERRNO", ENOSYS),
  }));
  ASSERT_TRUE(program.ok()) << program.status();
  ExpectChildPassed(RunInChild([&] {
    LoadInChild(*program);
    utsname u;
    errno = 0;
    CHILD_CHECK(uname(&u) == -1 && errno == ENOSYS);
  }));
}

TEST(SeccompTest, RuleWithTheDefaultActionIsSkipped) {
  absl::StatusOr<SeccompProgram> program =
      PrepareSeccomp(AllowAllBut({Rule({"uname", "getpid"}, "SCMP_ACT_ALLOW")}));
  EXPECT_TRUE(program.ok()) << program.status();
}

TEST(SeccompTest, DefaultErrnoActionCarriesErrnoRet) {
  Seccomp seccomp = AllowAllBut({Rule({"read", "write", "exit_group"}, "SCMP_ACT_ALLOW")});
  seccomp.default_action = "SCMP_ACT_ERRNO";
  seccomp.default_errno_ret = EACCES;
  absl::StatusOr<SeccompProgram> program = PrepareSeccomp(seccomp);
  ASSERT_TRUE(program.ok()) << program.status();
  bool found = false;
  for (const sock_filter& insn : program->instructions) {
    if (insn.code == (BPF_RET | BPF_K) && insn.k == (SECCOMP_RET_ERRNO | EACCES)) found = true;
  }
  EXPECT_TRUE(found);
}

TEST(SeccompTest, ArchitecturesAndFlags) {
  Seccomp seccomp = AllowAllBut({Rule({"uname"}, "SCMP_ACT_LOG")});
  seccomp.architectures = {"SCMP_ARCH_X86_64",  "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                           "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_RISCV64"};
  seccomp.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"};
  absl::StatusOr<SeccompProgram> program = PrepareSeccomp(seccomp);
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(program->flags, unsigned{SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG});
  ExpectChildPassed(RunInChild([&] {
    LoadInChild(*program);
    utsname u;
    CHILD_CHECK(uname(&u) == 0);
  }));

  seccomp.flags = {"SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  program = PrepareSeccomp(seccomp);
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(program->flags, unsigned{SECCOMP_FILTER_FLAG_SPEC_ALLOW});
}

TEST(SeccompTest, EveryActionCompiles) {
  for (const char* action : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
                             "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_ERRNO", "SCMP_ACT_LOG"}) {
    absl::StatusOr<SeccompProgram> program = PrepareSeccomp(AllowAllBut({Rule({"uname"}, action)}));
    EXPECT_TRUE(program.ok()) << action << ": " << program.status();
  }
}

void ExpectRefused(const Seccomp& seccomp, absl::StatusCode code, const std::string& message) {
  absl::StatusOr<SeccompProgram> program = PrepareSeccomp(seccomp);
  ASSERT_FALSE(program.ok()) << message;
  EXPECT_EQ(program.status().code(), code) << program.status();
  EXPECT_NE(program.status().message().find(message), absl::string_view::npos) << program.status();
}

TEST(SeccompTest, RefusesBadInput) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  ExpectRefused(AllowAllBut({Rule({"uname"}, "SCMP_ACT_ERRNO"), Rule({"read"}, "SCMP_ACT_FOO")}),
                kInvalid, "seccomp: syscalls[1].action: unknown action \"SCMP_ACT_FOO\"");

  Seccomp bad_default = AllowAllBut({});
  bad_default.default_action = "ALLOW";
  ExpectRefused(bad_default, kInvalid, "defaultAction: unknown action \"ALLOW\"");

  ExpectRefused(AllowAllBut({Rule({"read"}, "SCMP_ACT_ERRNO", std::nullopt,
                                  {SeccompArg{0, 1, 0, "SCMP_CMP_FOO"}})}),
                kInvalid, "syscalls[0].args[0].op: unknown operator \"SCMP_CMP_FOO\"");
  ExpectRefused(AllowAllBut({Rule({"read"}, "SCMP_ACT_ERRNO", std::nullopt,
                                  {SeccompArg{6, 1, 0, "SCMP_CMP_EQ"}})}),
                kInvalid, "syscalls[0].args[0].index: 6 is out of range");
  ExpectRefused(AllowAllBut({Rule({"read"}, "SCMP_ACT_ERRNO", 70000)}), kInvalid, "errnoRet 70000");

  Seccomp bad_arch = AllowAllBut({});
  bad_arch.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"};
  ExpectRefused(bad_arch, kInvalid, "architectures[1]: unknown architecture \"SCMP_ARCH_VAX\"");
  bad_arch.architectures = {"x86_64"};
  ExpectRefused(bad_arch, kInvalid, "unknown architecture \"x86_64\"");

  Seccomp bad_flag = AllowAllBut({});
  bad_flag.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FOO"};
  ExpectRefused(bad_flag, kInvalid, "flags[1]: unknown flag \"SECCOMP_FILTER_FLAG_FOO\"");

  ExpectRefused(AllowAllBut({Rule({"read"}, "SCMP_ACT_NOTIFY")}), absl::StatusCode::kUnimplemented,
                "syscalls[0].action: SCMP_ACT_NOTIFY");
}

TEST(RlimitTest, AppliesInOrder) {
  ExpectChildPassed(RunInChild([] {
    Rlimit nofile{RLIMIT_NOFILE, "RLIMIT_NOFILE", 100, 200};
    Rlimit nproc{RLIMIT_NPROC, "RLIMIT_NPROC", 50, 60};
    CHILD_OK(ApplyRlimits({nofile, nproc}));
    rlimit got{};
    CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &got) == 0);
    CHILD_CHECK(got.rlim_cur == 100 && got.rlim_max == 200);
    CHILD_CHECK(getrlimit(RLIMIT_NPROC, &got) == 0);
    CHILD_CHECK(got.rlim_cur == 50 && got.rlim_max == 60);
  }));
}

TEST(RlimitTest, ErrorNamesTheLimit) {
  // Soft above hard is refused without changing anything, so this can run in the test process.
  absl::Status status = ApplyRlimits({Rlimit{RLIMIT_NOFILE, "RLIMIT_NOFILE", 300, 200}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("RLIMIT_NOFILE"), absl::string_view::npos) << status;
}

int ReadOomScoreAdj() {
  absl::StatusOr<std::string> text = ReadFile("/proc/self/oom_score_adj");
  int value = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) return -5000;
  return value;
}

TEST(OomScoreAdjTest, RaisesAndClampsARefusedLowering) {
  ExpectChildPassed(RunInChild([] {
    int high = std::max(ReadOomScoreAdj(), 500);
    std::string warning = "stale";
    CHILD_OK(SetOomScoreAdj(high, &warning));
    CHILD_CHECK(warning.empty());
    CHILD_CHECK(ReadOomScoreAdj() == high);

    CHILD_OK(SetOomScoreAdj(-998, &warning));
    int now = ReadOomScoreAdj();
    if (now == -998) {
      // Allowed: CAP_SYS_RESOURCE (or a minimum already at or below -998).
      CHILD_CHECK(warning.empty());
    } else {
      CHILD_CHECK(now == high);
      CHILD_CHECK(warning.find("-998") != std::string::npos);
      CHILD_CHECK(warning.find("kept " + std::to_string(high)) != std::string::npos);
    }
  }));
}

TEST(OomScoreAdjTest, RefusesOutOfRange) {
  std::string warning;
  absl::Status status = SetOomScoreAdj(5000, &warning);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

TEST(CapabilitiesTest, AmbientNotInheritableIsSkippedAsRuncDoes) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ExpectChildPassed(RunInChild([] {
    // runc's default spec lists ambient capabilities that are not inheritable; the kernel
    // refuses to raise those (EPERM) and runc goes on without them. So does berth.
    Capabilities caps;
    caps.permitted = caps.effective = {CAP_KILL};
    caps.ambient = {CAP_KILL};
    absl::Status status = ApplyCapabilities(caps);
    CHILD_CHECK(status.ok());
    CHILD_CHECK(StatusHex("CapAmb") == 0);
    CHILD_CHECK(StatusHex("CapEff") == (uint64_t{1} << CAP_KILL));
  }));
}

TEST(CapabilitiesTest, AmbientRaisedWhenPermittedAndInheritable) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ExpectChildPassed(RunInChild([] {
    Capabilities caps;
    caps.permitted = caps.effective = caps.inheritable = caps.ambient = {CAP_KILL};
    CHILD_CHECK(ApplyCapabilities(caps).ok());
    CHILD_CHECK(StatusHex("CapAmb") == (uint64_t{1} << CAP_KILL));
  }));
}

TEST(SecurityAsRootTest, SetUserChangesIdsAndGroups) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ExpectChildPassed(RunInChild([] {
    User user;
    user.uid = 1000;
    user.gid = 1000;
    user.additional_gids = {1001, 1002};
    CHILD_OK(SetUser(user));
    uid_t r, e, s;
    CHILD_CHECK(getresuid(&r, &e, &s) == 0 && r == 1000 && e == 1000 && s == 1000);
    gid_t gr, ge, gs;
    CHILD_CHECK(getresgid(&gr, &ge, &gs) == 0 && gr == 1000 && ge == 1000 && gs == 1000);
    gid_t groups[8];
    int n = getgroups(8, groups);
    CHILD_CHECK(n == 2 && groups[0] == 1001 && groups[1] == 1002);
    // PR_SET_KEEPCAPS kept the permitted set for ApplyCapabilities; the effective one is gone.
    CHILD_CHECK(StatusHex("CapPrm") != 0);
    CHILD_CHECK(StatusHex("CapEff") == 0);
  }));
  ExpectChildPassed(RunInChild([] {
    CHILD_OK(SetUser(User{.uid = 1000, .gid = 1000}));
    CHILD_CHECK(getgroups(0, nullptr) == 0);
  }));
}

TEST(SecurityAsRootTest, CapabilitySets) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ExpectChildPassed(RunInChild([] {
    Capabilities caps;
    caps.bounding = {CAP_CHOWN, CAP_NET_BIND_SERVICE};
    caps.effective = {CAP_NET_BIND_SERVICE};
    caps.permitted = {CAP_CHOWN, CAP_NET_BIND_SERVICE};
    caps.inheritable = {CAP_NET_BIND_SERVICE};
    caps.ambient = {CAP_NET_BIND_SERVICE};
    CHILD_OK(DropBoundingSet(caps));
    CHILD_CHECK(StatusHex("CapBnd") == (Bit(CAP_CHOWN) | Bit(CAP_NET_BIND_SERVICE)));
    CHILD_OK(ApplyCapabilities(caps));
    CHILD_CHECK(StatusHex("CapEff") == Bit(CAP_NET_BIND_SERVICE));
    CHILD_CHECK(StatusHex("CapPrm") == (Bit(CAP_CHOWN) | Bit(CAP_NET_BIND_SERVICE)));
    CHILD_CHECK(StatusHex("CapInh") == Bit(CAP_NET_BIND_SERVICE));
    CHILD_CHECK(StatusHex("CapAmb") == Bit(CAP_NET_BIND_SERVICE));
    CHILD_CHECK(StatusHex("CapBnd") == (Bit(CAP_CHOWN) | Bit(CAP_NET_BIND_SERVICE)));
  }));
}

TEST(SecurityAsRootTest, InitSequenceAsAnUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  // The order a container's init uses: bounding set while CAP_SETPCAP is there, then the user,
  // then the final sets, then no_new_privs and the filter.
  absl::StatusOr<SeccompProgram> program =
      PrepareSeccomp(AllowAllBut({Rule({"uname"}, "SCMP_ACT_ERRNO", ENOSYS)}));
  ASSERT_TRUE(program.ok()) << program.status();
  ExpectChildPassed(RunInChild([&] {
    Capabilities caps;
    caps.bounding = caps.effective = caps.permitted = caps.inheritable =
        caps.ambient = {CAP_NET_BIND_SERVICE, CAP_KILL};
    CHILD_OK(DropBoundingSet(caps));
    CHILD_OK(SetUser(User{.uid = 1000, .gid = 1000, .additional_gids = {1000}}));
    CHILD_OK(ApplyCapabilities(caps));
    CHILD_OK(SetNoNewPrivileges());
    CHILD_OK(LoadSeccomp(*program));
    uint64_t want = Bit(CAP_NET_BIND_SERVICE) | Bit(CAP_KILL);
    CHILD_CHECK(getuid() == 1000 && getgid() == 1000);
    CHILD_CHECK(StatusHex("CapEff") == want && StatusHex("CapPrm") == want);
    CHILD_CHECK(StatusHex("CapAmb") == want && StatusHex("CapBnd") == want);
    CHILD_CHECK(StatusHex("NoNewPrivs") == 1);
    utsname u;
    errno = 0;
    CHILD_CHECK(uname(&u) == -1 && errno == ENOSYS);
  }));
}

TEST(SecurityAsRootTest, DropBoundingSetKeepsOnlyTheListed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  ExpectChildPassed(RunInChild([] {
    Capabilities caps;
    CHILD_OK(DropBoundingSet(caps));
    CHILD_CHECK(StatusHex("CapBnd") == 0);
    // Nothing is left to drop, so a second call needs no CAP_SETPCAP and succeeds.
    CHILD_OK(DropBoundingSet(caps));
  }));
}

}  // namespace
}  // namespace berth::runtime

// The cgroup v2 driver on a pure cgroup v2 kernel. This host is hybrid, so it runs in the
// cg2vm guest (tests/cg2/run-v2-tests.sh). Everything happens under a parent cgroup the test
// creates ("berth-test-<pid>") and removes; no other cgroup is touched.
//
// On a host that is not unified it fails, unless given --allow-non-v2: then it prints why and
// exits 0 without running anything.
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "cgroups/cgroup.h"
#include "cgroups/fs.h"
#include "gtest/gtest.h"
#include "tests/integration/forked_child.h"

namespace berth::cgroups {
namespace {

constexpr char kRoot[] = "/sys/fs/cgroup";

// Runs before any test (gtest_main gives no hook on argv: it is read from /proc/self/cmdline).
class V2HostCheck : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<Mode> mode = DetectMode(kRoot);
    if (mode.ok() && *mode == Mode::kUnified) return;
    bool allow = false;
    if (absl::StatusOr<std::string> cmdline = ReadFile("/proc/self/cmdline"); cmdline.ok()) {
      allow = absl::StrContains(*cmdline, std::string("--allow-non-v2\0", 15));
    }
    std::string why = mode.ok() ? absl::StrCat("mode ", ModeName(*mode)) : mode.status().ToString();
    if (allow) {
      std::printf("not a cgroup v2 host; run it in the guest (%s): nothing run\n", why.c_str());
      std::fflush(stdout);
      std::_Exit(0);
    }
    GTEST_FAIL() << "not a cgroup v2 host; run it in the guest (tests/cg2/run-v2-tests.sh): "
                 << why;
  }
};
const ::testing::Environment* const kCheck = ::testing::AddGlobalTestEnvironment(new V2HostCheck);

using Child = berth::testing::ForkedChild;

class CgroupV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Manager>> m = NewManager();
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ((*m)->mode(), Mode::kUnified) << "this test is for cgroup v2 hosts";
    manager_ = std::move(*m);
    parent_ = absl::StrCat("berth-test-", ::getpid());
    dir_ = absl::StrCat(kRoot, "/", parent_, "/c");
  }
  void TearDown() override {
    if (!manager_) return;
    for (const std::string& p : {absl::StrCat(parent_, "/c"), parent_}) {
      absl::StatusOr<std::unique_ptr<Cgroup>> cg = manager_->Load(p);
      if (!cg.ok()) continue;
      (void)(*cg)->Kill(SIGKILL);
      absl::Status st = (*cg)->Remove(absl::Seconds(10));
      EXPECT_TRUE(st.ok()) << p << ": " << st;
    }
    struct stat st;
    EXPECT_NE(::stat(absl::StrCat(kRoot, "/", parent_).c_str(), &st), 0) << "left behind";
  }
  std::unique_ptr<Cgroup> Make(const Resources& r) {
    absl::StatusOr<std::unique_ptr<Cgroup>> cg = manager_->Create(absl::StrCat(parent_, "/c"), r);
    EXPECT_TRUE(cg.ok()) << cg.status();
    return cg.ok() ? std::move(*cg) : nullptr;
  }
  std::string Read(absl::string_view file) {
    absl::StatusOr<std::string> s = ReadControl(dir_, file);
    return s.ok() ? *s : s.status().ToString();
  }
  std::unique_ptr<Manager> manager_;
  std::string parent_, dir_;
};

TEST_F(CgroupV2Test, CreateEnablesControllersInTheParents) {
  Resources r;
  r.cpu.cpus = "0";
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  std::string parent = *ReadControl(absl::StrCat(kRoot, "/", parent_), "cgroup.subtree_control");
  for (const char* c : {"cpu", "memory", "pids", "io", "cpuset"}) {
    EXPECT_TRUE(absl::StrContains(parent, c)) << c << " not in " << parent;
  }
  std::string controllers = Read("cgroup.controllers");
  EXPECT_TRUE(absl::StrContains(controllers, "cpuset")) << controllers;
  // The leaf enables nothing.
  EXPECT_EQ(absl::StripAsciiWhitespace(Read("cgroup.subtree_control")), "");
  // A second Create of the same path is fine and adds nothing.
  EXPECT_TRUE(manager_->Create(absl::StrCat(parent_, "/c"), Resources{}).ok());
  EXPECT_EQ(manager_->Load("no-such-berth-cgroup").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CgroupV2Test, MemoryLimitOomKillsAndIsCounted) {
  Resources r;
  r.memory.limit = 32 << 20;
  r.memory.swap = 32 << 20;  // memory+swap == memory: no swap
  r.memory.reservation = 8 << 20;
  r.memory.swappiness = 10;  // no v2 file: ignored
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  EXPECT_EQ(Read("memory.max"), "33554432\n");
  EXPECT_EQ(Read("memory.low"), "8388608\n");
  if (ControlExists(dir_, "memory.swap.max")) {
    EXPECT_EQ(Read("memory.swap.max"), "0\n");
  }
  Child child([] {
    size_t size = 256 << 20;
    char* p = static_cast<char*>(
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t i = 0; i < size; i += 4096) p[i] = 1;
    return 0;
  });
  absl::StatusOr<std::unique_ptr<OomWatcher>> watcher = cg->WatchOom();
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  int st = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st;
  // The OOM kill is delivered as an event, not only counted.
  struct pollfd pfd = {(*watcher)->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "no OOM event within 10 s";
  absl::StatusOr<uint64_t> kills = (*watcher)->Consume();
  ASSERT_TRUE(kills.ok()) << kills.status();
  EXPECT_GE(*kills, 1u);
  absl::StatusOr<Stats> s = cg->GetStats();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GE(s->memory.oom_kills, 1u) << Read("memory.events");
  EXPECT_GE(s->memory.oom_events, 1u);
  EXPECT_EQ(s->memory.limit, 32u << 20);
}

TEST_F(CgroupV2Test, PidsLimitMakesForksFail) {
  Resources r;
  r.pids_limit = 4;
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  EXPECT_EQ(Read("pids.max"), "4\n");
  Child child([] {
    int failed = 0;
    for (int i = 0; i < 10; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
        ::_exit(0);
      }
      if (p < 0 && errno == EAGAIN) ++failed;
    }
    return failed;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  absl::StatusOr<Stats> s0 = cg->GetStats();
  ASSERT_TRUE(s0.ok());
  EXPECT_EQ(s0->pids.limit, 4u);
  EXPECT_EQ(s0->pids.current, 1u);
  child.Go();
  // Wait for the child to be done forking (3 forks succeed, 7 fail), slow under emulation.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    auto kv = ReadKeyValues(dir_, "pids.events");
    if (kv.ok() && (*kv)["max"] >= 7) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::StatusOr<std::vector<pid_t>> procs = cg->Processes();
  ASSERT_TRUE(procs.ok());
  EXPECT_LE(procs->size(), 4u);
  EXPECT_GE((*ReadKeyValues(dir_, "pids.events"))["max"], 7u);
  ASSERT_TRUE(cg->Kill(SIGKILL).ok());
  int st = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) >= 6)) << st;
  EXPECT_TRUE(cg->Processes()->empty());
}

TEST_F(CgroupV2Test, CpuMaxThrottles) {
  Resources r;
  r.cpu.shares = 512;
  r.cpu.period = 100000;
  r.cpu.quota = 10000;  // 10% of one CPU
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  EXPECT_EQ(Read("cpu.max"), "10000 100000\n");
  EXPECT_EQ(Read("cpu.weight"), absl::StrCat(SharesToWeight(512), "\n"));
  Child child([] {
    absl::Time end = absl::Now() + absl::Milliseconds(500);
    volatile uint64_t x = 0;
    while (absl::Now() < end) x = x + 1;
    return 0;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  child.Wait();
  absl::StatusOr<Stats> s = cg->GetStats();
  ASSERT_TRUE(s.ok());
  EXPECT_GT(s->cpu.throttled_periods, 0u);
  EXPECT_GT(s->cpu.throttled_ns, 0u);
  EXPECT_GT(s->cpu.periods, 0u);
  EXPECT_GT(s->cpu.usage_ns, 0u);
  EXPECT_LT(s->cpu.usage_ns, 300'000'000u);  // ~50 ms allowed in 500 ms, with slack
}

TEST_F(CgroupV2Test, CpusetPinsTheProcess) {
  Resources r;
  r.cpu.cpus = "1";
  r.cpu.mems = "0";
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  EXPECT_EQ(Read("cpuset.cpus.effective"), "1\n");
  Child child([] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return 2;
    return (CPU_COUNT(&set) == 1 && CPU_ISSET(1, &set)) ? 0 : 1;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  int st = child.Wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(CgroupV2Test, IoMaxThrottlesTheScratchDiskAndHugetlbIsSet) {
  // tests/cg2/run-v2-tests.sh gives the guest a scratch disk (/dev/vda) for this.
  struct stat dev;
  ASSERT_TRUE(::stat("/dev/vda", &dev) == 0 && S_ISBLK(dev.st_mode))
      << "no scratch disk /dev/vda in the guest (CG2VM_DISK_MB)";
  Resources r;
  r.hugepage_limits["2MB"] = 4 << 20;
  int64_t maj = major(dev.st_rdev), min = minor(dev.st_rdev);
  r.block_io.write_bps = {{.major = maj, .minor = min, .rate = 2 << 20}};
  r.block_io.read_iops = {{.major = maj, .minor = min, .rate = 100}};
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  EXPECT_EQ(Read("hugetlb.2MB.max"), "4194304\n");
  std::string max = Read("io.max");
  EXPECT_TRUE(absl::StrContains(max, "wbps=2097152")) << max;
  EXPECT_TRUE(absl::StrContains(max, "riops=100")) << max;

  // 8 MiB of direct writes at 2 MiB/s take about 4 s (unthrottled: well under a second).
  Child child([] {
    int fd = ::open("/dev/vda", O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) return 2;
    void* buf = nullptr;
    if (::posix_memalign(&buf, 4096, 1 << 20) != 0) return 3;
    std::memset(buf, 0x5a, 1 << 20);
    absl::Time start = absl::Now();
    for (int i = 0; i < 8; ++i) {
      if (::write(fd, buf, 1 << 20) != (1 << 20)) return 4;
    }
    double s = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("8 MiB O_DIRECT under io.max wbps=2MiB/s: %.2f s\n", s);
    return s >= 2.5 ? 0 : 1;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  int st = child.Wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(CgroupV2Test, DeviceFilterIsEnforcedAndReplaced) {
  // Deny everything but /dev/zero: an eBPF program on the cgroup decides.
  Resources r;
  r.devices = {{.allow = false, .type = 'a', .access = "rwm"},
               {.allow = true, .type = 'c', .major = 1, .minor = 5, .access = "rwm"}};
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  auto probe = [] {
    int null_fd = ::open("/dev/null", O_RDONLY);
    int null_errno = errno;
    int zero_fd = ::open("/dev/zero", O_RDONLY);
    if (zero_fd < 0) return 3;
    if (null_fd >= 0) return 1;          // /dev/null allowed
    return null_errno == EPERM ? 0 : 2;  // denied by the filter
  };
  {
    Child child(probe);
    ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
    child.Go();
    int st = child.Wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  }
  // An update replaces the program (not stacked on the old one): /dev/null is allowed now.
  Resources open_all;
  open_all.devices = {{.allow = true, .type = 'a', .access = "rwm"}};
  ASSERT_TRUE(cg->Apply(open_all).ok());
  {
    Child child(probe);
    ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
    child.Go();
    int st = child.Wait();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st;
  }
}

TEST_F(CgroupV2Test, FreezeThawKillAndStats) {
  auto cg = Make(Resources{});
  ASSERT_TRUE(cg);
  // Memory is charged to the cgroup a page is first touched in: the child touches 1 MiB after
  // it was moved, and says so before the stats are read.
  Child child([](int ready) {
    static char buf[1 << 20];
    std::memset(buf, 1, sizeof buf);
    (void)!::write(ready, "r", 1);
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  ASSERT_TRUE(child.WaitReady());
  ASSERT_TRUE(cg->Freeze().ok());
  EXPECT_TRUE(absl::StrContains(Read("cgroup.events"), "frozen 1")) << Read("cgroup.events");
  ASSERT_TRUE(cg->Thaw().ok());
  EXPECT_TRUE(absl::StrContains(Read("cgroup.events"), "frozen 0")) << Read("cgroup.events");
  absl::StatusOr<Stats> s = cg->GetStats();
  ASSERT_TRUE(s.ok());
  EXPECT_GT(s->memory.usage, 0u);
  EXPECT_LE(s->memory.working_set, s->memory.usage);
  EXPECT_EQ(s->memory.limit, UINT64_MAX);
  EXPECT_EQ(s->pids.current, 1u);
  EXPECT_FALSE(s->pids.limit.has_value());
  EXPECT_EQ(*cg->Processes(), std::vector<pid_t>{child.pid()});
  ASSERT_TRUE(cg->Kill(SIGKILL).ok());  // cgroup.kill
  EXPECT_TRUE(absl::StrContains(Read("cgroup.events"), "populated 0")) << Read("cgroup.events");
  int st = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  ASSERT_TRUE(cg->Remove(absl::Seconds(5)).ok());
  EXPECT_TRUE(cg->Remove(absl::Seconds(1)).ok());  // idempotent
  EXPECT_EQ(manager_->Load(absl::StrCat(parent_, "/c")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CgroupV2Test, KillWithAnotherSignalUsesTheFreezer) {
  auto cg = Make(Resources{});
  ASSERT_TRUE(cg);
  Child child([] {
    for (;;) ::pause();
    return 0;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  ASSERT_TRUE(cg->Kill(SIGTERM).ok());
  int st = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) << st;
  EXPECT_TRUE(absl::StrContains(Read("cgroup.events"), "frozen 0")) << Read("cgroup.events");
}

TEST_F(CgroupV2Test, PressureStallInformationIsReported) {
  auto cg = Make(Resources{});
  ASSERT_TRUE(cg);
  Child child([] {
    absl::Time end = absl::Now() + absl::Milliseconds(200);
    volatile uint64_t x = 0;
    while (absl::Now() < end) x = x + 1;
    return 0;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  child.Wait();
  absl::StatusOr<Stats> s = cg->GetStats();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->cpu_pressure.has_value()) << Read("cpu.pressure");
  ASSERT_TRUE(s->memory_pressure.has_value()) << Read("memory.pressure");
  ASSERT_TRUE(s->io_pressure.has_value()) << Read("io.pressure");
  EXPECT_GE(s->cpu_pressure->some.avg10, 0.0);
  std::printf("cpu.pressure some total=%llu us, avg10=%.2f\n",
              static_cast<unsigned long long>(s->cpu_pressure->some.total_us),
              s->cpu_pressure->some.avg10);
}

TEST_F(CgroupV2Test, CloneIntoCgroup) {
  auto cg = Make(Resources{});
  ASSERT_TRUE(cg);
  absl::StatusOr<UniqueFd> fd = cg->OpenDirectory();
  ASSERT_TRUE(fd.ok()) << fd.status();
  const std::string want = absl::StrCat("0::/", parent_, "/c\n");
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(fd->get());
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    // In the cgroup from the first instruction: no AddProcess happened.
    int f = ::open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    char buf[512];
    ssize_t n = f < 0 ? -1 : ::read(f, buf, sizeof buf);
    ::_exit(n > 0 && std::string(buf, static_cast<size_t>(n)) == want ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(static_cast<pid_t>(pid), &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << ", wanted " << want;
}

TEST_F(CgroupV2Test, UnifiedMapIsWrittenThrough) {
  Resources r;
  r.unified["memory.high"] = "67108864";
  r.unified["pids.max"] = "7";
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  EXPECT_EQ(Read("memory.high"), "67108864\n");
  EXPECT_EQ(Read("pids.max"), "7\n");
  Resources missing;
  missing.unified["memory.no_such_file"] = "1";
  absl::Status st = cg->Apply(missing);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(absl::StrContains(st.message(), "memory.no_such_file")) << st;
  Resources runtime;
  runtime.unified["cgroup.procs"] = "1";
  EXPECT_EQ(cg->Apply(runtime).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CgroupV2Test, InvalidValuesNameTheFileAndTheValue) {
  Resources r;
  r.cpu.cpus = "999";  // no such CPU
  absl::StatusOr<std::unique_ptr<Cgroup>> cg = manager_->Create(absl::StrCat(parent_, "/c"), r);
  ASSERT_FALSE(cg.ok());
  EXPECT_TRUE(absl::StrContains(cg.status().message(), "cpuset.cpus")) << cg.status();
  EXPECT_TRUE(absl::StrContains(cg.status().message(), "999")) << cg.status();
  Resources u;
  u.unified["memory.high"] = "lots";
  cg = manager_->Create(absl::StrCat(parent_, "/c"), u);
  ASSERT_FALSE(cg.ok());
  EXPECT_TRUE(absl::StrContains(cg.status().message(), "memory.high")) << cg.status();
  EXPECT_TRUE(absl::StrContains(cg.status().message(), "lots")) << cg.status();
  Resources rt;
  rt.cpu.realtime_runtime = 1000;
  EXPECT_EQ(manager_->Create(absl::StrCat(parent_, "/c"), rt).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::cgroups

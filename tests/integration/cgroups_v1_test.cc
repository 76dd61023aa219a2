// The cgroup v1 driver on this (hybrid) host's real kernel. Everything happens under a parent
// cgroup the test creates ("berth-test-<pid>") and removes; no other cgroup is touched.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "cgroups/cgroup.h"
#include "cgroups/fs.h"
#include "gtest/gtest.h"
#include "tests/integration/forked_child.h"

namespace berth::cgroups {
namespace {

using Child = berth::testing::ForkedChild;

class CgroupV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Manager>> m = NewManager();
    ASSERT_TRUE(m.ok()) << m.status();
    if ((*m)->mode() == Mode::kUnified) GTEST_FAIL() << "this test is for v1/hybrid hosts";
    manager_ = std::move(*m);
    parent_ = absl::StrCat("berth-test-", ::getpid());
  }
  void TearDown() override {
    for (const std::string& p : {absl::StrCat(parent_, "/c"), parent_}) {
      absl::StatusOr<std::unique_ptr<Cgroup>> cg = manager_->Load(p);
      if (!cg.ok()) continue;
      (void)(*cg)->Kill(SIGKILL);
      EXPECT_TRUE((*cg)->Remove(absl::Seconds(5)).ok()) << p;
    }
    for (const std::string& ctrl : manager_->Controllers()) {
      struct stat st;
      EXPECT_NE(::stat(absl::StrCat("/sys/fs/cgroup/", ctrl, "/", parent_).c_str(), &st), 0)
          << "left behind in " << ctrl;
    }
  }
  std::unique_ptr<Cgroup> Make(const Resources& r) {
    absl::StatusOr<std::unique_ptr<Cgroup>> cg = manager_->Create(absl::StrCat(parent_, "/c"), r);
    EXPECT_TRUE(cg.ok()) << cg.status();
    return cg.ok() ? std::move(*cg) : nullptr;
  }
  std::unique_ptr<Manager> manager_;
  std::string parent_;
};

TEST_F(CgroupV1Test, MemoryLimitOomKillsAndIsCounted) {
  Resources r;
  r.memory.limit = 32 << 20;
  r.memory.swap = 32 << 20;  // memory+swap == memory: no swap
  auto cg = Make(r);
  ASSERT_TRUE(cg);
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
  EXPECT_GE(s->memory.oom_kills, 1u);
  EXPECT_EQ(s->memory.limit, 32u << 20);
}

TEST_F(CgroupV1Test, PidsLimitMakesForksFail) {
  Resources r;
  r.pids_limit = 4;
  auto cg = Make(r);
  ASSERT_TRUE(cg);
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
  // The child's forks beyond the limit fail; the ones that worked are killed with the cgroup.
  absl::SleepFor(absl::Milliseconds(200));
  absl::StatusOr<std::vector<pid_t>> procs = cg->Processes();
  ASSERT_TRUE(procs.ok());
  EXPECT_LE(procs->size(), 4u);
  ASSERT_TRUE(cg->Kill(SIGKILL).ok());
  int st = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) >= 6)) << st;
  EXPECT_TRUE(cg->Processes()->empty());
}

TEST_F(CgroupV1Test, CpuQuotaThrottles) {
  Resources r;
  r.cpu.shares = 512;
  r.cpu.period = 100000;
  r.cpu.quota = 10000;  // 10% of one CPU
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  EXPECT_EQ(*ReadControl(absl::StrCat("/sys/fs/cgroup/cpu/", parent_, "/c"), "cpu.cfs_quota_us"),
            "10000\n");
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
  EXPECT_GT(s->cpu.usage_ns, 0u);
  EXPECT_LT(s->cpu.usage_ns, 300'000'000u);  // ~50 ms allowed in 500 ms, with slack
}

TEST_F(CgroupV1Test, CpusetPinsTheProcess) {
  Resources r;
  r.cpu.cpus = "0";
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  Child child([] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return 2;
    return (CPU_COUNT(&set) == 1 && CPU_ISSET(0, &set)) ? 0 : 1;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  int st = child.Wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(CgroupV1Test, DeviceDenyWorks) {
  Resources r;
  r.devices = {
      {.allow = false, .type = 'c', .major = 1, .minor = 3, .access = "rwm"}};  // /dev/null
  auto cg = Make(r);
  ASSERT_TRUE(cg);
  Child child([] {
    int fd = ::open("/dev/null", O_RDONLY);
    if (fd >= 0) return 1;
    int zero = ::open("/dev/zero", O_RDONLY);  // still allowed
    return (errno == EPERM && zero >= 0) ? 0 : 2;
  });
  ASSERT_TRUE(cg->AddProcess(child.pid()).ok());
  child.Go();
  int st = child.Wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(CgroupV1Test, FreezeThawKillAndStats) {
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
  std::string state =
      *ReadControl(absl::StrCat("/sys/fs/cgroup/freezer/", parent_, "/c"), "freezer.state");
  EXPECT_EQ(state, "FROZEN\n");
  ASSERT_TRUE(cg->Thaw().ok());
  absl::StatusOr<Stats> s = cg->GetStats();
  ASSERT_TRUE(s.ok());
  EXPECT_GT(s->memory.usage, 0u);
  EXPECT_LE(s->memory.working_set, s->memory.usage);
  EXPECT_EQ(s->pids.current, 1u);
  EXPECT_EQ(*cg->Processes(), std::vector<pid_t>{child.pid()});
  ASSERT_TRUE(cg->Kill(SIGKILL).ok());
  int st = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  ASSERT_TRUE(cg->Remove(absl::Seconds(5)).ok());
  EXPECT_TRUE(cg->Remove(absl::Seconds(1)).ok());  // idempotent
  EXPECT_EQ(manager_->Load(absl::StrCat(parent_, "/c")).status().code(),
            absl::StatusCode::kNotFound);
}

// A process moves itself in through the "tasks" fds (no pid written, so no threadgroup lock):
// it ends up in the cgroup in every hierarchy.
TEST_F(CgroupV1Test, PlaceSelfMovesTheCallerIntoEveryHierarchy) {
  auto cg = Make(Resources{});
  ASSERT_TRUE(cg);
  absl::StatusOr<std::vector<UniqueFd>> fds = cg->OpenSelfPlacement();
  ASSERT_TRUE(fds.ok()) << fds.status();
  std::vector<int> raw;
  for (const UniqueFd& fd : *fds) raw.push_back(fd.get());
  Child child([raw](int ready) {
    if (!PlaceSelf(raw).ok()) return 1;
    (void)!::write(ready, "r", 1);
    for (;;) ::pause();
    return 0;
  });
  child.Go();
  ASSERT_TRUE(child.WaitReady());
  EXPECT_EQ(*cg->Processes(), std::vector<pid_t>{child.pid()});
  std::string cgroups = *berth::ReadFile(absl::StrCat("/proc/", child.pid(), "/cgroup"));
  // Each "N:ctrl[,ctrl]:/path" line of a controller berth uses names the new cgroup.
  const std::vector<std::string> used = manager_->Controllers();
  for (absl::string_view line : absl::StrSplit(cgroups, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    ASSERT_EQ(f.size(), 3u) << line;
    for (absl::string_view ctrl : absl::StrSplit(f[1], ',')) {
      if (std::find(used.begin(), used.end(), ctrl) == used.end()) continue;
      EXPECT_EQ(f[2], absl::StrCat("/", parent_, "/c")) << line;
    }
  }
  ASSERT_TRUE(cg->Kill(SIGKILL).ok());
  child.Wait();
}

TEST_F(CgroupV1Test, InvalidValuesNameTheFileAndTheValue) {
  Resources r;
  r.cpu.cpus = "999";  // no such CPU
  absl::StatusOr<std::unique_ptr<Cgroup>> cg = manager_->Create(absl::StrCat(parent_, "/c"), r);
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.status().message().find("cpuset.cpus"), std::string::npos) << cg.status();
  EXPECT_NE(cg.status().message().find("999"), std::string::npos) << cg.status();
  Resources u;
  u.unified["memory.high"] = "1G";
  cg = manager_->Create(absl::StrCat(parent_, "/c"), u);
  EXPECT_EQ(cg.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace berth::cgroups

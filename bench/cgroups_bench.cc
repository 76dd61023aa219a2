// cgroup benchmark (issue: cgroups): create + configure (cpu, memory, pids) + place a process
// + remove, N times, median. The process is one long-lived child of this benchmark; between
// runs it goes back to a bench-owned "home" cgroup so the measured one can be removed. Only
// cgroups this program created are touched.
//
//   berth-cgroups-bench [--runs N]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cgroups/cgroup.h"

using berth::cgroups::Cgroup;
using berth::cgroups::Resources;

int main(int argc, char** argv) {
  int runs = 1000;
  if (argc == 3 && std::string(argv[1]) == "--runs") runs = std::max(10, std::atoi(argv[2]));
  auto manager = berth::cgroups::NewManager();
  if (!manager.ok()) {
    std::fprintf(stderr, "%s\n", manager.status().ToString().c_str());
    return 1;
  }
  const std::string base = absl::StrCat("berth-bench-", ::getpid());
  auto home = (*manager)->Create(base + "/home", Resources{});
  if (!home.ok()) {
    std::fprintf(stderr, "%s\n", home.status().ToString().c_str());
    return 1;
  }
  pid_t child = ::fork();
  if (child == 0) {
    for (;;) ::pause();
  }
  (void)(*home)->AddProcess(child);

  Resources r;
  r.cpu.shares = 512;
  r.cpu.period = 100000;
  r.cpu.quota = 50000;
  r.memory.limit = 256 << 20;
  r.pids_limit = 100;
  std::vector<double> ms;
  int rc = 0;
  for (int i = 0; i < runs; ++i) {
    absl::Time t0 = absl::Now();
    auto cg = (*manager)->Create(absl::StrCat(base, "/c"), r);
    absl::Status st = cg.ok() ? (*cg)->AddProcess(child) : cg.status();
    if (st.ok()) st = (*home)->AddProcess(child);
    if (st.ok()) st = (*cg)->Remove(absl::Seconds(5));
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    if (!st.ok()) {
      std::fprintf(stderr, "run %d: %s\n", i, st.ToString().c_str());
      rc = 1;
      break;
    }
  }
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  (void)(*home)->Remove(absl::Seconds(5));
  if (auto b = (*manager)->Load(base); b.ok()) (void)(*b)->Remove(absl::Seconds(5));
  if (rc != 0) return rc;
  std::sort(ms.begin(), ms.end());
  std::printf(
      "cgroup %s: create+configure(cpu,memory,pids)+place+unplace+remove, %zu runs: "
      "median %.3f ms, p10 %.3f ms, p90 %.3f ms\n",
      std::string(berth::cgroups::ModeName((*manager)->mode())).c_str(), ms.size(),
      ms[ms.size() / 2], ms[ms.size() / 10], ms[ms.size() * 9 / 10]);
  return 0;
}

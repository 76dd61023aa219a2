#include "cgroups/v2.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "cgroups/device_filter.h"
#include "cgroups/fs.h"
#include "cgroups/oom.h"

namespace berth::cgroups {

namespace {

// Enabled in every level when the host has them, whether or not the resources use them, so
// that stats and later updates work.
const char* const kDefaultControllers[] = {"cpu", "memory", "pids", "io"};

std::set<std::string> Words(absl::string_view text) {
  std::set<std::string> out;
  for (absl::string_view w : absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    out.emplace(w);
  }
  return out;
}

// v1 blkio weight (10..1000) -> io.weight (1..10000), as runc.
uint64_t BlkioWeightToIoWeight(uint64_t w) {
  if (w < 10) w = 10;
  if (w > 1000) w = 1000;
  return 1 + (w - 10) * 9999 / 990;
}

// The controllers `r` needs: setting them on a host without them is an error.
std::set<std::string> RequiredControllers(const Resources& r) {
  std::set<std::string> out;
  const Resources::Cpu& c = r.cpu;
  if (c.shares || c.quota || c.period || c.idle) out.insert("cpu");
  if (!c.cpus.empty() || !c.mems.empty()) out.insert("cpuset");
  const Resources::Memory& m = r.memory;
  if (m.limit || m.reservation || m.swap) out.insert("memory");
  if (r.pids_limit) out.insert("pids");
  const Resources::BlockIo& b = r.block_io;
  if (b.weight || !b.weight_device.empty() || !b.read_bps.empty() || !b.write_bps.empty() ||
      !b.read_iops.empty() || !b.write_iops.empty()) {
    out.insert("io");
  }
  if (!r.hugepage_limits.empty()) out.insert("hugetlb");
  for (const auto& [key, value] : r.unified) {
    std::string prefix = key.substr(0, key.find('.'));
    if (prefix != "cgroup") out.insert(prefix);
  }
  return out;
}

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull ..." (cpu/memory/io.pressure).
std::optional<Stats::PsiResource> ParsePsi(absl::string_view text) {
  Stats::PsiResource out;
  bool any = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.empty() || (f[0] != "some" && f[0] != "full")) continue;
    Stats::Pressure& p = f[0] == "some" ? out.some : out.full;
    for (size_t i = 1; i < f.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(f[i], '=');
      if (kv.first == "avg10") any |= absl::SimpleAtod(kv.second, &p.avg10);
      if (kv.first == "avg60") any |= absl::SimpleAtod(kv.second, &p.avg60);
      if (kv.first == "avg300") any |= absl::SimpleAtod(kv.second, &p.avg300);
      if (kv.first == "total") any |= absl::SimpleAtoi(kv.second, &p.total_us);
    }
  }
  if (!any) return std::nullopt;
  return out;
}

class V2Cgroup final : public Cgroup {
 public:
  V2Cgroup(std::string path, std::string dir) : path_(std::move(path)), dir_(std::move(dir)) {}

  const std::string& path() const override { return path_; }

  absl::Status AddProcess(pid_t pid) override {
    return WriteControl(dir_, "cgroup.procs", absl::StrCat(pid));
  }

  absl::StatusOr<UniqueFd> OpenDirectory() override {
    UniqueFd fd(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return LastErrnoError(absl::StrCat("open cgroup directory ", dir_));
    return fd;
  }

  absl::StatusOr<std::vector<UniqueFd>> OpenSelfPlacement() override {
    return absl::UnimplementedError("cgroup v2: clone into the cgroup (OpenDirectory)");
  }

  absl::Status Apply(const Resources& r) override {
    RETURN_IF_ERROR(ApplyCpu(r.cpu));
    RETURN_IF_ERROR(ApplyMemory(r.memory));
    if (r.pids_limit) {
      RETURN_IF_ERROR(
          WriteControl(dir_, "pids.max", *r.pids_limit > 0 ? absl::StrCat(*r.pids_limit) : "max"));
    }
    RETURN_IF_ERROR(ApplyIo(r.block_io));
    for (const auto& [size, limit] : r.hugepage_limits) {
      RETURN_IF_ERROR(
          WriteControl(dir_, absl::StrCat("hugetlb.", size, ".max"), absl::StrCat(limit)));
    }
    // v2 has no devices.allow/deny: the rules become an eBPF program on the cgroup.
    if (!r.devices.empty()) {
      ASSIGN_OR_RETURN(UniqueFd dir, OpenDirectory());
      RETURN_IF_ERROR(
          Annotate(AttachDeviceFilter(dir.get(), r.devices), absl::StrCat("cgroup ", dir_)));
    }
    for (const auto& [key, value] : r.unified) {
      RETURN_IF_ERROR(ValidateUnifiedKey(key));
      if (!ControlExists(dir_, key)) {
        return absl::InvalidArgumentError(
            absl::StrCat("unified key \"", key, "\": no such file in cgroup ", dir_,
                         " (controller not enabled or not in this kernel)"));
      }
      RETURN_IF_ERROR(WriteControl(dir_, key, value));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Stats> GetStats() override {
    Stats s;
    ASSIGN_OR_RETURN(auto cpu, ReadKeyValues(dir_, "cpu.stat"));
    s.cpu.usage_ns = cpu["usage_usec"] * 1000;
    s.cpu.user_ns = cpu["user_usec"] * 1000;
    s.cpu.system_ns = cpu["system_usec"] * 1000;
    s.cpu.periods = cpu["nr_periods"];
    s.cpu.throttled_periods = cpu["nr_throttled"];
    s.cpu.throttled_ns = cpu["throttled_usec"] * 1000;
    if (ControlExists(dir_, "memory.current")) {
      ASSIGN_OR_RETURN(s.memory.usage, ReadUint(dir_, "memory.current"));
      ASSIGN_OR_RETURN(s.memory.limit, ReadUint(dir_, "memory.max"));
      ASSIGN_OR_RETURN(auto kv, ReadKeyValues(dir_, "memory.stat"));
      uint64_t inactive = kv["inactive_file"];
      s.memory.working_set = s.memory.usage > inactive ? s.memory.usage - inactive : 0;
      s.memory.rss = kv["anon"];
      s.memory.cache = kv["file"];
      s.memory.page_faults = kv["pgfault"];
      s.memory.major_page_faults = kv["pgmajfault"];
      if (auto swap = ReadUint(dir_, "memory.swap.current"); swap.ok()) s.memory.swap = *swap;
      ASSIGN_OR_RETURN(auto events, ReadKeyValues(dir_, "memory.events"));
      s.memory.oom_events = events["oom"];
      s.memory.oom_kills = events["oom_kill"];
    }
    if (ControlExists(dir_, "pids.current")) {
      ASSIGN_OR_RETURN(s.pids.current, ReadUint(dir_, "pids.current"));
      ASSIGN_OR_RETURN(uint64_t max, ReadUint(dir_, "pids.max"));
      if (max != UINT64_MAX) s.pids.limit = max;
    }
    if (ControlExists(dir_, "io.stat")) {
      ASSIGN_OR_RETURN(std::string text, ReadControl(dir_, "io.stat"));
      for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
        std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
        if (f.empty()) continue;
        std::vector<absl::string_view> mm = absl::StrSplit(f[0], ':');
        Stats::BlockDevice b;
        if (mm.size() != 2 || !absl::SimpleAtoi(mm[0], &b.major) ||
            !absl::SimpleAtoi(mm[1], &b.minor)) {
          continue;
        }
        for (size_t i = 1; i < f.size(); ++i) {
          std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(f[i], '=');
          uint64_t v = 0;
          if (!absl::SimpleAtoi(kv.second, &v)) continue;
          if (kv.first == "rbytes") b.read_bytes = v;
          if (kv.first == "wbytes") b.write_bytes = v;
          if (kv.first == "rios") b.read_ops = v;
          if (kv.first == "wios") b.write_ops = v;
        }
        s.block_io.push_back(b);
      }
    }
    // Absent without CONFIG_PSI, and unreadable (EOPNOTSUPP) when booted with psi=0.
    auto psi = [&](absl::string_view file) -> std::optional<Stats::PsiResource> {
      absl::StatusOr<std::string> text = ReadControl(dir_, file);
      if (!text.ok()) return std::nullopt;
      return ParsePsi(*text);
    };
    s.cpu_pressure = psi("cpu.pressure");
    s.memory_pressure = psi("memory.pressure");
    s.io_pressure = psi("io.pressure");
    return s;
  }

  absl::StatusOr<std::vector<pid_t>> Processes() override { return ProcsOf(dir_); }

  absl::StatusOr<std::unique_ptr<OomWatcher>> WatchOom() override { return WatchOomV2(dir_); }

  absl::Status Freeze() override { return SetFrozen(true); }
  absl::Status Thaw() override { return SetFrozen(false); }

  absl::Status Kill(int signal) override {
    if (signal == SIGKILL && ControlExists(dir_, "cgroup.kill")) {
      RETURN_IF_ERROR(WriteControl(dir_, "cgroup.kill", "1"));
      return WaitEvent("populated", 0, absl::Seconds(10));
    }
    // No cgroup.kill (before 5.14), or another signal: frozen, nothing can fork between
    // reading the lists and signalling them.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      RETURN_IF_ERROR(Freeze());
      size_t seen = 0;
      absl::Status st = SignalTree(dir_, signal, &seen);
      RETURN_IF_ERROR(Thaw());
      RETURN_IF_ERROR(st);
      if (signal != SIGKILL || seen == 0) return absl::OkStatus();
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("cgroup ", path_, " still has processes after SIGKILL"));
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
  }

  absl::Status Remove(absl::Duration timeout) override {
    // EBUSY while still populated (exiting tasks) or with children: retried until the timeout.
    return RemoveCgroupDir(dir_, absl::Now() + timeout);
  }

 private:
  static absl::StatusOr<std::vector<pid_t>> ProcsOf(const std::string& dir) {
    ASSIGN_OR_RETURN(std::string text, ReadControl(dir, "cgroup.procs"));
    std::vector<pid_t> pids;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      pid_t p = 0;
      if (absl::SimpleAtoi(line, &p)) pids.push_back(p);
    }
    return pids;
  }

  // Signals the processes of `dir` and of every cgroup below it.
  absl::Status SignalTree(const std::string& dir, int signal, size_t* seen) {
    absl::StatusOr<std::vector<pid_t>> pids = ProcsOf(dir);
    if (!pids.ok()) {
      if (pids.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
      return pids.status();
    }
    for (pid_t p : *pids) {
      if (::kill(p, signal) != 0 && errno != ESRCH) {
        return LastErrnoError(absl::StrCat("kill ", p, " in cgroup ", dir));
      }
    }
    *seen += pids->size();
    ASSIGN_OR_RETURN(std::vector<std::string> children, Children(dir));
    for (const std::string& c : children) RETURN_IF_ERROR(SignalTree(c, signal, seen));
    return absl::OkStatus();
  }

  static absl::StatusOr<std::vector<std::string>> Children(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return out;
      return LastErrnoError(absl::StrCat("opendir ", dir));
    }
    // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* only this thread uses.
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (e->d_type == DT_DIR && name != "." && name != "..") {
        out.push_back(absl::StrCat(dir, "/", name));
      }
    }
    ::closedir(d);
    return out;
  }

  // Waits until cgroup.events has "<key> <want>": poll(2) wakes on each change of the file,
  // with a short timeout as a fallback.
  absl::Status WaitEvent(absl::string_view key, uint64_t want, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string path = absl::StrCat(dir_, "/cgroup.events");
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return LastErrnoError(absl::StrCat("open ", path));
    for (;;) {
      char buf[512];
      ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
      if (n < 0) return LastErrnoError(absl::StrCat("read ", path));
      std::string text(buf, static_cast<size_t>(n));
      uint64_t got = UINT64_MAX;
      for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
        std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ' ');
        if (kv.first == key) (void)absl::SimpleAtoi(kv.second, &got);
      }
      if (got == want) return absl::OkStatus();
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("cgroup ", path_, ": ", path, " still shows \"", key, " ", got,
                         "\" after ", absl::FormatDuration(timeout), " (waiting for ", want, ")"));
      }
      struct pollfd p = {.fd = fd.get(), .events = POLLPRI, .revents = 0};
      (void)::poll(&p, 1, 10);
    }
  }

  absl::Status SetFrozen(bool frozen) {
    if (!ControlExists(dir_, "cgroup.freeze")) {
      return absl::FailedPreconditionError(
          absl::StrCat("cgroup ", dir_, " has no cgroup.freeze (kernel before 5.2)"));
    }
    RETURN_IF_ERROR(WriteControl(dir_, "cgroup.freeze", frozen ? "1" : "0"));
    return WaitEvent("frozen", frozen ? 1 : 0, absl::Seconds(10));
  }

  absl::Status ApplyCpu(const Resources::Cpu& c) {
    if (c.realtime_runtime || c.realtime_period) {
      return absl::InvalidArgumentError(
          "cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime group scheduling");
    }
    if (c.shares && *c.shares != 0) {
      RETURN_IF_ERROR(WriteControl(dir_, "cpu.weight", absl::StrCat(SharesToWeight(*c.shares))));
    }
    if (c.quota || c.period) {
      RETURN_IF_ERROR(WriteControl(dir_, "cpu.max", CpuMax(c.quota, c.period)));
    }
    if (c.idle) RETURN_IF_ERROR(WriteControl(dir_, "cpu.idle", absl::StrCat(*c.idle)));
    return WriteCpuset(dir_, c.cpus, c.mems);
  }

  // swappiness and disable_oom_killer have no v2 file: ignored, as runc does.
  absl::Status ApplyMemory(const Resources::Memory& m) {
    ASSIGN_OR_RETURN(std::optional<int64_t> swap, SwapForV2(m.swap, m.limit));
    if (swap) {
      if (ControlExists(dir_, "memory.swap.max")) {
        RETURN_IF_ERROR(WriteControl(dir_, "memory.swap.max", LimitValue(*swap)));
      } else if (*swap >= 0) {
        return absl::FailedPreconditionError(
            "memory.swap is set but the kernel has no swap accounting (memory.swap.max)");
      }
    }
    if (m.limit && *m.limit != 0) {
      RETURN_IF_ERROR(WriteControl(dir_, "memory.max", LimitValue(*m.limit)));
    }
    if (m.reservation && *m.reservation != 0) {
      RETURN_IF_ERROR(WriteControl(dir_, "memory.low", LimitValue(*m.reservation)));
    }
    return absl::OkStatus();
  }

  absl::Status ApplyIo(const Resources::BlockIo& b) {
    // leaf_weight has no v2 counterpart: ignored, as runc does.
    if (b.weight || !b.weight_device.empty()) {
      bool cost = ControlExists(dir_, "io.weight");
      std::string file = cost ? "io.weight" : "io.bfq.weight";
      if (!cost && !ControlExists(dir_, file)) {
        return absl::FailedPreconditionError(
            "blkio weight is set but the cgroup has neither io.weight nor io.bfq.weight");
      }
      auto value = [&](uint64_t w) { return cost ? BlkioWeightToIoWeight(w) : w; };
      if (b.weight) {
        RETURN_IF_ERROR(WriteControl(dir_, file, absl::StrCat("default ", value(*b.weight))));
      }
      for (const WeightDevice& w : b.weight_device) {
        if (!w.weight) continue;
        RETURN_IF_ERROR(
            WriteControl(dir_, file, absl::StrCat(w.major, ":", w.minor, " ", value(*w.weight))));
      }
    }
    std::map<std::pair<int64_t, int64_t>, std::vector<std::string>> max;
    for (const auto& [key, list] :
         {std::pair<const char*, const std::vector<ThrottleDevice>*>{"rbps", &b.read_bps},
          {"wbps", &b.write_bps},
          {"riops", &b.read_iops},
          {"wiops", &b.write_iops}}) {
      for (const ThrottleDevice& t : *list) {
        max[{t.major, t.minor}].push_back(
            absl::StrCat(key, "=", t.rate == 0 ? "max" : absl::StrCat(t.rate)));
      }
    }
    for (const auto& [dev, settings] : max) {
      RETURN_IF_ERROR(WriteControl(
          dir_, "io.max",
          absl::StrCat(dev.first, ":", dev.second, " ", absl::StrJoin(settings, " "))));
    }
    return absl::OkStatus();
  }

  std::string path_;
  std::string dir_;
};

}  // namespace

V2Manager::V2Manager(std::string root) : root_(std::move(root)) {}

std::vector<std::string> V2Manager::Controllers() const {
  absl::StatusOr<std::string> text = ReadControl(root_, "cgroup.controllers");
  if (!text.ok()) return {};
  std::set<std::string> words = Words(*text);
  return {words.begin(), words.end()};
}

absl::StatusOr<std::unique_ptr<Cgroup>> V2Manager::Create(const std::string& path,
                                                          const Resources& resources) {
  ASSIGN_OR_RETURN(std::string rel, CleanCgroupPath(path));
  std::set<std::string> required = RequiredControllers(resources);
  std::set<std::string> wanted = required;
  for (const char* c : kDefaultControllers) wanted.insert(c);

  std::vector<absl::string_view> parts = absl::StrSplit(rel, '/');
  std::string dir = root_;
  for (size_t i = 0; i < parts.size(); ++i) {
    // `dir` exists: make what its children need available in them.
    ASSIGN_OR_RETURN(std::string controllers, ReadControl(dir, "cgroup.controllers"));
    ASSIGN_OR_RETURN(std::string subtree, ReadControl(dir, "cgroup.subtree_control"));
    std::set<std::string> available = Words(controllers), enabled = Words(subtree);
    std::vector<std::string> add;
    for (const std::string& c : wanted) {
      if (enabled.count(c)) continue;
      if (available.count(c)) {
        add.push_back(absl::StrCat("+", c));
      } else if (required.count(c)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the ", c, " cgroup controller is needed but not available in ", dir,
            "/cgroup.controllers (\"", absl::StripAsciiWhitespace(controllers), "\")"));
      }
    }
    if (!add.empty()) {
      RETURN_IF_ERROR(WriteControl(dir, "cgroup.subtree_control", absl::StrJoin(add, " ")));
    }
    dir = absl::StrCat(dir, "/", parts[i]);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return LastErrnoError(absl::StrCat("mkdir ", dir));
    }
  }
  auto cg = std::make_unique<V2Cgroup>(rel, dir);
  RETURN_IF_ERROR(cg->Apply(resources));
  return cg;
}

absl::StatusOr<std::unique_ptr<Cgroup>> V2Manager::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string rel, CleanCgroupPath(path));
  std::string dir = absl::StrCat(root_, "/", rel);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return absl::NotFoundError(absl::StrCat("cgroup ", rel, " does not exist"));
    return LastErrnoError(absl::StrCat("stat ", dir));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(dir, " is not a directory"));
  }
  return std::make_unique<V2Cgroup>(rel, dir);
}

}  // namespace berth::cgroups

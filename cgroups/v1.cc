#include "cgroups/v1.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "cgroups/fs.h"
#include "cgroups/oom.h"
#include "cgroups/v2.h"

namespace berth::cgroups {

namespace {

// The controllers berth places containers in, when the host has them.
const char* const kControllers[] = {"cpu",     "cpuacct", "cpuset",   "memory",
                                    "devices", "freezer", "blkio",    "pids",
                                    "hugetlb", "net_cls", "net_prio", "perf_event"};

std::string DeviceNumber(int64_t n) {
  return n < 0 ? "*" : absl::StrCat(n);
}

class V1Cgroup final : public Cgroup {
 public:
  // `dirs`: controller -> this cgroup's directory in that controller's hierarchy.
  // `also_remove`: directories of this cgroup in other hierarchies (see set_extra_mounts).
  V1Cgroup(std::string path, std::map<std::string, std::string> dirs,
           std::vector<std::string> also_remove = {})
      : path_(std::move(path)), dirs_(std::move(dirs)), also_remove_(std::move(also_remove)) {}

  const std::string& path() const override { return path_; }

  absl::Status AddProcess(pid_t pid) override {
    std::set<std::string> done;  // co-mounted controllers share a directory
    for (const auto& [ctrl, dir] : dirs_) {
      if (!done.insert(dir).second) continue;
      RETURN_IF_ERROR(WriteControl(dir, "cgroup.procs", absl::StrCat(pid)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UniqueFd> OpenDirectory() override {
    return absl::UnimplementedError("CLONE_INTO_CGROUP needs cgroup v2; this host runs v1");
  }

  absl::StatusOr<std::vector<UniqueFd>> OpenSelfPlacement() override {
    std::vector<UniqueFd> fds;
    std::set<std::string> done;  // co-mounted controllers share a directory
    for (const auto& [ctrl, dir] : dirs_) {
      if (!done.insert(dir).second) continue;
      std::string path = absl::StrCat(dir, "/tasks");
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd) return LastErrnoError(absl::StrCat("open ", path));
      fds.push_back(std::move(fd));
    }
    return fds;
  }

  absl::Status Apply(const Resources& r) override {
    if (!r.unified.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("resources.unified (",
                                                     r.unified.begin()->first,
                                                     "...) needs cgroup v2; this host runs v1"));
    }
    RETURN_IF_ERROR(ApplyCpu(r.cpu));
    RETURN_IF_ERROR(ApplyMemory(r.memory));
    if (r.pids_limit) {
      ASSIGN_OR_RETURN(std::string dir, Dir("pids"));
      RETURN_IF_ERROR(
          WriteControl(dir, "pids.max", *r.pids_limit > 0 ? absl::StrCat(*r.pids_limit) : "max"));
    }
    RETURN_IF_ERROR(ApplyBlockIo(r.block_io));
    for (const auto& [size, limit] : r.hugepage_limits) {
      ASSIGN_OR_RETURN(std::string dir, Dir("hugetlb"));
      RETURN_IF_ERROR(WriteControl(dir, absl::StrCat("hugetlb.", size, ".limit_in_bytes"),
                                   absl::StrCat(limit)));
    }
    if (!r.devices.empty()) {
      ASSIGN_OR_RETURN(std::string dir, Dir("devices"));
      for (const DeviceRule& d : r.devices) {
        if (d.type != 'a' && d.type != 'c' && d.type != 'b') {
          return absl::InvalidArgumentError(
              absl::StrCat("device rule type '", std::string(1, d.type), "' is not a, c or b"));
        }
        std::string rule = d.type == 'a'
                               ? "a"
                               : absl::StrCat(std::string(1, d.type), " ", DeviceNumber(d.major),
                                              ":", DeviceNumber(d.minor), " ", d.access);
        RETURN_IF_ERROR(WriteControl(dir, d.allow ? "devices.allow" : "devices.deny", rule));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Stats> GetStats() override {
    Stats s;
    if (auto dir = dirs_.find("cpuacct"); dir != dirs_.end()) {
      if (auto u = ReadUint(dir->second, "cpuacct.usage"); u.ok()) s.cpu.usage_ns = *u;
      if (auto u = ReadUint(dir->second, "cpuacct.usage_user"); u.ok()) s.cpu.user_ns = *u;
      if (auto u = ReadUint(dir->second, "cpuacct.usage_sys"); u.ok()) s.cpu.system_ns = *u;
    }
    if (auto dir = dirs_.find("cpu"); dir != dirs_.end()) {
      ASSIGN_OR_RETURN(auto kv, ReadKeyValues(dir->second, "cpu.stat"));
      s.cpu.periods = kv["nr_periods"];
      s.cpu.throttled_periods = kv["nr_throttled"];
      s.cpu.throttled_ns = kv["throttled_time"];
    }
    if (auto dir = dirs_.find("memory"); dir != dirs_.end()) {
      const std::string& d = dir->second;
      ASSIGN_OR_RETURN(s.memory.usage, ReadUint(d, "memory.usage_in_bytes"));
      ASSIGN_OR_RETURN(s.memory.limit, ReadUint(d, "memory.limit_in_bytes"));
      ASSIGN_OR_RETURN(auto kv, ReadKeyValues(d, "memory.stat"));
      uint64_t inactive = kv["total_inactive_file"];
      s.memory.working_set = s.memory.usage > inactive ? s.memory.usage - inactive : 0;
      s.memory.rss = kv["total_rss"];
      s.memory.cache = kv["total_cache"];
      s.memory.page_faults = kv["total_pgfault"];
      s.memory.major_page_faults = kv["total_pgmajfault"];
      if (auto memsw = ReadUint(d, "memory.memsw.usage_in_bytes"); memsw.ok()) {
        s.memory.swap = *memsw > s.memory.usage ? *memsw - s.memory.usage : 0;
      }
      if (auto oom = ReadKeyValues(d, "memory.oom_control"); oom.ok()) {
        s.memory.oom_kills = (*oom)["oom_kill"];
        s.memory.oom_events = (*oom)["oom_kill"];
      }
      if (auto failcnt = ReadUint(d, "memory.failcnt"); failcnt.ok() && s.memory.oom_events == 0) {
        s.memory.oom_events = 0;  // failcnt counts limit hits, not OOMs: not reported as one
      }
    }
    if (auto dir = dirs_.find("pids"); dir != dirs_.end()) {
      ASSIGN_OR_RETURN(s.pids.current, ReadUint(dir->second, "pids.current"));
      ASSIGN_OR_RETURN(uint64_t max, ReadUint(dir->second, "pids.max"));
      if (max != UINT64_MAX) s.pids.limit = max;
    }
    if (auto dir = dirs_.find("blkio"); dir != dirs_.end()) {
      std::map<std::pair<int64_t, int64_t>, Stats::BlockDevice> devs;
      auto read = [&](absl::string_view file, bool bytes) {
        absl::StatusOr<std::string> text = ReadControl(dir->second, file);
        if (!text.ok()) return;
        for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
          std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
          if (f.size() != 3) continue;
          std::vector<absl::string_view> mm = absl::StrSplit(f[0], ':');
          int64_t major = 0, minor = 0;
          uint64_t v = 0;
          if (mm.size() != 2 || !absl::SimpleAtoi(mm[0], &major) ||
              !absl::SimpleAtoi(mm[1], &minor) || !absl::SimpleAtoi(f[2], &v)) {
            continue;
          }
          Stats::BlockDevice& b = devs[{major, minor}];
          b.major = major;
          b.minor = minor;
          if (f[1] == "Read") (bytes ? b.read_bytes : b.read_ops) = v;
          if (f[1] == "Write") (bytes ? b.write_bytes : b.write_ops) = v;
        }
      };
      read("blkio.throttle.io_service_bytes_recursive", true);
      read("blkio.throttle.io_serviced_recursive", false);
      for (auto& [k, v] : devs) s.block_io.push_back(v);
    }
    return s;
  }

  absl::StatusOr<std::vector<pid_t>> Processes() override {
    std::string dir = dirs_.count("pids") ? dirs_["pids"] : dirs_.begin()->second;
    ASSIGN_OR_RETURN(std::string text, ReadControl(dir, "cgroup.procs"));
    std::vector<pid_t> pids;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      pid_t p = 0;
      if (absl::SimpleAtoi(line, &p)) pids.push_back(p);
    }
    return pids;
  }

  absl::StatusOr<std::unique_ptr<OomWatcher>> WatchOom() override {
    ASSIGN_OR_RETURN(std::string dir, Dir("memory"));
    return WatchOomV1(dir);
  }

  absl::Status Freeze() override { return SetFreezer("FROZEN"); }
  absl::Status Thaw() override { return SetFreezer("THAWED"); }

  absl::Status Kill(int signal) override {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    bool can_freeze = dirs_.count("freezer") > 0;
    // An empty cgroup cannot fork: no freeze needed (the common case when a container is
    // deleted after its init exited; freezing costs two writes and a wait).
    if (absl::StatusOr<std::vector<pid_t>> pids = Processes(); pids.ok() && pids->empty()) {
      return absl::OkStatus();
    }
    for (;;) {
      // Frozen, nothing can fork between reading the list and signalling it.
      if (can_freeze) RETURN_IF_ERROR(Freeze());
      absl::StatusOr<std::vector<pid_t>> pids = Processes();
      if (pids.ok()) {
        for (pid_t p : *pids) {
          if (::kill(p, signal) != 0 && errno != ESRCH) {
            if (can_freeze) (void)Thaw();
            return LastErrnoError(absl::StrCat("kill ", p, " in cgroup ", path_));
          }
        }
      }
      if (can_freeze) RETURN_IF_ERROR(Thaw());
      if (!pids.ok()) return pids.status();
      if (signal != SIGKILL || pids->empty()) return absl::OkStatus();
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("cgroup ", path_, " still has processes after SIGKILL"));
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
  }

  absl::Status Remove(absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    std::set<std::string> done;
    for (const auto& [ctrl, dir] : dirs_) {
      if (!done.insert(dir).second) continue;
      RETURN_IF_ERROR(RemoveCgroupDir(dir, deadline));
    }
    for (const std::string& dir : also_remove_) {
      struct stat st;
      if (::stat(dir.c_str(), &st) == 0) RETURN_IF_ERROR(RemoveCgroupDir(dir, deadline));
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<std::string> Dir(const std::string& controller) {
    auto it = dirs_.find(controller);
    if (it == dirs_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the ", controller, " cgroup controller is not available on this host"));
    }
    return it->second;
  }

  absl::Status ApplyCpu(const Resources::Cpu& c) {
    if (c.shares || c.quota || c.period || c.realtime_runtime || c.realtime_period || c.idle) {
      ASSIGN_OR_RETURN(std::string dir, Dir("cpu"));
      if (c.shares) RETURN_IF_ERROR(WriteControl(dir, "cpu.shares", absl::StrCat(*c.shares)));
      // The period first: a quota is checked against the current period.
      if (c.period)
        RETURN_IF_ERROR(WriteControl(dir, "cpu.cfs_period_us", absl::StrCat(*c.period)));
      if (c.quota) {
        RETURN_IF_ERROR(
            WriteControl(dir, "cpu.cfs_quota_us", absl::StrCat(*c.quota > 0 ? *c.quota : -1)));
      }
      if (c.realtime_period) {
        RETURN_IF_ERROR(WriteControl(dir, "cpu.rt_period_us", absl::StrCat(*c.realtime_period)));
      }
      if (c.realtime_runtime) {
        RETURN_IF_ERROR(WriteControl(dir, "cpu.rt_runtime_us", absl::StrCat(*c.realtime_runtime)));
      }
      if (c.idle) RETURN_IF_ERROR(WriteControl(dir, "cpu.idle", absl::StrCat(*c.idle)));
    }
    if (!c.cpus.empty() || !c.mems.empty()) {
      ASSIGN_OR_RETURN(std::string dir, Dir("cpuset"));
      RETURN_IF_ERROR(WriteCpuset(dir, c.cpus, c.mems));
    }
    return absl::OkStatus();
  }

  absl::Status ApplyMemory(const Resources::Memory& m) {
    if (!m.limit && !m.reservation && !m.swap && !m.swappiness && !m.disable_oom_killer) {
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::string dir, Dir("memory"));
    std::optional<int64_t> limit = m.limit, swap = m.swap;
    if (limit && *limit == -1 && (!swap || *swap == 0)) swap = -1;  // unlimited both, as runc
    if (swap && *swap != 0 && !ControlExists(dir, "memory.memsw.limit_in_bytes")) {
      return absl::FailedPreconditionError(
          "memory.swap is set but the kernel has no swap accounting (memory.memsw.*)");
    }
    auto set_limit = [&]() -> absl::Status {
      return WriteControl(dir, "memory.limit_in_bytes", absl::StrCat(*limit));
    };
    auto set_swap = [&]() -> absl::Status {
      return WriteControl(dir, "memory.memsw.limit_in_bytes", absl::StrCat(*swap));
    };
    if (limit && *limit != 0 && swap && *swap != 0) {
      // memsw must stay >= limit at every step: raise memsw first when growing.
      ASSIGN_OR_RETURN(uint64_t current, ReadUint(dir, "memory.limit_in_bytes"));
      if (*swap == -1 || current < static_cast<uint64_t>(*swap)) {
        RETURN_IF_ERROR(set_swap());
        RETURN_IF_ERROR(set_limit());
      } else {
        RETURN_IF_ERROR(set_limit());
        RETURN_IF_ERROR(set_swap());
      }
    } else {
      if (limit && *limit != 0) RETURN_IF_ERROR(set_limit());
      if (swap && *swap != 0) RETURN_IF_ERROR(set_swap());
    }
    if (m.reservation) {
      RETURN_IF_ERROR(
          WriteControl(dir, "memory.soft_limit_in_bytes", absl::StrCat(*m.reservation)));
    }
    if (m.swappiness) {
      if (*m.swappiness > 100) {
        return absl::InvalidArgumentError(
            absl::StrCat("memory.swappiness ", *m.swappiness, " is above 100"));
      }
      RETURN_IF_ERROR(WriteControl(dir, "memory.swappiness", absl::StrCat(*m.swappiness)));
    }
    if (m.disable_oom_killer) {
      RETURN_IF_ERROR(WriteControl(dir, "memory.oom_control", *m.disable_oom_killer ? "1" : "0"));
    }
    return absl::OkStatus();
  }

  absl::Status ApplyBlockIo(const Resources::BlockIo& b) {
    bool any = b.weight || b.leaf_weight || !b.weight_device.empty() || !b.read_bps.empty() ||
               !b.write_bps.empty() || !b.read_iops.empty() || !b.write_iops.empty();
    if (!any) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string dir, Dir("blkio"));
    // CFQ's blkio.weight is gone from current kernels; BFQ's file takes the same values.
    std::string weight_file =
        ControlExists(dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
    if (b.weight) {
      if (!ControlExists(dir, weight_file)) {
        return absl::FailedPreconditionError(
            "blkio weight is set but the kernel has no blkio.weight "
            "(no CFQ/BFQ scheduler)");
      }
      RETURN_IF_ERROR(WriteControl(dir, weight_file, absl::StrCat(*b.weight)));
    }
    if (b.leaf_weight) {
      RETURN_IF_ERROR(WriteControl(dir, "blkio.leaf_weight", absl::StrCat(*b.leaf_weight)));
    }
    for (const WeightDevice& w : b.weight_device) {
      if (w.weight) {
        RETURN_IF_ERROR(WriteControl(dir, weight_file + "_device",
                                     absl::StrCat(w.major, ":", w.minor, " ", *w.weight)));
      }
    }
    for (const auto& [file, list] : {std::pair<const char*, const std::vector<ThrottleDevice>*>{
                                         "blkio.throttle.read_bps_device", &b.read_bps},
                                     {"blkio.throttle.write_bps_device", &b.write_bps},
                                     {"blkio.throttle.read_iops_device", &b.read_iops},
                                     {"blkio.throttle.write_iops_device", &b.write_iops}}) {
      for (const ThrottleDevice& t : *list) {
        RETURN_IF_ERROR(WriteControl(dir, file, absl::StrCat(t.major, ":", t.minor, " ", t.rate)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status SetFreezer(absl::string_view state) {
    ASSIGN_OR_RETURN(std::string dir, Dir("freezer"));
    RETURN_IF_ERROR(WriteControl(dir, "freezer.state", state));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    for (;;) {
      ASSIGN_OR_RETURN(std::string now, ReadControl(dir, "freezer.state"));
      if (absl::StripAsciiWhitespace(now) == state) return absl::OkStatus();
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("cgroup ", path_, " did not become ", state));
      }
      // FREEZING: re-writing nudges tasks that were in the middle of a fork.
      absl::SleepFor(absl::Microseconds(200));
      RETURN_IF_ERROR(WriteControl(dir, "freezer.state", state));
    }
  }

  std::string path_;
  std::map<std::string, std::string> dirs_;
  std::vector<std::string> also_remove_;
};

// Creates `rel` under a cpuset hierarchy root, giving every new level its parent's cpus and
// mems (a v1 cpuset starts empty, and no task can join an empty one). A level that exists but
// is still empty gets them too: another thread (or process) may have created it a moment ago
// and not written them yet, and a child made under it now would stay empty. Empty is never a
// usable state, so filling it in is only ever what its creator is about to do.
absl::Status MkdirCpuset(const std::string& root, const std::string& rel) {
  std::string cur = root;
  for (absl::string_view part : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    std::string next = absl::StrCat(cur, "/", part);
    if (::mkdir(next.c_str(), 0755) != 0 && errno != EEXIST) {
      return LastErrnoError(absl::StrCat("mkdir ", next));
    }
    for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
      ASSIGN_OR_RETURN(std::string have, ReadControl(next, f));
      if (!absl::StripAsciiWhitespace(have).empty()) continue;
      ASSIGN_OR_RETURN(std::string v, ReadControl(cur, f));
      std::string value(absl::StripAsciiWhitespace(v));
      RETURN_IF_ERROR(WriteControl(next, f, value.empty() ? "\n" : value));
    }
    cur = next;
  }
  return absl::OkStatus();
}

}  // namespace

std::map<std::string, std::string> ParseV1Mounts(absl::string_view mountinfo) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    size_t sep = line.find(" - ");
    if (sep == absl::string_view::npos) continue;
    std::vector<absl::string_view> pre = absl::StrSplit(line.substr(0, sep), ' ');
    std::vector<absl::string_view> post = absl::StrSplit(line.substr(sep + 3), ' ');
    if (pre.size() < 5 || post.size() < 3 || post[0] != "cgroup") continue;
    for (absl::string_view opt : absl::StrSplit(post[2], ',')) {
      for (const char* c : kControllers) {
        if (opt == c && !out.count(c)) out[c] = std::string(pre[4]);
      }
    }
  }
  return out;
}

V1Manager::V1Manager(Mode mode, std::map<std::string, std::string> mounts)
    : mode_(mode), mounts_(std::move(mounts)) {}

absl::StatusOr<std::unique_ptr<V1Manager>> V1Manager::FromHost(Mode mode) {
  ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo", 16 << 20));
  std::map<std::string, std::string> mounts = ParseV1Mounts(mountinfo);
  if (mounts.empty()) return absl::FailedPreconditionError("no cgroup v1 hierarchies are mounted");
  auto manager = std::make_unique<V1Manager>(mode, std::move(mounts));
  // Hierarchies without controllers of ours: cgroup2 (hybrid hosts) and named ones.
  std::vector<std::string> extra;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    size_t sep = line.find(" - ");
    if (sep == absl::string_view::npos) continue;
    std::vector<absl::string_view> pre = absl::StrSplit(line.substr(0, sep), ' ');
    std::vector<absl::string_view> post = absl::StrSplit(line.substr(sep + 3), ' ');
    if (pre.size() < 5 || post.size() < 3) continue;
    bool named = post[0] == "cgroup" && absl::StrContains(post[2], "name=");
    for (const auto& [ctrl, mount] : manager->mounts_) {
      if (mount == pre[4]) named = false;
    }
    if (post[0] == "cgroup2" || named) extra.emplace_back(pre[4]);
  }
  manager->set_extra_mounts(std::move(extra));
  return manager;
}

std::vector<std::string> V1Manager::ExtraDirs(const std::string& rel) const {
  std::vector<std::string> out;
  for (const std::string& m : extra_mounts_) out.push_back(absl::StrCat(m, "/", rel));
  return out;
}

std::vector<std::string> V1Manager::Controllers() const {
  std::vector<std::string> out;
  for (const auto& [c, m] : mounts_) out.push_back(c);
  return out;
}

absl::StatusOr<std::unique_ptr<Cgroup>> V1Manager::Create(const std::string& path,
                                                          const Resources& resources) {
  ASSIGN_OR_RETURN(std::string rel, CleanCgroupPath(path));
  std::map<std::string, std::string> dirs;
  std::set<std::string> made;
  for (const auto& [ctrl, mount] : mounts_) {
    std::string dir = absl::StrCat(mount, "/", rel);
    dirs[ctrl] = dir;
    if (!made.insert(mount).second) continue;
    if (ctrl == "cpuset") {
      RETURN_IF_ERROR(MkdirCpuset(mount, rel));
    } else {
      RETURN_IF_ERROR(MkdirAll(dir, 0755));
    }
  }
  auto cg = std::make_unique<V1Cgroup>(rel, std::move(dirs), ExtraDirs(rel));
  RETURN_IF_ERROR(cg->Apply(resources));
  return cg;
}

absl::StatusOr<std::unique_ptr<Cgroup>> V1Manager::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string rel, CleanCgroupPath(path));
  std::map<std::string, std::string> dirs;
  for (const auto& [ctrl, mount] : mounts_) {
    std::string dir = absl::StrCat(mount, "/", rel);
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0) dirs[ctrl] = dir;
  }
  if (dirs.empty()) return absl::NotFoundError(absl::StrCat("cgroup ", rel, " does not exist"));
  return std::make_unique<V1Cgroup>(rel, std::move(dirs), ExtraDirs(rel));
}

absl::Status PlaceSelf(const std::vector<int>& task_fds) {
  for (int fd : task_fds) {
    ssize_t n;
    do {
      n = ::write(fd, "0", 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) return LastErrnoError("join the container's cgroup");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CleanCgroupPath(absl::string_view path) {
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p == "." || p == "..") {
      return absl::InvalidArgumentError(absl::StrCat("cgroup path \"", path, "\" has . or .."));
    }
    parts.emplace_back(p);
  }
  if (parts.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cgroup path \"", path, "\" names the root"));
  }
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<std::unique_ptr<Manager>> NewManager(const std::string& root) {
  ASSIGN_OR_RETURN(Mode mode, DetectMode(root));
  if (mode == Mode::kUnified) return std::unique_ptr<Manager>(std::make_unique<V2Manager>(root));
  ASSIGN_OR_RETURN(auto m, V1Manager::FromHost(mode));
  return std::unique_ptr<Manager>(std::move(m));
}

}  // namespace berth::cgroups

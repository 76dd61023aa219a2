// Pod start-up benchmark (issue: RunPodSandbox .. RemovePodSandbox and the whole pod start,
// median and p99, against containerd in the same run). A kubelet-like client: every CRI call
// over gRPC, in-process, timed with a steady clock around the blocking call. It speaks only the
// CRI, so the same binary measures berthd, containerd or CRI-O.
//
//   berth-pod-bench --endpoint unix:///path.sock --image REF --runs N --warmup W --json OUT
//                   [--handler NAME] [--pull] [--pull-extra REF]... [--log-dir DIR]
//                   [--cgroup-root /berth-bench] [--keep-pods K --daemon-pid PID
//                    --per-pod-process NAME [--per-pod-match SUBSTR]] [--settle-ms MS]
//                   [--exec-runs N [--exec-mib M]] [--poll-s S]
//
// One run: RunPodSandbox (pod bench-<i>, namespace bench, a unique uid, log_directory under
// --log-dir, linux.cgroup_parent <cgroup-root>/pod<i>, namespaces: network POD, ipc POD, pid
// CONTAINER), CreateContainer (IMAGE, `sleep 3600`), StartContainer, then (untimed)
// ContainerStatus must say RUNNING, then StopContainer (timeout 0), RemoveContainer,
// StopPodSandbox, RemovePodSandbox. Each RPC is timed; "PodStart" is RunPodSandbox +
// CreateContainer + StartContainer of the same run. W warm-up runs are made first, untimed.
//
// --pull             PullImage of IMAGE (and of every --pull-extra REF, e.g. containerd's pause
//                    image) before anything else; the time is reported, not part of the runs.
// --cgroup-root      the parent of every pod's cgroup (absolute: a kubelet with the cgroupfs
//                    driver passes absolute parents; runc would take a relative one below its
//                    own cgroup). Default /berth-bench, so that cleanup is one subtree.
// --keep-pods K      after the runs, K pods (sandbox + sleep) run at the same time; after
//                    --settle-ms (default 2000) the memory is sampled, then they are removed:
//                    the daemon (--daemon-pid) VmRSS/Pss idle (before any call of this
//                    benchmark, even the pull), after the runs and with K pods; every process
//                    whose argv[0] basename starts with --per-pod-process (berth-monitor,
//                    containerd-shim) and whose command line contains --per-pod-match: its
//                    VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup), medians; and
//                    the memory added per pod, Pss: (the per-pod processes + every process in a
//                    cgroup under --cgroup-root + the daemon's growth) / K.
//
// --poll-s S        with the K pods running (after their sample), S seconds of a kubelet's
//                    steady calls: every second the PLEG's relist (ListPodSandbox,
//                    ListContainers), every 10 s the stats (ListPodSandboxStats,
//                    ListContainerStats); then the daemon's memory again, and its largest
//                    VmRSS seen at the end of each second ("daemon_polled").
//
// --cleanup         stops and removes every pod labelled io.berth.bench=pod (RemovePodSandbox
//                    removes its containers) and exits: what an interrupted run left.
//
// --exec-runs N      then, in one pod, N (+ warm-up) streaming execs of `echo hi` over SPDY
//                    (Exec RPC to the first output byte, and to the end), and 3 of
//                    `head -c <--exec-mib, default 100> MiB /dev/zero` for stdout throughput.
//
// Quantiles are nearest-rank (p99 of 50 runs is the largest). Writes everything to --json
// (per-RPC arrays of milliseconds and a summary) and a short table on stdout.
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "cri/api/cri.h"
#include "cri/client/connection.h"
#include "cri/client/stream_client.h"

namespace {

namespace v1 = ::runtime::v1;
using berth::cri::client::Connection;
using Clock = std::chrono::steady_clock;

// The RPCs in the order of one run, then the composite.
const std::vector<std::string> kSeries = {"RunPodSandbox",    "CreateContainer", "StartContainer",
                                          "StopContainer",    "RemoveContainer", "StopPodSandbox",
                                          "RemovePodSandbox", "PodStart"};

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  if (rank < 1) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}

nlohmann::json Summary(const std::vector<double>& v) {
  if (v.empty()) return nlohmann::json::object();
  return {{"n", v.size()},
          {"min", *std::min_element(v.begin(), v.end())},
          {"median", Quantile(v, 0.5)},
          {"p90", Quantile(v, 0.9)},
          {"p99", Quantile(v, 0.99)},
          {"max", *std::max_element(v.begin(), v.end())}};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "Field:   123 kB" in a /proc file: the number in KiB, or -1.
long KibField(const std::string& path, absl::string_view field) {
  std::ifstream in(path);
  std::string line;
  const std::string prefix = absl::StrCat(field, ":");
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
  }
  return -1;
}

struct Mem {
  long rss_kib = -1, pss_kib = -1;
};

Mem MemOf(int pid) {
  return {KibField(absl::StrCat("/proc/", pid, "/status"), "VmRSS"),
          KibField(absl::StrCat("/proc/", pid, "/smaps_rollup"), "Pss")};
}

std::vector<int> AllPids() {
  std::vector<int> pids;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = ::readdir(d)) {
    int pid = 0;
    if (absl::SimpleAtoi(e->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  ::closedir(d);
  return pids;
}

// Processes whose argv[0] basename starts with `prefix` and whose command line (arguments
// joined by spaces) contains `match`.
std::vector<int> PerPodPids(const std::string& prefix, const std::string& match) {
  std::vector<int> out;
  for (int pid : AllPids()) {
    std::string cmd = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
    if (cmd.empty()) continue;  // kernel threads, zombies
    std::string argv0 = cmd.substr(0, cmd.find('\0'));
    std::string base =
        argv0.substr(argv0.rfind('/') == std::string::npos ? 0 : argv0.rfind('/') + 1);
    if (!absl::StartsWith(base, prefix)) continue;
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (!match.empty() && !absl::StrContains(cmd, match)) continue;
    out.push_back(pid);
  }
  return out;
}

// Processes in a cgroup at or below `root` (an absolute cgroup path) in any hierarchy.
std::vector<int> PidsInCgroup(const std::string& root) {
  std::vector<int> out;
  const std::string needle = absl::StrCat(":", root, "/");
  for (int pid : AllPids()) {
    std::string cg = ReadFile(absl::StrCat("/proc/", pid, "/cgroup"));
    if (absl::StrContains(cg, needle)) out.push_back(pid);
  }
  return out;
}

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration d) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
  return ctx;
}

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Options {
  std::string endpoint, image, json_out, handler, log_dir, cgroup_root = "/berth-bench";
  std::string per_pod_process, per_pod_match;
  std::vector<std::string> pull_extra;
  int runs = 50, warmup = 3, keep_pods = 0, daemon_pid = 0, settle_ms = 2000, timeout_s = 120;
  int exec_runs = 0, exec_mib = 100;  // streaming exec: echo latency runs, throughput size
  int poll_s = 0;                     // kubelet-like polling with the K pods, seconds
  bool pull = false, cleanup = false;
};

class Bench {
 public:
  Bench(Connection* conn, const Options& o) : conn_(conn), o_(o) {
    uid_prefix_ = absl::StrCat("bench-", ::getpid(), "-", absl::ToUnixMillis(absl::Now()));
  }

  bool Pull(const std::string& ref, double* ms) {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    v1::PullImageResponse resp;
    auto ctx = Ctx(absl::Seconds(600));
    Clock::time_point t0 = Clock::now();
    grpc::Status gs = conn_->image().PullImage(ctx.get(), req, &resp);
    *ms = MsSince(t0);
    return Ok(gs, absl::StrCat("PullImage ", ref));
  }

  // What a kubelet calls all the time: the PLEG's relist, and (`stats`) the stats.
  bool Relist(bool stats) {
    bool ok = true;
    {
      v1::ListPodSandboxResponse resp;
      auto ctx = Ctx(absl::Seconds(30));
      ok = Ok(conn_->runtime().ListPodSandbox(ctx.get(), v1::ListPodSandboxRequest(), &resp),
              "ListPodSandbox") &&
           ok;
    }
    {
      v1::ListContainersResponse resp;
      auto ctx = Ctx(absl::Seconds(30));
      ok = Ok(conn_->runtime().ListContainers(ctx.get(), v1::ListContainersRequest(), &resp),
              "ListContainers") &&
           ok;
    }
    if (stats) {
      v1::ListPodSandboxStatsResponse presp;
      auto pctx = Ctx(absl::Seconds(30));
      ok = Ok(conn_->runtime().ListPodSandboxStats(pctx.get(), v1::ListPodSandboxStatsRequest(),
                                                   &presp),
              "ListPodSandboxStats") &&
           ok;
      v1::ListContainerStatsResponse cresp;
      auto cctx = Ctx(absl::Seconds(30));
      ok = Ok(conn_->runtime().ListContainerStats(cctx.get(), v1::ListContainerStatsRequest(),
                                                  &cresp),
              "ListContainerStats") &&
           ok;
    }
    return ok;
  }

  // A pod with a running `sleep`; the times of its three calls go to `times` when not null.
  struct Pod {
    std::string pod_id, ctr_id;
    v1::PodSandboxConfig config;
  };

  bool Start(Pod* p, std::map<std::string, double>* times) {
    const int i = ++counter_;
    v1::PodSandboxConfig& c = p->config;
    c.mutable_metadata()->set_name(absl::StrCat("bench-", i));
    c.mutable_metadata()->set_namespace_("bench");
    c.mutable_metadata()->set_uid(absl::StrCat(uid_prefix_, "-", i));
    c.mutable_metadata()->set_attempt(0);
    c.set_hostname(absl::StrCat("bench-", i));
    c.set_log_directory(absl::StrCat(o_.log_dir, "/bench-", i));
    (*c.mutable_labels())["io.berth.bench"] = "pod";
    v1::LinuxPodSandboxConfig* lx = c.mutable_linux();
    lx->set_cgroup_parent(absl::StrCat(o_.cgroup_root, "/pod", i));
    v1::NamespaceOption* ns = lx->mutable_security_context()->mutable_namespace_options();
    ns->set_network(v1::POD);
    ns->set_pid(v1::CONTAINER);
    ns->set_ipc(v1::POD);
    // The kubelet creates the log directory before RunPodSandbox.
    if (::mkdir(c.log_directory().c_str(), 0755) != 0 && errno != EEXIST) {
      std::fprintf(stderr, "mkdir %s failed\n", c.log_directory().c_str());
      return false;
    }

    {
      v1::RunPodSandboxRequest req;
      *req.mutable_config() = c;
      req.set_runtime_handler(o_.handler);
      v1::RunPodSandboxResponse resp;
      auto ctx = Ctx(timeout());
      Clock::time_point t0 = Clock::now();
      grpc::Status gs = conn_->runtime().RunPodSandbox(ctx.get(), req, &resp);
      double ms = MsSince(t0);
      if (!Ok(gs, "RunPodSandbox")) return false;
      p->pod_id = resp.pod_sandbox_id();
      if (times) (*times)["RunPodSandbox"] = ms;
    }
    {
      v1::CreateContainerRequest req;
      req.set_pod_sandbox_id(p->pod_id);
      *req.mutable_sandbox_config() = c;
      v1::ContainerConfig* cc = req.mutable_config();
      cc->mutable_metadata()->set_name("sleep");
      cc->mutable_metadata()->set_attempt(0);
      cc->mutable_image()->set_image(o_.image);
      cc->add_command("sleep");
      cc->add_command("3600");
      cc->set_log_path("sleep.log");
      (*cc->mutable_labels())["io.berth.bench"] = "container";
      v1::NamespaceOption* cns =
          cc->mutable_linux()->mutable_security_context()->mutable_namespace_options();
      cns->set_network(v1::POD);
      cns->set_pid(v1::CONTAINER);
      cns->set_ipc(v1::POD);
      v1::CreateContainerResponse resp;
      auto ctx = Ctx(timeout());
      Clock::time_point t0 = Clock::now();
      grpc::Status gs = conn_->runtime().CreateContainer(ctx.get(), req, &resp);
      double ms = MsSince(t0);
      if (!Ok(gs, "CreateContainer")) return false;
      p->ctr_id = resp.container_id();
      if (times) (*times)["CreateContainer"] = ms;
    }
    {
      v1::StartContainerRequest req;
      req.set_container_id(p->ctr_id);
      v1::StartContainerResponse resp;
      auto ctx = Ctx(timeout());
      Clock::time_point t0 = Clock::now();
      grpc::Status gs = conn_->runtime().StartContainer(ctx.get(), req, &resp);
      double ms = MsSince(t0);
      if (!Ok(gs, "StartContainer")) return false;
      if (times) (*times)["StartContainer"] = ms;
    }
    if (times) {
      (*times)["PodStart"] =
          (*times)["RunPodSandbox"] + (*times)["CreateContainer"] + (*times)["StartContainer"];
    }
    // Untimed: the container must really run.
    v1::ContainerStatusRequest sreq;
    sreq.set_container_id(p->ctr_id);
    v1::ContainerStatusResponse sresp;
    if (!Ok(conn_->runtime().ContainerStatus(Ctx(timeout()).get(), sreq, &sresp),
            "ContainerStatus")) {
      return false;
    }
    if (sresp.status().state() != v1::CONTAINER_RUNNING) {
      std::fprintf(stderr, "container %s of pod %s is %s after StartContainer (exit %d: %s)\n",
                   p->ctr_id.c_str(), p->pod_id.c_str(),
                   v1::ContainerState_Name(sresp.status().state()).c_str(),
                   sresp.status().exit_code(), sresp.status().message().c_str());
      return false;
    }
    return true;
  }

  // Stops and removes what Start made (whatever exists of it).
  bool Stop(Pod* p, std::map<std::string, double>* times) {
    bool ok = true;
    auto timed = [&](const std::string& name, auto call) {
      auto ctx = Ctx(timeout());
      Clock::time_point t0 = Clock::now();
      grpc::Status gs = call(ctx.get());
      double ms = MsSince(t0);
      if (!Ok(gs, name)) {
        ok = false;
        return;
      }
      if (times) (*times)[name] = ms;
    };
    if (!p->ctr_id.empty()) {
      timed("StopContainer", [&](grpc::ClientContext* ctx) {
        v1::StopContainerRequest req;
        req.set_container_id(p->ctr_id);
        req.set_timeout(0);
        v1::StopContainerResponse resp;
        return conn_->runtime().StopContainer(ctx, req, &resp);
      });
      timed("RemoveContainer", [&](grpc::ClientContext* ctx) {
        v1::RemoveContainerRequest req;
        req.set_container_id(p->ctr_id);
        v1::RemoveContainerResponse resp;
        return conn_->runtime().RemoveContainer(ctx, req, &resp);
      });
    }
    if (!p->pod_id.empty()) {
      timed("StopPodSandbox", [&](grpc::ClientContext* ctx) {
        v1::StopPodSandboxRequest req;
        req.set_pod_sandbox_id(p->pod_id);
        v1::StopPodSandboxResponse resp;
        return conn_->runtime().StopPodSandbox(ctx, req, &resp);
      });
      timed("RemovePodSandbox", [&](grpc::ClientContext* ctx) {
        v1::RemovePodSandboxRequest req;
        req.set_pod_sandbox_id(p->pod_id);
        v1::RemovePodSandboxResponse resp;
        return conn_->runtime().RemovePodSandbox(ctx, req, &resp);
      });
    }
    return ok;
  }

  // Stops and removes every pod this benchmark made (label io.berth.bench=pod), with its
  // containers: what a failed or interrupted run left.
  // One streaming exec over SPDY (what the kubelet speaks to a runtime): Exec RPC, upgrade,
  // streams, the process, its output. `first_ms`: from the RPC to the first output byte;
  // `total_ms`: to the end of the session; `bytes`: stdout received.
  bool StreamExec(const std::string& ctr, const std::vector<std::string>& cmd, double* first_ms,
                  double* total_ms, uint64_t* bytes) {
    Clock::time_point t0 = Clock::now();
    v1::ExecRequest req;
    req.set_container_id(ctr);
    for (const std::string& c : cmd) req.add_cmd(c);
    req.set_stdout(true);
    req.set_stderr(true);
    v1::ExecResponse resp;
    auto ctx = Ctx(absl::Seconds(o_.timeout_s));
    if (!Ok(conn_->runtime().Exec(ctx.get(), req, &resp), "Exec")) return false;
    berth::cri::client::RemoteCommandOptions ro;
    ro.url = resp.url();
    ro.stdin = false;
    *first_ms = -1;
    *bytes = 0;
    ro.output = [&](uint8_t channel, absl::string_view data) {
      if (channel != 1 || data.empty()) return;
      if (*first_ms < 0) *first_ms = MsSince(t0);
      *bytes += data.size();
    };
    absl::StatusOr<int> code = berth::cri::client::RunRemoteCommand(ro);
    *total_ms = MsSince(t0);
    if (!code.ok() || *code != 0) {
      std::fprintf(stderr, "exec %s: %s\n", cmd.front().c_str(),
                   code.ok() ? absl::StrCat("exit code ", *code).c_str()
                             : std::string(code.status().message()).c_str());
      return false;
    }
    return *first_ms >= 0;
  }

  bool Cleanup() {
    v1::ListPodSandboxRequest req;
    (*req.mutable_filter()->mutable_label_selector())["io.berth.bench"] = "pod";
    v1::ListPodSandboxResponse resp;
    if (!Ok(conn_->runtime().ListPodSandbox(Ctx(timeout()).get(), req, &resp), "ListPodSandbox")) {
      return false;
    }
    bool ok = true;
    for (const v1::PodSandbox& s : resp.items()) {
      Pod p;
      p.pod_id = s.id();
      ok = Stop(&p, nullptr) && ok;
    }
    std::fprintf(stderr, "cleanup: %d pods removed\n", resp.items_size());
    return ok;
  }

 private:
  absl::Duration timeout() const { return absl::Seconds(o_.timeout_s); }
  bool Ok(const grpc::Status& gs, const std::string& what) {
    absl::Status st = conn_->Check(gs, what);
    if (st.ok()) return true;
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return false;
  }

  Connection* conn_;
  const Options& o_;
  std::string uid_prefix_;
  int counter_ = 0;
};

void Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --endpoint unix:///path.sock --image REF --json OUT [--runs N]\n"
               "       %s --endpoint unix:///path.sock --cleanup\n"
               "       [--warmup W] [--handler NAME] [--pull] [--pull-extra REF]...\n"
               "       [--log-dir DIR] [--cgroup-root /berth-bench] [--timeout SECONDS]\n"
               "       [--keep-pods K] [--daemon-pid PID] [--per-pod-process NAME]\n"
               "       [--per-pod-match SUBSTR] [--settle-ms MS] [--exec-runs N] [--exec-mib M]\n"
               "       [--poll-s S]\n",
               argv0, argv0);
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    bool ok = true;
    if (a == "--pull") {
      o->pull = true;
    } else if (a == "--cleanup") {
      o->cleanup = true;
    } else if (a == "--endpoint" && (v = next())) {
      o->endpoint = v;
    } else if (a == "--image" && (v = next())) {
      o->image = v;
    } else if (a == "--json" && (v = next())) {
      o->json_out = v;
    } else if (a == "--handler" && (v = next())) {
      o->handler = v;
    } else if (a == "--pull-extra" && (v = next())) {
      o->pull_extra.emplace_back(v);
    } else if (a == "--log-dir" && (v = next())) {
      o->log_dir = v;
    } else if (a == "--cgroup-root" && (v = next())) {
      o->cgroup_root = v;
      ok = absl::StartsWith(o->cgroup_root, "/") && o->cgroup_root.size() > 1 &&
           !absl::EndsWith(o->cgroup_root, "/");
    } else if (a == "--per-pod-process" && (v = next())) {
      o->per_pod_process = v;
    } else if (a == "--per-pod-match" && (v = next())) {
      o->per_pod_match = v;
    } else if (a == "--runs" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->runs) && o->runs >= 1;
    } else if (a == "--warmup" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->warmup) && o->warmup >= 0;
    } else if (a == "--keep-pods" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->keep_pods) && o->keep_pods >= 0;
    } else if (a == "--daemon-pid" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->daemon_pid) && o->daemon_pid > 0;
    } else if (a == "--settle-ms" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->settle_ms) && o->settle_ms >= 0;
    } else if (a == "--exec-runs" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->exec_runs) && o->exec_runs >= 0;
    } else if (a == "--poll-s" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->poll_s) && o->poll_s >= 0;
    } else if (a == "--exec-mib" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->exec_mib) && o->exec_mib > 0;
    } else if (a == "--timeout" && (v = next())) {
      ok = absl::SimpleAtoi(v, &o->timeout_s) && o->timeout_s > 0;
    } else {
      ok = false;
    }
    if (!ok) return false;
  }
  if (o->cleanup) return !o->endpoint.empty();
  return !o->endpoint.empty() && !o->image.empty() && !o->json_out.empty();
}

nlohmann::json MemJson(const Mem& m) {
  return {{"rss_kib", m.rss_kib}, {"pss_kib", m.pss_kib}};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) {
    Usage(argv[0]);
    return 2;
  }
  if (o.cleanup) {
    absl::StatusOr<Connection> conn = Connection::Open(o.endpoint, absl::Seconds(30));
    if (!conn.ok()) {
      std::fprintf(stderr, "%s\n", conn.status().ToString().c_str());
      return 1;
    }
    return Bench(&*conn, o).Cleanup() ? 0 : 1;
  }
  std::string made_log_dir;
  if (o.log_dir.empty()) {
    char tmpl[] = "/var/tmp/berth-pod-bench-logs.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    o.log_dir = made_log_dir = tmpl;
  } else if (::mkdir(o.log_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::perror(o.log_dir.c_str());
    return 1;
  }

  nlohmann::json out;
  out["endpoint"] = o.endpoint;
  out["image"] = o.image;
  out["handler"] = o.handler;
  out["runs"] = o.runs;
  out["warmup"] = o.warmup;
  out["cgroup_root"] = o.cgroup_root;
  out["quantiles"] = "nearest-rank";

  // Idle: before any call of this benchmark.
  Mem daemon_idle;
  if (o.daemon_pid > 0) daemon_idle = MemOf(o.daemon_pid);

  absl::StatusOr<Connection> conn = Connection::Open(o.endpoint, absl::Seconds(30));
  if (!conn.ok()) {
    std::fprintf(stderr, "%s\n", conn.status().ToString().c_str());
    return 1;
  }
  {
    v1::VersionRequest req;
    v1::VersionResponse resp;
    absl::Status st =
        conn->Check(conn->runtime().Version(Ctx(absl::Seconds(30)).get(), req, &resp), "Version");
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    out["runtime"] = {{"name", resp.runtime_name()},
                      {"version", resp.runtime_version()},
                      {"api_version", resp.runtime_api_version()}};
    std::fprintf(stderr, "runtime %s %s at %s\n", resp.runtime_name().c_str(),
                 resp.runtime_version().c_str(), o.endpoint.c_str());
  }

  Bench bench(&*conn, o);
  if (o.pull) {
    std::vector<std::string> refs = {o.image};
    refs.insert(refs.end(), o.pull_extra.begin(), o.pull_extra.end());
    for (const std::string& ref : refs) {
      double ms = 0;
      if (!bench.Pull(ref, &ms)) return 1;
      out["pull_ms"][ref] = ms;
      std::fprintf(stderr, "PullImage %s: %.1f ms\n", ref.c_str(), ms);
    }
  }

  std::map<std::string, std::vector<double>> series;
  for (int r = 0; r < o.warmup + o.runs; ++r) {
    const bool timed = r >= o.warmup;
    std::map<std::string, double> times;
    Bench::Pod pod;
    bool ok = bench.Start(&pod, &times);
    ok = bench.Stop(&pod, &times) && ok;
    if (!ok) {
      std::fprintf(stderr, "run %d failed\n", r + 1);
      return 1;
    }
    if (timed) {
      for (const std::string& s : kSeries) series[s].push_back(times[s]);
    }
    std::fprintf(stderr, "%s %d/%d: pod start %.1f ms (sandbox %.1f, create %.1f, start %.1f)\n",
                 timed ? "run" : "warm-up", timed ? r - o.warmup + 1 : r + 1,
                 timed ? o.runs : o.warmup, times["PodStart"], times["RunPodSandbox"],
                 times["CreateContainer"], times["StartContainer"]);
  }
  for (const std::string& s : kSeries) {
    out["ms"][s] = series[s];
    out["summary"][s] = Summary(series[s]);
  }

  // Streaming exec in one running pod: latency of `echo`, then stdout throughput.
  if (o.exec_runs > 0) {
    Bench::Pod pod;
    std::map<std::string, double> ignored;
    if (!bench.Start(&pod, &ignored)) return 1;
    std::vector<double> first, total;
    bool ok = true;
    for (int r = 0; ok && r < o.warmup + o.exec_runs; ++r) {
      double f = 0, t = 0;
      uint64_t bytes = 0;
      ok = bench.StreamExec(pod.ctr_id, {"echo", "hi"}, &f, &t, &bytes);
      if (ok && r >= o.warmup) {
        first.push_back(f);
        total.push_back(t);
      }
    }
    std::vector<double> mibps;
    const uint64_t want = static_cast<uint64_t>(o.exec_mib) << 20;
    for (int r = 0; ok && r < 3; ++r) {
      double f = 0, t = 0;
      uint64_t bytes = 0;
      ok = bench.StreamExec(pod.ctr_id, {"head", "-c", std::to_string(want), "/dev/zero"}, &f, &t,
                            &bytes);
      if (ok && bytes != want) {
        std::fprintf(stderr, "exec throughput: %llu of %llu bytes arrived\n",
                     static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(want));
        ok = false;
      }
      if (ok) mibps.push_back(static_cast<double>(bytes) / (1 << 20) / (t / 1000.0));
    }
    ok = bench.Stop(&pod, &ignored) && ok;
    if (!ok) return 1;
    out["exec"]["first_byte_ms"] = first;
    out["exec"]["total_ms"] = total;
    out["exec"]["summary"]["first_byte_ms"] = Summary(first);
    out["exec"]["summary"]["total_ms"] = Summary(total);
    out["exec"]["throughput_mib_s"] = mibps;
    out["exec"]["summary"]["throughput_mib_s"] = Summary(mibps);
    out["exec"]["mib"] = o.exec_mib;
    std::fprintf(stderr, "exec: echo first byte median %.1f ms, %d MiB at median %.0f MiB/s\n",
                 Summary(first)["median"].get<double>(), o.exec_mib,
                 Summary(mibps)["median"].get<double>());
  }

  // Memory with K pods at once.
  if (o.keep_pods > 0) {
    nlohmann::json mem;
    mem["keep_pods"] = o.keep_pods;
    Mem daemon_before;
    if (o.daemon_pid > 0) {
      mem["daemon_pid"] = o.daemon_pid;
      mem["daemon_idle"] = MemJson(daemon_idle);
      // Settled, as the figure with the pods is: what the runs freed has been given back.
      std::this_thread::sleep_for(std::chrono::milliseconds(o.settle_ms));
      daemon_before = MemOf(o.daemon_pid);
      mem["daemon_after_runs"] = MemJson(daemon_before);
    }
    std::vector<Bench::Pod> pods(static_cast<size_t>(o.keep_pods));
    bool ok = true;
    Clock::time_point t0 = Clock::now();
    for (Bench::Pod& p : pods) {
      if (!(ok = bench.Start(&p, nullptr))) break;
    }
    mem["start_all_ms"] = MsSince(t0);
    if (ok) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.settle_ms));
      if (o.daemon_pid > 0) {
        Mem d = MemOf(o.daemon_pid);
        mem["daemon_with_pods"] = MemJson(d);
        mem["daemon_vmhwm_kib"] =
            KibField(absl::StrCat("/proc/", o.daemon_pid, "/status"), "VmHWM");
      }
      std::set<int> counted;
      long total_pss = 0;
      if (!o.per_pod_process.empty()) {
        std::vector<double> rss, pss;
        for (int pid : PerPodPids(o.per_pod_process, o.per_pod_match)) {
          Mem m = MemOf(pid);
          if (m.rss_kib < 0) continue;
          rss.push_back(static_cast<double>(m.rss_kib));
          pss.push_back(static_cast<double>(m.pss_kib));
          if (counted.insert(pid).second) total_pss += std::max(m.pss_kib, 0L);
        }
        mem["per_pod_process"] = o.per_pod_process;
        mem["per_pod_match"] = o.per_pod_match;
        mem["per_pod_processes"] = rss.size();
        mem["per_pod_rss_kib"] = Summary(rss);
        mem["per_pod_pss_kib"] = Summary(pss);
        mem["per_pod_rss_kib_all"] = rss;
        mem["per_pod_pss_kib_all"] = pss;
        if (static_cast<int>(rss.size()) != o.keep_pods) {
          std::fprintf(stderr, "warning: %zu processes match %s/%s with %d pods running\n",
                       rss.size(), o.per_pod_process.c_str(), o.per_pod_match.c_str(), o.keep_pods);
        }
      }
      // Everything the pods run (containers, a pause process) is in their cgroups.
      long in_cgroups = 0;
      for (int pid : PidsInCgroup(o.cgroup_root)) {
        if (!counted.insert(pid).second) continue;
        long p = MemOf(pid).pss_kib;
        in_cgroups += std::max(p, 0L);
      }
      mem["pods_cgroup_pss_kib"] = in_cgroups;
      long daemon_growth = 0;
      if (o.daemon_pid > 0) {
        daemon_growth = mem["daemon_with_pods"]["pss_kib"].get<long>() - daemon_before.pss_kib;
        mem["daemon_pss_growth_kib"] = daemon_growth;
      }
      mem["added_pss_kib_per_pod"] =
          static_cast<double>(total_pss + in_cgroups + daemon_growth) / o.keep_pods;
      if (o.poll_s > 0 && o.daemon_pid > 0) {
        long max_rss = 0;
        Mem last;
        for (int second = 0; second < o.poll_s && ok; ++second) {
          const Clock::time_point tick = Clock::now();
          ok = bench.Relist(second % 10 == 0);
          std::this_thread::sleep_until(tick + std::chrono::seconds(1));
          last = MemOf(o.daemon_pid);
          max_rss = std::max(max_rss, last.rss_kib);
        }
        mem["poll_s"] = o.poll_s;
        mem["daemon_polled"] = MemJson(last);
        mem["daemon_polled_max_rss_kib"] = max_rss;
      }
    }
    for (Bench::Pod& p : pods) ok = bench.Stop(&p, nullptr) && ok;
    if (!ok) return 1;
    out["memory"] = mem;
  }

  {
    std::ofstream f(o.json_out);
    f << out.dump(1) << "\n";
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", o.json_out.c_str());
      return 1;
    }
  }
  if (!made_log_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(made_log_dir, ec);
  }

  std::printf("%s (%s %s), %d runs after %d warm-up, ms\n", o.endpoint.c_str(),
              out["runtime"]["name"].get<std::string>().c_str(),
              out["runtime"]["version"].get<std::string>().c_str(), o.runs, o.warmup);
  std::printf("%-18s %9s %9s %9s %9s\n", "", "median", "p90", "p99", "max");
  for (const std::string& s : kSeries) {
    const nlohmann::json& j = out["summary"][s];
    std::printf("%-18s %9.2f %9.2f %9.2f %9.2f\n", s.c_str(), j["median"].get<double>(),
                j["p90"].get<double>(), j["p99"].get<double>(), j["max"].get<double>());
  }
  if (out.contains("memory")) std::printf("memory: %s\n", out["memory"].dump().c_str());
  return 0;
}

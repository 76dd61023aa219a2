// Image pull benchmark (issue: pull + unpack of the large fixture image from the local registry,
// cold store, N runs, median MB/s, against containerd). A kubelet-like client: PullImage over
// gRPC, in-process, timed per call, against any CRI runtime (berthd, containerd, CRI-O).
//
//   berth-pull-bench --endpoint unix:///path.sock --image REF [--runs N] [--warmup N]
//                    [--remove-between] [--between CMD] [--bytes N] [--rss-pid PID]
//
// --remove-between  RemoveImage (through the CRI) before the first pull and after every pull
//                   (the last too), so that every timed pull starts from a cold store;
//                   untimed. berthd removes the blobs and snapshots nobody uses at once;
//                   containerd's CRI deletes the image synchronously, which runs its garbage
//                   collector (content and snapshots). --between checks that (pull-bench.sh).
// --between CMD     a shell command run (untimed) after each removal, before the next pull:
//                   e.g. `sync` and a check that the store is empty; a nonzero exit stops the
//                   benchmark.
// --bytes N         the size the rate is computed from; by default the image's size from
//                   ImageStatus after the first pull (compressed: manifest + config + layers).
// --rss-pid PID     samples VmRSS of PID (the runtime daemon) every 10 ms during the timed
//                   pulls and reads its VmHWM at the end.
// --warmup N        untimed pulls (each followed by a removal) before the timed ones; default 0.
//
// Prints median/p10/p90 seconds and MB/s (MB = 10^6 bytes), then one machine-readable line
// starting with "result:" (key=value pairs) that bench/pull-bench.sh parses.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "cri/api/cri.h"
#include "cri/client/connection.h"

namespace {

namespace v1 = ::runtime::v1;
using berth::cri::client::Connection;

struct Stats {
  double median = 0, p10 = 0, p90 = 0;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
  };
  return {at(0.5), at(0.1), at(0.9)};
}

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), or -1.
long StatusKib(int pid, absl::string_view field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  const std::string prefix = absl::StrCat(field, ":");
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
  }
  return -1;
}

// Samples VmRSS of a pid every 10 ms while it runs; keeps the largest value.
class RssSampler {
 public:
  explicit RssSampler(int pid) : pid_(pid) {
    if (pid_ > 0) thread_ = std::thread([this] { Loop(); });
  }
  ~RssSampler() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long peak_kib() const { return peak_; }
  long samples() const { return samples_; }

 private:
  void Loop() {
    while (!stop_) {
      long kib = StatusKib(pid_, "VmRSS");
      if (kib > peak_) peak_ = kib;
      ++samples_;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  int pid_;
  std::atomic<bool> stop_{false};
  std::atomic<long> peak_{-1};
  std::atomic<long> samples_{0};
  std::thread thread_;
};

int RunShell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());  // NOLINT(cert-env33-c): the operator's own command
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::unique_ptr<grpc::ClientContext> LongContext(absl::Duration d) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
  return ctx;
}

void Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --endpoint unix:///path.sock --image REF [--runs N] [--warmup N]\n"
               "       [--remove-between] [--between CMD] [--bytes N] [--rss-pid PID]\n"
               "       [--timeout SECONDS]\n",
               argv0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint, image, between;
  int runs = 5, warmup = 0, rss_pid = 0;
  int64_t bytes = 0;
  int timeout_s = 600;
  bool remove_between = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    bool ok = true;
    if (a == "--remove-between") {
      remove_between = true;
    } else if (a == "--endpoint" && (v = next())) {
      endpoint = v;
    } else if (a == "--image" && (v = next())) {
      image = v;
    } else if (a == "--between" && (v = next())) {
      between = v;
    } else if (a == "--runs" && (v = next())) {
      ok = absl::SimpleAtoi(v, &runs) && runs >= 1;
    } else if (a == "--warmup" && (v = next())) {
      ok = absl::SimpleAtoi(v, &warmup) && warmup >= 0;
    } else if (a == "--bytes" && (v = next())) {
      ok = absl::SimpleAtoi(v, &bytes) && bytes > 0;
    } else if (a == "--rss-pid" && (v = next())) {
      ok = absl::SimpleAtoi(v, &rss_pid) && rss_pid > 0;
    } else if (a == "--timeout" && (v = next())) {
      ok = absl::SimpleAtoi(v, &timeout_s) && timeout_s > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      Usage(argv[0]);
      return 2;
    }
  }
  if (endpoint.empty() || image.empty()) {
    Usage(argv[0]);
    return 2;
  }
  const absl::Duration timeout = absl::Seconds(timeout_s);
  absl::StatusOr<Connection> conn = Connection::Open(endpoint, absl::Seconds(30));
  if (!conn.ok()) {
    std::fprintf(stderr, "%s\n", conn.status().ToString().c_str());
    return 1;
  }

  auto remove = [&]() -> bool {
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    v1::RemoveImageResponse resp;
    absl::Status st = conn->Check(conn->image().RemoveImage(LongContext(timeout).get(), req, &resp),
                                  "RemoveImage");
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return false;
    }
    // The image must be gone: an answer with an image means the store is not cold.
    v1::ImageStatusRequest sreq;
    sreq.mutable_image()->set_image(image);
    v1::ImageStatusResponse sresp;
    st = conn->Check(conn->image().ImageStatus(LongContext(timeout).get(), sreq, &sresp),
                     "ImageStatus");
    if (!st.ok() || sresp.has_image()) {
      std::fprintf(stderr, "image %s still present after RemoveImage %s\n", image.c_str(),
                   st.ToString().c_str());
      return false;
    }
    if (!between.empty()) {
      int rc = RunShell(between);
      if (rc != 0) {
        std::fprintf(stderr, "--between command exited %d: %s\n", rc, between.c_str());
        return false;
      }
    }
    return true;
  };
  // Returns the pull's duration, or a negative value on failure.
  auto pull = [&]() -> double {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image);
    v1::PullImageResponse resp;
    auto ctx = LongContext(timeout);
    absl::Time t0 = absl::Now();
    grpc::Status gs = conn->image().PullImage(ctx.get(), req, &resp);
    absl::Duration d = absl::Now() - t0;
    absl::Status st = conn->Check(gs, "PullImage");
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return -1;
    }
    return absl::ToDoubleSeconds(d);
  };

  if (remove_between && !remove()) return 1;
  for (int i = 0; i < warmup; ++i) {
    if (pull() < 0) return 1;
    if (remove_between && !remove()) return 1;
  }

  std::vector<double> secs;
  int64_t status_size = 0;
  long peak_rss = -1, samples = 0;
  for (int i = 0; i < runs; ++i) {
    RssSampler sampler(rss_pid);
    double s = pull();
    sampler.Stop();
    peak_rss = std::max(peak_rss, sampler.peak_kib());
    samples += sampler.samples();
    if (s < 0) return 1;
    secs.push_back(s);
    if (status_size == 0) {
      v1::ImageStatusRequest sreq;
      sreq.mutable_image()->set_image(image);
      v1::ImageStatusResponse sresp;
      absl::Status st = conn->Check(
          conn->image().ImageStatus(LongContext(timeout).get(), sreq, &sresp), "ImageStatus");
      if (!st.ok() || !sresp.has_image()) {
        std::fprintf(stderr, "ImageStatus after the pull: no image %s\n", st.ToString().c_str());
        return 1;
      }
      status_size = static_cast<int64_t>(sresp.image().size());
    }
    std::fprintf(stderr, "run %d/%d: %.3f s\n", i + 1, runs, s);
    if (remove_between && !remove()) return 1;  // the last one leaves the store empty too
  }
  const long hwm = rss_pid > 0 ? StatusKib(rss_pid, "VmHWM") : -1;
  if (bytes == 0) bytes = status_size;

  Stats st = Summarize(secs);
  const double mb = static_cast<double>(bytes) / 1e6;
  std::printf("PullImage %s at %s, %d runs%s\n", image.c_str(), conn->endpoint().c_str(), runs,
              remove_between ? ", cold (RemoveImage between runs)" : "");
  std::printf("bytes %lld (ImageStatus size %lld)\n", static_cast<long long>(bytes),
              static_cast<long long>(status_size));
  std::printf("%-10s %9s %9s %9s\n", "", "median", "p10", "p90");
  std::printf("%-10s %8.3fs %8.3fs %8.3fs\n", "seconds", st.median, st.p10, st.p90);
  // The fastest run has the highest rate: p10 of the time is p90 of the rate.
  std::printf("%-10s %9.1f %9.1f %9.1f\n", "MB/s", mb / st.median, mb / st.p90, mb / st.p10);
  if (rss_pid > 0) {
    std::printf("pid %d: peak VmRSS sampled every 10 ms %.1f MiB (%ld samples), VmHWM %.1f MiB\n",
                rss_pid, static_cast<double>(peak_rss) / 1024, samples,
                static_cast<double>(hwm) / 1024);
  }
  std::vector<std::string> all;
  for (double s : secs) all.push_back(absl::StrCat(s));
  std::printf(
      "result: runs=%d bytes=%lld median_s=%.4f p10_s=%.4f p90_s=%.4f mbps=%.2f peak_rss_kib=%ld "
      "hwm_kib=%ld times_s=%s\n",
      runs, static_cast<long long>(bytes), st.median, st.p10, st.p90, mb / st.median, peak_rss, hwm,
      absl::StrJoin(all, ",").c_str());
  return 0;
}

// Network benchmark (issue: pod networking). Runs in a private network + mount namespace, like
// the integration test, so nothing of the host's network changes. Reports medians over N runs:
//
//   netns      create + pin + remove of a pod network namespace, in-process (berth)
//   ip-netns   `ip netns add` + `ip netns del` (iproute2), the usual way, as the peer
//   cni        CNI ADD + DEL of the bridge chain (bridge/host-local, portmap, loopback) through
//              berth's NetworkManager, and the part of it spent inside the plugin processes;
//              the difference is what berth adds.
//
//   berth-network-bench [--runs N] [--json]
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/unique_fd.h"
#include "network/cni.h"
#include "network/netns.h"
#include "network/network_manager.h"

namespace {

using berth::network::NsType;

struct Stats {
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
};

Stats Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[static_cast<size_t>(q * static_cast<double>(ms.size() - 1))];
  };
  return {at(0.5), at(0.1), at(0.9)};
}

double Ms(absl::Duration d) {
  return absl::ToDoubleMilliseconds(d);
}

int RunShell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());  // NOLINT(cert-env33-c): a fixed benchmark command line
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool Isolate() {
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    std::perror("unshare (run as root)");
    return false;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  // `ip netns` writes under /run/netns: give it a /run of its own.
  if (::mount("tmpfs", "/run", "tmpfs", 0, "mode=755") != 0) return false;
  berth::UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct ifreq ifr {};
  std::strcpy(ifr.ifr_name, "lo");
  ::ioctl(s.get(), SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ::ioctl(s.get(), SIOCSIFFLAGS, &ifr) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 200;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(10, std::atoi(argv[++i]));
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "usage: %s [--runs N] [--json]\n", argv[0]);
      return 2;
    }
  }
  if (!Isolate()) return 1;
  char tmpl[] = "/tmp/berth-netbench.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  (void)berth::MkdirAll(dir + "/pins");
  (void)berth::MkdirAll(dir + "/net.d");

  // 1. netns create + pin + remove, in-process.
  std::vector<double> netns_ms;
  for (int i = 0; i < runs + 5; ++i) {
    std::string pin = absl::StrCat(dir, "/pins/p", i);
    absl::Time t0 = absl::Now();
    absl::Status st = berth::network::CreatePinnedNamespaces({{NsType::kNet, pin}}, {});
    absl::Status rm = berth::network::RemovePinnedNamespace(pin);
    absl::Duration d = absl::Now() - t0;
    if (!st.ok() || !rm.ok()) {
      std::fprintf(stderr, "netns: %s %s\n", st.ToString().c_str(), rm.ToString().c_str());
      return 1;
    }
    if (i >= 5) netns_ms.push_back(Ms(d));  // the first few warm caches up
  }

  // 2. The peer: iproute2.
  std::vector<double> ip_ms;
  for (int i = 0; i < runs / 2 + 2; ++i) {
    absl::Time t0 = absl::Now();
    if (RunShell("ip netns add berthbench && ip netns del berthbench") != 0) {
      std::fprintf(stderr, "ip netns failed\n");
      return 1;
    }
    if (i >= 2) ip_ms.push_back(Ms(absl::Now() - t0));
  }

  // 3. CNI ADD + DEL with the bridge chain.
  berth::WriteFileAtomic(dir + "/net.d/10-bench.conflist", absl::StrCat(R"({
    "cniVersion": "1.0.0", "name": "berth-bench",
    "plugins": [
      {"type": "bridge", "bridge": "berthbench0", "isGateway": true, "ipMasq": false,
       "ipam": {"type": "host-local", "dataDir": ")",
                                                                        dir, R"(/ipam",
                "ranges": [[{"subnet": "10.198.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
      {"type": "portmap", "capabilities": {"portMappings": true}},
      {"type": "loopback"}]})"))
      .IgnoreError();
  auto m = berth::network::NetworkManager::Create(
      {.conf_dir = dir + "/net.d", .bin_dirs = {"/usr/lib/cni"}, .cache_dir = dir + "/cache"});
  if (!m.ok() || !(*m)->Readiness().ready) {
    std::fprintf(stderr, "CNI not ready: %s\n",
                 m.ok() ? (*m)->Readiness().message.c_str() : m.status().ToString().c_str());
    return 1;
  }
  std::vector<double> add_ms, del_ms, add_plugin_ms, del_plugin_ms, overhead_ms;
  const int cni_runs = std::max(100, runs / 2);
  for (int i = 0; i < cni_runs + 3; ++i) {
    std::string id = absl::StrFormat("%064x", i);
    std::string pin = absl::StrCat(dir, "/pins/c", i);
    if (!berth::network::CreatePinnedNamespaces({{NsType::kNet, pin}}, {}).ok()) return 1;
    berth::network::PodNetworkRequest req;
    req.sandbox_id = id;
    req.pod_name = "bench";
    req.pod_namespace = "default";
    req.pod_uid = id.substr(0, 8);
    req.netns_path = pin;
    absl::Time t0 = absl::Now();
    auto s = (*m)->SetUp(req);
    absl::Duration add = absl::Now() - t0;
    absl::Duration add_plugins = berth::network::CniInvoker::LastPluginTime();
    if (!s.ok()) {
      std::fprintf(stderr, "ADD: %s\n", s.status().ToString().c_str());
      return 1;
    }
    t0 = absl::Now();
    absl::Status del = (*m)->TearDown(id);
    absl::Duration del_d = absl::Now() - t0;
    absl::Duration del_plugins = berth::network::CniInvoker::LastPluginTime();
    if (!del.ok()) {
      std::fprintf(stderr, "DEL: %s\n", del.ToString().c_str());
      return 1;
    }
    (void)berth::network::RemovePinnedNamespace(pin);
    if (i < 3) continue;
    add_ms.push_back(Ms(add));
    del_ms.push_back(Ms(del_d));
    add_plugin_ms.push_back(Ms(add_plugins));
    del_plugin_ms.push_back(Ms(del_plugins));
    overhead_ms.push_back(Ms(add - add_plugins + del_d - del_plugins) / 2);
  }
  m->reset();
  RunShell(absl::StrCat("rm -rf ", dir));

  Stats netns = Summarize(netns_ms), ip = Summarize(ip_ms), add = Summarize(add_ms),
        del = Summarize(del_ms), addp = Summarize(add_plugin_ms), delp = Summarize(del_plugin_ms),
        over = Summarize(overhead_ms);
  if (json) {
    std::printf(
        "{\"runs\":%d,\"netns_ms\":%.3f,\"ip_netns_ms\":%.3f,\"cni_add_ms\":%.3f,"
        "\"cni_add_plugins_ms\":%.3f,\"cni_del_ms\":%.3f,\"cni_del_plugins_ms\":%.3f,"
        "\"berth_overhead_per_call_ms\":%.3f}\n",
        runs, netns.median_ms, ip.median_ms, add.median_ms, addp.median_ms, del.median_ms,
        delp.median_ms, over.median_ms);
    return 0;
  }
  std::printf("%-44s %9s %9s %9s %6s\n", "what (median over runs)", "median", "p10", "p90", "runs");
  auto row = [](const char* what, const Stats& s, size_t n) {
    std::printf("%-44s %7.3fms %7.3fms %7.3fms %6zu\n", what, s.median_ms, s.p10_ms, s.p90_ms, n);
  };
  row("netns create+pin+remove (berth, in-process)", netns, netns_ms.size());
  row("ip netns add + del (iproute2, peer)", ip, ip_ms.size());
  row("CNI ADD, bridge chain (total)", add, add_ms.size());
  row("  of which inside plugin processes", addp, add_plugin_ms.size());
  row("CNI DEL, bridge chain (total)", del, del_ms.size());
  row("  of which inside plugin processes", delp, del_plugin_ms.size());
  row("berth's own time per ADD or DEL", over, overhead_ms.size());
  std::printf("ratio netns: iproute2 / berth = %.1fx\n", ip.median_ms / netns.median_ms);
  return 0;
}

// The sandbox the pod-level integration tests run in (pod_test.cc, berthctl_pods_test.cc,
// network_test.cc): a private network and mount namespace entered from main(), pod cgroups under
// a test-owned parent in every cgroup hierarchy, and a CNI bridge network of the test's own.
#pragma once

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/process.h"

namespace berth::testing {

// Moves this process into a network and mount namespace of its own, makes / private there (no
// mount reaches the host) and brings lo up: the bridge, the pod addresses, iptables rules and
// every mount stay in there and go with the process, even if it crashes. For main(), before any
// thread starts; needs root. On failure prints what failed (perror) and returns false.
inline bool EnterPrivateNetworkAndMountNamespace() {
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    std::perror("unshare(CLONE_NEWNET|CLONE_NEWNS) (this test needs root)");
    return false;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("make / private");
    return false;
  }
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr {};
  std::strcpy(ifr.ifr_name, "lo");
  ::ioctl(s, SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
    std::perror("bring lo up");
    return false;
  }
  ::close(s);
  return true;
}

// The shell words for every cgroup hierarchy the host has: the unified one or the v1 tmpfs
// (/sys/fs/cgroup), and each controller's or named one's (/sys/fs/cgroup/*/).
inline constexpr char kEveryCgroupHierarchy[] = "for d in /sys/fs/cgroup /sys/fs/cgroup/*/; do ";

// Every cgroup dir below `parent` (relative to the hierarchy roots), at any depth, in any
// hierarchy; each parent before its children.
inline std::vector<std::string> ListCgroupsUnder(const std::string& parent) {
  std::vector<std::string> found;
  CommandResult r =
      RunCommand({"/bin/sh", "-c",
                  absl::StrCat(kEveryCgroupHierarchy, "[ -d \"$d/", parent, "\" ] && find \"$d/",
                               parent, "\" -mindepth 1 -type d; done; true")});
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    found.emplace_back(line);
  }
  return found;
}

// Removes each of `parents` (relative to the hierarchy roots; children before their parents)
// in every hierarchy where it exists and is empty; the others stay.
inline void RemoveCgroupParents(const std::vector<std::string>& parents) {
  std::string dirs;
  for (const std::string& p : parents) absl::StrAppend(&dirs, " \"$d/", p, "\"");
  RunCommand({"/bin/sh", "-c",
              absl::StrCat(kEveryCgroupHierarchy, "rmdir", dirs, " 2>/dev/null; done; true")});
}

// No pod dir (<dir>/state/pods), container dir (<dir>/root/containers), mount under `dir`,
// cgroup (`cgroups`: those the test found), address lease (<dir>/ipam) or monitor is left.
inline void ExpectNoPodLeftovers(const TempDir& dir, const std::vector<std::string>& cgroups) {
  CommandResult pods = RunCommand({"/usr/bin/find", dir / "state/pods", "-mindepth", "1"});
  EXPECT_EQ(pods.out, "") << "pod dirs left";
  CommandResult ctrs = RunCommand({"/usr/bin/find", dir / "root/containers", "-mindepth", "1"});
  EXPECT_EQ(ctrs.out, "") << "container dirs left";
  std::string mounts = ReadFileOrEmpty("/proc/self/mountinfo");
  EXPECT_EQ(mounts.find(dir.path()), std::string::npos) << "mounts left:\n" << mounts;
  EXPECT_TRUE(cgroups.empty()) << "cgroups left: " << cgroups.front();
  CommandResult leases = RunCommand({"/usr/bin/find", dir / "ipam", "-type", "f", "-name", "10.*"});
  EXPECT_EQ(leases.out, "") << "address leases left";
  CommandResult monitors =
      RunCommand({"/usr/bin/pgrep", "-f", "berth-monitor --pod-dir " + dir.path()});
  EXPECT_EQ(monitors.out, "") << "monitors left";
}

// A CNI network `name` at `path`: the bridge plugin on `bridge` (the gateway, no masquerade)
// with host-local addresses from `subnet` leased under `ipam_dir`, then portmap.
inline void WriteBridgeConflist(const std::string& path, const std::string& name,
                                const std::string& bridge, const std::string& subnet,
                                const std::string& ipam_dir) {
  WriteFileOrDie(path, absl::StrCat(R"({
      "cniVersion": "1.0.0", "name": ")",
                                    name, R"(",
      "plugins": [
        {"type": "bridge", "bridge": ")",
                                    bridge, R"(", "isGateway": true, "ipMasq": false,
         "ipam": {"type": "host-local", "dataDir": ")",
                                    ipam_dir, R"(",
                  "ranges": [[{"subnet": ")",
                                    subnet, R"("}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": true}}]})"));
}

}  // namespace berth::testing

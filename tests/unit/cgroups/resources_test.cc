#include "cgroups/resources.h"

#include "cgroups/cgroup.h"
#include "cgroups/v1.h"
#include "gtest/gtest.h"

namespace berth::cgroups {
namespace {

TEST(SharesToWeight, RuncMapping) {
  EXPECT_EQ(SharesToWeight(0), 0u);
  EXPECT_EQ(SharesToWeight(1), 1u);
  EXPECT_EQ(SharesToWeight(2), 1u);
  EXPECT_EQ(SharesToWeight(1024), 39u);  // the kubelet's 1 CPU
  EXPECT_EQ(SharesToWeight(102), 4u);    // 100m
  EXPECT_EQ(SharesToWeight(262144), 10000u);
  EXPECT_EQ(SharesToWeight(1000000), 10000u);
}

TEST(SwapForV2, Arithmetic) {
  using O = std::optional<int64_t>;
  EXPECT_EQ(*SwapForV2(O(), O()), O());
  EXPECT_EQ(*SwapForV2(O(200), O(100)), O(100));  // memory+swap 200, memory 100 -> swap 100
  EXPECT_EQ(*SwapForV2(O(100), O(100)), O(0));    // no swap at all
  EXPECT_EQ(*SwapForV2(O(-1), O(100)), O(-1));
  EXPECT_EQ(*SwapForV2(O(), O(-1)), O(-1));  // unlimited memory: unlimited swap
  EXPECT_EQ(*SwapForV2(O(0), O(-1)), O(-1));
  EXPECT_FALSE(SwapForV2(O(50), O(100)).ok());  // below the limit
  EXPECT_FALSE(SwapForV2(O(50), O()).ok());     // swap without a limit
}

TEST(CpuMax, Values) {
  EXPECT_EQ(CpuMax(50000, 100000), "50000 100000");
  EXPECT_EQ(CpuMax(-1, 100000), "max 100000");
  EXPECT_EQ(CpuMax(std::nullopt, std::nullopt), "max 100000");
  EXPECT_EQ(CpuMax(20000, std::nullopt), "20000 100000");
  EXPECT_EQ(LimitValue(-1), "max");
  EXPECT_EQ(LimitValue(42), "42");
}

TEST(ValidateUnifiedKey, OnlyFilesOfTheCgroupItself) {
  EXPECT_TRUE(ValidateUnifiedKey("memory.high").ok());
  EXPECT_TRUE(ValidateUnifiedKey("io.weight").ok());
  for (const char* bad :
       {"", "memory", ".high", "memory.", "../memory.high", "a/b.c", "cgroup.procs",
        "cgroup.subtree_control", "cgroup.kill", "mem ory.high", "memory.high\n"}) {
    EXPECT_FALSE(ValidateUnifiedKey(bad).ok()) << bad;
  }
}

TEST(ValidateCpuList, Lists) {
  EXPECT_TRUE(ValidateCpuList("0", "cpus").ok());
  EXPECT_TRUE(ValidateCpuList("0-3,5,7-8", "cpus").ok());
  for (const char* bad : {"", "a", "3-1", "0-", "-1", "0,,1", "0 1", "0-1-2"}) {
    EXPECT_FALSE(ValidateCpuList(bad, "cpus").ok()) << bad;
  }
}

TEST(CleanCgroupPath, RelativeToTheRoots) {
  EXPECT_EQ(*CleanCgroupPath("/kubepods/burstable/pod1"), "kubepods/burstable/pod1");
  EXPECT_EQ(*CleanCgroupPath("kubepods//x/"), "kubepods/x");
  EXPECT_FALSE(CleanCgroupPath("/").ok());
  EXPECT_FALSE(CleanCgroupPath("a/../../etc").ok());
  EXPECT_FALSE(CleanCgroupPath("./a").ok());
}

TEST(ParseV1Mounts, HybridHost) {
  const char* mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "
      "rw,cpu,cpuacct\n"
      "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  std::map<std::string, std::string> m = ParseV1Mounts(mountinfo);
  EXPECT_EQ(m.size(), 4u);
  EXPECT_EQ(m["cpu"], "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(m["cpuacct"], "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(m["cpuset"], "/sys/fs/cgroup/cpuset");
  EXPECT_EQ(m["memory"], "/sys/fs/cgroup/memory");
  EXPECT_FALSE(m.count("systemd"));
}

}  // namespace
}  // namespace berth::cgroups

#include "cgroups/layout.h"

namespace berth::cgroups {
namespace {

TEST(PodCgroupParent, KubeletCgroupfsLayout) {
  const char* uid = "5c1b8a8e-2b1f-4c2e-9a55-0123456789ab";
  EXPECT_EQ(*PodCgroupParent(QosClass::kGuaranteed, uid), std::string("kubepods/pod") + uid);
  EXPECT_EQ(*PodCgroupParent(QosClass::kBurstable, uid),
            std::string("kubepods/burstable/pod") + uid);
  EXPECT_EQ(*PodCgroupParent(QosClass::kBestEffort, uid),
            std::string("kubepods/besteffort/pod") + uid);
  EXPECT_FALSE(PodCgroupParent(QosClass::kBurstable, "").ok());
  EXPECT_FALSE(PodCgroupParent(QosClass::kBurstable, "../../x").ok());
}

}  // namespace
}  // namespace berth::cgroups

// UpdateContainerResources' translation: CRI LinuxContainerResources -> cgroups::Resources.
#include "cri/container_resources.h"

#include "gtest/gtest.h"

namespace berth::cri {
namespace {

TEST(ContainerResourcesTest, MapsEveryField) {
  v1::LinuxContainerResources r;
  r.set_cpu_period(100000);
  r.set_cpu_quota(50000);
  r.set_cpu_shares(512);
  r.set_cpuset_cpus("0-1");
  r.set_cpuset_mems("0");
  r.set_memory_limit_in_bytes(64 << 20);
  r.set_memory_swap_limit_in_bytes(128 << 20);
  r.set_oom_score_adj(500);  // ignored
  v1::HugepageLimit* h = r.add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(4 << 20);
  absl::StatusOr<cgroups::Resources> out = ToCgroupResources(r, false);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->cpu.period, 100000u);
  EXPECT_EQ(out->cpu.quota, 50000);
  EXPECT_EQ(out->cpu.shares, 512u);
  EXPECT_EQ(out->cpu.cpus, "0-1");
  EXPECT_EQ(out->cpu.mems, "0");
  EXPECT_EQ(out->memory.limit, 64 << 20);
  EXPECT_EQ(out->memory.swap, 128 << 20);
  EXPECT_EQ(out->hugepage_limits.at("2MB"), 4u << 20);
  EXPECT_TRUE(out->unified.empty());
  EXPECT_TRUE(out->devices.empty()) << "an update never touches the device rules";
}

TEST(ContainerResourcesTest, ZeroMeansUnspecified) {
  absl::StatusOr<cgroups::Resources> out = ToCgroupResources(v1::LinuxContainerResources(), true);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(out->cpu.period);
  EXPECT_FALSE(out->cpu.quota);
  EXPECT_FALSE(out->cpu.shares);
  EXPECT_FALSE(out->memory.limit);
  EXPECT_FALSE(out->memory.swap);
  EXPECT_TRUE(out->cpu.cpus.empty());
}

TEST(ContainerResourcesTest, UnlimitedAndClamped) {
  v1::LinuxContainerResources r;
  r.set_cpu_quota(-1);
  r.set_memory_swap_limit_in_bytes(-1);
  r.set_cpu_shares(1);
  std::vector<std::string> warnings;
  absl::StatusOr<cgroups::Resources> out = ToCgroupResources(r, false, &warnings);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->cpu.quota, -1);
  EXPECT_EQ(out->memory.swap, -1);
  EXPECT_EQ(out->cpu.shares, 2u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("clamped"), std::string::npos);
}

TEST(ContainerResourcesTest, RefusesInvalidValuesNamingTheField) {
  struct Case {
    const char* field;
    void (*set)(v1::LinuxContainerResources*);
  };
  const Case cases[] = {
      {"cpu_period", [](v1::LinuxContainerResources* r) { r->set_cpu_period(10); }},
      {"cpu_period", [](v1::LinuxContainerResources* r) { r->set_cpu_period(2000000); }},
      {"cpu_period", [](v1::LinuxContainerResources* r) { r->set_cpu_period(-1); }},
      {"cpu_quota", [](v1::LinuxContainerResources* r) { r->set_cpu_quota(-2); }},
      {"cpu_quota", [](v1::LinuxContainerResources* r) { r->set_cpu_quota(500); }},
      {"cpu_shares", [](v1::LinuxContainerResources* r) { r->set_cpu_shares(-3); }},
      {"cpuset_cpus", [](v1::LinuxContainerResources* r) { r->set_cpuset_cpus("3-1"); }},
      {"cpuset_mems", [](v1::LinuxContainerResources* r) { r->set_cpuset_mems("a"); }},
      {"memory_limit_in_bytes",
       [](v1::LinuxContainerResources* r) { r->set_memory_limit_in_bytes(-1); }},
      {"memory_swap_limit_in_bytes",
       [](v1::LinuxContainerResources* r) { r->set_memory_swap_limit_in_bytes(-7); }},
      {"memory_swap_limit_in_bytes",
       [](v1::LinuxContainerResources* r) {
         r->set_memory_limit_in_bytes(100 << 20);
         r->set_memory_swap_limit_in_bytes(50 << 20);
       }},
      {"hugepage_limits[0]",
       [](v1::LinuxContainerResources* r) { r->add_hugepage_limits()->set_page_size("2"); }},
      {"hugepage_limits[1]",
       [](v1::LinuxContainerResources* r) {
         r->add_hugepage_limits()->set_page_size("2MB");
         r->add_hugepage_limits()->set_page_size("2MB");
       }},
      {"unified", [](v1::LinuxContainerResources* r) { (*r->mutable_unified())["../x"] = "1"; }},
      {"unified",
       [](v1::LinuxContainerResources* r) { (*r->mutable_unified())["memory.high"] = "1\n2"; }},
  };
  for (const Case& c : cases) {
    v1::LinuxContainerResources r;
    c.set(&r);
    absl::StatusOr<cgroups::Resources> out = ToCgroupResources(r, true);
    ASSERT_FALSE(out.ok()) << c.field << " " << r.DebugString();
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(out.status().message().find(c.field), absl::string_view::npos) << out.status();
  }
}

TEST(ContainerResourcesTest, UnifiedNeedsCgroupV2) {
  v1::LinuxContainerResources r;
  (*r.mutable_unified())["memory.high"] = "1000000";
  EXPECT_EQ(ToCgroupResources(r, false).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<cgroups::Resources> out = ToCgroupResources(r, true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->unified.at("memory.high"), "1000000");
}

TEST(ContainerResourcesTest, MergeKeepsWhatTheUpdateLeavesUnspecified) {
  v1::LinuxContainerResources current;
  current.set_cpu_shares(512);
  current.set_memory_limit_in_bytes(32 << 20);
  current.set_oom_score_adj(100);
  v1::HugepageLimit* h = current.add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(1);
  (*current.mutable_unified())["memory.high"] = "1";
  v1::LinuxContainerResources update;
  update.set_memory_limit_in_bytes(64 << 20);
  update.set_cpu_quota(50000);
  h = update.add_hugepage_limits();
  h->set_page_size("1GB");
  h->set_limit(2);
  (*update.mutable_unified())["pids.max"] = "10";
  v1::LinuxContainerResources m = MergeResources(current, update);
  EXPECT_EQ(m.cpu_shares(), 512);
  EXPECT_EQ(m.memory_limit_in_bytes(), 64 << 20);
  EXPECT_EQ(m.cpu_quota(), 50000);
  EXPECT_EQ(m.oom_score_adj(), 100);
  ASSERT_EQ(m.hugepage_limits_size(), 2);
  EXPECT_EQ(m.hugepage_limits(0).page_size(), "1GB");
  EXPECT_EQ(m.hugepage_limits(1).page_size(), "2MB");
  EXPECT_EQ(m.unified().size(), 2u);
}

}  // namespace
}  // namespace berth::cri

#include "cgroups/mode.h"

#include <linux/magic.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace berth::cgroups {
namespace {

FsTypeFn Fake(std::map<std::string, long> types) {
  return [types](const std::string& path) -> absl::StatusOr<long> {
    auto it = types.find(path);
    if (it == types.end()) return absl::NotFoundError(absl::StrCat("statfs ", path));
    return it->second;
  };
}

TEST(DetectMode, Unified) {
  EXPECT_EQ(*DetectModeWith("/sys/fs/cgroup", Fake({{"/sys/fs/cgroup", CGROUP2_SUPER_MAGIC}})),
            Mode::kUnified);
}

TEST(DetectMode, Hybrid) {
  EXPECT_EQ(
      *DetectModeWith("/sys/fs/cgroup", Fake({{"/sys/fs/cgroup", TMPFS_MAGIC},
                                              {"/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC}})),
      Mode::kHybrid);
}

TEST(DetectMode, Legacy) {
  EXPECT_EQ(*DetectModeWith("/sys/fs/cgroup", Fake({{"/sys/fs/cgroup", TMPFS_MAGIC}})),
            Mode::kLegacy);
  // A unified dir that is not cgroup2 (e.g. an empty tmpfs dir) is still legacy.
  EXPECT_EQ(*DetectModeWith("/sys/fs/cgroup", Fake({{"/sys/fs/cgroup", TMPFS_MAGIC},
                                                    {"/sys/fs/cgroup/unified", TMPFS_MAGIC}})),
            Mode::kLegacy);
}

TEST(DetectMode, NeitherIsAnError) {
  EXPECT_FALSE(DetectModeWith("/sys/fs/cgroup", Fake({{"/sys/fs/cgroup", 0xEF53}})).ok());
  EXPECT_FALSE(DetectModeWith("/sys/fs/cgroup", Fake({})).ok());
}

TEST(DetectMode, RealHostAnswers) {
  // Whatever this host runs, detection must produce one of the three modes.
  absl::StatusOr<Mode> mode = DetectMode();
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_FALSE(ModeName(*mode).empty());
}

}  // namespace
}  // namespace berth::cgroups

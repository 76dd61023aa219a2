#include "base/resident.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

// Code and read-only data are unmapped and come back on use: the process runs on, its
// relocated data (in writable segments, never touched) intact.
TEST(ResidentTest, TrimmedCodeComesBack) {
  static const std::string kBefore = absl::StrCat("relocated ", 42);
  const size_t advised = TrimResidentCode();
  EXPECT_GT(advised, 0u);
  EXPECT_EQ(absl::StrCat("relocated ", 42), kBefore);
  EXPECT_GT(TrimResidentCode({.random_access = true}), 0u);
  std::string s;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&s, i);
  EXPECT_EQ(s.size(), 2890u);
}

}  // namespace
}  // namespace berth

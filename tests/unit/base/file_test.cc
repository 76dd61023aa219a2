#include "base/file.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace berth {
namespace {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-file-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(FileTest, WriteAtomicThenRead) {
  std::string p = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(p, "hello", 0600).ok());
  EXPECT_EQ(*ReadFile(p), "hello");
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(WriteFileAtomic(p, "replaced").ok());
  EXPECT_EQ(*ReadFile(p), "replaced");
}

TEST_F(FileTest, ReadRefusesOversizedAndMissing) {
  std::string p = dir_ + "/big";
  ASSERT_TRUE(WriteFileAtomic(p, std::string(100, 'x')).ok());
  EXPECT_EQ(ReadFile(p, 99).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(ReadFile(p, 100).ok());
  absl::StatusOr<std::string> missing = ReadFile(dir_ + "/none");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir_ + "/none"), std::string::npos);
}

TEST_F(FileTest, MkdirAllCreatesParentsAndRefusesFiles) {
  std::string p = dir_ + "/a/b/c";
  ASSERT_TRUE(MkdirAll(p, 0700).ok());
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(MkdirAll(p).ok());  // idempotent
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/file", "x").ok());
  EXPECT_FALSE(MkdirAll(dir_ + "/file").ok());
  EXPECT_FALSE(MkdirAll(dir_ + "/file/sub").ok());
  EXPECT_FALSE(MkdirAll("").ok());
}

}  // namespace
}  // namespace berth

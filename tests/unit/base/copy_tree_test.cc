#include "base/copy_tree.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "base/file.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

class CopyTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-copy-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::mkdir((dir_ + "/src").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir_ + "/dst").c_str(), 0700), 0);
  }
  void TearDown() override {
    std::system(("chmod -R u+rwx " + dir_ + " 2>/dev/null; rm -rf " + dir_).c_str());
  }
  absl::Status Copy() {
    UniqueFd src(::open((dir_ + "/src").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd dst(::open((dir_ + "/dst").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(src && dst);
    absl::Status st = CopyTreeContents(src.get(), dst.get(), dir_ + "/src");
    if (!st.ok()) return st;
    return CopyDirMetadata(src.get(), dst.get(), dir_ + "/dst");
  }
  mode_t Mode(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((dir_ + "/" + rel).c_str(), &st), 0) << rel;
    return st.st_mode;
  }
  std::string dir_;
};

TEST_F(CopyTreeTest, CopiesEntriesWithTheirMetadata) {
  const std::string s = dir_ + "/src";
  ASSERT_TRUE(WriteFileAtomic(s + "/file", "data", 0640, false).ok());
  ASSERT_EQ(::mkdir((s + "/ro").c_str(), 0755), 0);
  ASSERT_TRUE(WriteFileAtomic(s + "/ro/inner", "inner", 0600, false).ok());
  ASSERT_EQ(::chmod((s + "/ro").c_str(), 0555), 0);  // read-only: its entries go in first
  ASSERT_EQ(::symlink("/etc/passwd", (s + "/abs-link").c_str()), 0);
  ASSERT_EQ(::symlink("../../outside", (s + "/up-link").c_str()), 0);
  ASSERT_EQ(::mkfifo((s + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::chmod((s + "/fifo").c_str(), 0620), 0);
  ASSERT_TRUE(WriteFileAtomic(s + "/sticky", "", 0644, false).ok());
  ASSERT_EQ(::chmod((s + "/sticky").c_str(), 01750), 0);
  const struct timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (s + "/file").c_str(), times, 0), 0);
  const bool xattrs = ::setxattr((s + "/file").c_str(), "user.berth", "v", 1, 0) == 0;
  ASSERT_EQ(::chmod(s.c_str(), 0751), 0);

  ASSERT_TRUE(Copy().ok());
  EXPECT_EQ(*ReadFile(dir_ + "/dst/file"), "data");
  EXPECT_EQ(Mode("dst/file") & 07777, 0640u);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/dst/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
  EXPECT_EQ(st.st_mtim.tv_nsec, 500);
  if (xattrs) {
    char v[8] = {};
    EXPECT_EQ(::getxattr((dir_ + "/dst/file").c_str(), "user.berth", v, sizeof v), 1);
    EXPECT_EQ(v[0], 'v');
  }
  EXPECT_EQ(*ReadFile(dir_ + "/dst/ro/inner"), "inner");
  EXPECT_EQ(Mode("dst/ro") & 07777, 0555u);
  EXPECT_TRUE(S_ISLNK(Mode("dst/abs-link")));
  EXPECT_TRUE(S_ISLNK(Mode("dst/up-link")));
  char target[64] = {};
  ASSERT_GT(::readlink((dir_ + "/dst/up-link").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "../../outside");
  EXPECT_TRUE(S_ISFIFO(Mode("dst/fifo")));
  EXPECT_EQ(Mode("dst/fifo") & 07777, 0620u);
  EXPECT_EQ(Mode("dst/sticky") & 07777, 01750u);
  EXPECT_EQ(Mode("dst") & 07777, 0751u);  // the directory's own metadata
}

TEST_F(CopyTreeTest, ExistingEntriesAndDeepTreesAreErrors) {
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/src/same", "a", 0644, false).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/dst/same", "b", 0644, false).ok());
  absl::Status st = Copy();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("same"), std::string::npos) << st;
  EXPECT_EQ(*ReadFile(dir_ + "/dst/same"), "b");  // not overwritten

  ASSERT_EQ(::unlink((dir_ + "/dst/same").c_str()), 0);
  ASSERT_EQ(::unlink((dir_ + "/src/same").c_str()), 0);
  std::string deep = dir_ + "/src";
  for (int i = 0; i < 300; ++i) {
    deep += "/d";
    ASSERT_EQ(::mkdir(deep.c_str(), 0755), 0);
  }
  st = Copy();
  EXPECT_TRUE(absl::IsResourceExhausted(st)) << st;
}

}  // namespace
}  // namespace berth

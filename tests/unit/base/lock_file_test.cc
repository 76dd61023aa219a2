#include "base/lock_file.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"

namespace berth {
namespace {

TEST(LockFile, SecondHolderIsRefusedWithPid) {
  char tmpl[] = "/tmp/berth-lock-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/lock";
  {
    absl::StatusOr<LockFile> first = LockFile::Acquire(path);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(*ReadFile(path), absl::StrCat(getpid(), "\n"));

    // flock locks belong to the open file description, so a second open in this process
    // conflicts just as another process would; check from a child to be faithful.
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      absl::StatusOr<LockFile> second = LockFile::Acquire(path);
      bool ok =
          !second.ok() && second.status().code() == absl::StatusCode::kFailedPrecondition &&
          second.status().message().find(absl::StrCat("pid ", getppid())) != std::string::npos;
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  // Released with the object.
  EXPECT_TRUE(LockFile::Acquire(path).ok());
  std::system(absl::StrCat("rm -rf ", tmpl).c_str());
}

}  // namespace
}  // namespace berth

#include "base/lock_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth {

absl::StatusOr<LockFile> LockFile::Acquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return LastErrnoError(absl::StrCat("open lock file ", path));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return LastErrnoError(absl::StrCat("flock ", path));
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
    std::string holder = n > 0 ? std::string(absl::StripAsciiWhitespace(std::string(buf, n))) : "";
    return absl::FailedPreconditionError(absl::StrCat(
        "another process", holder.empty() ? "" : absl::StrCat(" (pid ", holder, ")"),
        " holds the lock ", path, "; is another berthd running on the same state directories?"));
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd.get(), 0) != 0) return LastErrnoError(absl::StrCat("truncate ", path));
  if (::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return LastErrnoError(absl::StrCat("write ", path));
  }
  return LockFile(path, std::move(fd));
}

}  // namespace berth

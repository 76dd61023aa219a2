// An exclusive advisory lock (flock) on a file, held for the lifetime of the object.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace berth {

class LockFile {
 public:
  // Creates `path` if needed and takes an exclusive, non-blocking flock on it, then writes the
  // caller's pid into it. When another process holds the lock, fails with FailedPrecondition
  // naming the path and the holder's pid (as recorded in the file).
  static absl::StatusOr<LockFile> Acquire(const std::string& path);

  LockFile(LockFile&&) = default;
  LockFile& operator=(LockFile&&) = default;

  const std::string& path() const { return path_; }

 private:
  LockFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace berth

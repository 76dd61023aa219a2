#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth {

absl::StatusOr<std::string> ReadFd(int fd, const std::string& name, size_t max_size) {
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError(absl::StrCat("read ", name));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size) {
      return absl::ResourceExhaustedError(
          absl::StrCat("read ", name, ": larger than ", max_size, " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return LastErrnoError(absl::StrCat("open ", path));
  return ReadFd(fd.get(), path, max_size);
}

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode,
                             bool sync) {
  // Unique per call, so concurrent writers of the same path never share a temporary file.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return LastErrnoError(absl::StrCat("create ", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status st = LastErrnoError(absl::StrCat("write ", tmp));
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), mode) != 0 || (sync && ::fsync(fd.get()) != 0)) {
    absl::Status st = LastErrnoError(absl::StrCat("sync ", tmp));
    ::unlink(tmp.c_str());
    return st;
  }
  if (::close(fd.release()) != 0) {
    absl::Status st = LastErrnoError(absl::StrCat("close ", tmp));
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = LastErrnoError(absl::StrCat("rename ", tmp, " to ", path));
    ::unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

absl::Status MkdirAll(const std::string& path, mode_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("mkdir: empty path");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return ErrnoError(ENOTDIR, absl::StrCat("mkdir ", path));
  }
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    RETURN_IF_ERROR(MkdirAll(path.substr(0, slash), mode));
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return LastErrnoError(absl::StrCat("mkdir ", path));
  }
  return absl::OkStatus();
}

absl::Status RemoveTreeAt(int parent, const std::string& name) {
  UniqueFd cur(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!cur) {
    if (errno == ENOENT) return absl::OkStatus();
    if (errno == ENOTDIR || errno == ELOOP) {
      if (::unlinkat(parent, name.c_str(), 0) == 0 || errno == ENOENT) return absl::OkStatus();
    }
    return LastErrnoError(absl::StrCat("open directory \"", name, "\" to remove it"));
  }
  std::vector<std::string> stack;
  for (;;) {
    int dup_fd = ::fcntl(cur.get(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return LastErrnoError("dup");
    DIR* d = ::fdopendir(dup_fd);
    if (d == nullptr) {
      int err = errno;
      ::close(dup_fd);
      return ErrnoError(err, "fdopendir");
    }
    std::string subdir;
    absl::Status status;
    for (;;) {
      errno = 0;
      struct dirent* de = ::readdir(d);
      if (de == nullptr) {
        if (errno != 0) status = LastErrnoError("readdir");
        break;
      }
      absl::string_view n = de->d_name;
      if (n == "." || n == "..") continue;
      bool is_dir = de->d_type == DT_DIR;
      if (de->d_type == DT_UNKNOWN) {
        struct stat st;
        if (::fstatat(cur.get(), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          status = LastErrnoError(absl::StrCat("stat \"", n, "\""));
          break;
        }
        is_dir = S_ISDIR(st.st_mode);
      }
      if (is_dir) {
        subdir = std::string(n);
        break;
      }
      if (::unlinkat(cur.get(), de->d_name, 0) != 0) {
        status = LastErrnoError(absl::StrCat("remove \"", n, "\""));
        break;
      }
    }
    ::closedir(d);
    RETURN_IF_ERROR(status);
    if (!subdir.empty()) {
      int fd = ::openat(cur.get(), subdir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return LastErrnoError(absl::StrCat("open directory \"", subdir, "\""));
      cur.reset(fd);
      stack.push_back(std::move(subdir));
      continue;
    }
    if (stack.empty()) break;
    int up = ::openat(cur.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (up < 0) return LastErrnoError("open \"..\"");
    cur.reset(up);
    if (::unlinkat(cur.get(), stack.back().c_str(), AT_REMOVEDIR) != 0) {
      return LastErrnoError(absl::StrCat("remove directory \"", stack.back(), "\""));
    }
    stack.pop_back();
  }
  cur.reset();
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("remove directory \"", name, "\""));
  }
  return absl::OkStatus();
}

}  // namespace berth

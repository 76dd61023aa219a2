#include "base/copy_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth {

namespace {

constexpr int kMaxDepth = 256;

// The extended attributes of an open file or directory, copied to another (`trusted.*` left
// out). Filesystems without xattrs on either side are fine.
absl::Status CopyXattrs(int src, int dst, const std::string& name) {
  std::string names(4096, '\0');
  ssize_t n;
  for (;;) {
    n = ::flistxattr(src, names.data(), names.size());
    if (n >= 0) break;
    if (errno == ERANGE) {
      names.resize(names.size() * 4);
      if (names.size() > (1u << 20))
        return absl::ResourceExhaustedError(name + ": too many xattrs");
      continue;
    }
    if (errno == ENOTSUP || errno == ENOSYS) return absl::OkStatus();
    return LastErrnoError(absl::StrCat("list xattrs of ", name));
  }
  std::string value;
  for (size_t at = 0; at < static_cast<size_t>(n);) {
    const std::string key(names.c_str() + at);
    at += key.size() + 1;
    if (key.empty() || absl::StartsWith(key, "trusted.")) continue;
    ssize_t len = ::fgetxattr(src, key.c_str(), nullptr, 0);
    if (len < 0) {
      if (errno == ENODATA) continue;
      return LastErrnoError(absl::StrCat("get xattr ", key, " of ", name));
    }
    value.resize(static_cast<size_t>(len));
    len = ::fgetxattr(src, key.c_str(), value.data(), value.size());
    if (len < 0) return LastErrnoError(absl::StrCat("get xattr ", key, " of ", name));
    if (::fsetxattr(dst, key.c_str(), value.data(), static_cast<size_t>(len), 0) != 0 &&
        errno != ENOTSUP) {
      return LastErrnoError(absl::StrCat("set xattr ", key, " on the copy of ", name));
    }
  }
  return absl::OkStatus();
}

// Owner, then mode (chown clears setuid/setgid), then times, of an open non-symlink.
absl::Status ApplyMetadata(int fd, const struct stat& st, const std::string& name) {
  if (::fchown(fd, st.st_uid, st.st_gid) != 0) {
    return LastErrnoError(absl::StrCat("chown the copy of ", name));
  }
  if (::fchmod(fd, st.st_mode & 07777) != 0) {
    return LastErrnoError(absl::StrCat("chmod the copy of ", name));
  }
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(fd, times) != 0) return LastErrnoError(absl::StrCat("set times of ", name));
  return absl::OkStatus();
}

absl::Status CopyFileData(int in, int out, const std::string& name) {
  for (;;) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
    if (n == 0) return absl::OkStatus();
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
      return LastErrnoError(absl::StrCat("copy ", name));
    }
    break;  // not across these filesystems: read and write
  }
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LastErrnoError(absl::StrCat("read ", name));
    if (n == 0) return absl::OkStatus();
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return LastErrnoError(absl::StrCat("write the copy of ", name));
      done += w;
    }
  }
}

absl::Status CopyEntries(int src, int dst, const std::string& src_name, int depth) {
  if (depth > kMaxDepth) {
    return absl::ResourceExhaustedError(
        absl::StrCat(src_name, ": more than ", kMaxDepth, " directory levels"));
  }
  int list_fd = ::openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (list_fd < 0) return LastErrnoError(absl::StrCat("open ", src_name));
  DIR* dir = ::fdopendir(list_fd);
  if (dir == nullptr) {
    ::close(list_fd);
    return LastErrnoError(absl::StrCat("read ", src_name));
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(dir)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  const int read_errno = errno;
  ::closedir(dir);
  if (read_errno != 0) return ErrnoError(read_errno, absl::StrCat("read ", src_name));

  for (const std::string& n : names) {
    const std::string name = absl::StrCat(src_name, "/", n);
    struct stat st {};
    if (::fstatat(src, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // gone meanwhile
      return LastErrnoError(absl::StrCat("stat ", name));
    }
    if (S_ISDIR(st.st_mode)) {
      UniqueFd in(::openat(src, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) return LastErrnoError(absl::StrCat("open ", name));
      if (::mkdirat(dst, n.c_str(), 0700) != 0) {
        return LastErrnoError(absl::StrCat("mkdir the copy of ", name));
      }
      UniqueFd out(::openat(dst, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!out) return LastErrnoError(absl::StrCat("open the copy of ", name));
      RETURN_IF_ERROR(CopyEntries(in.get(), out.get(), name, depth + 1));
      RETURN_IF_ERROR(CopyXattrs(in.get(), out.get(), name));
      // Last: a read-only mode would have kept the entries out.
      RETURN_IF_ERROR(ApplyMetadata(out.get(), st, name));
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd in(::openat(src, n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!in) return LastErrnoError(absl::StrCat("open ", name));
      struct stat now {};
      if (::fstat(in.get(), &now) != 0 || !S_ISREG(now.st_mode)) {
        return absl::AbortedError(absl::StrCat(name, " changed while it was copied"));
      }
      UniqueFd out(
          ::openat(dst, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) return LastErrnoError(absl::StrCat("create the copy of ", name));
      RETURN_IF_ERROR(CopyFileData(in.get(), out.get(), name));
      RETURN_IF_ERROR(CopyXattrs(in.get(), out.get(), name));
      RETURN_IF_ERROR(ApplyMetadata(out.get(), now, name));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 256) + 1, '\0');
      ssize_t len = ::readlinkat(src, n.c_str(), target.data(), target.size());
      if (len < 0) return LastErrnoError(absl::StrCat("readlink ", name));
      target.resize(static_cast<size_t>(len));
      if (::symlinkat(target.c_str(), dst, n.c_str()) != 0) {
        return LastErrnoError(absl::StrCat("symlink the copy of ", name));
      }
      if (::fchownat(dst, n.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return LastErrnoError(absl::StrCat("chown the copy of ", name));
      }
      const struct timespec times[2] = {st.st_atim, st.st_mtim};
      (void)::utimensat(dst, n.c_str(), times, AT_SYMLINK_NOFOLLOW);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      if (::mknodat(dst, n.c_str(), st.st_mode & (S_IFMT | 0600), st.st_rdev) != 0) {
        return LastErrnoError(absl::StrCat("mknod the copy of ", name));
      }
      // Opened only by path, never for reading or writing the device.
      UniqueFd out(::openat(dst, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!out) return LastErrnoError(absl::StrCat("open the copy of ", name));
      const std::string path = absl::StrCat("/proc/self/fd/", out.get());
      if (::chown(path.c_str(), st.st_uid, st.st_gid) != 0 ||
          ::chmod(path.c_str(), st.st_mode & 07777) != 0) {
        return LastErrnoError(absl::StrCat("set owner and mode of the copy of ", name));
      }
      const struct timespec times[2] = {st.st_atim, st.st_mtim};
      (void)::utimensat(AT_FDCWD, path.c_str(), times, 0);
    }
    // Sockets are not copied: they mean nothing without their process.
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CopyTreeContents(int src, int dst, const std::string& src_name) {
  return CopyEntries(src, dst, src_name, 0);
}

absl::Status CopyDirMetadata(int src, int dst, const std::string& dst_name) {
  struct stat st {};
  if (::fstat(src, &st) != 0) return LastErrnoError(absl::StrCat("stat the source of ", dst_name));
  RETURN_IF_ERROR(CopyXattrs(src, dst, dst_name));
  return ApplyMetadata(dst, st, dst_name);
}

}  // namespace berth

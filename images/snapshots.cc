#include "images/snapshots.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <deque>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::images {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// The last component of a path NewTmp returned, checked to be a plain name.
absl::StatusOr<std::string> TmpName(const std::string& tmp_root, const std::string& tmp_dir) {
  std::string prefix = tmp_root + "/";
  if (!absl::StartsWith(tmp_dir, prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot tmp dir ", tmp_dir, " is not under ", tmp_root));
  }
  std::string name = tmp_dir.substr(prefix.size());
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("bad snapshot tmp dir ", tmp_dir));
  }
  return name;
}

// The entries of a directory (not . and ..), read through a duplicate of `dir_fd`.
absl::StatusOr<std::vector<std::string>> ListNames(int dir_fd) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return LastErrnoError("dup");
  DIR* d = ::fdopendir(dup_fd);
  if (d == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return ErrnoError(err, "fdopendir");
  }
  std::vector<std::string> names;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* of this thread only.
  while (struct dirent* de = ::readdir(d)) {
    absl::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(const std::string& root) {
  std::string dir = root + "/snapshots";
  RETURN_IF_ERROR(MkdirAll(dir + "/sha256", 0755));
  RETURN_IF_ERROR(MkdirAll(dir + "/sha512", 0755));
  RETURN_IF_ERROR(MkdirAll(dir + "/tmp", 0700));
  return std::unique_ptr<SnapshotStore>(new SnapshotStore(dir));
}

std::string SnapshotStore::AlgDir(const Digest& d) const {
  return absl::StrCat(root_, "/", d.algorithm_name());
}

std::string SnapshotStore::Path(const Digest& chain_id) const {
  return absl::StrCat(AlgDir(chain_id), "/", chain_id.hex());
}

bool SnapshotStore::Has(const Digest& chain_id) const {
  struct stat st;
  return ::lstat(Path(chain_id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::string> SnapshotStore::NewTmp() const {
  std::string tmpl = TmpDir() + "/x-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return LastErrnoError(absl::StrCat("mkdtemp ", tmpl));
  if (::chmod(tmpl.c_str(), 0755) != 0) {
    absl::Status s = LastErrnoError(absl::StrCat("chmod ", tmpl));
    ::rmdir(tmpl.c_str());
    return s;
  }
  return tmpl;
}

absl::Status SnapshotStore::RemoveTmp(const std::string& tmp_dir) const {
  ASSIGN_OR_RETURN(std::string name, TmpName(TmpDir(), tmp_dir));
  UniqueFd tmp(::open(TmpDir().c_str(), kDirFlags));
  if (!tmp) return LastErrnoError(absl::StrCat("open ", TmpDir()));
  return Annotate(RemoveTreeAt(tmp.get(), name), absl::StrCat("removing ", tmp_dir));
}

absl::Status SnapshotStore::Commit(const std::string& tmp_dir, const Digest& chain_id) const {
  ASSIGN_OR_RETURN(std::string name, TmpName(TmpDir(), tmp_dir));
  UniqueFd tmp(::open(TmpDir().c_str(), kDirFlags));
  if (!tmp) return LastErrnoError(absl::StrCat("open ", TmpDir()));
  // Everything the extraction wrote reaches the disk before the snapshot becomes visible.
  if (::syncfs(tmp.get()) != 0) return LastErrnoError(absl::StrCat("syncfs ", TmpDir()));
  std::string alg_dir = AlgDir(chain_id);
  UniqueFd alg(::open(alg_dir.c_str(), kDirFlags));
  if (!alg) return LastErrnoError(absl::StrCat("open ", alg_dir));
  if (::renameat2(tmp.get(), name.c_str(), alg.get(), chain_id.hex().c_str(), RENAME_NOREPLACE) !=
      0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      // Another extraction of the same chain ID won: keep that one.
      return RemoveTreeAt(tmp.get(), name);
    }
    return LastErrnoError(absl::StrCat("rename ", tmp_dir, " to ", Path(chain_id)));
  }
  if (::fsync(alg.get()) != 0) return LastErrnoError(absl::StrCat("fsync ", alg_dir));
  return absl::OkStatus();
}

absl::Status SnapshotStore::Remove(const Digest& chain_id) const {
  std::string alg_dir = AlgDir(chain_id);
  UniqueFd alg(::open(alg_dir.c_str(), kDirFlags));
  if (!alg) return LastErrnoError(absl::StrCat("open ", alg_dir));
  UniqueFd tmp(::open(TmpDir().c_str(), kDirFlags));
  if (!tmp) return LastErrnoError(absl::StrCat("open ", TmpDir()));
  std::string name;
  for (int attempt = 0;; ++attempt) {
    // A unique name in tmp/: the snapshot disappears from its place atomically.
    char buf[64];
    (void)std::snprintf(buf, sizeof(buf), "rm-%d-%lx-%d", static_cast<int>(::getpid()),
                        static_cast<unsigned long>(::gettid()), attempt);
    name = buf;
    if (::renameat2(alg.get(), chain_id.hex().c_str(), tmp.get(), name.c_str(), RENAME_NOREPLACE) ==
        0) {
      break;
    }
    if (errno == ENOENT) return absl::OkStatus();
    if (errno == EEXIST && attempt < 100) continue;
    return LastErrnoError(absl::StrCat("rename ", Path(chain_id), " to ", TmpDir(), "/", name));
  }
  (void)::fsync(alg.get());
  return Annotate(RemoveTreeAt(tmp.get(), name),
                  absl::StrCat("removing snapshot ", chain_id.ToString()));
}

absl::StatusOr<std::vector<Digest>> SnapshotStore::List() const {
  std::vector<Digest> out;
  for (const char* alg : {"sha256", "sha512"}) {
    std::string dir = absl::StrCat(root_, "/", alg);
    UniqueFd fd(::open(dir.c_str(), kDirFlags));
    if (!fd) {
      if (errno == ENOENT) continue;
      return LastErrnoError(absl::StrCat("open ", dir));
    }
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListNames(fd.get()));
    for (const std::string& n : names) {
      absl::StatusOr<Digest> d = Digest::Parse(absl::StrCat(alg, ":", n));
      if (d.ok()) out.push_back(*d);  // anything else is not a snapshot berth made
    }
  }
  return out;
}

absl::Status SnapshotStore::CleanTmp() const {
  UniqueFd tmp(::open(TmpDir().c_str(), kDirFlags));
  if (!tmp) return LastErrnoError(absl::StrCat("open ", TmpDir()));
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListNames(tmp.get()));
  for (const std::string& n : names) {
    RETURN_IF_ERROR(Annotate(RemoveTreeAt(tmp.get(), n), absl::StrCat("cleaning ", TmpDir())));
  }
  return absl::OkStatus();
}

absl::StatusOr<SnapshotUsage> SnapshotStore::Usage() const {
  SnapshotUsage usage;
  std::set<std::pair<dev_t, ino_t>> seen;  // multiply-linked inodes, counted once
  auto count = [&](const struct stat& st) {
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !seen.emplace(st.st_dev, st.st_ino).second) {
      return;
    }
    usage.bytes += static_cast<int64_t>(st.st_blocks) * 512;
    usage.inodes += 1;
  };
  UniqueFd root(::open(root_.c_str(), kDirFlags));
  if (!root) return LastErrnoError(absl::StrCat("open ", root_));
  struct stat st;
  if (::fstat(root.get(), &st) != 0) return LastErrnoError(absl::StrCat("stat ", root_));
  count(st);
  // Breadth first; one directory open at a time, each opened from its parent's fd chain by
  // relative names with O_NOFOLLOW (only directories met in the walk itself are entered).
  std::deque<std::vector<std::string>> queue;
  queue.push_back({});
  while (!queue.empty()) {
    std::vector<std::string> rel = std::move(queue.front());
    queue.pop_front();
    UniqueFd dir(::fcntl(root.get(), F_DUPFD_CLOEXEC, 0));
    if (!dir) return LastErrnoError("dup");
    bool gone = false;
    for (const std::string& part : rel) {
      int fd = ::openat(dir.get(), part.c_str(), kDirFlags);
      if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
          gone = true;  // removed or replaced meanwhile
          break;
        }
        return LastErrnoError(absl::StrCat("open ", root_, "/", absl::StrJoin(rel, "/")));
      }
      dir.reset(fd);
    }
    if (gone) continue;
    DIR* d = ::fdopendir(dir.get());
    if (d == nullptr) return LastErrnoError("fdopendir");
    dir.release();
    absl::Status status;
    // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* only this thread uses.
    while (struct dirent* de = ::readdir(d)) {
      absl::string_view n = de->d_name;
      if (n == "." || n == "..") continue;
      if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        status = LastErrnoError(absl::StrCat("stat ", n));
        break;
      }
      count(st);
      if (S_ISDIR(st.st_mode)) {
        std::vector<std::string> child = rel;
        child.emplace_back(n);
        queue.push_back(std::move(child));
      }
    }
    ::closedir(d);
    RETURN_IF_ERROR(status);
  }
  return usage;
}

}  // namespace berth::images

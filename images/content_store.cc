#include "images/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace berth::images {

namespace {

constexpr size_t kChunk = 1 << 20;  // re-hashing reads
constexpr size_t kMaxRefSize = 4096;
constexpr int kMaxLockAttempts = 1000;  // lost races with commits / clean-ups before giving up

constexpr Digest::Algorithm kAlgorithms[] = {Digest::Algorithm::kSha256,
                                             Digest::Algorithm::kSha512};

absl::string_view AlgorithmName(Digest::Algorithm a) {
  return a == Digest::Algorithm::kSha512 ? "sha512" : "sha256";
}

absl::Time MTime(const struct stat& st) {
  return absl::TimeFromTimespec(st.st_mtim);
}

absl::Status FsyncDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return LastErrnoError(absl::StrCat("open ", path));
  if (::fsync(fd.get()) != 0) return LastErrnoError(absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

// Writes all of `data` at `offset`. Returns the bytes written before an error in `*written`.
absl::Status PwriteAll(int fd, const char* data, size_t len, int64_t offset, size_t* written,
                       const std::string& path) {
  *written = 0;
  while (*written < len) {
    ssize_t n = ::pwrite(fd, data + *written, len - *written,
                         static_cast<off_t>(offset + static_cast<int64_t>(*written)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError(absl::StrCat("write ", path));
    }
    if (n == 0) return ErrnoError(EIO, absl::StrCat("write ", path, ": wrote nothing"));
    *written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Feeds `size` bytes of `fd` from offset 0 into `hasher` (all of it when size < 0). Returns the
// number of bytes hashed.
absl::StatusOr<int64_t> HashFd(int fd, int64_t size, Hasher* hasher, const std::string& path) {
  std::unique_ptr<char[]> buf(new char[kChunk]);
  int64_t done = 0;
  while (size < 0 || done < size) {
    size_t want = size < 0 ? kChunk : static_cast<size_t>(std::min<int64_t>(kChunk, size - done));
    ssize_t n = ::pread(fd, buf.get(), want, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError(absl::StrCat("read ", path));
    }
    if (n == 0) {
      if (size < 0) break;
      return absl::DataLossError(
          absl::StrCat("read ", path, ": file ends at ", done, " bytes, expected ", size));
    }
    hasher->Update(buf.get(), static_cast<size_t>(n));
    done += n;
  }
  return done;
}

// The ingest directory's lock: `dir` is the directory (opened without following symlinks),
// `lock` its flock'ed lock file.
enum class LockResult { kLocked, kBusy, kGone };

absl::StatusOr<LockResult> LockIngest(int dir_fd, const std::string& dir_path, bool wait,
                                      UniqueFd* lock_out) {
  std::string lock_path = absl::StrCat(dir_path, "/lock");
  UniqueFd lock(::openat(dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock) {
    // The directory was removed after we opened it (a commit or a clean-up): start over.
    if (errno == ENOENT) return LockResult::kGone;
    return LastErrnoError(absl::StrCat("open ", lock_path));
  }
  for (;;) {
    if (::flock(lock.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return LockResult::kBusy;
    return LastErrnoError(absl::StrCat("flock ", lock_path));
  }
  // Whoever held the lock may have removed the ingest (commit, discard, clean-up) before
  // releasing it: the lock is only ours if the file is still linked in the directory. (A
  // removed directory cannot gain entries, so this also proves the directory is live.)
  struct stat held, linked;
  if (::fstat(lock.get(), &held) != 0) return LastErrnoError(absl::StrCat("stat ", lock_path));
  if (::fstatat(dir_fd, "lock", &linked, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return LockResult::kGone;
    return LastErrnoError(absl::StrCat("stat ", lock_path));
  }
  if (held.st_dev != linked.st_dev || held.st_ino != linked.st_ino) return LockResult::kGone;
  *lock_out = std::move(lock);
  return LockResult::kLocked;
}

// Removes an ingest directory whose lock we hold: every entry but the lock first, then the lock
// (from then on a new opener may create its own lock file in the directory, which is why
// nothing else is unlinked after it), then the directory, unless a new opener is already in it.
absl::Status RemoveIngestLocked(int dir_fd, const std::string& dir_path) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return LastErrnoError(absl::StrCat("dup ", dir_path));
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    absl::Status st = LastErrnoError(absl::StrCat("opendir ", dir_path));
    ::close(dup_fd);
    return st;
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* only this thread uses.
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && name != "lock") names.push_back(std::move(name));
    errno = 0;
  }
  absl::Status status;
  if (errno != 0) status = LastErrnoError(absl::StrCat("readdir ", dir_path));
  ::closedir(dir);
  RETURN_IF_ERROR(status);
  // Names come from readdir of this very directory and are only used relative to it.
  for (const std::string& name : names) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      if (errno == EISDIR && ::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) == 0) continue;
      return LastErrnoError(absl::StrCat("remove ", dir_path, "/", name));
    }
  }
  if (::unlinkat(dir_fd, "lock", 0) != 0 && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("remove ", dir_path, "/lock"));
  }
  if (::rmdir(dir_path.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST) {
    return LastErrnoError(absl::StrCat("rmdir ", dir_path));
  }
  return absl::OkStatus();
}

struct Ref {
  int64_t expected_size = -1;
  absl::Time started_at = absl::InfinitePast();
};

// The ref file is informational (when the download started); a missing or damaged one is
// simply rewritten.
Ref ReadRef(int dir_fd) {
  Ref ref;
  UniqueFd fd(::openat(dir_fd, "ref", O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return ref;
  char buf[kMaxRefSize];
  ssize_t n;
  do {
    n = ::pread(fd.get(), buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return ref;
  nlohmann::json j = nlohmann::json::parse(std::string(buf, static_cast<size_t>(n)), nullptr,
                                           /*allow_exceptions=*/false);
  if (!j.is_object()) return ref;
  auto size = j.find("expected_size");
  if (size != j.end() && size->is_number_integer()) ref.expected_size = size->get<int64_t>();
  auto started = j.find("started_at");
  absl::Time t;
  std::string err;
  if (started != j.end() && started->is_string() &&
      absl::ParseTime(absl::RFC3339_full, started->get<std::string>(), &t, &err)) {
    ref.started_at = t;
  }
  return ref;
}

absl::Status WriteRef(int dir_fd, const std::string& dir_path, const Digest& digest,
                      const Ref& ref) {
  nlohmann::json j = {
      {"digest", digest.ToString()},
      {"expected_size", ref.expected_size},
      {"started_at", absl::FormatTime(absl::RFC3339_full, ref.started_at, absl::UTCTimeZone())},
  };
  std::string text = j.dump() + "\n";
  std::string path = absl::StrCat(dir_path, "/ref");
  UniqueFd fd(::openat(dir_fd, "ref", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return LastErrnoError(absl::StrCat("open ", path));
  size_t written = 0;
  return PwriteAll(fd.get(), text.data(), text.size(), 0, &written, path);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ContentStore

absl::StatusOr<std::unique_ptr<ContentStore>> ContentStore::Open(const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("content store: empty root");
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  std::unique_ptr<ContentStore> store(new ContentStore(r));
  for (Digest::Algorithm a : kAlgorithms) RETURN_IF_ERROR(MkdirAll(store->BlobDir(a)));
  RETURN_IF_ERROR(MkdirAll(absl::StrCat(r, "/ingest")));
  // The directories must outlive a power loss too, or committed blobs would vanish with them.
  RETURN_IF_ERROR(FsyncDir(absl::StrCat(r, "/blobs")));
  RETURN_IF_ERROR(FsyncDir(r));
  return store;
}

std::string ContentStore::BlobDir(Digest::Algorithm algorithm) const {
  return absl::StrCat(root_, "/blobs/", AlgorithmName(algorithm));
}

std::string ContentStore::BlobPath(const Digest& digest) const {
  return absl::StrCat(BlobDir(digest.algorithm()), "/", digest.hex());
}

std::string ContentStore::IngestPath(const Digest& digest) const {
  return absl::StrCat(root_, "/ingest/", digest.algorithm_name(), "-", digest.hex());
}

bool ContentStore::Has(const Digest& digest) const {
  struct stat st;
  return ::lstat(BlobPath(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<BlobInfo> ContentStore::Info(const Digest& digest) const {
  std::string path = BlobPath(digest);
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " not found"));
    return LastErrnoError(absl::StrCat("stat ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat("blob ", digest.ToString(), ": ", path, " is not a regular file"));
  }
  return BlobInfo{digest, static_cast<int64_t>(st.st_size), MTime(st)};
}

absl::StatusOr<UniqueFd> ContentStore::OpenBlob(const Digest& digest) const {
  std::string path = BlobPath(digest);
  // O_NONBLOCK: a planted FIFO must not block the open; O_NOFOLLOW: nor a symlink lead out.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT)
      return absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " not found"));
    if (errno == ELOOP) {
      return absl::NotFoundError(
          absl::StrCat("blob ", digest.ToString(), ": ", path, " is a symlink"));
    }
    return LastErrnoError(absl::StrCat("open ", path));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoError(absl::StrCat("stat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat("blob ", digest.ToString(), ": ", path, " is not a regular file"));
  }
  if (::fcntl(fd.get(), F_SETFL, O_RDONLY) != 0)
    return LastErrnoError(absl::StrCat("fcntl ", path));
  return fd;
}

absl::StatusOr<std::string> ContentStore::ReadBlob(const Digest& digest, size_t max_size) const {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenBlob(digest));
  std::string path = BlobPath(digest);
  ASSIGN_OR_RETURN(std::string out, ReadFd(fd.get(), absl::StrCat("blob ", path), max_size));
  Digest actual = Digest::Of(out, digest.algorithm());
  if (actual != digest) {
    return absl::DataLossError(absl::StrCat("blob ", path, " is corrupt: expected ",
                                            digest.ToString(), ", content hashes to ",
                                            actual.ToString()));
  }
  return out;
}

absl::Status ContentStore::Verify(const Digest& digest) const {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenBlob(digest));
  std::string path = BlobPath(digest);
  Hasher hasher(digest.algorithm());
  RETURN_IF_ERROR(HashFd(fd.get(), -1, &hasher, path).status());
  Digest actual = hasher.Finish();
  if (actual != digest) {
    return absl::DataLossError(absl::StrCat("blob ", path, " is corrupt: expected ",
                                            digest.ToString(), ", content hashes to ",
                                            actual.ToString()));
  }
  return absl::OkStatus();
}

absl::Status ContentStore::Delete(const Digest& digest) const {
  std::string path = BlobPath(digest);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("remove ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<BlobInfo>> ContentStore::List(size_t* skipped) const {
  std::vector<BlobInfo> out;
  size_t junk = 0;
  // Unknown entries directly under blobs/ (algorithms berth does not know, files).
  {
    std::string blobs = absl::StrCat(root_, "/blobs");
    DIR* dir = ::opendir(blobs.c_str());
    if (dir == nullptr) return LastErrnoError(absl::StrCat("opendir ", blobs));
    errno = 0;
    // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* only this thread uses.
    while (struct dirent* e = ::readdir(dir)) {
      absl::string_view name = e->d_name;
      if (name != "." && name != ".." && name != "sha256" && name != "sha512") ++junk;
      errno = 0;
    }
    absl::Status st =
        errno != 0 ? LastErrnoError(absl::StrCat("readdir ", blobs)) : absl::OkStatus();
    ::closedir(dir);
    RETURN_IF_ERROR(st);
  }
  for (Digest::Algorithm a : kAlgorithms) {
    std::string path = BlobDir(a);
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) {
      if (errno == ENOENT) continue;
      return LastErrnoError(absl::StrCat("opendir ", path));
    }
    errno = 0;
    // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* only this thread uses.
    while (struct dirent* e = ::readdir(dir)) {
      absl::string_view name = e->d_name;
      if (name == "." || name == "..") {
        errno = 0;
        continue;
      }
      absl::StatusOr<Digest> d = Digest::Parse(absl::StrCat(AlgorithmName(a), ":", name));
      struct stat st;
      // The name is a valid digest here, so the path is built from the digest, not the name.
      if (!d.ok() || d->algorithm() != a || ::lstat(BlobPath(*d).c_str(), &st) != 0 ||
          !S_ISREG(st.st_mode)) {
        ++junk;
      } else {
        out.push_back(BlobInfo{*d, static_cast<int64_t>(st.st_size), MTime(st)});
      }
      errno = 0;
    }
    absl::Status st =
        errno != 0 ? LastErrnoError(absl::StrCat("readdir ", path)) : absl::OkStatus();
    ::closedir(dir);
    RETURN_IF_ERROR(st);
  }
  std::sort(out.begin(), out.end(),
            [](const BlobInfo& a, const BlobInfo& b) { return a.digest < b.digest; });
  if (skipped != nullptr) *skipped = junk;
  return out;
}

absl::StatusOr<ContentUsage> ContentStore::Usage() const {
  ASSIGN_OR_RETURN(std::vector<BlobInfo> blobs, List());
  ContentUsage usage;
  for (const BlobInfo& b : blobs) {
    usage.bytes += b.size;
    ++usage.inodes;
  }
  return usage;
}

absl::StatusOr<std::unique_ptr<ContentStore::Writer>> ContentStore::OpenWriter(
    const Digest& digest, int64_t expected_size, bool wait) const {
  std::string dir_path = IngestPath(digest);
  auto already = [&] {
    return absl::AlreadyExistsError(absl::StrCat("blob ", digest.ToString(), " already exists"));
  };
  for (int attempt = 0; attempt < kMaxLockAttempts; ++attempt) {
    if (Has(digest)) return already();
    if (::mkdir(dir_path.c_str(), 0755) != 0 && errno != EEXIST) {
      return LastErrnoError(absl::StrCat("mkdir ", dir_path));
    }
    UniqueFd dir_fd(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir_fd) {
      if (errno == ENOENT) continue;  // removed between mkdir and open
      return LastErrnoError(absl::StrCat("open ", dir_path));
    }
    UniqueFd lock_fd;
    ASSIGN_OR_RETURN(LockResult locked, LockIngest(dir_fd.get(), dir_path, wait, &lock_fd));
    if (locked == LockResult::kGone) continue;
    if (locked == LockResult::kBusy) {
      return absl::UnavailableError(absl::StrCat("blob ", digest.ToString(),
                                                 " is being written by another writer (", dir_path,
                                                 " is locked)"));
    }
    if (Has(digest)) {
      // Committed by someone else since the first check; this ingest is useless.
      absl::Status st = RemoveIngestLocked(dir_fd.get(), dir_path);
      if (!st.ok())
        log::Warn("removing a stale ingest", {{"path", dir_path}, {"error", st.ToString()}});
      return already();
    }

    std::unique_ptr<Writer> w(new Writer(this, digest, expected_size));
    w->ingest_dir_ = dir_path;
    w->dir_fd_ = std::move(dir_fd);
    w->lock_fd_ = std::move(lock_fd);
    Ref ref = ReadRef(w->dir_fd_.get());
    if (ref.started_at == absl::InfinitePast()) ref.started_at = absl::Now();
    w->started_at_ = ref.started_at;
    ref.expected_size = expected_size;
    RETURN_IF_ERROR(WriteRef(w->dir_fd_.get(), dir_path, digest, ref));

    std::string data_path = absl::StrCat(dir_path, "/data");
    int fd = ::openat(w->dir_fd_.get(), "data", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 && errno == EACCES) {
      // A commit that failed after making the data read-only (and this is not root).
      if (::fchmodat(w->dir_fd_.get(), "data", 0644, 0) != 0) {
        return LastErrnoError(absl::StrCat("chmod ", data_path));
      }
      fd = ::openat(w->dir_fd_.get(), "data", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    }
    if (fd < 0) return LastErrnoError(absl::StrCat("open ", data_path));
    w->data_fd_.reset(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return LastErrnoError(absl::StrCat("stat ", data_path));
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(data_path, " is not a regular file"));
    }
    int64_t existing = st.st_size;
    if (expected_size >= 0 && existing > expected_size) {
      // Longer than the blob can be: nothing in it is worth keeping.
      if (::ftruncate(fd, 0) != 0) return LastErrnoError(absl::StrCat("truncate ", data_path));
      existing = 0;
    }
    RETURN_IF_ERROR(w->Rehash(existing));
    return w;
  }
  return absl::AbortedError(absl::StrCat("could not lock ", dir_path, " after ", kMaxLockAttempts,
                                         " attempts: it keeps being removed"));
}

absl::StatusOr<std::vector<Digest>> ContentStore::CleanIngests(absl::Duration older_than) const {
  std::string ingest = absl::StrCat(root_, "/ingest");
  std::vector<std::string> names;
  {
    DIR* dir = ::opendir(ingest.c_str());
    if (dir == nullptr) return LastErrnoError(absl::StrCat("opendir ", ingest));
    errno = 0;
    // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* only this thread uses.
    while (struct dirent* e = ::readdir(dir)) {
      names.emplace_back(e->d_name);
      errno = 0;
    }
    absl::Status st =
        errno != 0 ? LastErrnoError(absl::StrCat("readdir ", ingest)) : absl::OkStatus();
    ::closedir(dir);
    RETURN_IF_ERROR(st);
  }
  absl::Time cutoff = absl::Now() - older_than;
  std::vector<Digest> removed;
  for (const std::string& name : names) {
    size_t dash = name.find('-');
    if (dash == std::string::npos) continue;
    absl::StatusOr<Digest> d =
        Digest::Parse(absl::StrCat(name.substr(0, dash), ":", name.substr(dash + 1)));
    if (!d.ok()) continue;
    // Paths come from the digest; the name must be exactly the digest's ingest name.
    std::string path = IngestPath(*d);
    if (path != absl::StrCat(ingest, "/", name)) continue;
    UniqueFd dir_fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir_fd) continue;  // gone, a symlink, not a directory: not ours to touch
    struct stat st;
    if (::fstat(dir_fd.get(), &st) != 0) return LastErrnoError(absl::StrCat("stat ", path));
    // Last activity: the data's or ref's mtime, else the directory's (taken before the lock
    // file may be created in it).
    absl::Time last = absl::InfinitePast();
    for (const char* f : {"data", "ref"}) {
      struct stat fst;
      if (::fstatat(dir_fd.get(), f, &fst, AT_SYMLINK_NOFOLLOW) == 0)
        last = std::max(last, MTime(fst));
    }
    if (last == absl::InfinitePast()) last = MTime(st);
    if (last > cutoff) continue;
    UniqueFd lock_fd;
    absl::StatusOr<LockResult> locked = LockIngest(dir_fd.get(), path, /*wait=*/false, &lock_fd);
    if (!locked.ok()) {
      log::Warn("cannot lock an ingest", {{"path", path}, {"error", locked.status().ToString()}});
      continue;
    }
    if (*locked != LockResult::kLocked) continue;  // in use, or just removed by its owner
    RETURN_IF_ERROR(RemoveIngestLocked(dir_fd.get(), path));
    removed.push_back(*d);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// Writer

ContentStore::Writer::Writer(const ContentStore* store, Digest digest, int64_t expected_size)
    : store_(store),
      digest_(std::move(digest)),
      expected_size_(expected_size < 0 ? -1 : expected_size),
      hasher_(digest_.algorithm()) {}

ContentStore::Writer::~Writer() {
  Abort(false);
}

absl::Status ContentStore::Writer::Rehash(int64_t size) {
  Hasher hasher(digest_.algorithm());
  ASSIGN_OR_RETURN(int64_t n,
                   HashFd(data_fd_.get(), size, &hasher, absl::StrCat(ingest_dir_, "/data")));
  hasher_ = std::move(hasher);
  offset_ = n;
  return absl::OkStatus();
}

absl::Status ContentStore::Writer::Write(const void* data, size_t len) {
  if (done_) {
    return absl::FailedPreconditionError(
        absl::StrCat("writer of ", digest_.ToString(), " is already committed or aborted"));
  }
  if (len == 0) return absl::OkStatus();
  if (expected_size_ >= 0 && (len > static_cast<uint64_t>(expected_size_) ||
                              offset_ > expected_size_ - static_cast<int64_t>(len))) {
    return absl::ResourceExhaustedError(
        absl::StrCat("blob ", digest_.ToString(), ": refusing to write ", len, " bytes at offset ",
                     offset_, ": more than the expected size of ", expected_size_, " bytes"));
  }
  size_t written = 0;
  absl::Status st = PwriteAll(data_fd_.get(), static_cast<const char*>(data), len, offset_,
                              &written, absl::StrCat(ingest_dir_, "/data"));
  // Whatever reached the file is hashed, so offset and hash always describe the file.
  hasher_.Update(data, written);
  offset_ += static_cast<int64_t>(written);
  return st;
}

absl::Status ContentStore::Writer::Truncate(int64_t size) {
  if (done_) {
    return absl::FailedPreconditionError(
        absl::StrCat("writer of ", digest_.ToString(), " is already committed or aborted"));
  }
  if (size < 0 || size > offset_) {
    return absl::InvalidArgumentError(absl::StrCat("truncate ", digest_.ToString(), " to ", size,
                                                   ": only ", offset_, " bytes written"));
  }
  std::string data_path = absl::StrCat(ingest_dir_, "/data");
  if (::ftruncate(data_fd_.get(), static_cast<off_t>(size)) != 0) {
    return LastErrnoError(absl::StrCat("truncate ", data_path));
  }
  return Rehash(size);
}

absl::StatusOr<std::string> ContentStore::Writer::Commit() {
  if (done_) {
    return absl::FailedPreconditionError(
        absl::StrCat("writer of ", digest_.ToString(), " is already committed or aborted"));
  }
  std::string data_path = absl::StrCat(ingest_dir_, "/data");
  if (expected_size_ >= 0 && offset_ != expected_size_) {
    Finish(/*remove_ingest=*/true);
    return absl::DataLossError(absl::StrCat("blob ", digest_.ToString(),
                                            ": size mismatch: expected ", expected_size_,
                                            " bytes, got ", offset_));
  }
  Digest actual = hasher_.Finish();
  if (actual != digest_) {
    Finish(/*remove_ingest=*/true);
    return absl::DataLossError(absl::StrCat("blob ", digest_.ToString(),
                                            ": digest mismatch: expected ", digest_.ToString(),
                                            ", got ", actual.ToString(), " (", offset_, " bytes)"));
  }
  if (::fsync(data_fd_.get()) != 0) {
    absl::Status st = LastErrnoError(absl::StrCat("fsync ", data_path));
    Finish(false);
    return st;
  }
  if (::fchmod(data_fd_.get(), 0444) != 0) {
    absl::Status st = LastErrnoError(absl::StrCat("chmod ", data_path));
    Finish(false);
    return st;
  }
  std::string blob = store_->BlobPath(digest_);
  if (::renameat(dir_fd_.get(), "data", AT_FDCWD, blob.c_str()) != 0) {
    absl::Status st = LastErrnoError(absl::StrCat("rename ", data_path, " to ", blob));
    if (::fchmod(data_fd_.get(), 0644) != 0) {
      log::Warn("cannot make an ingest writable again",
                {{"path", data_path}, {"error", ErrnoString(errno)}});
    }
    Finish(false);
    return st;
  }
  // The rename must reach the disk before anyone relies on the blob.
  absl::Status synced = FsyncDir(store_->BlobDir(digest_.algorithm()));
  Finish(/*remove_ingest=*/true);
  RETURN_IF_ERROR(synced);
  return blob;
}

void ContentStore::Writer::Abort(bool discard) {
  if (done_) return;
  Finish(discard);
}

void ContentStore::Writer::Finish(bool remove_ingest) {
  done_ = true;
  if (remove_ingest && dir_fd_) {
    absl::Status st = RemoveIngestLocked(dir_fd_.get(), ingest_dir_);
    if (!st.ok()) {
      log::Warn("cannot remove an ingest", {{"path", ingest_dir_}, {"error", st.ToString()}});
    }
  }
  data_fd_.reset();
  lock_fd_.reset();  // releases the flock; waiters find the ingest gone and start over
  dir_fd_.reset();
}

}  // namespace berth::images

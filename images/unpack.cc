#include "images/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::images {

namespace {

constexpr size_t kChunkSize = 1 << 20;  // tar bytes handed to the extractor at a time
constexpr size_t kQueueChunks = 4;      // chunks in flight: bounded memory
constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

absl::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "tar";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "?";
}

int OpenAt2(int dirfd, const std::string& path, uint64_t flags, uint64_t resolve) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = flags;
  how.resolve = resolve;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, path.empty() ? "." : path.c_str(), &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a rename raced with the lookup (RESOLVE_IN_ROOT is conservative); retry.
    if (errno != EAGAIN && errno != EINTR) return -1;
  }
}

constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

// A cleaned entry name: "a/b/c" relative to the layer root, "" for the root itself.
absl::StatusOr<std::string> CleanName(absl::string_view raw) {
  if (raw.empty()) return absl::InvalidArgumentError("empty name");
  if (raw.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("name longer than ", PATH_MAX - 1, " bytes"));
  }
  std::string out;
  for (absl::string_view part : absl::StrSplit(raw, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return absl::InvalidArgumentError("name has a \"..\" component");
    if (!out.empty()) out.push_back('/');
    absl::StrAppend(&out, part);
  }
  return out;
}

void SplitName(const std::string& name, std::string* dir, std::string* base) {
  size_t slash = name.rfind('/');
  if (slash == std::string::npos) {
    dir->clear();
    *base = name;
  } else {
    *dir = name.substr(0, slash);
    *base = name.substr(slash + 1);
  }
}

absl::Status WriteAll(int fd, const char* data, size_t size, int64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError("write");
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

// Removes whatever `name` in `parent` is (nothing is fine).
absl::Status RemoveExisting(int parent, const std::string& name) {
  struct stat st;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoError("stat existing entry");
  }
  if (S_ISDIR(st.st_mode)) return RemoveTreeAt(parent, name);
  if (::unlinkat(parent, name.c_str(), 0) != 0) return LastErrnoError("remove existing entry");
  return absl::OkStatus();
}

struct Xattr {
  std::string name, value;
};

// The tar's bytes, one chunk at a time, from Write() to the extractor.
class ChunkQueue {
 public:
  // Blocks while full. Returns false when the consumer is gone (finished or cancelled).
  bool Push(std::string chunk) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return queue_.size() < kQueueChunks || consumer_done_; });
    if (consumer_done_) return false;
    queue_.push_back(std::move(chunk));
    not_empty_.notify_one();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    not_empty_.notify_all();
  }
  // Consumer side: the next chunk; nullopt-like false at end of stream (`*cancelled` says why).
  bool Pop(std::string* chunk, bool* cancelled) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !queue_.empty() || closed_ || cancelled_; });
    *cancelled = cancelled_;
    if (cancelled_ || queue_.empty()) return false;
    *chunk = std::move(queue_.front());
    queue_.pop_front();
    not_full_.notify_one();
    return true;
  }
  // Consumer side: it reads no more; producers stop blocking and drop their chunks.
  void ConsumerDone() {
    std::lock_guard<std::mutex> lock(mu_);
    consumer_done_ = true;
    queue_.clear();
    not_full_.notify_all();
  }
  bool consumer_done() {
    std::lock_guard<std::mutex> lock(mu_);
    return consumer_done_;
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::string> queue_;
  bool closed_ = false, cancelled_ = false, consumer_done_ = false;
};

// Creates the entries of a tar read from a ChunkQueue under a root directory fd.
class Extractor {
 public:
  Extractor(UniqueFd root, ChunkQueue* queue, uint64_t max_entries)
      : root_(std::move(root)), queue_(queue), max_entries_(max_entries) {}

  absl::Status Run() {
    struct archive* a = ::archive_read_new();
    if (a == nullptr) return absl::ResourceExhaustedError("archive_read_new failed");
    absl::Status status = RunWith(a);
    ::archive_read_free(a);
    return status;
  }

  uint64_t entries() const { return entries_; }

 private:
  static la_ssize_t ReadCallback(struct archive* a, void* client, const void** buf) {
    auto* self = static_cast<Extractor*>(client);
    bool cancelled = false;
    if (!self->queue_->Pop(&self->current_, &cancelled)) {
      if (cancelled) {
        ::archive_set_error(a, ECANCELED, "extraction cancelled");
        return -1;
      }
      return 0;  // end of stream
    }
    *buf = self->current_.data();
    return static_cast<la_ssize_t>(self->current_.size());
  }

  absl::Status ArchiveError(struct archive* a, absl::string_view what) {
    const char* msg = ::archive_error_string(a);
    std::string where = last_name_.empty() ? std::string("at the start")
                                           : absl::StrCat("after entry \"", last_name_, "\"");
    return absl::DataLossError(
        absl::StrCat("layer tar: ", what, " ", where, ": ", msg ? msg : "unknown error"));
  }

  absl::Status RunWith(struct archive* a) {
    if (::archive_read_support_format_tar(a) != ARCHIVE_OK ||
        ::archive_read_support_format_empty(a) != ARCHIVE_OK) {
      return absl::InternalError("libarchive without tar support");
    }
    if (::archive_read_open(a, this, nullptr, &Extractor::ReadCallback, nullptr) != ARCHIVE_OK) {
      return ArchiveError(a, "not a tar archive");
    }
    for (;;) {
      struct archive_entry* entry = nullptr;
      int r = ::archive_read_next_header(a, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return ArchiveError(a, "reading the header");
      const char* raw = ::archive_entry_pathname(entry);
      if (raw == nullptr) raw = ::archive_entry_pathname_utf8(entry);
      if (raw == nullptr) return ArchiveError(a, "entry without a usable name");
      last_name_ = raw;
      if (++entries_ > max_entries_) {
        return absl::ResourceExhaustedError(
            absl::StrCat("layer has more than ", max_entries_, " entries"));
      }
      absl::Status status = Apply(a, entry, raw);
      if (!status.ok()) {
        return Annotate(status, absl::StrCat("layer entry \"", absl::CHexEscape(raw), "\""));
      }
    }
    return FinishDirectories();
  }

  // The parent directory of an entry, created (0755, 0:0) when missing.
  absl::StatusOr<UniqueFd> OpenDir(const std::string& dir, bool create) {
    int fd = OpenAt2(root_.get(), dir, O_PATH | O_DIRECTORY | O_CLOEXEC, kResolve);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != ENOENT || !create) {
      return LastErrnoError(absl::StrCat("open directory \"", dir, "\" in the layer"));
    }
    // Create the missing components one by one, each resolved from the root again.
    UniqueFd parent(OpenAt2(root_.get(), "", O_PATH | O_DIRECTORY | O_CLOEXEC, kResolve));
    if (!parent) return LastErrnoError("open the layer root");
    std::string prefix;
    for (absl::string_view part : absl::StrSplit(dir, '/')) {
      if (!prefix.empty()) prefix.push_back('/');
      absl::StrAppend(&prefix, part);
      int next = OpenAt2(root_.get(), prefix, O_PATH | O_DIRECTORY | O_CLOEXEC, kResolve);
      if (next < 0 && errno == ENOENT) {
        std::string name(part);
        if (::mkdirat(parent.get(), name.c_str(), 0755) == 0) {
          // Just created by us (not a symlink): 0755 whatever the umask.
          if (::fchmodat(parent.get(), name.c_str(), 0755, 0) != 0) {
            return LastErrnoError(absl::StrCat("chmod missing parent \"", prefix, "\""));
          }
        } else if (errno != EEXIST) {
          return LastErrnoError(absl::StrCat("create missing parent \"", prefix, "\""));
        }
        next = OpenAt2(root_.get(), prefix, O_PATH | O_DIRECTORY | O_CLOEXEC, kResolve);
      }
      if (next < 0) return LastErrnoError(absl::StrCat("open directory \"", prefix, "\""));
      parent.reset(next);
    }
    return parent;
  }

  static std::vector<Xattr> XattrsOf(struct archive_entry* entry) {
    std::vector<Xattr> out;
    ::archive_entry_xattr_reset(entry);
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (::archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
      if (name == nullptr || absl::StartsWith(name, "trusted.overlay.")) continue;
      out.push_back({name, std::string(static_cast<const char*>(value), size)});
    }
    return out;
  }

  struct Meta {
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t mode = 0;
    struct timespec times[2] = {};  // atime, mtime
    std::vector<Xattr> xattrs;
  };

  static absl::StatusOr<Meta> MetaOf(struct archive_entry* entry) {
    Meta m;
    int64_t uid = ::archive_entry_uid(entry), gid = ::archive_entry_gid(entry);
    if (uid < 0 || uid >= 0xffffffffLL || gid < 0 || gid >= 0xffffffffLL) {
      return absl::InvalidArgumentError(absl::StrCat("owner ", uid, ":", gid, " out of range"));
    }
    m.uid = static_cast<uid_t>(uid);
    m.gid = static_cast<gid_t>(gid);
    m.mode = ::archive_entry_perm(entry) & 07777;
    m.times[1].tv_nsec = UTIME_OMIT;
    if (::archive_entry_mtime_is_set(entry)) {
      m.times[1].tv_sec = ::archive_entry_mtime(entry);
      m.times[1].tv_nsec = ::archive_entry_mtime_nsec(entry);
    }
    m.times[0] = m.times[1];
    if (::archive_entry_atime_is_set(entry)) {
      m.times[0].tv_sec = ::archive_entry_atime(entry);
      m.times[0].tv_nsec = ::archive_entry_atime_nsec(entry);
    }
    m.xattrs = XattrsOf(entry);
    return m;
  }

  // Owner, mode and xattrs through an fd open on the entry itself (files, directories).
  static absl::Status ApplyFdMeta(int fd, const Meta& m) {
    if (::fchown(fd, m.uid, m.gid) != 0) {
      return LastErrnoError(absl::StrCat("chown ", m.uid, ":", m.gid));
    }
    if (::fchmod(fd, m.mode) != 0) return LastErrnoError(absl::StrFormat("chmod %04o", m.mode));
    for (const Xattr& x : m.xattrs) {
      if (::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) {
        return LastErrnoError(absl::StrCat("set xattr ", x.name));
      }
    }
    return absl::OkStatus();
  }

  // The same, by name in `parent`, for what cannot be opened (symlinks, devices, fifos).
  static absl::Status ApplyPathMeta(int parent, const std::string& name, const Meta& m,
                                    bool chmod) {
    if (::fchownat(parent, name.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return LastErrnoError(absl::StrCat("chown ", m.uid, ":", m.gid));
    }
    // We just created `name` as a non-symlink in a directory only we write: no follow risk.
    if (chmod && ::fchmodat(parent, name.c_str(), m.mode, 0) != 0) {
      return LastErrnoError(absl::StrFormat("chmod %04o", m.mode));
    }
    if (!m.xattrs.empty()) {
      std::string path = absl::StrCat("/proc/self/fd/", parent, "/", name);
      for (const Xattr& x : m.xattrs) {
        if (::lsetxattr(path.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) {
          return LastErrnoError(absl::StrCat("set xattr ", x.name));
        }
      }
    }
    if (::utimensat(parent, name.c_str(), m.times, AT_SYMLINK_NOFOLLOW) != 0) {
      return LastErrnoError("set times");
    }
    return absl::OkStatus();
  }

  absl::Status Apply(struct archive* a, struct archive_entry* entry, const char* raw) {
    ASSIGN_OR_RETURN(std::string name, CleanName(raw));
    std::string dir, base;
    SplitName(name, &dir, &base);
    const mode_t type = ::archive_entry_filetype(entry);
    const char* hardlink = ::archive_entry_hardlink(entry);
    if (hardlink == nullptr) hardlink = ::archive_entry_hardlink_utf8(entry);

    // Whiteouts.
    if (absl::StartsWith(base, kWhiteoutPrefix)) {
      if (base == kOpaqueMarker) {
        ASSIGN_OR_RETURN(UniqueFd d, OpenDir(dir, /*create=*/true));
        UniqueFd rd(OpenAt2(d.get(), "", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
        if (!rd) return LastErrnoError("open the opaque directory");
        if (::fsetxattr(rd.get(), kOpaqueXattr, "y", 1, 0) != 0) {
          return LastErrnoError(absl::StrCat("set xattr ", kOpaqueXattr));
        }
        return absl::OkStatus();
      }
      if (absl::StartsWith(base, ".wh..wh.")) return absl::OkStatus();  // aufs metadata
      std::string target = base.substr(strlen(kWhiteoutPrefix));
      if (target.empty() || target == "." || target == "..") {
        return absl::InvalidArgumentError("whiteout without a name");
      }
      ASSIGN_OR_RETURN(UniqueFd parent, OpenDir(dir, /*create=*/true));
      RETURN_IF_ERROR(RemoveExisting(parent.get(), target));
      if (::mknodat(parent.get(), target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
        return LastErrnoError("create the whiteout device");
      }
      return absl::OkStatus();
    }

    if (name.empty()) {  // "./" or "/": the layer root itself
      if (type != AE_IFDIR || hardlink != nullptr) {
        return absl::InvalidArgumentError("names the layer root but is not a directory");
      }
      ASSIGN_OR_RETURN(Meta m, MetaOf(entry));
      UniqueFd rd(OpenAt2(root_.get(), "", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
      if (!rd) return LastErrnoError("open the layer root");
      RETURN_IF_ERROR(ApplyFdMeta(rd.get(), m));
      dir_times_[name] = {m.times[0], m.times[1]};
      return absl::OkStatus();
    }

    ASSIGN_OR_RETURN(UniqueFd parent, OpenDir(dir, /*create=*/true));
    const int pfd = parent.get();
    const char* cbase = base.c_str();

    if (hardlink != nullptr) {
      auto target = CleanName(hardlink);
      if (!target.ok()) {
        return Annotate(target.status(), absl::StrCat("hard link target \"", hardlink, "\""));
      }
      if (target->empty()) return absl::InvalidArgumentError("hard link to the layer root");
      std::string tdir, tbase;
      SplitName(*target, &tdir, &tbase);
      auto tparent = OpenDir(tdir, /*create=*/false);
      if (!tparent.ok()) {
        return Annotate(tparent.status(), absl::StrCat("hard link target \"", *target, "\""));
      }
      struct stat tst, st;
      if (::fstatat(tparent->get(), tbase.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
        return LastErrnoError(
            absl::StrCat("hard link target \"", *target, "\" (not in this layer)"));
      }
      if (S_ISDIR(tst.st_mode)) {
        return absl::InvalidArgumentError(
            absl::StrCat("hard link target \"", *target, "\" is a directory"));
      }
      if (::fstatat(pfd, cbase, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
          st.st_ino == tst.st_ino) {
        return absl::OkStatus();  // already that inode
      }
      RETURN_IF_ERROR(RemoveExisting(pfd, base));
      if (::linkat(tparent->get(), tbase.c_str(), pfd, cbase, 0) != 0) {
        return LastErrnoError(absl::StrCat("hard link to \"", *target, "\""));
      }
      return absl::OkStatus();
    }

    ASSIGN_OR_RETURN(Meta m, MetaOf(entry));
    switch (type) {
      case AE_IFDIR: {
        struct stat st;
        bool exists = ::fstatat(pfd, cbase, &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (!exists && errno != ENOENT) return LastErrnoError("stat existing entry");
        if (exists && !S_ISDIR(st.st_mode)) {
          RETURN_IF_ERROR(RemoveExisting(pfd, base));
          exists = false;
        }
        if (!exists && ::mkdirat(pfd, cbase, 0700) != 0) return LastErrnoError("mkdir");
        UniqueFd d(::openat(pfd, cbase, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!d) return LastErrnoError("open the directory");
        RETURN_IF_ERROR(ApplyFdMeta(d.get(), m));
        dir_times_[name] = {m.times[0], m.times[1]};
        return absl::OkStatus();
      }
      case AE_IFREG: {
        RETURN_IF_ERROR(RemoveExisting(pfd, base));
        UniqueFd f(
            ::openat(pfd, cbase, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!f) return LastErrnoError("create the file");
        for (;;) {
          const void* buf = nullptr;
          size_t size = 0;
          la_int64_t offset = 0;
          int r = ::archive_read_data_block(a, &buf, &size, &offset);
          if (r == ARCHIVE_EOF) break;
          if (r < ARCHIVE_WARN) {
            const char* msg = ::archive_error_string(a);
            return absl::DataLossError(
                absl::StrCat("reading the file's data: ", msg ? msg : "unknown error"));
          }
          if (offset < 0) return absl::DataLossError("negative data offset");
          RETURN_IF_ERROR(WriteAll(f.get(), static_cast<const char*>(buf), size, offset));
        }
        // Sparse files: the holes at the end.
        if (::archive_entry_size_is_set(entry) &&
            ::ftruncate(f.get(), ::archive_entry_size(entry)) != 0) {
          return LastErrnoError("set the file's size");
        }
        RETURN_IF_ERROR(ApplyFdMeta(f.get(), m));
        if (::futimens(f.get(), m.times) != 0) return LastErrnoError("set times");
        return absl::OkStatus();
      }
      case AE_IFLNK: {
        const char* target = ::archive_entry_symlink(entry);
        if (target == nullptr) target = ::archive_entry_symlink_utf8(entry);
        if (target == nullptr || *target == '\0') {
          return absl::InvalidArgumentError("symlink without a target");
        }
        if (strlen(target) >= PATH_MAX) {
          return absl::InvalidArgumentError(
              absl::StrCat("symlink target longer than ", PATH_MAX - 1, " bytes"));
        }
        RETURN_IF_ERROR(RemoveExisting(pfd, base));
        if (::symlinkat(target, pfd, cbase) != 0) return LastErrnoError("symlink");
        return ApplyPathMeta(pfd, base, m, /*chmod=*/false);
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        RETURN_IF_ERROR(RemoveExisting(pfd, base));
        dev_t dev = type == AE_IFIFO ? 0 : ::archive_entry_rdev(entry);
        if (::mknodat(pfd, cbase, type | 0600, dev) != 0) {
          return LastErrnoError(type == AE_IFIFO ? "mkfifo" : "mknod");
        }
        return ApplyPathMeta(pfd, base, m, /*chmod=*/true);
      }
      default:
        return absl::InvalidArgumentError(absl::StrFormat("unsupported file type 0%o", type));
    }
  }

  // Directory times last: creating their children changed them. A directory that was later
  // replaced, or that is only reachable through a symlink, keeps the time it has.
  absl::Status FinishDirectories() {
    for (const auto& [name, times] : dir_times_) {
      if (times.t[1].tv_nsec == UTIME_OMIT && times.t[0].tv_nsec == UTIME_OMIT) continue;
      UniqueFd d(OpenAt2(root_.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                         RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV));
      if (!d) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
        return LastErrnoError(absl::StrCat("layer entry \"", name, "\": open the directory"));
      }
      if (::futimens(d.get(), times.t) != 0) {
        return LastErrnoError(absl::StrCat("layer entry \"", name, "\": set times"));
      }
    }
    return absl::OkStatus();
  }

  struct Times {
    struct timespec t[2];
  };

  UniqueFd root_;
  ChunkQueue* queue_;
  uint64_t max_entries_;
  uint64_t entries_ = 0;
  std::string current_;  // the chunk libarchive is reading
  std::string last_name_;
  std::map<std::string, Times> dir_times_;
};

}  // namespace

struct LayerUnpacker::Impl {
  Compression compression = Compression::kNone;
  UnpackOptions options;

  // Decompression (Write()'s thread).
  z_stream zs{};
  bool zs_init = false;
  bool gz_member_open = false;  // inside a gzip member (its trailer not seen yet)
  uint64_t gz_members = 0;
  ZSTD_DCtx* zstd = nullptr;
  size_t zstd_pending = 0;  // ZSTD_decompressStream's last hint: 0 = at a frame end
  bool zstd_any = false;
  Hasher hasher;
  uint64_t compressed = 0, uncompressed = 0;
  std::string chunk;  // tar bytes being gathered for the extractor
  size_t chunk_len = 0;
  absl::Status write_error;  // sticky
  bool finished = false;

  // The extractor.
  ChunkQueue queue;
  std::unique_ptr<Extractor> extractor;
  std::thread thread;
  std::mutex mu;
  absl::Status extract_status;  // guarded by mu, set when the thread ends
  bool extract_done = false;

  ~Impl() {
    if (zs_init) ::inflateEnd(&zs);
    if (zstd != nullptr) ::ZSTD_freeDCtx(zstd);
  }

  absl::Status ExtractStatus() {
    std::lock_guard<std::mutex> lock(mu);
    return extract_done ? extract_status : absl::OkStatus();
  }

  // `n` new tar bytes are at chunk[chunk_len..]: hash, count, hand over full chunks.
  absl::Status Produced(size_t n) {
    if (n == 0) return absl::OkStatus();
    hasher.Update(chunk.data() + chunk_len, n);
    uncompressed += n;
    chunk_len += n;
    if (uncompressed > options.max_uncompressed_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("layer: uncompressed size exceeds the limit of ",
                       options.max_uncompressed_bytes, " bytes (decompression bomb?)"));
    }
    if (chunk_len == kChunkSize) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (chunk_len == 0) return absl::OkStatus();
    chunk.resize(chunk_len);
    bool taken = queue.Push(std::move(chunk));
    chunk.assign(kChunkSize, '\0');
    chunk_len = 0;
    if (!taken) {
      // The extractor is done: an error stops us, the end of the tar does not (trailing
      // bytes are still hashed and the compressed stream still checked).
      RETURN_IF_ERROR(ExtractStatus());
    }
    return absl::OkStatus();
  }

  absl::Status Decompress(const uint8_t* data, size_t size) {
    switch (compression) {
      case Compression::kNone:
        while (size > 0) {
          size_t n = std::min(size, kChunkSize - chunk_len);
          std::memcpy(chunk.data() + chunk_len, data, n);
          data += n;
          size -= n;
          RETURN_IF_ERROR(Produced(n));
        }
        return absl::OkStatus();
      case Compression::kGzip:
        zs.next_in = const_cast<Bytef*>(data);
        zs.avail_in = 0;
        while (size > 0 || zs.avail_in > 0) {
          if (zs.avail_in == 0) {
            size_t n = std::min<size_t>(size, 1u << 30);
            zs.next_in = const_cast<Bytef*>(data);
            zs.avail_in = static_cast<uInt>(n);
            data += n;
            size -= n;
          }
          if (!gz_member_open) {  // a new member starts (concatenated gzip)
            if (gz_members > 0 && ::inflateReset(&zs) != Z_OK) {
              return absl::InternalError("inflateReset failed");
            }
            gz_member_open = true;
          }
          zs.next_out = reinterpret_cast<Bytef*>(chunk.data() + chunk_len);
          zs.avail_out = static_cast<uInt>(kChunkSize - chunk_len);
          int r = ::inflate(&zs, Z_NO_FLUSH);
          size_t produced = kChunkSize - chunk_len - zs.avail_out;
          if (r == Z_STREAM_END) {
            gz_member_open = false;
            ++gz_members;
          } else if (r != Z_OK && r != Z_BUF_ERROR) {
            return absl::DataLossError(absl::StrCat(
                "layer: corrupt gzip stream at compressed byte ~", compressed - size - zs.avail_in,
                ": ", zs.msg != nullptr ? zs.msg : "inflate error"));
          }
          RETURN_IF_ERROR(Produced(produced));
        }
        return absl::OkStatus();
      case Compression::kZstd: {
        ZSTD_inBuffer in{data, size, 0};
        for (;;) {
          ZSTD_outBuffer out{chunk.data() + chunk_len, kChunkSize - chunk_len, 0};
          size_t before = in.pos;
          size_t r = ::ZSTD_decompressStream(zstd, &out, &in);
          if (::ZSTD_isError(r)) {
            return absl::DataLossError(
                absl::StrCat("layer: corrupt zstd stream: ", ::ZSTD_getErrorName(r)));
          }
          // r == 0: a frame ended and is fully flushed. A call without progress only returns
          // a hint about the next frame, which must not hide that.
          if (in.pos != before || out.pos > 0) {
            zstd_any = true;
            zstd_pending = r;
          }
          bool out_full = out.pos == out.size;
          RETURN_IF_ERROR(Produced(out.pos));
          // A full output buffer may leave decoded bytes inside zstd: call again.
          if (in.pos == in.size && (!out_full || r == 0)) break;
        }
        return absl::OkStatus();
      }
    }
    return absl::InternalError("unknown compression");
  }

  // The compressed stream must have ended exactly at a member/frame end.
  absl::Status CheckComplete() {
    switch (compression) {
      case Compression::kNone: return absl::OkStatus();
      case Compression::kGzip:
        if (gz_members == 0 || gz_member_open) {
          return absl::DataLossError(absl::StrCat("layer: ", CompressionName(compression),
                                                  " stream truncated after ", compressed,
                                                  " compressed bytes"));
        }
        return absl::OkStatus();
      case Compression::kZstd:
        if (!zstd_any || zstd_pending != 0) {
          return absl::DataLossError(absl::StrCat("layer: ", CompressionName(compression),
                                                  " stream truncated after ", compressed,
                                                  " compressed bytes"));
        }
        return absl::OkStatus();
    }
    return absl::InternalError("unknown compression");
  }

  void Stop() {
    queue.Cancel();
    if (thread.joinable()) thread.join();
  }
};

LayerUnpacker::LayerUnpacker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LayerUnpacker::~LayerUnpacker() {
  Cancel();
}

absl::StatusOr<std::unique_ptr<LayerUnpacker>> LayerUnpacker::Create(const std::string& dir,
                                                                     Compression compression,
                                                                     UnpackOptions options) {
  UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return LastErrnoError(absl::StrCat("open layer directory ", dir));
  auto impl = std::make_unique<Impl>();
  impl->compression = compression;
  impl->options = options;
  impl->chunk.assign(kChunkSize, '\0');
  if (compression == Compression::kGzip) {
    if (::inflateInit2(&impl->zs, 16 + MAX_WBITS) != Z_OK) {
      return absl::ResourceExhaustedError("inflateInit2 failed");
    }
    impl->zs_init = true;
  } else if (compression == Compression::kZstd) {
    impl->zstd = ::ZSTD_createDCtx();
    if (impl->zstd == nullptr) return absl::ResourceExhaustedError("ZSTD_createDCtx failed");
  }
  impl->extractor = std::make_unique<Extractor>(std::move(root), &impl->queue, options.max_entries);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    absl::Status status = raw->extractor->Run();
    {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->extract_status = status;
      raw->extract_done = true;
    }
    raw->queue.ConsumerDone();
  });
  return std::unique_ptr<LayerUnpacker>(new LayerUnpacker(std::move(impl)));
}

absl::Status LayerUnpacker::Write(const void* data, size_t size) {
  Impl& m = *impl_;
  if (m.finished) return absl::FailedPreconditionError("layer unpacker: Write after Finish/Cancel");
  RETURN_IF_ERROR(m.write_error);
  if (size == 0) return absl::OkStatus();
  m.compressed += size;
  absl::Status status = m.Decompress(static_cast<const uint8_t*>(data), size);
  if (status.ok()) status = m.ExtractStatus();
  if (!status.ok()) {
    m.write_error = status;
    m.Stop();
  }
  return status;
}

absl::StatusOr<UnpackResult> LayerUnpacker::Finish() {
  Impl& m = *impl_;
  if (m.finished)
    return absl::FailedPreconditionError("layer unpacker: Finish after Finish/Cancel");
  absl::Status status = m.write_error;
  if (status.ok()) status = m.CheckComplete();
  if (status.ok()) status = m.Flush();
  m.finished = true;
  if (!status.ok()) {
    m.Stop();
    return status;
  }
  m.queue.Close();
  m.thread.join();
  RETURN_IF_ERROR(m.ExtractStatus());
  UnpackResult result;
  result.diff_id = m.hasher.Finish();
  result.compressed_bytes = m.compressed;
  result.uncompressed_bytes = m.uncompressed;
  result.entries = m.extractor->entries();
  return result;
}

void LayerUnpacker::Cancel() {
  if (!impl_) return;
  impl_->finished = true;
  impl_->Stop();
}

}  // namespace berth::images

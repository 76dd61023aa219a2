#include "cri/stats_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "network/netns.h"

namespace berth::cri {

std::vector<InterfaceCounters> ParseNetDev(absl::string_view text) {
  std::vector<InterfaceCounters> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;  // the header lines
    absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
    if (name.empty() || name.find('|') != absl::string_view::npos) continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line.substr(colon + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 16) continue;
    InterfaceCounters c;
    c.name = std::string(name);
    if (!absl::SimpleAtoi(f[0], &c.rx_bytes) || !absl::SimpleAtoi(f[2], &c.rx_errors) ||
        !absl::SimpleAtoi(f[8], &c.tx_bytes) || !absl::SimpleAtoi(f[10], &c.tx_errors)) {
      continue;
    }
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<InterfaceCounters>> ReadNamespaceInterfaces(const std::string& pin) {
  std::string text;
  // /proc/net is /proc/self/net, the namespace of the thread group leader: the joined thread
  // reads its own.
  RETURN_IF_ERROR(network::RunInNamespace(pin, network::NsType::kNet, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(text, ReadFile("/proc/thread-self/net/dev", 4 << 20));
    return absl::OkStatus();
  }));
  return ParseNetDev(text);
}

namespace {

struct Walker {
  dev_t dev = 0;
  int max_depth = 0;
  std::set<std::pair<dev_t, ino_t>> linked;  // inodes with more than one link, seen once
  DiskUsage usage;

  void Count(const struct stat& st) {
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !linked.emplace(st.st_dev, st.st_ino).second) {
      return;
    }
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    usage.inodes += 1;
  }

  // Counts the entries of the directory `dir` (its own inode is counted by the caller).
  absl::Status Walk(int dir, int depth) {
    UniqueFd copy(::dup(dir));
    if (!copy) return LastErrnoError("dup");
    DIR* d = ::fdopendir(copy.get());
    if (d == nullptr) return LastErrnoError("fdopendir");
    (void)copy.release();
    absl::Status result;
    for (;;) {
      errno = 0;
      // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir on a DIR* only this thread uses.
      struct dirent* e = ::readdir(d);
      if (e == nullptr) {
        if (errno != 0) result = LastErrnoError("readdir");
        break;
      }
      absl::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      if (::fstatat(dir, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed meanwhile
        result = LastErrnoError(absl::StrCat("stat ", name));
        break;
      }
      if (st.st_dev != dev) continue;  // a mount point: not the layer's
      Count(st);
      if (!S_ISDIR(st.st_mode) || depth >= max_depth) continue;
      UniqueFd sub(::openat(dir, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
        result = LastErrnoError(absl::StrCat("open ", name));
        break;
      }
      result = Walk(sub.get(), depth + 1);
      if (!result.ok()) break;
    }
    ::closedir(d);
    return result;
  }
};

}  // namespace

absl::StatusOr<DiskUsage> WalkDiskUsage(const std::string& root, int max_depth) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return LastErrnoError(absl::StrCat("open ", root));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoError(absl::StrCat("stat ", root));
  Walker w;
  w.dev = st.st_dev;
  w.max_depth = max_depth;
  w.Count(st);
  RETURN_IF_ERROR(Annotate(w.Walk(fd.get(), 0), root));
  return w.usage;
}

}  // namespace berth::cri

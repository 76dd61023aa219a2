// The container filesystem logic of runtime/mounts.cc, run against FakeSys: an in-memory tree
// standing in for the kernel. No root and no real mount; every mount, mount_setattr, mknod
// (and the other calls that change the tree) is recorded in order, as text.
#include "runtime/mounts.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// "bind|rec|ro": `flags` as the names in `names`, in their order; bits without one in hex.
std::string FlagNames(uint64_t flags, const std::vector<std::pair<uint64_t, const char*>>& names) {
  if (flags == 0) return "0";
  std::vector<std::string> out;
  for (const auto& [bit, name] : names) {
    if (bit != 0 && (flags & bit) == bit) {
      out.emplace_back(name);
      flags &= ~bit;
    }
  }
  if (flags != 0) out.push_back(absl::StrCat("0x", absl::Hex(flags)));
  return absl::StrJoin(out, "|");
}

std::string MsFlags(unsigned long flags) {
  return FlagNames(flags, {{MS_BIND, "bind"},
                           {MS_REMOUNT, "remount"},
                           {MS_MOVE, "move"},
                           {MS_REC, "rec"},
                           {MS_RDONLY, "ro"},
                           {MS_NOSUID, "nosuid"},
                           {MS_NODEV, "nodev"},
                           {MS_NOEXEC, "noexec"},
                           {MS_NOATIME, "noatime"},
                           {MS_NODIRATIME, "nodiratime"},
                           {MS_RELATIME, "relatime"},
                           {MS_STRICTATIME, "strictatime"},
                           {MS_SHARED, "shared"},
                           {MS_SLAVE, "slave"},
                           {MS_PRIVATE, "private"},
                           {MS_UNBINDABLE, "unbindable"}});
}

std::string AttrFlags(uint64_t attr) {
  return FlagNames(attr, {{MOUNT_ATTR_RDONLY, "rdonly"},
                          {MOUNT_ATTR_NOSUID, "nosuid"},
                          {MOUNT_ATTR_NODEV, "nodev"},
                          {MOUNT_ATTR_NOEXEC, "noexec"},
                          {MOUNT_ATTR_NOATIME, "noatime"},
                          {MOUNT_ATTR_STRICTATIME, "strictatime"},
                          {MOUNT_ATTR_NODIRATIME, "nodiratime"},
                          {MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow"}});
}

const char* TypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "reg";
    case S_IFDIR: return "dir";
    case S_IFCHR: return "chr";
    case S_IFBLK: return "blk";
    case S_IFIFO: return "fifo";
    case S_IFLNK: return "lnk";
    default: return "?";
  }
}

// The ST_* flags (statvfs f_flag) a mount made with the MS_* `flags` has.
unsigned long StFlags(unsigned long flags) {
  unsigned long st = 0;
  for (auto [ms, st_flag] : {std::pair{MS_RDONLY, ST_RDONLY},
                             {MS_NOSUID, ST_NOSUID},
                             {MS_NODEV, ST_NODEV},
                             {MS_NOEXEC, ST_NOEXEC},
                             {MS_NOATIME, ST_NOATIME},
                             {MS_NODIRATIME, ST_NODIRATIME},
                             {MS_RELATIME, ST_RELATIME}}) {
    if (flags & ms) st |= st_flag;
  }
  return st;
}

// One tree stands for the host's whole filesystem; the rootfs is a directory in it. Paths
// resolve as the kernel resolves them: openat2 with RESOLVE_IN_ROOT treats the dirfd as "/" for
// absolute symlinks and "..", anything else resolves from the process's root and working
// directory (which chroot, pivot_root and chdir change). Mounts are modelled only as far as the
// code under test can see them: a mount point carries its mount's flags (for fstatvfs), and
// remounts and propagation changes need one. Descriptors are real placeholder descriptors
// (of /dev/null) mapped to nodes, so UniqueFd can close them as usual.
class FakeSys final : public Sys {
 public:
  struct Node {
    mode_t mode = S_IFDIR | 0755;
    dev_t rdev = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string link;  // a symlink's target
    Node* parent = nullptr;
    std::string name;
    std::map<std::string, std::unique_ptr<Node>> children;
    // On a mount point: the mount's ST_* flags, which the nodes below it share.
    std::optional<unsigned long> mount_flags;
  };

  FakeSys() { tree_.mount_flags = 0; }

  // ---- Setting up the tree (not recorded) ----

  // mkdir -p.
  Node* Dir(absl::string_view path) {
    Node* cur = &tree_;
    for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      std::unique_ptr<Node>& child = cur->children[std::string(part)];
      if (!child) child = NewNode(cur, part, S_IFDIR | 0755);
      cur = child.get();
    }
    return cur;
  }
  Node* Add(absl::string_view path, mode_t mode, dev_t rdev = 0, absl::string_view link = "") {
    size_t slash = path.rfind('/');
    Node* dir = Dir(path.substr(0, slash));
    std::unique_ptr<Node> node = NewNode(dir, path.substr(slash + 1), mode);
    node->rdev = rdev;
    node->link = std::string(link);
    Node* raw = node.get();
    dir->children[raw->name] = std::move(node);
    return raw;
  }
  Node* File(absl::string_view path) { return Add(path, S_IFREG | 0644); }
  Node* CharDevice(absl::string_view path, unsigned major, unsigned minor) {
    return Add(path, S_IFCHR | 0666, makedev(major, minor));
  }
  Node* Symlink(absl::string_view path, absl::string_view target) {
    return Add(path, S_IFLNK | 0777, 0, target);
  }
  // Makes the directory at `path` a mount point with the ST_* `st_flags`.
  void MountPoint(absl::string_view path, unsigned long st_flags) {
    Dir(path)->mount_flags = st_flags;
  }
  // Makes mount(2) of filesystem `type` fail with `err`.
  void Refuse(const std::string& type, int err) { refused_[type] = err; }

  // ---- Looking at the result ----

  // The node at `path` from the top of the tree, without following symlinks; null if none.
  const Node* Find(absl::string_view path) {
    int err = 0;
    int links = 0;
    return Walk(&tree_, &tree_, path, /*follow_last=*/false, err, links);
  }
  std::string PathOf(const Node* n) const {
    if (n == &tree_) return "/";
    std::vector<absl::string_view> names;
    for (; n != &tree_; n = n->parent) names.push_back(n->name);
    std::string path;
    for (auto it = names.rbegin(); it != names.rend(); ++it) absl::StrAppend(&path, "/", *it);
    return path;
  }
  // A descriptor of `path` (opened from the top of the tree), as the runtime's rootfs fd.
  int OpenPath(absl::string_view path) { return OpenNode(&tree_, &tree_, path, O_PATH); }
  // The calls recorded so far, keeping those named in `ops` (all when empty).
  std::vector<std::string> Calls(const std::set<std::string>& ops = {}) const {
    std::vector<std::string> out;
    for (const auto& [op, text] : calls_) {
      if (ops.empty() || ops.count(op) != 0) out.push_back(text);
    }
    return out;
  }
  std::vector<std::string> Mounts() const { return Calls({"mount", "mount_setattr"}); }
  mode_t umask() const { return umask_; }
  // How many descriptors the fake handed out are still open.
  int OpenFds() const {
    int n = 0;
    for (const auto& [fd, node] : fds_) {
      if (::fcntl(fd, F_GETFD) >= 0) ++n;
    }
    return n;
  }

  // ---- The kernel ----

  int Mount(const char* source, const char* target, const char* type, unsigned long flags,
            const char* data) override {
    std::string text = absl::StrCat("mount(", Shown(source), ", ", Shown(target), ", ",
                                    type != nullptr ? type : "-", ", ", MsFlags(flags), ", ",
                                    data != nullptr ? data : "-", ")");
    return Record("mount", text, DoMount(source, target, type, flags));
  }
  int Umount2(const char* target, int flags) override {
    int err = 0;
    Node* t = ResolveMountPath(target, err);
    if (t != nullptr && !t->mount_flags) err = EINVAL;
    return Record(
        "umount2",
        absl::StrCat("umount2(", target, ", ",
                     FlagNames(flags, {{MNT_DETACH, "detach"}, {MNT_FORCE, "force"}}), ")"),
        err);
  }
  int MountSetattr(int dirfd, const char* path, unsigned int flags,
                   const mount_attr& attr) override {
    // Only the form mounts.cc uses: the mount an fd is on.
    Node* n = NodeOf(dirfd);
    int err = 0;
    if (n == nullptr) {
      err = EBADF;
    } else if ((flags & AT_EMPTY_PATH) == 0 || path[0] != '\0' || !n->mount_flags) {
      err = EINVAL;
    }
    return Record(
        "mount_setattr",
        absl::StrCat("mount_setattr(", n != nullptr ? PathOf(n) : path, ", ",
                     FlagNames(flags, {{AT_EMPTY_PATH, "empty_path"}, {AT_RECURSIVE, "recursive"}}),
                     ", set=", AttrFlags(attr.attr_set), ", clr=", AttrFlags(attr.attr_clr), ")"),
        err);
  }
  int Openat2(int dirfd, const char* path, const open_how& how) override {
    Node* start = NodeOf(dirfd);
    if (start == nullptr) return Fail(EBADF);
    if ((how.flags & O_CREAT) != 0) return Fail(EINVAL);  // not modelled
    Node* root = (how.resolve & RESOLVE_IN_ROOT) != 0 ? start : root_;
    return OpenNode(root, start, path, static_cast<int>(how.flags));
  }
  int Open(const char* path, int flags) override { return OpenNode(root_, cwd_, path, flags); }
  int DupCloexec(int fd) override {
    Node* n = NodeOf(fd);
    return n != nullptr ? NewFd(n) : Fail(EBADF);
  }
  int Mkdirat(int dirfd, const char* path, mode_t mode) override {
    std::string name;
    int err = 0;
    Node* dir = ParentOf(dirfd, path, name, err);
    if (dir != nullptr && dir->children.count(name) != 0) err = EEXIST;
    if (err == 0) AddChild(dir, name, S_IFDIR | (mode & 07777 & ~umask_));
    return Record("mkdir", absl::StrFormat("mkdir(%s, %04o)", Shown(dir, name, path), mode), err);
  }
  int Mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) override {
    std::string name;
    int err = 0;
    Node* dir = ParentOf(dirfd, path, name, err);
    if (dir != nullptr && dir->children.count(name) != 0) err = EEXIST;
    mode_t type = (mode & S_IFMT) != 0 ? (mode & S_IFMT) : S_IFREG;
    if (err == 0) AddChild(dir, name, type | (mode & 07777 & ~umask_))->rdev = dev;
    return Record("mknod",
                  absl::StrFormat("mknod(%s, %s %04o, %u:%u, umask %03o)", Shown(dir, name, path),
                                  TypeName(type), mode & 07777, major(dev), minor(dev), umask_),
                  err);
  }
  int Fchownat(int dirfd, const char* path, uid_t uid, gid_t gid, int flags) override {
    int err = 0;
    int links = 0;
    Node* start = NodeOf(dirfd);
    Node* n = start == nullptr
                  ? nullptr
                  : Walk(root_, start, path, (flags & AT_SYMLINK_NOFOLLOW) == 0, err, links);
    if (start == nullptr) err = EBADF;
    if (n != nullptr) {
      n->uid = uid;
      n->gid = gid;
    }
    return Record("chown",
                  absl::StrCat("chown(", n != nullptr ? PathOf(n) : path, ", ", uid, ":", gid, ")"),
                  err);
  }
  int Unlinkat(int dirfd, const char* path, int flags) override {
    std::string name;
    int err = 0;
    Node* dir = ParentOf(dirfd, path, name, err);
    std::string shown = Shown(dir, name, path);
    if (dir != nullptr) {
      auto it = dir->children.find(name);
      if (it == dir->children.end()) {
        err = ENOENT;
      } else if (S_ISDIR(it->second->mode) && (flags & AT_REMOVEDIR) == 0) {
        err = EISDIR;
      } else {
        // Kept: a descriptor of an unlinked file still works.
        graveyard_.push_back(std::move(it->second));
        dir->children.erase(it);
      }
    }
    return Record("unlink", absl::StrCat("unlink(", shown, ")"), err);
  }
  int Symlinkat(const char* target, int dirfd, const char* linkpath) override {
    std::string name;
    int err = 0;
    Node* dir = ParentOf(dirfd, linkpath, name, err);
    if (dir != nullptr && dir->children.count(name) != 0) err = EEXIST;
    if (err == 0) AddChild(dir, name, S_IFLNK | 0777)->link = target;
    return Record("symlink",
                  absl::StrCat("symlink(", Shown(dir, name, linkpath), " -> ", target, ")"), err);
  }
  int Fstatvfs(int fd, struct statvfs* st) override {
    Node* n = NodeOf(fd);
    if (n == nullptr) return Fail(EBADF);
    std::memset(st, 0, sizeof *st);
    st->f_flag = MountFlagsOf(n);
    return 0;
  }
  int Fstat(int fd, struct stat* st) override {
    Node* n = NodeOf(fd);
    if (n == nullptr) return Fail(EBADF);
    Fill(*n, st);
    return 0;
  }
  int Stat(const char* path, struct stat* st) override {
    int err = 0;
    int links = 0;
    Node* n = Walk(root_, cwd_, path, /*follow_last=*/true, err, links);
    if (n == nullptr) return Fail(err);
    Fill(*n, st);
    return 0;
  }
  mode_t Umask(mode_t mask) override {
    calls_.emplace_back("umask", absl::StrFormat("umask(%03o)", mask));
    return std::exchange(umask_, mask & 0777);
  }
  int PivotRoot(const char* new_root, const char* put_old) override {
    int err = 0;
    Node* n = ResolveDir(new_root, err);
    // The old root stays reachable through descriptors; only "/" changes.
    if (n != nullptr) root_ = n;
    return Record("pivot_root", absl::StrCat("pivot_root(", new_root, ", ", put_old, ")"), err);
  }
  int Chdir(const char* path) override {
    int err = 0;
    Node* n = ResolveDir(path, err);
    if (n != nullptr) cwd_ = n;
    return Record("chdir", absl::StrCat("chdir(", path, ")"), err);
  }
  int Fchdir(int fd) override {
    Node* n = NodeOf(fd);
    if (n != nullptr) cwd_ = n;
    return Record("fchdir", absl::StrCat("fchdir(", n != nullptr ? PathOf(n) : "?", ")"),
                  n != nullptr ? 0 : EBADF);
  }
  int Chroot(const char* path) override {
    int err = 0;
    Node* n = ResolveDir(path, err);
    if (n != nullptr) root_ = n;
    return Record("chroot", absl::StrCat("chroot(", path, ")"), err);
  }

 private:
  static int Fail(int err) {
    errno = err;
    return -1;
  }
  // Appends the call, with " = EPERM" when it fails with that; returns its result.
  int Record(const std::string& op, std::string text, int err) {
    if (err != 0) absl::StrAppend(&text, " = ", strerrorname_np(err));
    calls_.emplace_back(op, std::move(text));
    return err != 0 ? Fail(err) : 0;
  }

  std::unique_ptr<Node> NewNode(Node* parent, absl::string_view name, mode_t mode) {
    auto node = std::make_unique<Node>();
    node->mode = mode;
    node->parent = parent;
    node->name = std::string(name);
    return node;
  }
  Node* AddChild(Node* dir, const std::string& name, mode_t mode) {
    std::unique_ptr<Node>& slot = dir->children[name];
    slot = NewNode(dir, name, mode);
    return slot.get();
  }
  static void Fill(const Node& n, struct stat* st) {
    std::memset(st, 0, sizeof *st);
    st->st_mode = n.mode;
    st->st_rdev = n.rdev;
    st->st_uid = n.uid;
    st->st_gid = n.gid;
  }
  static unsigned long MountFlagsOf(const Node* n) {
    while (n != nullptr && !n->mount_flags) n = n->parent;
    return n != nullptr ? *n->mount_flags : 0;
  }

  // The kernel's path walk: from `root` for an absolute path, else from `start`; ".." never
  // leaves `root`; symlinks (the last component only with `follow_last`) are followed, their
  // absolute targets from `root` too.
  Node* Walk(Node* root, Node* start, absl::string_view path, bool follow_last, int& err,
             int& links) {
    Node* cur = absl::StartsWith(path, "/") ? root : start;
    std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!S_ISDIR(cur->mode)) {
        err = ENOTDIR;
        return nullptr;
      }
      if (parts[i] == ".") continue;
      if (parts[i] == "..") {
        if (cur != root && cur->parent != nullptr) cur = cur->parent;
        continue;
      }
      auto it = cur->children.find(std::string(parts[i]));
      if (it == cur->children.end()) {
        err = ENOENT;
        return nullptr;
      }
      Node* next = it->second.get();
      if (S_ISLNK(next->mode) && (i + 1 < parts.size() || follow_last)) {
        if (++links > 40) {
          err = ELOOP;
          return nullptr;
        }
        next = Walk(root, cur, next->link, /*follow_last=*/true, err, links);
        if (next == nullptr) return nullptr;
      }
      cur = next;
    }
    return cur;
  }
  int OpenNode(Node* root, Node* start, absl::string_view path, int flags) {
    if (path.empty()) return Fail(ENOENT);
    int err = 0;
    int links = 0;
    Node* n = Walk(root, start, path, (flags & O_NOFOLLOW) == 0, err, links);
    if (n == nullptr) return Fail(err);
    if (S_ISLNK(n->mode) && (flags & O_PATH) == 0) return Fail(ELOOP);
    if ((flags & O_DIRECTORY) != 0 && !S_ISDIR(n->mode)) return Fail(ENOTDIR);
    return NewFd(n);
  }
  Node* ResolveDir(const char* path, int& err) {
    int links = 0;
    Node* n = Walk(root_, cwd_, path, /*follow_last=*/true, err, links);
    if (n != nullptr && !S_ISDIR(n->mode)) {
      err = ENOTDIR;
      return nullptr;
    }
    return n;
  }
  // The directory an *at call's `path` names an entry of, and the entry's name.
  Node* ParentOf(int dirfd, absl::string_view path, std::string& name, int& err) {
    Node* start = NodeOf(dirfd);
    if (start == nullptr) {
      err = EBADF;
      return nullptr;
    }
    size_t slash = path.rfind('/');
    absl::string_view dir = slash == absl::string_view::npos ? "."
                            : slash == 0                     ? "/"
                                                             : path.substr(0, slash);
    name = std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
    if (name.empty() || name == "." || name == "..") {
      err = EINVAL;
      return nullptr;
    }
    int links = 0;
    Node* d = Walk(root_, start, dir, /*follow_last=*/true, err, links);
    if (d != nullptr && !S_ISDIR(d->mode)) {
      err = ENOTDIR;
      return nullptr;
    }
    return d;
  }

  int NewFd(Node* n) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    fds_[fd] = n;  // a number closed and handed out again is simply remapped
    return fd;
  }
  Node* NodeOf(int fd) {
    if (fd == AT_FDCWD) return cwd_;
    auto it = fds_.find(fd);
    if (it == fds_.end() || ::fcntl(fd, F_GETFD) < 0) return nullptr;
    return it->second;
  }
  // "/proc/self/fd/N" (what FdPath makes): N's node, as the kernel's magic link gives it.
  std::optional<int> FdOfPath(absl::string_view path) const {
    int fd = 0;
    if (!absl::ConsumePrefix(&path, "/proc/self/fd/") || !absl::SimpleAtoi(path, &fd)) {
      return std::nullopt;
    }
    return fd;
  }
  Node* ResolveMountPath(const char* path, int& err) {
    if (std::optional<int> fd = FdOfPath(path)) {
      Node* n = NodeOf(*fd);
      if (n == nullptr) err = ENOENT;
      return n;
    }
    int links = 0;
    return Walk(root_, cwd_, path, /*follow_last=*/true, err, links);
  }
  // A path argument as recorded: an fd path as its node's path, anything else as given.
  std::string Shown(const char* path) {
    if (path == nullptr) return "-";
    if (std::optional<int> fd = FdOfPath(path)) {
      Node* n = NodeOf(*fd);
      return n != nullptr ? PathOf(n) : absl::StrCat("<closed fd ", *fd, ">");
    }
    return path;
  }
  std::string Shown(const Node* dir, const std::string& name, const char* path) const {
    if (dir == nullptr) return path;
    return dir == &tree_ ? absl::StrCat("/", name) : absl::StrCat(PathOf(dir), "/", name);
  }

  // Returns 0 or the errno the kernel would give.
  int DoMount(const char* source, const char* target, const char* type, unsigned long flags) {
    int err = 0;
    Node* t = ResolveMountPath(target, err);
    if (t == nullptr) return err;
    if (type != nullptr) {
      auto it = refused_.find(type);
      if (it != refused_.end()) return it->second;
    }
    if ((flags & MS_REMOUNT) != 0) {
      if (!t->mount_flags) return EINVAL;
      t->mount_flags = StFlags(flags);
      return 0;
    }
    if ((flags & MS_BIND) != 0) {
      Node* s = ResolveMountPath(source, err);
      if (s == nullptr) return err;
      if (S_ISDIR(s->mode) != S_ISDIR(t->mode)) return ENOTDIR;
      t->mount_flags = MountFlagsOf(s);
      return 0;
    }
    if ((flags & MS_MOVE) != 0) return 0;
    if ((flags & (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)) != 0) {
      return t->mount_flags ? 0 : EINVAL;
    }
    if (!S_ISDIR(t->mode)) return ENOTDIR;
    t->mount_flags = StFlags(flags);
    return 0;
  }

  Node tree_;
  Node* root_ = &tree_;
  Node* cwd_ = &tree_;
  mode_t umask_ = 022;
  std::map<int, Node*> fds_;
  std::map<std::string, int> refused_;
  std::vector<std::pair<std::string, std::string>> calls_;  // (op, text)
  std::vector<std::unique_ptr<Node>> graveyard_;
};

constexpr char kRootfs[] = "/bundle/rootfs";

// A path inside the rootfs, as the fake records it.
std::string R(absl::string_view path) {
  return absl::StrCat(kRootfs, path);
}

constexpr unsigned long kLocked = ST_NOSUID | ST_NODEV | ST_NOEXEC;

class MountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The host.
    fake_.File("/etc/hosts");
    fake_.File("/etc/passwd");
    for (auto [name, major, minor] : {std::tuple{"null", 1, 3},
                                      {"zero", 1, 5},
                                      {"full", 1, 7},
                                      {"random", 1, 8},
                                      {"urandom", 1, 9},
                                      {"tty", 5, 0}}) {
      fake_.CharDevice(absl::StrCat("/dev/", name), major, minor);
    }
    fake_.Dir("/dev/mqueue");
    fake_.Dir("/sys/fs/cgroup");
    fake_.MountPoint("/sys", kLocked);
    // Host directories on a nosuid,nodev,noexec mount: a bind of one must keep those flags.
    fake_.Dir("/host/data");
    fake_.File("/host/file");
    fake_.MountPoint("/host", kLocked);
    fake_.Dir("/bundle/data");
    // The image.
    fake_.Dir(R("/etc"));
    fake_.Dir(R("/dev"));

    root_ = UniqueFd(fake_.OpenPath(kRootfs));
    ASSERT_TRUE(root_.valid());
    ctx_.root_fd = root_.get();
    ctx_.bundle = "/bundle";
    ctx_.sys = &fake_;
  }

  void TearDown() override {
    root_.reset();
    EXPECT_EQ(fake_.OpenFds(), 0) << "a descriptor was left open";
  }

  absl::Status Run(const Mount& m) { return MountOne(ctx_, m); }

  FakeSys fake_;
  UniqueFd root_;
  MountContext ctx_;
};

// ---- The fake itself, and OpenInRoot ----

TEST_F(MountsTest, FdPathsOfFakeDescriptorsMapBackToTheirNodes) {
  absl::StatusOr<UniqueFd> fd = OpenInRoot(root_.get(), "/etc", O_PATH, fake_);
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_EQ(fake_.Mount("tmpfs", FdPath(fd->get()).c_str(), "tmpfs", 0, nullptr), 0);
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(tmpfs, /bundle/rootfs/etc, tmpfs, 0, -)"));
}

TEST_F(MountsTest, OpenInRootKeepsSymlinksAndDotDotInsideTheRoot) {
  fake_.Symlink(R("/abs"), "/etc");
  fake_.Symlink(R("/a/b/up"), "../../../../etc");
  // Only the host has hosts: every way there stops at the rootfs's /etc.
  for (const char* path : {"/abs/hosts", "/a/b/up/hosts", "/../../../etc/hosts", "abs/hosts"}) {
    absl::StatusOr<UniqueFd> fd = OpenInRoot(root_.get(), path, O_PATH, fake_);
    EXPECT_TRUE(absl::IsNotFound(fd.status())) << path << ": " << fd.status();
  }
  fake_.File(R("/etc/hosts"));
  for (const char* path : {"/abs/hosts", "/a/b/up/hosts", "/../../../etc/hosts"}) {
    absl::StatusOr<UniqueFd> fd = OpenInRoot(root_.get(), path, O_PATH, fake_);
    ASSERT_TRUE(fd.ok()) << path << ": " << fd.status();
    ASSERT_EQ(fake_.Mount("/dev/null", FdPath(fd->get()).c_str(), nullptr, MS_BIND, nullptr), 0);
  }
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(/dev/null, /bundle/rootfs/etc/hosts, -, bind, -)",
                          "mount(/dev/null, /bundle/rootfs/etc/hosts, -, bind, -)",
                          "mount(/dev/null, /bundle/rootfs/etc/hosts, -, bind, -)"));
}

// ---- Bind mounts ----

TEST_F(MountsTest, ReadOnlyBindIsABindThenARemountKeepingTheLockedFlags) {
  ASSERT_TRUE(Run({.destination = "/data",
                   .type = "bind",
                   .source = "/host/data",
                   .options = {"bind", "ro"}})
                  .ok());
  EXPECT_THAT(
      fake_.Mounts(),
      ElementsAre("mount(/host/data, /bundle/rootfs/data, -, bind, -)",
                  "mount(-, /bundle/rootfs/data, -, bind|remount|ro|nosuid|nodev|noexec, -)"));
  EXPECT_EQ(fake_.Find(R("/data"))->mount_flags, ST_RDONLY | kLocked);
}

TEST_F(MountsTest, AnOptionThatClearsALockedFlagIsNotOverridden) {
  ASSERT_TRUE(Run({.destination = "/data",
                   .type = "bind",
                   .source = "/host/data",
                   .options = {"bind", "ro", "exec"}})
                  .ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(/host/data, /bundle/rootfs/data, -, bind, -)",
                          "mount(-, /bundle/rootfs/data, -, bind|remount|ro|nosuid|nodev, -)"));
}

TEST_F(MountsTest, BindWithoutFlagsIsNotRemounted) {
  // No "bind" option: the type alone makes it one.
  ASSERT_TRUE(Run({.destination = "/data", .type = "bind", .source = "/host/data"}).ok());
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(/host/data, /bundle/rootfs/data, -, bind, -)"));
}

TEST_F(MountsTest, RbindPassesMsRec) {
  ASSERT_TRUE(Run({.destination = "/data", .source = "/host/data", .options = {"rbind"}}).ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(/host/data, /bundle/rootfs/data, -, bind|rec, -)"));
}

TEST_F(MountsTest, RelativeBindSourceIsInTheBundle) {
  ASSERT_TRUE(Run({.destination = "/data", .type = "bind", .source = "data"}).ok());
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(/bundle/data, /bundle/rootfs/data, -, bind, -)"));
}

TEST_F(MountsTest, MissingBindSourceIsAnError) {
  absl::Status st = Run({.destination = "/data", .type = "bind", .source = "/host/nope"});
  EXPECT_TRUE(absl::IsNotFound(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr("bind mount source /host/nope"));
  EXPECT_THAT(fake_.Calls(), IsEmpty());
}

TEST_F(MountsTest, PropagationIsASeparateMountCall) {
  ASSERT_TRUE(
      Run({.destination = "/data", .source = "/host/data", .options = {"rbind", "rslave"}}).ok());
  ASSERT_TRUE(Run({.destination = "/tmp",
                   .type = "tmpfs",
                   .source = "tmpfs",
                   .options = {"nosuid", "private"}})
                  .ok());
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(/host/data, /bundle/rootfs/data, -, bind|rec, -)",
                                          "mount(-, /bundle/rootfs/data, -, rec|slave, -)",
                                          "mount(tmpfs, /bundle/rootfs/tmp, tmpfs, nosuid, -)",
                                          "mount(-, /bundle/rootfs/tmp, -, private, -)"));
}

TEST_F(MountsTest, RroIsARecursiveMountSetattr) {
  ASSERT_TRUE(
      Run({.destination = "/data", .source = "/host/data", .options = {"rbind", "rro"}}).ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(/host/data, /bundle/rootfs/data, -, bind|rec, -)",
                          "mount_setattr(/bundle/rootfs/data, empty_path|recursive, set=rdonly, "
                          "clr=0)"));
}

TEST_F(MountsTest, RecursiveClearsAreMountSetattrToo) {
  ASSERT_TRUE(Run({.destination = "/data",
                   .source = "/host/data",
                   .options = {"rbind", "rnosuid", "rexec"}})
                  .ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(/host/data, /bundle/rootfs/data, -, bind|rec, -)",
                          "mount_setattr(/bundle/rootfs/data, empty_path|recursive, set=nosuid, "
                          "clr=noexec)"));
}

// ---- Creating the target ----

TEST_F(MountsTest, MissingDirectoryTargetIsCreatedComponentByComponent) {
  ASSERT_TRUE(Run({.destination = "/a/b/c", .type = "bind", .source = "/host/data"}).ok());
  EXPECT_THAT(fake_.Calls({"mkdir", "mknod", "mount"}),
              ElementsAre("mkdir(/bundle/rootfs/a, 0755)", "mkdir(/bundle/rootfs/a/b, 0755)",
                          "mkdir(/bundle/rootfs/a/b/c, 0755)",
                          "mount(/host/data, /bundle/rootfs/a/b/c, -, bind, -)"));
  EXPECT_TRUE(S_ISDIR(fake_.Find(R("/a/b/c"))->mode));
}

TEST_F(MountsTest, MissingFileTargetIsAnEmptyFile) {
  ASSERT_TRUE(Run({.destination = "/x/y/hosts", .type = "bind", .source = "/host/file"}).ok());
  EXPECT_THAT(fake_.Calls({"mkdir", "mknod", "mount"}),
              ElementsAre("mkdir(/bundle/rootfs/x, 0755)", "mkdir(/bundle/rootfs/x/y, 0755)",
                          "mknod(/bundle/rootfs/x/y/hosts, reg 0644, 0:0, umask 022)",
                          "mount(/host/file, /bundle/rootfs/x/y/hosts, -, bind, -)"));
  EXPECT_EQ(fake_.Find(R("/x/y/hosts"))->mode, static_cast<mode_t>(S_IFREG | 0644));
}

TEST_F(MountsTest, ExistingTargetIsUsedAsIs) {
  fake_.Dir(R("/data"));
  ASSERT_TRUE(Run({.destination = "/data", .type = "bind", .source = "/host/data"}).ok());
  EXPECT_THAT(fake_.Calls({"mkdir", "mknod"}), IsEmpty());
}

TEST_F(MountsTest, TargetThroughAnAbsoluteSymlinkStaysInTheRoot) {
  fake_.Symlink(R("/abs"), "/etc");
  ASSERT_TRUE(
      Run({.destination = "/abs/resolv.conf", .type = "bind", .source = "/host/file"}).ok());
  EXPECT_THAT(fake_.Calls({"mkdir", "mknod", "mount"}),
              ElementsAre("mknod(/bundle/rootfs/etc/resolv.conf, reg 0644, 0:0, umask 022)",
                          "mount(/host/file, /bundle/rootfs/etc/resolv.conf, -, bind, -)"));
  EXPECT_EQ(fake_.Find("/etc/resolv.conf"), nullptr);
}

TEST_F(MountsTest, TargetThroughADotDotSymlinkStaysInTheRoot) {
  fake_.Symlink(R("/a/b/up"), "../../../../etc");
  ASSERT_TRUE(Run({.destination = "/a/b/up/ssl", .type = "bind", .source = "/host/data"}).ok());
  EXPECT_THAT(fake_.Calls({"mkdir", "mknod", "mount"}),
              ElementsAre("mkdir(/bundle/rootfs/etc/ssl, 0755)",
                          "mount(/host/data, /bundle/rootfs/etc/ssl, -, bind, -)"));
  EXPECT_EQ(fake_.Find("/etc/ssl"), nullptr);
}

TEST_F(MountsTest, SymlinkedTargetIsNeverTheHostFile) {
  // The image's /etc/passwd points at "/etc/shadow", which the image lacks and the host has:
  // the mount fails rather than land on the host's file.
  fake_.File("/etc/shadow");
  fake_.Symlink(R("/etc/passwd"), "/etc/shadow");
  absl::Status st = Run({.destination = "/etc/passwd", .type = "bind", .source = "/host/file"});
  EXPECT_TRUE(absl::IsNotFound(st)) << st;
  EXPECT_THAT(fake_.Mounts(), IsEmpty());
  EXPECT_FALSE(fake_.Find("/etc/shadow")->mount_flags.has_value());
}

TEST_F(MountsTest, DotDotInTheDestinationIsRefusedWhenCreating) {
  absl::Status st = Run({.destination = "/new/../x", .type = "bind", .source = "/host/data"});
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_THAT(fake_.Mounts(), IsEmpty());
}

// ---- Filesystems ----

TEST_F(MountsTest, FilesystemMountsPassTypeFlagsAndData) {
  ASSERT_TRUE(Run({.destination = "/proc",
                   .type = "proc",
                   .source = "proc",
                   .options = {"nosuid", "noexec", "nodev"}})
                  .ok());
  ASSERT_TRUE(Run({.destination = "/dev",
                   .type = "tmpfs",
                   .source = "tmpfs",
                   .options = {"nosuid", "strictatime", "mode=755", "size=65536k"}})
                  .ok());
  ASSERT_TRUE(Run({.destination = "/sys",
                   .type = "sysfs",
                   .source = "sysfs",
                   .options = {"nosuid", "noexec", "nodev", "ro"}})
                  .ok());
  // No source: the type stands in.
  ASSERT_TRUE(Run({.destination = "/dev/mqueue", .type = "mqueue"}).ok());
  EXPECT_THAT(
      fake_.Mounts(),
      ElementsAre(
          "mount(proc, /bundle/rootfs/proc, proc, nosuid|nodev|noexec, -)",
          "mount(tmpfs, /bundle/rootfs/dev, tmpfs, nosuid|strictatime, mode=755,size=65536k)",
          "mount(sysfs, /bundle/rootfs/sys, sysfs, ro|nosuid|nodev|noexec, -)",
          "mount(mqueue, /bundle/rootfs/dev/mqueue, mqueue, 0, -)"));
}

TEST_F(MountsTest, SysfsRefusedInAUserNamespaceFallsBackToAnRbindOfSys) {
  ctx_.user_namespace = true;
  fake_.Refuse("sysfs", EPERM);
  ASSERT_TRUE(Run({.destination = "/sys",
                   .type = "sysfs",
                   .source = "sysfs",
                   .options = {"nosuid", "noexec", "nodev", "ro"}})
                  .ok());
  EXPECT_THAT(
      fake_.Mounts(),
      ElementsAre("mount(sysfs, /bundle/rootfs/sys, sysfs, ro|nosuid|nodev|noexec, -) = EPERM",
                  "mount(/sys, /bundle/rootfs/sys, -, bind|rec, -)",
                  "mount(-, /bundle/rootfs/sys, -, bind|remount|ro|nosuid|nodev|noexec, -)"));
}

TEST_F(MountsTest, MqueueRefusedFallsBackToAnRbindOfDevMqueue) {
  ctx_.user_namespace = true;
  fake_.Refuse("mqueue", EPERM);
  ASSERT_TRUE(Run({.destination = "/dev/mqueue", .type = "mqueue", .source = "mqueue"}).ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(mqueue, /bundle/rootfs/dev/mqueue, mqueue, 0, -) = EPERM",
                          "mount(/dev/mqueue, /bundle/rootfs/dev/mqueue, -, bind|rec, -)"));
}

TEST_F(MountsTest, OtherMountErrorsAreReturned) {
  fake_.Refuse("proc", EBUSY);
  absl::Status st = Run({.destination = "/proc", .type = "proc", .source = "proc"});
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("proc on /proc"));
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(proc, /bundle/rootfs/proc, proc, 0, -) = EBUSY"));
}

// ---- cgroups ----

class CgroupMountTest : public MountsTest {
 protected:
  void SetUp() override {
    MountsTest::SetUp();
    // A hybrid host: the container is in /c1 of the controllers' hierarchies only.
    for (const char* dir : {"systemd", "pids/c1", "cpu,cpuacct/c1", "memory", "unified"}) {
      fake_.Dir(absl::StrCat("/sys/fs/cgroup/", dir));
    }
    fake_.MountPoint("/sys/fs/cgroup/pids", kLocked | ST_RELATIME);
    fake_.MountPoint("/sys/fs/cgroup/cpu,cpuacct", kLocked | ST_RELATIME);
    ctx_.cgroup_lines = "9:name=systemd:/\n8:pids:/c1\n5:cpu,cpuacct:/c1\n0::/\n";
  }

  static Mount CgroupMount(std::vector<std::string> options) {
    return {.destination = "/sys/fs/cgroup",
            .type = "cgroup",
            .source = "cgroup",
            .options = std::move(options)};
  }
};

TEST_F(CgroupMountTest, HybridIsATmpfsWithOneBindPerHierarchyOfTheContainer) {
  ctx_.cgroup_mode = cgroups::Mode::kHybrid;
  ASSERT_TRUE(Run(CgroupMount({"nosuid", "noexec", "nodev", "relatime", "ro"})).ok());
  const std::string cg = R("/sys/fs/cgroup");
  EXPECT_THAT(
      fake_.Mounts(),
      ElementsAre(
          absl::StrCat("mount(tmpfs, ", cg, ", tmpfs, nosuid|nodev|noexec|relatime, mode=755)"),
          absl::StrCat("mount(/sys/fs/cgroup/pids/c1, ", cg, "/pids, -, bind|rec, -)"),
          absl::StrCat("mount(-, ", cg,
                       "/pids, -, bind|remount|ro|nosuid|nodev|noexec|relatime, -)"),
          absl::StrCat("mount(/sys/fs/cgroup/cpu,cpuacct/c1, ", cg,
                       "/cpu,cpuacct, -, bind|rec, -)"),
          absl::StrCat("mount(-, ", cg,
                       "/cpu,cpuacct, -, bind|remount|ro|nosuid|nodev|noexec|relatime, -)"),
          absl::StrCat("mount(-, ", cg,
                       ", -, remount|ro|nosuid|nodev|noexec|relatime, mode=755)")));
  EXPECT_THAT(fake_.Calls({"symlink"}),
              ElementsAre(absl::StrCat("symlink(", cg, "/cpu -> cpu,cpuacct)"),
                          absl::StrCat("symlink(", cg, "/cpuacct -> cpu,cpuacct)")));
  // Hierarchies the container is not in ("/") get nothing.
  EXPECT_EQ(fake_.Find(cg + "/systemd"), nullptr);
  EXPECT_EQ(fake_.Find(cg + "/unified"), nullptr);
}

TEST_F(CgroupMountTest, V1WithoutRoHasNoFinalRemount) {
  ctx_.cgroup_mode = cgroups::Mode::kLegacy;
  // memory: the host has the hierarchy but not our cgroup; devices: not even the hierarchy.
  ctx_.cgroup_lines = "8:pids:/c1\n7:memory:/c1\n6:devices:/c1\n";
  ASSERT_TRUE(Run(CgroupMount({"nosuid", "noexec", "nodev"})).ok());
  const std::string cg = R("/sys/fs/cgroup");
  EXPECT_THAT(
      fake_.Mounts(),
      ElementsAre(
          absl::StrCat("mount(tmpfs, ", cg, ", tmpfs, nosuid|nodev|noexec|relatime, mode=755)"),
          absl::StrCat("mount(/sys/fs/cgroup/pids/c1, ", cg, "/pids, -, bind|rec, -)"),
          absl::StrCat("mount(-, ", cg,
                       "/pids, -, bind|remount|nosuid|nodev|noexec|relatime, -)")));
  EXPECT_THAT(fake_.Calls({"symlink"}), IsEmpty());
}

TEST_F(CgroupMountTest, V2IsACgroup2Mount) {
  ASSERT_TRUE(Run(CgroupMount({"nosuid", "noexec", "nodev", "relatime", "ro"})).ok());
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(cgroup2, /bundle/rootfs/sys/fs/cgroup, cgroup2, "
                                          "ro|nosuid|nodev|noexec|relatime, -)"));
}

TEST_F(CgroupMountTest, V2RefusedInAUserNamespaceFallsBackToAnRbindOfItsOwnCgroup) {
  ctx_.user_namespace = true;
  ctx_.cgroup_lines = "0::/c1\n";
  fake_.Dir("/sys/fs/cgroup/c1");
  fake_.Refuse("cgroup2", EPERM);
  ASSERT_TRUE(Run(CgroupMount({"nosuid", "noexec", "nodev", "ro"})).ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(cgroup2, /bundle/rootfs/sys/fs/cgroup, cgroup2, "
                          "ro|nosuid|nodev|noexec, -) = EPERM",
                          "mount(/sys/fs/cgroup/c1, /bundle/rootfs/sys/fs/cgroup, -, bind|rec, -)",
                          "mount(-, /bundle/rootfs/sys/fs/cgroup, -, "
                          "bind|remount|ro|nosuid|nodev|noexec, -)"));
}

TEST_F(CgroupMountTest, V2RefusedInAUserNamespaceNeverBindsTheHostRoot) {
  ctx_.user_namespace = true;
  ctx_.cgroup_lines = "0::/\n";
  fake_.Refuse("cgroup2", EPERM);
  EXPECT_TRUE(absl::IsPermissionDenied(Run(CgroupMount({"nosuid"}))));
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(cgroup2, /bundle/rootfs/sys/fs/cgroup, cgroup2, "
                                          "nosuid, -) = EPERM"));
}

TEST_F(CgroupMountTest, V2RefusedWithoutAUserNamespaceIsAnError) {
  fake_.Refuse("cgroup2", EPERM);
  absl::Status st = Run(CgroupMount({"nosuid"}));
  EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(cgroup2, /bundle/rootfs/sys/fs/cgroup, cgroup2, "
                                          "nosuid, -) = EPERM"));
}

// ---- After EnterRoot: masked and read-only paths, the root ----

TEST_F(MountsTest, MaskPathsCoversDirectoriesWithATmpfsAndFilesWithDevNull) {
  fake_.Dir("/proc/acpi");
  fake_.File("/proc/kcore");
  ASSERT_TRUE(MaskPaths({"/proc/acpi", "/proc/kcore", "/proc/missing"}, fake_).ok());
  EXPECT_THAT(fake_.Mounts(), ElementsAre("mount(tmpfs, /proc/acpi, tmpfs, ro, size=0)",
                                          "mount(/dev/null, /proc/kcore, -, bind, -)"));
}

TEST_F(MountsTest, ReadonlyPathsAreABindAndAReadOnlyRemount) {
  fake_.Dir("/proc/sys");
  fake_.MountPoint("/proc", kLocked);
  ASSERT_TRUE(ReadonlyPaths({"/proc/sys", "/proc/missing"}, fake_).ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(/proc/sys, /proc/sys, -, bind|rec, -)",
                          "mount(-, /proc/sys, -, bind|remount|ro|nosuid|nodev|noexec, -)"));
}

TEST_F(MountsTest, ReadonlyRootAndRootPropagation) {
  ASSERT_TRUE(SetRootPropagation("", fake_).ok());
  ASSERT_TRUE(SetRootPropagation("rslave", fake_).ok());
  ASSERT_TRUE(ReadonlyRoot(fake_).ok());
  EXPECT_THAT(fake_.Mounts(),
              ElementsAre("mount(-, /, -, rec|slave, -)", "mount(-, /, -, bind|remount|ro, -)"));
}

TEST_F(MountsTest, EnterRootPivotsAndDetachesTheOldRoot) {
  ASSERT_TRUE(EnterRoot(kRootfs, /*no_pivot=*/false, fake_).ok());
  EXPECT_THAT(fake_.Calls({"chdir", "fchdir", "pivot_root", "mount", "umount2", "chroot"}),
              ElementsAre("fchdir(/bundle/rootfs)", "pivot_root(., .)", "fchdir(/)",
                          "mount(-, ., -, rec|slave, -)", "umount2(., detach)", "chdir(/)"));
}

TEST_F(MountsTest, EnterRootWithoutPivotMovesAndChroots) {
  ASSERT_TRUE(EnterRoot(kRootfs, /*no_pivot=*/true, fake_).ok());
  EXPECT_THAT(fake_.Calls({"chdir", "fchdir", "pivot_root", "mount", "umount2", "chroot"}),
              ElementsAre("chdir(/bundle/rootfs)", "mount(/bundle/rootfs, /, -, move, -)",
                          "chroot(.)", "chdir(/)"));
}

// ---- Devices ----

TEST_F(MountsTest, DefaultDevicesAreMadeWithUmaskZeroAndTheDevLinks) {
  ASSERT_TRUE(CreateDevices(ctx_, {}, /*defaults=*/true).ok());
  EXPECT_THAT(fake_.Calls({"umask", "mknod"}),
              ElementsAre("umask(000)", "mknod(/bundle/rootfs/dev/null, chr 0666, 1:3, umask 000)",
                          "mknod(/bundle/rootfs/dev/zero, chr 0666, 1:5, umask 000)",
                          "mknod(/bundle/rootfs/dev/full, chr 0666, 1:7, umask 000)",
                          "mknod(/bundle/rootfs/dev/random, chr 0666, 1:8, umask 000)",
                          "mknod(/bundle/rootfs/dev/urandom, chr 0666, 1:9, umask 000)",
                          "mknod(/bundle/rootfs/dev/tty, chr 0666, 5:0, umask 000)", "umask(022)"));
  EXPECT_EQ(fake_.umask(), 022u);
  const FakeSys::Node* null = fake_.Find(R("/dev/null"));
  ASSERT_NE(null, nullptr);
  EXPECT_EQ(null->mode, static_cast<mode_t>(S_IFCHR | 0666));
  EXPECT_EQ(null->rdev, makedev(1, 3));
  EXPECT_THAT(fake_.Calls({"symlink"}),
              ElementsAre("symlink(/bundle/rootfs/dev/fd -> /proc/self/fd)",
                          "symlink(/bundle/rootfs/dev/stdin -> /proc/self/fd/0)",
                          "symlink(/bundle/rootfs/dev/stdout -> /proc/self/fd/1)",
                          "symlink(/bundle/rootfs/dev/stderr -> /proc/self/fd/2)",
                          "symlink(/bundle/rootfs/dev/ptmx -> pts/ptmx)",
                          "symlink(/bundle/rootfs/dev/core -> /proc/kcore)"));
  EXPECT_THAT(fake_.Mounts(), IsEmpty());
}

TEST_F(MountsTest, ExistingDevLinksAreKept) {
  fake_.Symlink(R("/dev/ptmx"), "/dev/pts/ptmx");
  ASSERT_TRUE(CreateDevices(ctx_, {}, /*defaults=*/true).ok());
  EXPECT_EQ(fake_.Find(R("/dev/ptmx"))->link, "/dev/pts/ptmx");
}

TEST_F(MountsTest, InAUserNamespaceHostNodesAreBoundOverEmptyFiles) {
  ctx_.user_namespace = true;
  ASSERT_TRUE(CreateDevices(ctx_, {}, /*defaults=*/true).ok());
  std::vector<std::string> expected;
  for (const char* name : {"null", "zero", "full", "random", "urandom", "tty"}) {
    expected.push_back(
        absl::StrCat("mknod(/bundle/rootfs/dev/", name, ", reg 0644, 0:0, umask 000)"));
    expected.push_back(
        absl::StrCat("mount(/dev/", name, ", /bundle/rootfs/dev/", name, ", -, bind, -)"));
  }
  EXPECT_THAT(fake_.Calls({"mknod", "mount"}), ElementsAreArray(expected));
  EXPECT_EQ(fake_.umask(), 022u);
  EXPECT_EQ(fake_.Calls({"symlink"}).size(), 6u);
}

TEST_F(MountsTest, SpecDevicesReplaceExistingNodes) {
  fake_.Add(R("/dev/fuse"), S_IFCHR | 0600, makedev(1, 1));
  std::vector<Device> devices = {
      {.path = "/dev/fuse",
       .type = 'c',
       .major = 10,
       .minor = 229,
       .file_mode = 0640,
       .uid = 1000,
       .gid = 1001},
      {.path = "/dev/net/tun", .type = 'c', .major = 10, .minor = 200},
      {.path = "/dev/loop0", .type = 'b', .major = 7, .minor = 0, .file_mode = 0660},
      {.path = "/dev/initctl", .type = 'p'},
  };
  ASSERT_TRUE(CreateDevices(ctx_, devices, /*defaults=*/false).ok());
  EXPECT_THAT(
      fake_.Calls(),
      ElementsAre(
          "umask(000)", "unlink(/bundle/rootfs/dev/fuse)",
          "mknod(/bundle/rootfs/dev/fuse, chr 0640, 10:229, umask 000)",
          "chown(/bundle/rootfs/dev/fuse, 1000:1001)", "mkdir(/bundle/rootfs/dev/net, 0755)",
          "unlink(/bundle/rootfs/dev/net/tun) = ENOENT",
          "mknod(/bundle/rootfs/dev/net/tun, chr 0666, 10:200, umask 000)",
          "chown(/bundle/rootfs/dev/net/tun, 0:0)", "unlink(/bundle/rootfs/dev/loop0) = ENOENT",
          "mknod(/bundle/rootfs/dev/loop0, blk 0660, 7:0, umask 000)",
          "chown(/bundle/rootfs/dev/loop0, 0:0)", "unlink(/bundle/rootfs/dev/initctl) = ENOENT",
          "mknod(/bundle/rootfs/dev/initctl, fifo 0666, 0:0, umask 000)",
          "chown(/bundle/rootfs/dev/initctl, 0:0)", "umask(022)"));
  const FakeSys::Node* fuse = fake_.Find(R("/dev/fuse"));
  ASSERT_NE(fuse, nullptr);
  EXPECT_EQ(fuse->mode, static_cast<mode_t>(S_IFCHR | 0640));
  EXPECT_EQ(fuse->rdev, makedev(10, 229));
  EXPECT_EQ(fuse->uid, 1000u);
  EXPECT_EQ(fuse->gid, 1001u);
}

TEST_F(MountsTest, AFailedDeviceRestoresTheUmask) {
  // The parent is a file in the image: nothing can be made under it.
  fake_.File(R("/dev/disk"));
  absl::Status st =
      CreateDevices(ctx_, {{.path = "/dev/disk/sda", .type = 'b', .major = 8}}, false);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(fake_.umask(), 022u);
  // In a user namespace: the empty file to bind over cannot be made through a dangling link.
  ctx_.user_namespace = true;
  fake_.Symlink(R("/dev/sda"), "/nowhere");
  st = CreateDevices(ctx_, {{.path = "/dev/sda", .type = 'b', .major = 8}}, false);
  EXPECT_TRUE(absl::IsNotFound(st)) << st;
  EXPECT_EQ(fake_.umask(), 022u);
}

}  // namespace
}  // namespace berth::runtime

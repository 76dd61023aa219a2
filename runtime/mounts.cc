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
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"

namespace berth::runtime {

namespace {

constexpr unsigned long kPropagationFlags = MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE;
// Per-mount flags that a bind remount can change.
constexpr unsigned long kRemountFlags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                        MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;

absl::Status DoMount(Sys& sys, const char* source, const std::string& target, const char* type,
                     unsigned long flags, const char* data, absl::string_view what) {
  if (sys.Mount(source, target.c_str(), type, flags, data) != 0) {
    return LastErrnoError(absl::StrCat("mount ", what));
  }
  return absl::OkStatus();
}

// The flags of the mount `fd` is on that a bind remount must keep (in a user namespace the
// kernel refuses to drop locked nosuid/nodev/noexec/atime flags).
unsigned long LockedFlags(Sys& sys, int fd) {
  struct statvfs st {};
  if (sys.Fstatvfs(fd, &st) != 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

// The propagation and the recursive attributes (mount_setattr) of the mount `mounted` is on.
absl::Status SetPropagationAndAttributes(Sys& sys, const UniqueFd& mounted, const MountOptions& o,
                                         absl::string_view dest) {
  if (o.propagation != 0) {
    RETURN_IF_ERROR(DoMount(sys, nullptr, FdPath(mounted.get()), nullptr, o.propagation, nullptr,
                            absl::StrCat("propagation of ", dest)));
  }
  if (o.recursive_set != 0 || o.recursive_clear != 0) {
    struct mount_attr attr {};
    attr.attr_set = o.recursive_set;
    attr.attr_clr = o.recursive_clear;
    if (sys.MountSetattr(mounted.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, attr) != 0) {
      return LastErrnoError(absl::StrCat("mount_setattr ", dest));
    }
  }
  return absl::OkStatus();
}

// Bind-mounts `source` (a host path or an fd path) onto the target and applies the per-mount
// flags with a remount, the propagation and the recursive attributes.
absl::Status BindMount(Sys& sys, int root_fd, const std::string& source, absl::string_view dest,
                       const UniqueFd& target, const MountOptions& o) {
  unsigned long bind = MS_BIND | (o.flags & MS_REC);
  RETURN_IF_ERROR(DoMount(sys, source.c_str(), FdPath(target.get()), nullptr, bind, nullptr,
                          absl::StrCat(source, " on ", dest)));
  // The target fd is the directory under the new mount: reopen to act on the mount itself.
  ASSIGN_OR_RETURN(UniqueFd mounted, OpenInRoot(root_fd, dest, O_PATH | O_CLOEXEC, sys));
  unsigned long flags = o.flags & kRemountFlags;
  if (flags != 0) {
    flags |= LockedFlags(sys, mounted.get()) & ~o.clear_flags;
    RETURN_IF_ERROR(DoMount(sys, nullptr, FdPath(mounted.get()), nullptr,
                            MS_BIND | MS_REMOUNT | flags, nullptr, absl::StrCat("remount ", dest)));
  }
  RETURN_IF_ERROR(SetPropagationAndAttributes(sys, mounted, o, dest));
  return absl::OkStatus();
}

// A v1 (or hybrid) host: a tmpfs with one bind mount per hierarchy, each showing the
// container's own cgroup, as runc does.
absl::Status CgroupV1Mount(const MountContext& ctx, const Mount& m, const MountOptions& o) {
  Sys& sys = *ctx.sys;
  ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(ctx.root_fd, m.destination, true, sys));
  unsigned long tmpfs_flags = (o.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)) | MS_RELATIME;
  RETURN_IF_ERROR(DoMount(sys, "tmpfs", FdPath(target.get()), "tmpfs", tmpfs_flags, "mode=755",
                          absl::StrCat("tmpfs on ", m.destination)));
  MountOptions bind = o;
  bind.flags = (o.flags | MS_BIND | MS_REC) & ~kPropagationFlags;
  bind.propagation = 0;
  for (absl::string_view line : absl::StrSplit(ctx.cgroup_lines, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    std::string name(f[1]);
    if (name.empty()) {
      name = "unified";  // the hybrid host's cgroup2 mount
    } else if (absl::StartsWith(name, "name=")) {
      name = name.substr(5);
    }
    // A hierarchy the container was not placed in (on a hybrid host the v1 driver uses the
    // controllers, not name=systemd or the empty cgroup2 tree) would show the host's root.
    if (f[2] == "/") continue;
    std::string host_dir = absl::StrCat("/sys/fs/cgroup/", name);
    struct stat st {};
    if (sys.Stat(host_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    std::string source = absl::StrCat(host_dir, f[2]);
    if (sys.Stat(source.c_str(), &st) != 0) continue;  // no cgroup of ours in this hierarchy
    std::string dest = absl::StrCat(m.destination, "/", name);
    ASSIGN_OR_RETURN(UniqueFd sub, EnsureInRoot(ctx.root_fd, dest, true, sys));
    RETURN_IF_ERROR(BindMount(sys, ctx.root_fd, source, dest, sub, bind));
    // Co-mounted controllers ("cpu,cpuacct") are reachable under each name, as on the host.
    if (absl::StrContains(name, ',')) {
      ASSIGN_OR_RETURN(UniqueFd dir, OpenInRoot(ctx.root_fd, m.destination,
                                                O_RDONLY | O_DIRECTORY | O_CLOEXEC, sys));
      for (absl::string_view part : absl::StrSplit(name, ',')) {
        std::string link(part);
        if (sys.Symlinkat(name.c_str(), dir.get(), link.c_str()) != 0 && errno != EEXIST) {
          return LastErrnoError(absl::StrCat("symlink ", m.destination, "/", link));
        }
      }
    }
  }
  if (o.flags & MS_RDONLY) {
    ASSIGN_OR_RETURN(UniqueFd mounted,
                     OpenInRoot(ctx.root_fd, m.destination, O_PATH | O_CLOEXEC, sys));
    RETURN_IF_ERROR(DoMount(sys, nullptr, FdPath(mounted.get()), nullptr,
                            MS_REMOUNT | MS_RDONLY | tmpfs_flags, "mode=755",
                            absl::StrCat("remount ", m.destination)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FdPath(int fd) {
  return absl::StrCat("/proc/self/fd/", fd);
}

absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, absl::string_view path, int flags, Sys& sys) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string p(path);
  for (;;) {
    int fd = sys.Openat2(root_fd, p.c_str(), how);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != EINTR && errno != EAGAIN) break;
  }
  return LastErrnoError(absl::StrCat("open ", path, " in the rootfs"));
}

absl::StatusOr<UniqueFd> EnsureInRoot(int root_fd, absl::string_view path, bool dir, Sys& sys) {
  absl::StatusOr<UniqueFd> fd = OpenInRoot(root_fd, path, O_PATH, sys);
  if (fd.ok() || !absl::IsNotFound(fd.status())) return fd;
  // Walk down from the root, creating what is missing. Each prefix is resolved from the root
  // again, so a symlink met on the way is followed as the container would see it, and never
  // out of the rootfs.
  UniqueFd cur(sys.DupCloexec(root_fd));
  if (!cur) return LastErrnoError("dup the rootfs fd");
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& name = parts[i];
    if (name == "..") return absl::InvalidArgumentError(absl::StrCat(path, ": \"..\" in a path"));
    bool last = i + 1 == parts.size();
    absl::StrAppend(&prefix, "/", name);
    absl::StatusOr<UniqueFd> next = OpenInRoot(root_fd, prefix, O_PATH, sys);
    if (!next.ok() && absl::IsNotFound(next.status())) {
      int r = (last && !dir) ? sys.Mknodat(cur.get(), name.c_str(), S_IFREG | 0644, 0)
                             : sys.Mkdirat(cur.get(), name.c_str(), 0755);
      if (r != 0 && errno != EEXIST) {
        return LastErrnoError(absl::StrCat("create ", prefix, " in the rootfs"));
      }
      next = OpenInRoot(root_fd, prefix, O_PATH, sys);
    }
    if (!next.ok()) return next.status();
    cur = *std::move(next);
  }
  return cur;
}

absl::Status MountOne(const MountContext& ctx, const Mount& m) {
  Sys& sys = *ctx.sys;
  ASSIGN_OR_RETURN(MountOptions o, ParseMountOptions(m.options));
  const bool bind = (o.flags & MS_BIND) != 0 || m.type == "bind";
  if (bind) {
    std::string source = m.source;
    if (!source.empty() && source[0] != '/') source = absl::StrCat(ctx.bundle, "/", source);
    struct stat st {};
    if (sys.Stat(source.c_str(), &st) != 0) {
      return LastErrnoError(absl::StrCat("bind mount source ", source));
    }
    ASSIGN_OR_RETURN(UniqueFd target,
                     EnsureInRoot(ctx.root_fd, m.destination, S_ISDIR(st.st_mode), sys));
    o.flags |= MS_BIND;
    return BindMount(sys, ctx.root_fd, source, m.destination, target, o);
  }
  if (m.type == "cgroup" || m.type == "cgroup2") {
    if (ctx.cgroup_mode != cgroups::Mode::kUnified) return CgroupV1Mount(ctx, m, o);
    ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(ctx.root_fd, m.destination, true, sys));
    absl::Status st = DoMount(sys, "cgroup2", FdPath(target.get()), "cgroup2", o.flags, nullptr,
                              absl::StrCat("cgroup2 on ", m.destination));
    if (st.ok() || !(ctx.user_namespace && absl::IsPermissionDenied(st))) return st;
    // A user namespace without a cgroup namespace of its own cannot mount cgroup2: bind the
    // container's own cgroup (its "0::/path" line), as runc does, never the host's root.
    std::string own;
    for (absl::string_view line : absl::StrSplit(ctx.cgroup_lines, '\n', absl::SkipEmpty())) {
      if (absl::StartsWith(line, "0::")) own = std::string(line.substr(3));
    }
    if (own.empty() || own == "/") {
      return Annotate(st, "and the container's own cgroup is unknown, so nothing is bound");
    }
    MountOptions b = o;
    b.flags |= MS_BIND | MS_REC;
    return BindMount(sys, ctx.root_fd, absl::StrCat("/sys/fs/cgroup", own), m.destination, target,
                     b);
  }
  ASSIGN_OR_RETURN(UniqueFd target, EnsureInRoot(ctx.root_fd, m.destination, true, sys));
  const char* data = o.data.empty() ? nullptr : o.data.c_str();
  std::string source = m.source.empty() ? m.type : m.source;
  absl::Status st =
      DoMount(sys, source.c_str(), FdPath(target.get()), m.type.c_str(),
              o.flags & ~kPropagationFlags, data, absl::StrCat(m.type, " on ", m.destination));
  if (!st.ok() && absl::IsPermissionDenied(st) && (m.type == "sysfs" || m.type == "mqueue")) {
    // Without a network (or ipc) namespace of its own a user namespace cannot mount these;
    // the host's are bound instead, as runc does.
    MountOptions b = o;
    b.flags |= MS_BIND | MS_REC;
    return BindMount(sys, ctx.root_fd, m.type == "sysfs" ? "/sys" : "/dev/mqueue", m.destination,
                     target, b);
  }
  RETURN_IF_ERROR(st);
  if (o.propagation != 0 || o.recursive_set != 0 || o.recursive_clear != 0) {
    ASSIGN_OR_RETURN(UniqueFd mounted, OpenInRoot(ctx.root_fd, m.destination, O_PATH, sys));
    RETURN_IF_ERROR(SetPropagationAndAttributes(sys, mounted, o, m.destination));
  }
  return absl::OkStatus();
}

std::vector<Device> DefaultDevices() {
  std::vector<Device> out;
  for (auto [name, major, minor] : {std::tuple{"null", 1, 3},
                                    {"zero", 1, 5},
                                    {"full", 1, 7},
                                    {"random", 1, 8},
                                    {"urandom", 1, 9},
                                    {"tty", 5, 0}}) {
    out.push_back(Device{.path = absl::StrCat("/dev/", name),
                         .type = 'c',
                         .major = major,
                         .minor = minor,
                         .file_mode = 0666,
                         .uid = 0,
                         .gid = 0});
  }
  return out;
}

absl::Status CreateDevices(const MountContext& ctx, const std::vector<Device>& devices,
                           bool defaults) {
  Sys& sys = *ctx.sys;
  std::vector<Device> all;
  if (defaults) all = DefaultDevices();
  all.insert(all.end(), devices.begin(), devices.end());
  mode_t old_umask = sys.Umask(0);
  absl::Status result;
  for (const Device& d : all) {
    // /dev/ptmx is the symlink to the container's own devpts made below (as runc does: a
    // privileged container's list holds the host's node, which is left out).
    if (defaults && d.path == "/dev/ptmx") continue;
    size_t slash = d.path.find_last_of('/');
    std::string parent = d.path.substr(0, slash);
    std::string name = d.path.substr(slash + 1);
    absl::StatusOr<UniqueFd> dir_path =
        EnsureInRoot(ctx.root_fd, parent.empty() ? "/" : parent, true, sys);
    if (!dir_path.ok()) {
      result = dir_path.status();
      break;
    }
    absl::StatusOr<UniqueFd> dir = OpenInRoot(dir_path->get(), ".", O_RDONLY | O_DIRECTORY, sys);
    if (!dir.ok()) {
      result = dir.status();
      break;
    }
    if (ctx.user_namespace) {
      // No mknod in a user namespace: bind the host's node over an empty file.
      // (A failure breaks out rather than returning, so that the umask is restored.)
      absl::StatusOr<UniqueFd> target = EnsureInRoot(ctx.root_fd, d.path, false, sys);
      if (!target.ok()) {
        result = target.status();
        break;
      }
      MountOptions o;
      o.flags = MS_BIND;
      result = BindMount(sys, ctx.root_fd, d.path, d.path, *target, o);
      if (!result.ok()) break;
      continue;
    }
    mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
    mode_t mode = type | (d.file_mode ? (*d.file_mode & 07777) : 0666);
    dev_t dev = d.type == 'p' ? 0 : ::makedev(d.major, d.minor);
    if (sys.Unlinkat(dir->get(), name.c_str(), 0) != 0 && errno != ENOENT && errno != EISDIR) {
      result = LastErrnoError(absl::StrCat("replace ", d.path));
      break;
    }
    if (sys.Mknodat(dir->get(), name.c_str(), mode, dev) != 0) {
      result = LastErrnoError(absl::StrCat("mknod ", d.path));
      break;
    }
    if (sys.Fchownat(dir->get(), name.c_str(), d.uid.value_or(0), d.gid.value_or(0),
                     AT_SYMLINK_NOFOLLOW) != 0) {
      result = LastErrnoError(absl::StrCat("chown ", d.path));
      break;
    }
  }
  sys.Umask(old_umask);
  RETURN_IF_ERROR(result);
  if (!defaults) return absl::OkStatus();
  ASSIGN_OR_RETURN(UniqueFd dev, OpenInRoot(ctx.root_fd, "/dev", O_RDONLY | O_DIRECTORY, sys));
  for (auto [link, to] : {std::pair{"fd", "/proc/self/fd"},
                          {"stdin", "/proc/self/fd/0"},
                          {"stdout", "/proc/self/fd/1"},
                          {"stderr", "/proc/self/fd/2"},
                          {"ptmx", "pts/ptmx"},
                          {"core", "/proc/kcore"}}) {
    if (sys.Symlinkat(to, dev.get(), link) != 0 && errno != EEXIST) {
      return LastErrnoError(absl::StrCat("symlink /dev/", link));
    }
  }
  return absl::OkStatus();
}

absl::Status EnterRoot(const std::string& rootfs, bool no_pivot, Sys& sys) {
  if (no_pivot) {
    if (sys.Chdir(rootfs.c_str()) != 0) return LastErrnoError(absl::StrCat("chdir ", rootfs));
    RETURN_IF_ERROR(
        DoMount(sys, rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr, "move the rootfs to /"));
    if (sys.Chroot(".") != 0) return LastErrnoError("chroot");
    if (sys.Chdir("/") != 0) return LastErrnoError("chdir /");
    return absl::OkStatus();
  }
  UniqueFd old_root(sys.Open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!old_root) return LastErrnoError("open /");
  UniqueFd new_root(sys.Open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!new_root) return LastErrnoError(absl::StrCat("open ", rootfs));
  if (sys.Fchdir(new_root.get()) != 0) return LastErrnoError(absl::StrCat("chdir ", rootfs));
  // pivot_root(".", ".") stacks the old root over the new one; it is then detached from
  // below. No directory for the old root is needed in the image.
  if (sys.PivotRoot(".", ".") != 0) return LastErrnoError("pivot_root");
  if (sys.Fchdir(old_root.get()) != 0) return LastErrnoError("chdir to the old root");
  // Nothing done to the old root from here may reach the host.
  RETURN_IF_ERROR(
      DoMount(sys, nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr, "old root rslave"));
  if (sys.Umount2(".", MNT_DETACH) != 0) return LastErrnoError("detach the old root");
  if (sys.Chdir("/") != 0) return LastErrnoError("chdir /");
  return absl::OkStatus();
}

namespace {

// Calls fn(root fd, path, O_PATH fd) for each of `paths` that exists in the new root (after
// EnterRoot); a missing one is skipped.
absl::Status ForEachExisting(
    Sys& sys, const std::vector<std::string>& paths,
    const std::function<absl::Status(int, const std::string&, const UniqueFd&)>& fn) {
  UniqueFd root(sys.Open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return LastErrnoError("open /");
  for (const std::string& p : paths) {
    absl::StatusOr<UniqueFd> fd = OpenInRoot(root.get(), p, O_PATH | O_NOFOLLOW, sys);
    if (!fd.ok()) {
      if (absl::IsNotFound(fd.status())) continue;
      return fd.status();
    }
    RETURN_IF_ERROR(fn(root.get(), p, *fd));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MaskPaths(const std::vector<std::string>& paths, Sys& sys) {
  return ForEachExisting(sys, paths,
                         [&sys](int, const std::string& p, const UniqueFd& fd) -> absl::Status {
                           struct stat st {};
                           if (sys.Fstat(fd.get(), &st) != 0)
                             return LastErrnoError(absl::StrCat("stat ", p));
                           if (S_ISDIR(st.st_mode)) {
                             return DoMount(sys, "tmpfs", FdPath(fd.get()), "tmpfs", MS_RDONLY,
                                            "size=0", absl::StrCat("mask ", p));
                           }
                           return DoMount(sys, "/dev/null", FdPath(fd.get()), nullptr, MS_BIND,
                                          nullptr, absl::StrCat("mask ", p));
                         });
}

absl::Status ReadonlyPaths(const std::vector<std::string>& paths, Sys& sys) {
  return ForEachExisting(
      sys, paths, [&sys](int root, const std::string& p, const UniqueFd& fd) -> absl::Status {
        RETURN_IF_ERROR(DoMount(sys, FdPath(fd.get()).c_str(), FdPath(fd.get()), nullptr,
                                MS_BIND | MS_REC, nullptr, absl::StrCat("bind ", p)));
        ASSIGN_OR_RETURN(UniqueFd mounted, OpenInRoot(root, p, O_PATH | O_NOFOLLOW, sys));
        return DoMount(sys, nullptr, FdPath(mounted.get()), nullptr,
                       MS_BIND | MS_REMOUNT | MS_RDONLY | LockedFlags(sys, mounted.get()), nullptr,
                       absl::StrCat("remount ", p, " read-only"));
      });
}

absl::Status ReadonlyRoot(Sys& sys) {
  UniqueFd root(sys.Open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return LastErrnoError("open /");
  return DoMount(sys, nullptr, "/", nullptr,
                 MS_BIND | MS_REMOUNT | MS_RDONLY | LockedFlags(sys, root.get()), nullptr,
                 "remount / read-only");
}

absl::Status SetRootPropagation(const std::string& propagation, Sys& sys) {
  if (propagation.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(MountOptions o, ParseMountOptions({propagation}));
  return DoMount(sys, nullptr, "/", nullptr, o.propagation, nullptr, "rootfs propagation");
}

}  // namespace berth::runtime

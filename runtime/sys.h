// The seam between the runtime's filesystem logic and the kernel: one virtual method per
// syscall, with the syscall's own arguments and results (-1 and errno on failure), so the
// mount, device and pivot code can be unit-tested against an in-memory fake without root
// (as youki does with its Syscall trait). RealSys() forwards each call unchanged.
//
// File descriptors stay ordinary descriptors owned by UniqueFd (closed with close(2)). A fake
// therefore hands out real placeholder descriptors (of /dev/null, say) and maps their numbers
// to its own nodes, so that closing one never closes a descriptor of the test itself, and a
// mount target written as FdPath(fd) ("/proc/self/fd/N") can be mapped back to its node.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

// From <linux/openat2.h> and <linux/mount.h>: declared only, so that includers of mounts.h
// do not get the kernel's uapi headers (which some glibc versions' <sys/mount.h> clashes with).
struct open_how;
struct mount_attr;

namespace berth::runtime {

class Sys {
 public:
  // mount(2): `data` is the filesystem's option string (or null).
  virtual int Mount(const char* source, const char* target, const char* type, unsigned long flags,
                    const char* data) = 0;
  virtual int Umount2(const char* target, int flags) = 0;
  // mount_setattr(2), with `attr`'s size.
  virtual int MountSetattr(int dirfd, const char* path, unsigned int flags,
                           const mount_attr& attr) = 0;
  // openat2(2), with `how`'s size. Returns the new descriptor.
  virtual int Openat2(int dirfd, const char* path, const open_how& how) = 0;
  // open(2) of a host path (relative to the working directory, absolute to the root).
  virtual int Open(const char* path, int flags) = 0;
  // fcntl(fd, F_DUPFD_CLOEXEC, 0).
  virtual int DupCloexec(int fd) = 0;
  virtual int Mkdirat(int dirfd, const char* path, mode_t mode) = 0;
  virtual int Mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) = 0;
  virtual int Fchownat(int dirfd, const char* path, uid_t uid, gid_t gid, int flags) = 0;
  virtual int Unlinkat(int dirfd, const char* path, int flags) = 0;
  virtual int Symlinkat(const char* target, int dirfd, const char* linkpath) = 0;
  // fstatvfs(3): f_flag holds the ST_* flags of the mount `fd` is on.
  virtual int Fstatvfs(int fd, struct statvfs* st) = 0;
  virtual int Fstat(int fd, struct stat* st) = 0;
  // stat(2) of a host path, following symlinks.
  virtual int Stat(const char* path, struct stat* st) = 0;
  virtual mode_t Umask(mode_t mask) = 0;
  virtual int PivotRoot(const char* new_root, const char* put_old) = 0;
  virtual int Chdir(const char* path) = 0;
  virtual int Fchdir(int fd) = 0;
  virtual int Chroot(const char* path) = 0;

 protected:
  // Never deleted through a Sys*: the real one is a constant-initialized static, which this
  // keeps trivially destructible (no exit-time destructor, nothing to run in a forked child).
  ~Sys() = default;
};

// The kernel: every method is the syscall itself.
Sys& RealSys();

}  // namespace berth::runtime

#include "runtime/sys.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace berth::runtime {

namespace {

class LinuxSys final : public Sys {
 public:
  int Mount(const char* source, const char* target, const char* type, unsigned long flags,
            const char* data) override {
    return ::mount(source, target, type, flags, data);
  }
  int Umount2(const char* target, int flags) override { return ::umount2(target, flags); }
  int MountSetattr(int dirfd, const char* path, unsigned int flags,
                   const mount_attr& attr) override {
    return static_cast<int>(::syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof attr));
  }
  int Openat2(int dirfd, const char* path, const open_how& how) override {
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
  }
  int Open(const char* path, int flags) override { return ::open(path, flags); }
  int DupCloexec(int fd) override { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }
  int Mkdirat(int dirfd, const char* path, mode_t mode) override {
    return ::mkdirat(dirfd, path, mode);
  }
  int Mknodat(int dirfd, const char* path, mode_t mode, dev_t dev) override {
    return ::mknodat(dirfd, path, mode, dev);
  }
  int Fchownat(int dirfd, const char* path, uid_t uid, gid_t gid, int flags) override {
    return ::fchownat(dirfd, path, uid, gid, flags);
  }
  int Unlinkat(int dirfd, const char* path, int flags) override {
    return ::unlinkat(dirfd, path, flags);
  }
  int Symlinkat(const char* target, int dirfd, const char* linkpath) override {
    return ::symlinkat(target, dirfd, linkpath);
  }
  int Fstatvfs(int fd, struct statvfs* st) override { return ::fstatvfs(fd, st); }
  int Fstat(int fd, struct stat* st) override { return ::fstat(fd, st); }
  int Stat(const char* path, struct stat* st) override { return ::stat(path, st); }
  mode_t Umask(mode_t mask) override { return ::umask(mask); }
  int PivotRoot(const char* new_root, const char* put_old) override {
    return static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old));
  }
  int Chdir(const char* path) override { return ::chdir(path); }
  int Fchdir(int fd) override { return ::fchdir(fd); }
  int Chroot(const char* path) override { return ::chroot(path); }
};

// Constant-initialized and trivially destructible: usable from any static initializer, and
// in the container's init (a clone of a possibly multi-threaded runtime) without a guard.
constinit LinuxSys g_real_sys;

}  // namespace

Sys& RealSys() {
  return g_real_sys;
}

}  // namespace berth::runtime

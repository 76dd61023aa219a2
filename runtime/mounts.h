// The container's filesystem, built by its init in its own mount namespace: the spec's mounts,
// devices, pivot_root, masked and read-only paths. Every path inside the rootfs is resolved
// with openat2(RESOLVE_IN_ROOT) and mounted through the resulting fd (/proc/self/fd/N), so a
// symlink in the image can never send a mount outside the rootfs (CVE-2021-30465).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "cgroups/mode.h"
#include "runtime/spec.h"
#include "runtime/sys.h"

namespace berth::runtime {

// Every kernel call below goes through a Sys: RealSys() in the runtime, a fake in unit tests.

// Opens `path` inside the tree rooted at `root_fd`; symlinks are followed but never out of it.
absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, absl::string_view path, int flags,
                                    Sys& sys = RealSys());
// Makes sure `path` exists inside the root, as a directory (`dir`) or an empty file, creating
// missing parents (0755); returns an O_PATH fd of it.
absl::StatusOr<UniqueFd> EnsureInRoot(int root_fd, absl::string_view path, bool dir,
                                      Sys& sys = RealSys());
// "/proc/self/fd/N": how mount(2) is pointed at an fd.
std::string FdPath(int fd);

// What the mounting code needs to know besides the mount itself.
struct MountContext {
  int root_fd = -1;    // the rootfs (a bind mount of itself)
  std::string bundle;  // relative bind sources are relative to it
  bool user_namespace = false;
  cgroups::Mode cgroup_mode = cgroups::Mode::kUnified;
  // /proc/self/cgroup of the init before it entered a cgroup namespace: "N:ctrls:/path" lines
  // (v1 and hybrid: every hierarchy; v2: "0::/path").
  std::string cgroup_lines;
  Sys* sys = &RealSys();  // never null
};

absl::Status MountOne(const MountContext& ctx, const Mount& mount);

// The devices every container with its own /dev gets (null zero full random urandom tty).
std::vector<Device> DefaultDevices();

// Creates the spec's devices and, when `defaults`, the default set (null zero full random
// urandom tty) with the /dev/fd, stdio, ptmx and core links. In a user namespace nodes cannot
// be made, so host nodes are bind-mounted instead.
absl::Status CreateDevices(const MountContext& ctx, const std::vector<Device>& devices,
                           bool defaults);

// Makes `rootfs` the root: pivot_root, or with `no_pivot` a move mount over "/" and chroot (for
// an initramfs root, where pivot_root is refused). The old root is detached.
absl::Status EnterRoot(const std::string& rootfs, bool no_pivot, Sys& sys = RealSys());

// After EnterRoot: each masked path is covered (a read-only empty tmpfs for a directory,
// /dev/null for a file); each read-only path is remounted read-only. Missing paths are skipped.
absl::Status MaskPaths(const std::vector<std::string>& paths, Sys& sys = RealSys());
absl::Status ReadonlyPaths(const std::vector<std::string>& paths, Sys& sys = RealSys());
// Remounts "/" read-only (root.readonly).
absl::Status ReadonlyRoot(Sys& sys = RealSys());
// Applies rootfsPropagation to "/" ("shared", "rslave", ...).
absl::Status SetRootPropagation(const std::string& propagation, Sys& sys = RealSys());

}  // namespace berth::runtime

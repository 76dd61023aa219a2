#include "cgroups/mode.h"

#include <linux/magic.h>
#include <sys/vfs.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth::cgroups {

absl::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kUnified: return "unified";
    case Mode::kHybrid: return "hybrid";
    case Mode::kLegacy: return "legacy";
  }
  return "unknown";
}

absl::StatusOr<Mode> DetectModeWith(const std::string& root, const FsTypeFn& fs_type) {
  ASSIGN_OR_RETURN(long root_type, fs_type(root));
  if (root_type == CGROUP2_SUPER_MAGIC) return Mode::kUnified;
  if (root_type != TMPFS_MAGIC) {
    return absl::FailedPreconditionError(absl::StrCat(
        root, " is neither a cgroup2 mount nor a tmpfs holding cgroup v1 hierarchies (f_type 0x",
        absl::Hex(root_type), ")"));
  }
  absl::StatusOr<long> unified = fs_type(root + "/unified");
  if (unified.ok() && *unified == CGROUP2_SUPER_MAGIC) return Mode::kHybrid;
  if (!unified.ok() && !absl::IsNotFound(unified.status())) return unified.status();
  return Mode::kLegacy;
}

absl::StatusOr<Mode> DetectMode(const std::string& root) {
  return DetectModeWith(root, [](const std::string& path) -> absl::StatusOr<long> {
    struct statfs sfs;
    if (::statfs(path.c_str(), &sfs) != 0) return LastErrnoError(absl::StrCat("statfs ", path));
    return static_cast<long>(sfs.f_type);
  });
}

}  // namespace berth::cgroups

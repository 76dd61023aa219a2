// The OCI runtime spec (1.1, Linux) as typed structs: what a bundle's config.json says.
// ParseSpec validates at the edge: unknown fields are ignored, a field of the wrong type or an
// invalid value is refused with its JSON path ("process.user.uid: expected an unsigned
// integer"), so nothing later has to re-check the input.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cgroups/resources.h"

namespace berth::runtime {

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
};

struct Rlimit {
  int resource = 0;  // RLIMIT_* number, from the "RLIMIT_NOFILE" style name
  std::string name;  // as written
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Capability numbers (CAP_*), from their "CAP_SYS_ADMIN" style names. A name unknown to this
// kernel and libcap is refused.
struct Capabilities {
  std::vector<int> bounding, effective, inheritable, permitted, ambient;
};

struct ConsoleSize {
  uint16_t height = 0;
  uint16_t width = 0;
};

struct Process {
  bool terminal = false;
  std::optional<ConsoleSize> console_size;
  User user;
  std::vector<std::string> args;  // at least one
  std::vector<std::string> env;   // "KEY=value"
  std::string cwd = "/";          // absolute
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string apparmor_profile;
  std::string selinux_label;
};

struct Root {
  std::string path = "rootfs";  // relative to the bundle or absolute
  bool readonly = false;
};

struct Mount {
  std::string destination;  // absolute, inside the container
  std::string type;         // empty for bind mounts
  std::string source;
  std::vector<std::string> options;
  std::vector<IdMapping> uid_mappings, gid_mappings;
};

struct Hook {
  std::string path;  // absolute, on the host
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds, > 0
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
};

enum class NamespaceType { kPid, kNetwork, kMount, kIpc, kUts, kUser, kCgroup, kTime };

// "pid", "network", ... and the CLONE_NEW* flag of each.
absl::string_view NamespaceName(NamespaceType type);
int NamespaceCloneFlag(NamespaceType type);

struct Namespace {
  NamespaceType type = NamespaceType::kPid;
  std::string path;  // empty: create a new one; otherwise join this one
};

struct Device {
  std::string path;  // absolute, inside the container
  char type = 'c';   // 'c', 'u' (unbuffered char), 'b' or 'p'
  int64_t major = 0, minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid, gid;
};

struct SeccompArg {
  unsigned index = 0;  // 0..5
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, _MASKED_EQ
};

struct SeccompSyscall {
  std::vector<std::string> names;
  std::string action;  // SCMP_ACT_*
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  std::string default_action;  // SCMP_ACT_*
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // SCMP_ARCH_*
  std::vector<std::string> flags;          // SECCOMP_FILTER_FLAG_*
  std::string listener_path;
  std::string listener_metadata;
  std::vector<SeccompSyscall> syscalls;
};

struct TimeOffset {
  int64_t secs = 0;
  uint32_t nanosecs = 0;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<Device> devices;
  std::string cgroups_path;
  std::optional<cgroups::Resources> resources;
  std::string rootfs_propagation;  // "", shared, slave, private, unbindable (r-prefixed too)
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::string mount_label;
  std::map<std::string, std::string> sysctl;
  std::optional<Seccomp> seccomp;
  std::optional<std::string> personality;          // "LINUX" or "LINUX32"
  std::map<std::string, TimeOffset> time_offsets;  // "monotonic", "boottime"

  const Namespace* Find(NamespaceType type) const;
};

struct Spec {
  std::string oci_version;
  std::optional<Process> process;  // required by create
  Root root;
  std::string hostname;
  std::string domainname;
  std::vector<Mount> mounts;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  Linux linux;
};

// Parses and validates a config.json.
absl::StatusOr<Spec> ParseSpec(absl::string_view json);
// A process.json, as given to `exec --process` (the same rules as "process" in config.json).
absl::StatusOr<Process> ParseProcess(absl::string_view json);

// The default config.json that `berth-oci spec` writes (runc's default: sh in a busybox-style
// rootfs, the default capability set, masked and read-only paths, the standard mounts).
// `rootless` adds a user namespace mapping the caller's ids, as `runc spec --rootless` does.
std::string DefaultSpecJson(bool rootless, uid_t uid, gid_t gid);

// Mount options split into what mount(2) and mount_setattr(2) take.
struct MountOptions {
  unsigned long flags = 0;        // MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...
  unsigned long clear_flags = 0;  // flags an option turned off again ("rw", "suid", ...)
  unsigned long propagation = 0;  // MS_SHARED|MS_SLAVE|MS_PRIVATE|MS_UNBINDABLE, maybe |MS_REC
  uint64_t recursive_set = 0;     // MOUNT_ATTR_* for "rro", "rnosuid", ... (mount_setattr)
  uint64_t recursive_clear = 0;   // MOUNT_ATTR_* for "rrw", "rsuid", ...
  bool tmpcopyup = false;         // accepted, not acted upon (crun extension)
  std::string data;               // everything else, comma-joined, for the filesystem
};
// Refuses an option it cannot honour ("idmap"/"ridmap": idmapped mounts are not supported yet)
// with its name.
absl::StatusOr<MountOptions> ParseMountOptions(const std::vector<std::string>& options);

// "CAP_SYS_ADMIN" -> 21 (libcap's cap_from_name, case-insensitive as runc); NotFound for a name
// unknown to libcap or above this kernel's CAP_LAST_CAP.
absl::StatusOr<int> CapabilityFromName(absl::string_view name);
// "CAP_CHOWN", ... for every capability this kernel knows (0..CAP_LAST_CAP), for `features`.
std::vector<std::string> KnownCapabilityNames();

// "SIGKILL", "KILL", "9" -> 9. Refuses anything that is not a signal number of this kernel.
absl::StatusOr<int> ParseSignal(absl::string_view name);

}  // namespace berth::runtime

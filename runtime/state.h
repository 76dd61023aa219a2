// What berth-oci keeps about a container between invocations: <root>/<id>/state.json, written
// atomically before each side effect it names, plus the exec fifo while the container is
// created but not started. A process is identified by its pid *and* its start time, so a
// reused pid is never mistaken for the container's init.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace berth::runtime {

enum class Status { kCreating, kCreated, kRunning, kPaused, kStopped };
absl::string_view StatusName(Status status);

struct ContainerState {
  std::string id;
  std::string bundle;       // absolute
  std::string rootfs;       // absolute
  pid_t pid = 0;            // 0 until the init exists
  uint64_t start_time = 0;  // of pid, in clock ticks since boot (/proc/PID/stat field 22)
  std::string created;      // RFC 3339 with nanoseconds, UTC
  std::string owner;
  std::string cgroup_path;        // relative to the hierarchy roots
  bool own_pid_namespace = true;  // the init is pid 1 of a pid namespace of its own
  std::map<std::string, std::string> annotations;
};

// The state directory of one container: <root>/<id>.
class StateDir {
 public:
  // Creates <root>/<id> (and root, 0700). AlreadyExists when the id is taken.
  static absl::StatusOr<StateDir> Create(const std::string& root, const std::string& id);
  // NotFound (`container "ID" does not exist`) when it is not there.
  static absl::StatusOr<StateDir> Open(const std::string& root, const std::string& id);

  const std::string& path() const { return path_; }
  std::string fifo_path() const { return path_ + "/exec.fifo"; }
  std::string config_path() const { return path_ + "/config.json"; }

  // An exclusive flock on the directory, held while an operation changes the container.
  absl::Status Lock();

  absl::StatusOr<ContainerState> Load() const;
  absl::Status Save(const ContainerState& state) const;
  // Removes the directory and everything in it. Fine if already gone.
  absl::Status Remove();

 private:
  StateDir(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

// A container id: 1..1024 characters of [A-Za-z0-9_+.-], not "." or "..".
absl::Status ValidateId(absl::string_view id);

// The start time of a live process, or NotFound when it is gone.
absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid);

// A pidfd for the container's init, or NotFound when the process is gone or its pid was reused.
absl::StatusOr<UniqueFd> OpenInit(const ContainerState& state);

// What `state` reports: kCreating without a pid; kStopped when the init is gone; kCreated while
// the exec fifo exists; kPaused when the cgroup is frozen (`frozen` says so); kRunning otherwise.
Status CurrentStatus(const ContainerState& state, bool fifo_exists, bool frozen);

// runc's `state` JSON for a container.
std::string StateJson(const ContainerState& state, Status status, bool pretty);
// The state given to hooks on stdin (OCI runtime spec "State").
std::string HookStateJson(const ContainerState& state, Status status);

// Now, as RFC 3339 with nanoseconds in UTC ("2026-11-26T06:25:17.123456789Z").
std::string NowRfc3339Nano();

}  // namespace berth::runtime

// Reading and writing cgroup control files, with errors that name the file and the value.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace berth::cgroups {

absl::Status WriteControl(const std::string& dir, absl::string_view file, absl::string_view value);
absl::StatusOr<std::string> ReadControl(const std::string& dir, absl::string_view file);
absl::StatusOr<uint64_t> ReadUint(const std::string& dir, absl::string_view file);
// "key value" lines (memory.stat, cpu.stat, memory.events) into a map.
absl::StatusOr<std::map<std::string, uint64_t>> ReadKeyValues(const std::string& dir,
                                                              absl::string_view file);
bool ControlExists(const std::string& dir, absl::string_view file);

// rmdir of a cgroup directory, retried with backoff while the kernel says EBUSY (tasks still
// exiting, or children) until `deadline`. Fine when it is already gone.
absl::Status RemoveCgroupDir(const std::string& dir, absl::Time deadline);

// cpuset.cpus and cpuset.mems (each validated, each only when non-empty): the same files on v1
// and v2.
absl::Status WriteCpuset(const std::string& dir, const std::string& cpus, const std::string& mems);

}  // namespace berth::cgroups

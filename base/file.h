// Small file helpers with errors that name the path.
#pragma once

#include <sys/types.h>
#include "absl/strings/string_view.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth {

// Reads an open fd to its end; refuses more than `max_size` bytes. `name` is for messages.
absl::StatusOr<std::string> ReadFd(int fd, const std::string& name, size_t max_size);

// Reads a whole file; refuses files larger than `max_size` bytes.
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_size = 16 << 20);

// Writes `data` to `path` atomically: a temporary file in the same directory, rename. With
// `sync`, the data is fsynced before the rename (survives a power loss, costs about a
// millisecond); without, it survives any crash of the process but not of the machine.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode = 0644,
                             bool sync = true);

// Creates `path` and any missing parents with `mode` (like mkdir -p). Fine if it exists as a
// directory; an error if it exists as something else.
absl::Status MkdirAll(const std::string& path, mode_t mode = 0755);

// Removes `name` (relative to the directory fd `parent`) and, if it is a directory, everything
// below it, with *at calls only and one open directory at a time (depth is not bounded by the
// fd limit). Symlinks are removed, never followed. Fine when `name` does not exist.
absl::Status RemoveTreeAt(int parent, const std::string& name);

}  // namespace berth

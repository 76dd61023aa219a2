// Copying a directory tree with its metadata, confined to it.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace berth {

// Copies what the directory `src` holds into the directory `dst` (both open fds), recursively:
// directories, regular files (contents, sparse-unaware), symlinks (as links: never followed),
// device nodes and fifos, each with its owner, permission bits (setuid/setgid/sticky too),
// access and modification times and extended attributes (but for the `trusted.` namespace,
// which belongs to the filesystem below, e.g. overlayfs). Sockets are skipped, hard links
// become separate copies. Every entry is opened relative to its parent with O_NOFOLLOW, so
// nothing outside `src` is read or written, whatever its symlinks say. At most 256 levels
// deep. `src_name` names `src` in messages. Entries that exist in `dst` already are an error.
absl::Status CopyTreeContents(int src, int dst, const std::string& src_name);

// The owner, permission bits and times of the directory `src` applied to the directory `dst`.
absl::Status CopyDirMetadata(int src, int dst, const std::string& dst_name);

}  // namespace berth

// Streaming, hostile-safe extraction of one image layer (a tar, maybe gzip/zstd compressed) into
// an empty directory, with OCI whiteouts converted to overlayfs ones.
//
// The compressed bytes are pushed in with Write() as they arrive; Write() decompresses them,
// hashes the tar stream (the layer's diff_id) and hands it through a bounded queue (4 x 1 MiB)
// to an extractor thread that reads the tar with libarchive and creates every entry itself with
// *at() syscalls relative to the layer directory (never archive_write_disk):
//
//  - Names: leading "/" and "./" are stripped and "." components dropped, so absolute names are
//    CONFINED to the layer (as tar, Docker and containerd do). A name with a ".." component is
//    REFUSED (the whole layer fails): no legitimate layer has one. Names longer than PATH_MAX
//    are refused.
//  - The parent of every entry is opened with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
//    RESOLVE_NO_XDEV), so symlinks met on the way (created by this layer: "x -> /", "up ->
//    ../../..", a directory replaced by a symlink) are resolved as if the layer dir were "/":
//    CONFINED, never followed outside. Missing parents are created (0755, 0:0), as containerd
//    does. The last component is created with mkdirat / openat(O_CREAT|O_EXCL|O_NOFOLLOW) /
//    symlinkat / linkat / mknodat; what is already there is replaced (a directory over a
//    directory only gets the new metadata).
//  - Symlink targets are stored as written (resolved later, inside the container).
//  - Hard links: the target name is cleaned and resolved like any entry and must exist in this
//    layer (a link to a file of a lower layer, outside the layer or missing is refused).
//  - Metadata: owner (fchownat, no follow), then mode (so setuid/setgid survive), then xattrs
//    (security.capability is cleared by chown), then mtime/atime; directory times at the end.
//    Xattrs of regular files and directories are set on their open fd; those of symlinks,
//    devices and fifos with lsetxattr("/proc/self/fd/<parent fd>/<name>") (needs /proc;
//    user.* on symlinks is refused by the kernel, so such a layer fails). Xattrs named
//    trusted.overlay.* are dropped: overlayfs would obey them (redirects, metacopy, opaque).
//  - Whiteouts: "dir/.wh.name" becomes a 0/0 character device "dir/name" (replacing what this
//    layer put there); "dir/.wh..wh..opq" sets trusted.overlay.opaque=y on "dir"; other
//    ".wh..wh.*" (aufs metadata) are ignored. The .wh. files themselves are not created.
//  - Limits: uncompressed bytes and entries (UnpackOptions), symlink targets (PATH_MAX).
//    A corrupt or truncated compressed stream or tar is an error; bytes after the tar's end
//    marker are ignored (as Docker does) but still hashed, and the compressed stream must be
//    complete (gzip: every member with its trailer; garbage after a gzip member is an error).
//    A tar that stops cleanly at an entry boundary without the end marker is accepted, as Go's
//    archive/tar (Docker, containerd) does: the caller checks the diff_id against the config.
//
// Every error about an entry names it: `layer entry "etc/../../x": name has a ".." component`.
// Needs root (chown, mknod, trusted.* xattrs) or equivalent capabilities. Nothing is fsynced:
// the caller syncs (e.g. syncfs) before it commits the directory if it needs durability.
// A LayerUnpacker is used by one thread at a time (Write/Finish/Cancel are not concurrent);
// the extractor thread is internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/digest.h"
#include "images/manifest.h"

namespace berth::images {

struct UnpackOptions {
  uint64_t max_uncompressed_bytes = 64ull << 30;  // a decompression bomb is refused
  uint64_t max_entries = 10'000'000;
};

struct UnpackResult {
  Digest diff_id = Digest::Of("");  // sha256 of the uncompressed tar stream
  uint64_t compressed_bytes = 0;
  uint64_t uncompressed_bytes = 0;
  uint64_t entries = 0;  // tar entries read (whiteouts included)
};

class LayerUnpacker {
 public:
  // Extracts into `dir`: an existing, empty directory the caller made (the caller renames it
  // into the snapshot store on success and deletes it on failure). Starts the extractor thread.
  static absl::StatusOr<std::unique_ptr<LayerUnpacker>> Create(const std::string& dir,
                                                               Compression compression,
                                                               UnpackOptions options = {});
  ~LayerUnpacker();  // Cancel()
  LayerUnpacker(const LayerUnpacker&) = delete;
  LayerUnpacker& operator=(const LayerUnpacker&) = delete;

  // Compressed layer bytes, as they arrive (any chunk sizes). Blocks while the extractor is
  // behind (bounded memory). Returns the first error of either side (decompression, limits,
  // extraction); after an error every later call fails too.
  absl::Status Write(const void* data, size_t size);
  absl::Status Write(absl::string_view data) { return Write(data.data(), data.size()); }

  // End of stream: checks the compressed stream is complete, waits for extraction, checks the
  // tar ended properly, applies directory times, returns the diff_id and counts.
  absl::StatusOr<UnpackResult> Finish();

  // Abandons the extraction (the destructor does the same): stops and joins the extractor.
  // The caller removes `dir`.
  void Cancel();

 private:
  struct Impl;
  explicit LayerUnpacker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::images

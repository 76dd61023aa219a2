// The snapshot store: unpacked image layers, one directory per layer, keyed by the layer's chain
// ID (manifest.h ChainIds). Layout under the root (berthd: /var/lib/berth):
//
//   snapshots/<alg>/<hex of chain ID>/   a layer's own files (NOT merged with its parents:
//                                        containers stack them as overlayfs lowerdirs), with
//                                        overlay whiteouts (unpack.h)
//   snapshots/tmp/<random>/              extractions in progress and snapshots being removed
//
// A snapshot becomes visible only by a rename from tmp/, after its diff_id matched the image
// config and the snapshot filesystem was synced (syncfs): a committed snapshot is complete and
// survives a power loss. Paths are built from berth::Digest values only, never from names read
// from disk. Removal renames the snapshot into tmp/ first (so it disappears atomically) and
// then deletes the tree with *at() calls that never follow symlinks.
//
// Thread-safe and process-safe for what it does (renames are atomic; two extractions of one
// chain ID race harmlessly: the first rename wins, the second tree is dropped). CleanTmp is for
// start-up, when no extraction runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/digest.h"

namespace berth::images {

struct SnapshotUsage {
  int64_t bytes = 0;   // st_blocks * 512 of everything under snapshots/ (hard links once)
  int64_t inodes = 0;  // distinct inodes under snapshots/ (directories included)
};

class SnapshotStore {
 public:
  // Creates root/snapshots/{sha256,sha512,tmp} as needed (0755; tmp 0700).
  static absl::StatusOr<std::unique_ptr<SnapshotStore>> Open(const std::string& root);

  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  // A committed snapshot of `chain_id` exists (a real directory, not a symlink).
  bool Has(const Digest& chain_id) const;
  // Where the snapshot of `chain_id` is (or would be): root/snapshots/<alg>/<hex>.
  std::string Path(const Digest& chain_id) const;
  // Removes the snapshot; OK when it does not exist (idempotent).
  absl::Status Remove(const Digest& chain_id) const;

  // The chain IDs of the committed snapshots (directories named by a valid digest).
  absl::StatusOr<std::vector<Digest>> List() const;

  // Start-up hygiene: removes everything under snapshots/tmp (leftovers of a crash).
  absl::Status CleanTmp() const;

  // Bytes and inodes used by the snapshots, from the filesystem (fstatat walk).
  absl::StatusOr<SnapshotUsage> Usage() const;

  // Extraction. NewTmp creates an empty directory (mode 0755) under snapshots/tmp and returns
  // its path; Commit syncs the filesystem and renames it to Path(chain_id) (when a snapshot of
  // `chain_id` appeared meanwhile, that one is kept and `tmp_dir` is removed: OK);
  // RemoveTmp deletes an extraction directory (OK when it is gone). `tmp_dir` must be a path
  // NewTmp returned.
  absl::StatusOr<std::string> NewTmp() const;
  absl::Status Commit(const std::string& tmp_dir, const Digest& chain_id) const;
  absl::Status RemoveTmp(const std::string& tmp_dir) const;

  const std::string& root() const { return root_; }  // root/snapshots
  std::string TmpDir() const { return root_ + "/tmp"; }

 private:
  explicit SnapshotStore(std::string root) : root_(std::move(root)) {}
  std::string AlgDir(const Digest& d) const;
  std::string root_;
};

}  // namespace berth::images

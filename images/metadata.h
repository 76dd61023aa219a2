// berth's image and snapshot records, kept in SQLite (`<root>/berth.db`, berthd:
// /var/lib/berth/berth.db).
//
// The database runs in WAL mode with foreign keys on, a 5 s busy timeout and
// synchronous=NORMAL (with WAL a committed transaction survives a process crash; a power loss
// may lose the last commits but never corrupts the file). One connection, guarded by a mutex,
// serves every caller; statements are prepared once and cached; every change that touches
// more than one row is one transaction, so a crash leaves either all of it or none of it.
// The schema version is `PRAGMA user_version` (1 today) and Open() migrates older files.
//
// Digests are stored as their text ("sha256:...") and re-parsed when read: a row that does not
// parse (a corrupted or hand-edited database) is DataLoss naming the row, never a crash.
//
// Snapshot users: every image holds one user on each snapshot of its chain (counted once per
// image however often it is put), containers add theirs with AddSnapshotUser; a snapshot is
// garbage when its users are zero and no used snapshot is above it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/digest.h"

namespace berth::images {

struct ImageRecord {
  Digest id = Digest::Of("");               // the config digest (the CRI image ID)
  std::vector<std::string> repo_tags;       // "docker.io/library/busybox:latest"
  std::vector<std::string> repo_digests;    // "docker.io/library/busybox@sha256:..."
  Digest manifest_digest = Digest::Of("");  // of the manifest that was pulled
  std::string manifest_media_type;
  uint64_t size = 0;                  // compressed layers + config + manifest, bytes
  std::vector<Digest> layer_digests;  // compressed blobs, bottom first
  std::vector<Digest> diff_ids;       // bottom first
  std::vector<Digest> chain_ids;      // bottom first (snapshot keys)
  std::string config_json;            // the image config as pulled
  bool pinned = false;
  absl::Time created_at = absl::UnixEpoch();
  absl::Time last_used = absl::UnixEpoch();
};

struct SnapshotRecord {
  Digest chain_id = Digest::Of("");
  Digest diff_id = Digest::Of("");
  std::optional<Digest> parent;  // the snapshot below; none for a base layer
  uint64_t size = 0;             // bytes on disk
  int64_t users = 0;             // images + containers using it
};

class MetadataStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens (creating it, mode 0600, when missing) the database at `path` and migrates it to
  // kSchemaVersion. A file written by a newer berth is FailedPrecondition; a file that is not
  // a database is DataLoss. The directory must exist.
  static absl::StatusOr<std::unique_ptr<MetadataStore>> Open(const std::string& path);
  ~MetadataStore();
  MetadataStore(const MetadataStore&) = delete;
  MetadataStore& operator=(const MetadataStore&) = delete;

  const std::string& path() const;
  // PRAGMA user_version of the open database.
  absl::StatusOr<int> SchemaVersion();

  // ---- Images. Lists come back sorted (tags, repo digests; images by ID).

  // Inserts or replaces the record of image.id: the stored tags and repo digests become
  // exactly those of `image`. A tag (or repo digest) names one image only, so one that named
  // another image moves here and that image keeps its other tags. The image takes one user on
  // each of its chain_ids (once per image: putting it again changes nothing; chain_ids it no
  // longer lists are released). Every chain_id must already be a snapshot (PutSnapshot first,
  // else FailedPrecondition); layer_digests, diff_ids and chain_ids must have one entry per
  // layer (else InvalidArgument).
  absl::Status PutImage(const ImageRecord& image);
  // NotFound when there is no such image.
  absl::StatusOr<ImageRecord> GetImage(const Digest& id);
  // Exact "domain/path:tag"; nullopt when no image has it.
  absl::StatusOr<std::optional<ImageRecord>> FindByTag(absl::string_view tag);
  // Exact "domain/path@sha256:..."; nullopt when no image has it.
  absl::StatusOr<std::optional<ImageRecord>> FindByRepoDigest(absl::string_view ref);
  // Images whose ID starts with the prefix: hex digits ("3f5a") matching any algorithm, or
  // "sha256:3f5a". An empty or non-hex prefix is InvalidArgument. The caller decides what
  // several matches mean.
  absl::StatusOr<std::vector<ImageRecord>> FindByIdPrefix(absl::string_view hex_prefix);
  absl::StatusOr<std::vector<ImageRecord>> ListImages();
  // Adds (moves) one tag to an existing image; NotFound when the image is missing.
  absl::Status TagImage(const Digest& id, absl::string_view tag);
  // Removes one tag; the image stays, even with no tag left. NotFound when no image has it.
  absl::Status UntagImage(absl::string_view tag);
  // Removes the record, its tags and repo digests, and releases its snapshot users, in one
  // transaction. NotFound when there is no such image.
  absl::Status DeleteImage(const Digest& id);
  // Sets last_used. NotFound when there is no such image.
  absl::Status TouchImage(const Digest& id, absl::Time when);

  // ---- Snapshots.

  // Inserts the snapshot when missing (with s.users as its initial count); an existing
  // record is left as it is (diff_id, parent and size are fixed once written). The parent
  // must already be recorded (FailedPrecondition otherwise).
  absl::Status PutSnapshot(const SnapshotRecord& s);
  absl::StatusOr<std::optional<SnapshotRecord>> GetSnapshot(const Digest& chain_id);
  absl::StatusOr<std::vector<SnapshotRecord>> ListSnapshots();  // by chain_id
  // users += delta. NotFound when missing; FailedPrecondition (nothing changed) when the
  // count would go below zero.
  absl::Status AddSnapshotUser(const Digest& chain_id, int64_t delta);
  // Snapshots with no users that no used snapshot sits on, children before their parents:
  // deleting them in this order always succeeds (garbage collection).
  absl::StatusOr<std::vector<Digest>> UnusedSnapshots();
  // Removes the record. FailedPrecondition while it has users or children (snapshots whose
  // parent it is); NotFound when missing.
  absl::Status DeleteSnapshot(const Digest& chain_id);

  // Tests only: runs inside every write transaction just before COMMIT (crash simulation).
  void SetBeforeCommitHookForTesting(std::function<void()> hook);

 private:
  struct Impl;
  explicit MetadataStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::images

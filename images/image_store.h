// The node's images: pull (through the registry client, content store, snapshots), resolve
// what the CRI calls an image (ID, short ID, tag or digest reference), list, remove with
// garbage collection of unused blobs and snapshots, and filesystem usage. What cri/ uses.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "images/content_store.h"
#include "images/metadata.h"
#include "images/puller.h"
#include "images/reference.h"
#include "images/registry.h"
#include "images/snapshots.h"

namespace berth::images {

struct ImageStoreOptions {
  std::string root;  // /var/lib/berth: content/, snapshots/, berth.db
  RegistryOptions registry;
  PullOptions pull;
};

struct FsUsage {
  std::string mountpoint;  // the snapshots directory
  uint64_t used_bytes = 0, inodes_used = 0;
};

class ImageStore {
 public:
  // Opens (creating) the stores and cleans what a crash may have left: ingest files, snapshot
  // temporaries, snapshots no image records.
  static absl::StatusOr<std::unique_ptr<ImageStore>> Open(ImageStoreOptions options);

  absl::StatusOr<ImageRecord> Pull(
      absl::string_view image, const Credentials& creds,
      const std::function<void(const PullProgress&)>& progress = nullptr);

  // Imports an OCI image layout packed as an uncompressed tar (an "OCI archive"): index.json,
  // oci-layout and blobs/<alg>/<hex>. Every blob is verified into the content store and each
  // layer unpacked as a pull does (Puller::PullFrom). The image is tagged with `tags` (image
  // references, normalised), or, when none are given, with its index.json entry's
  // org.opencontainers.image.ref.name when that is a full reference ("busybox:1", not "1");
  // otherwise it is known by its ID only. A failed import leaves nothing of itself: no record,
  // no blob, no snapshot that no other image uses.
  absl::StatusOr<ImageRecord> Import(
      const std::string& oci_archive_path, const std::vector<std::string>& tags,
      const std::function<void(const PullProgress&)>& progress = nullptr);

  // An image by ID ("sha256:<hex>" or "<hex>"), unique ID prefix (12+ hex digits), tag
  // reference ("busybox", "docker.io/library/busybox:1") or digest reference. NotFound if none.
  absl::StatusOr<ImageRecord> Resolve(absl::string_view image);

  absl::StatusOr<std::vector<ImageRecord>> List();

  // By tag: removes that tag; the image goes when no tag is left. By ID or digest: the image
  // and all its names. Unused snapshots and blobs are deleted. NotFound when absent.
  absl::Status Remove(absl::string_view image);

  absl::StatusOr<FsUsage> Usage();

  // The image's snapshot directories, top layer first (overlayfs lowerdir order).
  std::vector<std::string> LayerPaths(const ImageRecord& image) const;

  // A container takes one user on each of its image's snapshots, so that removing the image
  // keeps the layers the container runs on; it gives them back when it is removed (and then
  // unused snapshots are collected).
  absl::Status AcquireLayers(const std::vector<Digest>& chain_ids);
  absl::Status ReleaseLayers(const std::vector<Digest>& chain_ids);

 private:
  explicit ImageStore(ImageStoreOptions options);
  absl::Status CollectGarbage();
  // Records a pulled or imported image (snapshots, then the image) under `tags` and
  // `repo_digests` (added to the names the image already has). Callers hold gc_mu_ shared.
  absl::StatusOr<ImageRecord> Record(const PulledImage& pulled,
                                     const std::vector<std::string>& tags,
                                     const std::vector<std::string>& repo_digests);

  ImageStoreOptions options_;
  std::unique_ptr<RegistryClient> registry_;
  std::unique_ptr<ContentStore> content_;
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<MetadataStore> metadata_;
  std::unique_ptr<Puller> puller_;
  // Pulls hold it shared for their whole run; removal and garbage collection hold it
  // exclusively, so a blob or snapshot a pull has written but not yet recorded is never taken.
  std::shared_mutex gc_mu_;
};

// The user the image runs as, from its config's User: a numeric uid, or a name.
struct ImageUser {
  std::optional<int64_t> uid;
  std::string username;
};
ImageUser ImageUserOf(absl::string_view config_user);

}  // namespace berth::images

// Pulling one image: resolve the reference to a manifest (through an index when there is one),
// store the manifests and the config in the content store, then fetch, verify and unpack the
// layers, several at once, each in ONE streaming pass: every chunk the registry sends goes both
// to the content store's writer (which hashes the compressed bytes and checks digest and size)
// and to the LayerUnpacker (which decompresses, hashes the diff_id and extracts into a tmp
// directory of the snapshot store), so download and unpack overlap and no layer is ever held
// whole in memory. A layer becomes visible (blob committed, snapshot renamed into place) only
// when both its digest and its diff_id matched; any failure leaves neither.
//
// Layers whose snapshot (chain ID) exists are not fetched at all. A layer whose blob is in the
// content store but whose snapshot is missing is unpacked from the blob. A partial ingest left
// by an interrupted download is resumed: its bytes are fed to the unpacker from the ingest file,
// then the download continues from its end (HTTP Range).
//
// Single flight: concurrent Pull calls on one Puller (the same image, or images sharing layers)
// fetch each layer (keyed by chain ID) and each config once: later callers wait for the first
// and use its result; if the first failed, each waiter tries again itself.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/digest.h"
#include "images/content_store.h"
#include "images/manifest.h"
#include "images/reference.h"
#include "images/registry.h"
#include "images/snapshots.h"

namespace berth::images {

struct PullOptions {
  int max_parallel_layers = 4;  // per Pull call
  Platform platform = HostPlatform();
};

struct PullProgress {
  enum class State { kWaiting, kDownloading, kUnpacking, kDone, kCached };
  Digest digest = Digest::Of("");  // the layer blob
  uint64_t done = 0;               // compressed bytes so far
  uint64_t total = 0;              // the descriptor's size
  State state = State::kWaiting;
};
const char* PullStateName(PullProgress::State state);

struct PulledImage {
  Reference ref;
  // What `ref` resolves to in the registry (an index when the image has one, else the image
  // manifest): `ref.Name() + "@" + manifest_digest` pulls the same image (the repo digest).
  Digest manifest_digest = Digest::Of("");
  std::string manifest_media_type;
  // The platform's image manifest (== manifest_digest when there is no index).
  Digest image_manifest_digest = Digest::Of("");
  Digest config_digest = Digest::Of("");  // the image ID
  std::string config_json;
  ImageConfig config;
  std::vector<Digest> layer_digests, diff_ids, chain_ids;
  uint64_t size = 0;  // compressed layers + config + image manifest (+ index)
};

// Where Puller::PullFrom takes an image's parts: manifests by digest and blobs as streams.
// `blob` streams `digest` from byte `offset` into `sink`; when it has to start over at 0 it calls
// `reset()` first (as RegistryClient::FetchBlob). Manifests need not be verified by the source:
// PullFrom checks their digests.
using BlobSink = std::function<absl::Status(const char*, size_t)>;
struct ImageSource {
  std::string name;  // for messages: "image <name>: ..."
  std::function<absl::StatusOr<FetchedManifest>(const Descriptor& desc)> manifest;
  std::function<absl::Status(const Digest& digest, int64_t offset, const BlobSink& sink,
                             const std::function<void()>& reset)>
      blob;
};

class Puller {
 public:
  // The pointers must outlive the Puller. `registry`, `content` and `snapshots` are shared with
  // other users (they are thread-safe).
  Puller(RegistryClient* registry, ContentStore* content, SnapshotStore* snapshots,
         PullOptions options);

  // Pulls `ref`. `progress` (optional) is called for each layer as its state changes and while it
  // downloads (at most about once per MiB); calls are serialised (never concurrent) but come
  // from worker threads. Thread-safe.
  absl::StatusOr<PulledImage> Pull(
      const Reference& ref, const Credentials& creds,
      const std::function<void(const PullProgress&)>& progress = nullptr);

  // The same from another source (an OCI archive: ImageStore::Import): `top` is the image's
  // manifest or index (already verified). `chain_ids` (optional) receives the image's chain IDs
  // as soon as they are known, so that a caller can clean up the snapshots of a failed import.
  // `out.ref` is left empty.
  absl::StatusOr<PulledImage> PullFrom(
      const ImageSource& source, const FetchedManifest& top,
      const std::function<void(const PullProgress&)>& progress = nullptr,
      std::vector<Digest>* chain_ids = nullptr);

 private:
  // Runs `fn` once for `key` among concurrent callers (see the file comment).
  absl::Status SingleFlight(const std::string& key, const std::function<absl::Status()>& fn);

  absl::Status StoreManifest(const FetchedManifest& m);
  absl::StatusOr<std::string> FetchConfig(const ImageSource& source, const Descriptor& desc);
  // Makes sure the snapshot of chain_id exists (fetching and unpacking the layer if needed).
  // `cached` tells whether it was there already.
  absl::Status EnsureLayer(const ImageSource& source, const Descriptor& layer,
                           const Digest& diff_id, const Digest& chain_id,
                           const std::function<bool()>& cancelled,
                           const std::function<void(PullProgress)>& report, bool* cached);
  absl::Status FetchAndUnpack(const ImageSource& source, const Descriptor& layer,
                              const Digest& diff_id, const Digest& chain_id,
                              const std::function<bool()>& cancelled,
                              const std::function<void(PullProgress)>& report);

  RegistryClient* registry_;
  ContentStore* content_;
  SnapshotStore* snapshots_;
  PullOptions options_;

  std::mutex mu_;
  std::map<std::string, std::shared_future<absl::Status>> inflight_;
};

}  // namespace berth::images

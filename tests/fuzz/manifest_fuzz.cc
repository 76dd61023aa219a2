// Fuzz target: manifests, indexes and image configs come from registries (untrusted).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "images/manifest.h"

namespace {

using namespace berth::images;  // NOLINT(google-build-using-namespace): a fuzz target

void Use(const Descriptor& d) {
  (void)LayerCompression(d.media_type);
  (void)IsForeignLayer(d.media_type);
  if (d.size < 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view body(reinterpret_cast<const char*>(data), size);
  for (const char* content_type :
       {"", kMediaTypeOciIndex, kMediaTypeDockerManifest, kMediaTypeDockerSchema1Signed}) {
    absl::StatusOr<ManifestType> type = ClassifyManifest(content_type, body);
    if (type.ok() && type->kind != MediaKind::kIndex && type->kind != MediaKind::kManifest) {
      __builtin_trap();
    }
  }

  absl::StatusOr<Index> index = ParseIndex(body);
  if (index.ok()) {
    if (index->manifests.size() > kMaxIndexEntries) __builtin_trap();
    for (const Descriptor& d : index->manifests) Use(d);
    for (const char* p : {"linux/amd64", "linux/arm/v6", "linux/arm64/v9", "windows/amd64"}) {
      absl::StatusOr<Descriptor> chosen = SelectPlatform(*index, *ParsePlatform(p));
      if (!chosen.ok() && chosen.status().code() != absl::StatusCode::kNotFound) __builtin_trap();
    }
  }

  absl::StatusOr<Manifest> manifest = ParseManifest(body);
  if (manifest.ok()) {
    if (manifest->layers.size() > kMaxLayers) __builtin_trap();
    Use(manifest->config);
    for (const Descriptor& d : manifest->layers) {
      Use(d);
      if (!LayerCompression(d.media_type).ok()) __builtin_trap();
    }
  }

  absl::StatusOr<ImageConfig> config = ParseImageConfig(body);
  if (config.ok()) {
    if (config->diff_ids.size() > kMaxLayers) __builtin_trap();
    std::vector<berth::Digest> chain = ChainIds(config->diff_ids);
    if (chain.size() != config->diff_ids.size()) __builtin_trap();
    (void)config->raw.dump();
    if (manifest.ok()) (void)CheckConfigMatchesManifest(*manifest, *config);
  }
  (void)ParsePlatform(body);
  return 0;
}

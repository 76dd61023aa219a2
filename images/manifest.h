// Image indexes (manifest lists), image manifests and image configs, parsed from untrusted
// registry responses (OCI image spec v1.1; Docker image manifest v2 schema 2), platform
// selection as containerd's platforms.Only does it, and layer chain IDs.
//
// Every parser bounds its input (size, JSON nesting, list lengths) before building anything and
// refuses values of the wrong type with InvalidArgument naming the JSON path and the value, e.g.
// `image manifest: layers[2].size: -1 is negative`. Unknown fields are ignored.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/digest.h"
#include "nlohmann/json.hpp"

namespace berth::images {

// Media types.
inline constexpr char kMediaTypeOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kMediaTypeOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kMediaTypeOciConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kMediaTypeDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kMediaTypeDockerManifest[] =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kMediaTypeDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kMediaTypeDockerSchema1[] =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr char kMediaTypeDockerSchema1Signed[] =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// Limits on untrusted documents.
inline constexpr size_t kMaxManifestSize = 4 << 20;  // manifests and indexes
inline constexpr size_t kMaxConfigSize = 8 << 20;
inline constexpr size_t kMaxLayers = 1000;
inline constexpr size_t kMaxIndexEntries = 10000;

// What a media type names. Schema 1 manifests and unknown types are errors, not kinds.
enum class MediaKind { kIndex, kManifest, kConfig, kLayer, kUnknown };

// The kind of a known media type (exact match, as registries and the spec write them; the
// Docker schema 1 types are kUnknown).
MediaKind MediaKindOf(absl::string_view media_type);

enum class Compression { kNone, kGzip, kZstd };

// The compression of a layer media type: the OCI tar, tar+gzip and tar+zstd layers (and their
// non-distributable variants), Docker's rootfs.diff.tar.gzip / rootfs.diff.tar and
// rootfs.foreign.diff.tar.gzip. Anything else is InvalidArgument naming the type.
absl::StatusOr<Compression> LayerCompression(absl::string_view media_type);

// True for the non-distributable ("foreign") layer types, whose blobs may live at their
// descriptor's urls rather than in the registry.
bool IsForeignLayer(absl::string_view media_type);

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;     // "v7", "v8", "v2"; empty for the architecture's baseline
  std::string os_version;  // Windows only; ignored when matching
  std::vector<std::string> os_features;

  std::string String() const;  // "linux/arm64/v8", "linux/amd64"
  bool operator==(const Platform& o) const {
    return os == o.os && architecture == o.architecture && variant == o.variant &&
           os_version == o.os_version && os_features == o.os_features;
  }
};

// The platform as containerd's platforms.Normalize writes it: os and architecture lowercase,
// x86_64/x86-64 -> amd64 (variant v1 -> ""), aarch64 -> arm64 (variant 8/v8/v8.0 -> ""),
// armhf -> arm v7, armel -> arm v6, arm "" or "7" -> v7, i386 -> 386.
Platform NormalizePlatform(Platform p);

// "linux/arm64/v8", "linux/amd64", "arm64" (os linux); normalised. Components are
// [A-Za-z0-9_.-]+; anything else is InvalidArgument naming the text.
absl::StatusOr<Platform> ParsePlatform(absl::string_view text);

// The machine's platform (uname), normalised: linux/amd64, linux/arm64, linux/arm/v7, ...
Platform HostPlatform();

struct Descriptor {
  std::string media_type;
  Digest digest = Digest::Of("");
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;  // as written, not normalised
  std::string artifact_type;
};

struct Index {
  std::string media_type;  // as in the body; empty when the body has none
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct Manifest {
  std::string media_type;  // as in the body; empty when the body has none
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
  std::optional<Descriptor> subject;
};

struct HistoryEntry {
  std::string created, created_by, author, comment;
  bool empty_layer = false;
};

struct ImageConfig {
  std::string architecture, os, variant, os_version;
  std::vector<std::string> os_features;
  std::string created;  // RFC 3339 as written; may be empty

  // The "config" object (Docker's container config subset the OCI spec keeps).
  std::string user;
  std::vector<std::string> exposed_ports;  // "80/tcp", keys as written
  std::vector<std::string> env;            // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> volumes;  // keys as written
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;

  std::vector<Digest> diff_ids;  // rootfs.diff_ids, rootfs.type is "layers"
  std::vector<HistoryEntry> history;

  nlohmann::json raw;  // the whole document, for verbose ImageStatus
};

// What a manifest response is. `media_type` is the type the header or body names, or, when
// neither names one, the OCI type of the kind the body's shape says.
struct ManifestType {
  MediaKind kind = MediaKind::kUnknown;  // kIndex or kManifest
  std::string media_type;
};

// Classifies a manifest response from its Content-Type header (parameters ignored; empty,
// application/json, text/plain and octet-stream say nothing), then the body's "mediaType",
// then its shape ("manifests": index; "config" and "layers": manifest). Schema 1 is refused
// ("schema 1 manifests are not supported ..."); so are a header and a body that name different
// types, a body whose shape contradicts its type, and any type that is not an index or a
// manifest (named in the message). Oversized, deep or non-JSON bodies are InvalidArgument.
absl::StatusOr<ManifestType> ClassifyManifest(absl::string_view content_type,
                                              absl::string_view body);

// Parse an index (OCI index or Docker manifest list), a manifest (OCI or Docker schema 2) and an
// image config. A body's "mediaType", when present, must be a type of the right kind;
// schemaVersion must be 2. Manifest config and layer media types must be known config and layer
// types. At most kMaxIndexEntries index entries and kMaxLayers layers and diff_ids.
absl::StatusOr<Index> ParseIndex(absl::string_view body);
absl::StatusOr<Manifest> ParseManifest(absl::string_view body);
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view body);

// Picks the manifest for `want` from an index, as containerd's platforms.Only: os and
// architecture equal after normalisation; amd64 entries with a variant up to the wanted one
// (v1 < v2 < v3 < v4, none = v1), arm entries from v5 up to the wanted variant (none = v7) and
// arm64 entries up to the wanted variant (none = v8); any other architecture needs the same
// variant. The closest variant wins, then index order. Entries without a platform match as a
// last resort (OCI layouts list their single manifest so); entries that are not manifests or
// indexes never match. NotFound, listing the platforms offered, when nothing matches.
absl::StatusOr<Descriptor> SelectPlatform(const Index& index, const Platform& want);

// The manifest's layer count equals the config's diff_ids count (InvalidArgument naming both
// counts otherwise).
absl::Status CheckConfigMatchesManifest(const Manifest& manifest, const ImageConfig& config);

// Chain IDs as the OCI image spec defines them: ChainID(L0) = DiffID(L0),
// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). Snapshots are keyed by these.
std::vector<Digest> ChainIds(const std::vector<Digest>& diff_ids);

}  // namespace berth::images

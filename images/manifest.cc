#include "images/manifest.h"

#include <sys/utsname.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/json.h"
#include "base/status.h"

namespace berth::images {

namespace {

using nlohmann::json;

constexpr int kMaxDepth = 64;
constexpr size_t kMaxHistory = 10000;
constexpr size_t kMaxQuoted = 100;
constexpr size_t kMaxListedPlatforms = 32;

constexpr char kSchema1Refusal[] =
    "schema 1 manifests are not supported (deprecated since Docker 1.10; re-push the image)";

// Errors name the document ("image manifest") and the JSON path.
class Doc {
 public:
  explicit Doc(absl::string_view what) : what_(what) {}

  absl::string_view what() const { return what_; }

  absl::Status Bad(absl::string_view path, absl::string_view why) const {
    return absl::InvalidArgumentError(path.empty() ? absl::StrCat(what_, ": ", why)
                                                   : absl::StrCat(what_, ": ", path, ": ", why));
  }

  absl::Status WrongType(absl::string_view path, const json& v, absl::string_view want) const {
    return Bad(path, absl::StrCat("expected ", want, ", got ", v.type_name()));
  }

  // Parses bounded untrusted JSON that must be an object.
  absl::StatusOr<json> ParseObject(absl::string_view text, size_t max_size) const {
    if (text.size() > max_size) {
      return Bad("", absl::StrCat(text.size(), " bytes, more than the ", max_size, " allowed"));
    }
    if (!JsonNestingWithin(text, kMaxDepth)) {
      return Bad("", absl::StrCat("JSON nested deeper than ", kMaxDepth, " levels"));
    }
    json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Bad("", "not valid JSON");
    if (!doc.is_object()) {
      return Bad("", absl::StrCat("expected a JSON object, got ", doc.type_name()));
    }
    return doc;
  }

 private:
  std::string what_;
};

std::string Path(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

std::string Elem(absl::string_view parent, size_t i) {
  return absl::StrCat(parent, "[", i, "]");
}

// The member `key` of `obj`, or nullptr when absent or null (Go's encoding/json, which wrote
// most of these documents and reads them in containerd, treats null like absent).
const json* Member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

enum class Text {
  kAny,        // any string (annotations, labels, history)
  kNoNul,      // arguments and environment: a NUL cannot reach execve
  kNoControl,  // names, paths, platform fields: no control characters at all
  kMediaType,  // RFC 6838 as the OCI spec restricts it
};

bool ValidMediaType(absl::string_view s) {
  auto part_ok = [](absl::string_view p) {
    if (p.empty() || p.size() > 127 || !absl::ascii_isalnum(static_cast<unsigned char>(p[0]))) {
      return false;
    }
    for (char c : p) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
          absl::string_view("!#$&^_.+-").find(c) == absl::string_view::npos) {
        return false;
      }
    }
    return true;
  };
  size_t slash = s.find('/');
  return slash != absl::string_view::npos && part_ok(s.substr(0, slash)) &&
         part_ok(s.substr(slash + 1));
}

absl::Status CheckText(const Doc& doc, absl::string_view path, absl::string_view s, Text rule) {
  switch (rule) {
    case Text::kAny: return absl::OkStatus();
    case Text::kNoNul:
      if (s.find('\0') != absl::string_view::npos) {
        return doc.Bad(path,
                       absl::StrCat(QuoteForMessage(s, kMaxQuoted), " contains a NUL character"));
      }
      return absl::OkStatus();
    case Text::kNoControl:
      for (char c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          return doc.Bad(
              path, absl::StrCat(QuoteForMessage(s, kMaxQuoted), " contains a control character"));
        }
      }
      return absl::OkStatus();
    case Text::kMediaType:
      if (!ValidMediaType(s)) {
        return doc.Bad(path, absl::StrCat(QuoteForMessage(s, kMaxQuoted), " is not a media type"));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

// A string member; absent (or null) leaves `out` alone unless `required`.
absl::Status GetString(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                       std::string* out, Text rule, bool required = false) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) return required ? doc.Bad(path, "missing") : absl::OkStatus();
  if (!v->is_string()) return doc.WrongType(path, *v, "a string");
  const std::string& s = v->get_ref<const std::string&>();
  RETURN_IF_ERROR(CheckText(doc, path, s, rule));
  *out = s;
  return absl::OkStatus();
}

// The array `key` of `obj` (nullptr when absent), bounded to `max`.
absl::StatusOr<const json*> GetArray(const Doc& doc, const json& obj, const char* key,
                                     absl::string_view parent, size_t max, bool required = false) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) {
    if (required) return doc.Bad(path, "missing");
    return nullptr;
  }
  if (!v->is_array()) return doc.WrongType(path, *v, "an array");
  if (v->size() > max) {
    return doc.Bad(path, absl::StrCat(v->size(), " entries, more than the ", max, " allowed"));
  }
  return v;
}

absl::StatusOr<const json*> GetObject(const Doc& doc, const json& obj, const char* key,
                                      absl::string_view parent, bool required = false) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) {
    if (required) return doc.Bad(path, "missing");
    return nullptr;
  }
  if (!v->is_object()) return doc.WrongType(path, *v, "an object");
  return v;
}

absl::Status GetStringList(const Doc& doc, const json& obj, const char* key,
                           absl::string_view parent, std::vector<std::string>* out, Text rule,
                           size_t max = std::numeric_limits<size_t>::max()) {
  ASSIGN_OR_RETURN(const json* list, GetArray(doc, obj, key, parent, max));
  if (list == nullptr) return absl::OkStatus();
  std::string path = Path(parent, key);
  out->clear();
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    if (!v.is_string()) return doc.WrongType(Elem(path, i), v, "a string");
    RETURN_IF_ERROR(CheckText(doc, Elem(path, i), v.get_ref<const std::string&>(), rule));
    out->push_back(v.get<std::string>());
  }
  return absl::OkStatus();
}

// An object of strings (annotations, labels); a null value counts as "".
absl::Status GetStringMap(const Doc& doc, const json& obj, const char* key,
                          absl::string_view parent, std::map<std::string, std::string>* out) {
  ASSIGN_OR_RETURN(const json* m, GetObject(doc, obj, key, parent));
  if (m == nullptr) return absl::OkStatus();
  std::string path = Path(parent, key);
  out->clear();
  for (const auto& [k, v] : m->items()) {
    if (v.is_null()) {
      (*out)[k] = "";
      continue;
    }
    if (!v.is_string()) {
      return doc.WrongType(absl::StrCat(path, "[", QuoteForMessage(k, kMaxQuoted), "]"), v,
                           "a string");
    }
    (*out)[k] = v.get<std::string>();
  }
  return absl::OkStatus();
}

// The keys of an object whose values are objects ({"80/tcp": {}}), as ExposedPorts and Volumes.
absl::Status GetKeySet(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                       std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(const json* m, GetObject(doc, obj, key, parent));
  if (m == nullptr) return absl::OkStatus();
  std::string path = Path(parent, key);
  for (const auto& [k, v] : m->items()) {
    std::string kpath = absl::StrCat(path, "[", QuoteForMessage(k, kMaxQuoted), "]");
    if (!v.is_null() && !v.is_object()) return doc.WrongType(kpath, v, "an object");
    if (k.empty()) return doc.Bad(path, "an empty key");
    RETURN_IF_ERROR(CheckText(doc, kpath, k, Text::kNoControl));
    out->push_back(k);
  }
  return absl::OkStatus();
}

// Docker's strslice: an array of strings, or a single string meaning a one-element array.
absl::Status GetArgs(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                     std::vector<std::string>* out) {
  const json* v = Member(obj, key);
  if (v != nullptr && v->is_string()) {
    std::string path = Path(parent, key);
    RETURN_IF_ERROR(CheckText(doc, path, v->get_ref<const std::string&>(), Text::kNoNul));
    *out = {v->get<std::string>()};
    return absl::OkStatus();
  }
  if (v != nullptr && !v->is_array()) {
    return doc.WrongType(Path(parent, key), *v, "an array of strings");
  }
  return GetStringList(doc, obj, key, parent, out, Text::kNoNul);
}

absl::StatusOr<Digest> GetDigest(const Doc& doc, const json& v, absl::string_view path) {
  if (!v.is_string()) return doc.WrongType(path, v, "a digest string");
  absl::StatusOr<Digest> d = Digest::Parse(v.get_ref<const std::string&>());
  if (!d.ok()) {
    return absl::Status(d.status().code(),
                        absl::StrCat(doc.what(), ": ", path, ": ", d.status().message()));
  }
  return d;
}

absl::Status CheckSchemaVersion(const Doc& doc, const json& obj) {
  const json* v = Member(obj, "schemaVersion");
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_integer()) return doc.WrongType("schemaVersion", *v, "an integer");
  if (*v == 1) return doc.Bad("", kSchema1Refusal);
  if (*v != 2) return doc.Bad("schemaVersion", absl::StrCat(v->dump(), " is not 2"));
  return absl::OkStatus();
}

bool IsSchema1(absl::string_view media_type) {
  return media_type == kMediaTypeDockerSchema1 || media_type == kMediaTypeDockerSchema1Signed;
}

absl::string_view KindName(MediaKind kind) {
  switch (kind) {
    case MediaKind::kIndex: return "an image index";
    case MediaKind::kManifest: return "an image manifest";
    case MediaKind::kConfig: return "an image config";
    case MediaKind::kLayer: return "a layer";
    case MediaKind::kUnknown: break;
  }
  return "not a supported image type";
}

// The body's "mediaType" when present: a type of kind `want`.
absl::Status CheckBodyMediaType(const Doc& doc, const json& obj, MediaKind want, std::string* out) {
  RETURN_IF_ERROR(GetString(doc, obj, "mediaType", "", out, Text::kNoControl));
  if (out->empty()) return absl::OkStatus();
  if (IsSchema1(*out)) return doc.Bad("", kSchema1Refusal);
  MediaKind kind = MediaKindOf(*out);
  if (kind != want) {
    return doc.Bad("mediaType", absl::StrCat(QuoteForMessage(*out, kMaxQuoted), " is ",
                                             KindName(kind), ", not ", KindName(want)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Platform> ParsePlatformObject(const Doc& doc, const json& v,
                                             absl::string_view path) {
  if (!v.is_object()) return doc.WrongType(path, v, "an object");
  Platform p;
  p.os.clear();
  p.architecture.clear();
  RETURN_IF_ERROR(GetString(doc, v, "architecture", path, &p.architecture, Text::kNoControl,
                            /*required=*/true));
  RETURN_IF_ERROR(GetString(doc, v, "os", path, &p.os, Text::kNoControl, /*required=*/true));
  RETURN_IF_ERROR(GetString(doc, v, "os.version", path, &p.os_version, Text::kNoControl));
  RETURN_IF_ERROR(GetStringList(doc, v, "os.features", path, &p.os_features, Text::kNoControl));
  RETURN_IF_ERROR(GetString(doc, v, "variant", path, &p.variant, Text::kNoControl));
  return p;
}

absl::StatusOr<Descriptor> ParseDescriptor(const Doc& doc, const json& v, absl::string_view path) {
  if (!v.is_object()) return doc.WrongType(path, v, "an object");
  Descriptor d;
  RETURN_IF_ERROR(
      GetString(doc, v, "mediaType", path, &d.media_type, Text::kMediaType, /*required=*/true));
  const json* digest = Member(v, "digest");
  if (digest == nullptr) return doc.Bad(Path(path, "digest"), "missing");
  ASSIGN_OR_RETURN(d.digest, GetDigest(doc, *digest, Path(path, "digest")));
  const json* size = Member(v, "size");
  std::string size_path = Path(path, "size");
  if (size == nullptr) return doc.Bad(size_path, "missing");
  if (!size->is_number_integer()) return doc.WrongType(size_path, *size, "an integer");
  if (size->is_number_unsigned()) {
    if (size->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return doc.Bad(size_path, absl::StrCat(size->dump(), " is too large"));
    }
  } else if (size->get<int64_t>() < 0) {
    return doc.Bad(size_path, absl::StrCat(size->dump(), " is negative"));
  }
  d.size = size->get<int64_t>();
  RETURN_IF_ERROR(GetStringList(doc, v, "urls", path, &d.urls, Text::kNoControl));
  RETURN_IF_ERROR(GetStringMap(doc, v, "annotations", path, &d.annotations));
  if (const json* platform = Member(v, "platform"); platform != nullptr) {
    ASSIGN_OR_RETURN(d.platform, ParsePlatformObject(doc, *platform, Path(path, "platform")));
  }
  RETURN_IF_ERROR(GetString(doc, v, "artifactType", path, &d.artifact_type, Text::kMediaType));
  // Embedded content (base64): not used, but it must be what the spec says.
  if (const json* data = Member(v, "data"); data != nullptr && !data->is_string()) {
    return doc.WrongType(Path(path, "data"), *data, "a base64 string");
  }
  return d;
}

// Content-Type without parameters, trimmed and lowercase: "application/json".
std::string BareContentType(absl::string_view content_type) {
  absl::string_view bare = content_type.substr(0, content_type.find(';'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(bare));
}

// Content-Types that say nothing about which manifest this is.
bool IsGenericContentType(absl::string_view t) {
  return t.empty() || t == "application/json" || t == "text/plain" ||
         t == "application/octet-stream" || t == "binary/octet-stream";
}

// --- platforms ---------------------------------------------------------------------------------

std::string Lower(absl::string_view s) {
  return absl::AsciiStrToLower(s);
}

// "vN" -> N (1..99), else -1.
int VariantNumber(absl::string_view v) {
  if (!absl::ConsumePrefix(&v, "v") || v.empty() || v.size() > 2) return -1;
  int n = 0;
  for (char c : v) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

// arm64 variants "v8", "v8.2", "v9": major * 10 + minor (minor 0..9), else -1.
int Arm64Level(absl::string_view v) {
  if (v.empty()) return 80;
  absl::string_view major = v, minor;
  if (size_t dot = v.find('.'); dot != absl::string_view::npos) {
    major = v.substr(0, dot);
    minor = v.substr(dot + 1);
    if (minor.size() != 1 || !absl::ascii_isdigit(static_cast<unsigned char>(minor[0]))) {
      return -1;
    }
  }
  int n = VariantNumber(major);
  if (n < 0) return -1;
  return n * 10 + (minor.empty() ? 0 : minor[0] - '0');
}

// How far `have` is from `want` (0 = the same), or -1 when it does not run there. Both are
// normalised.
int PlatformDistance(const Platform& want, const Platform& have) {
  if (want.os != have.os || want.architecture != have.architecture) return -1;
  const std::string& arch = want.architecture;
  if (arch == "amd64") {
    int w = want.variant.empty() ? 1 : VariantNumber(want.variant);
    int h = have.variant.empty() ? 1 : VariantNumber(have.variant);
    return w >= 1 && h >= 1 && h <= w ? w - h : -1;
  }
  if (arch == "arm") {
    int w = VariantNumber(want.variant);
    int h = VariantNumber(have.variant);
    return w >= 5 && h >= 5 && h <= w ? w - h : -1;
  }
  if (arch == "arm64") {
    int w = Arm64Level(want.variant);
    int h = Arm64Level(have.variant);
    return w >= 0 && h >= 0 && h <= w ? w - h : -1;
  }
  return want.variant == have.variant ? 0 : -1;
}

bool IsKnownOs(absl::string_view os) {
  static constexpr absl::string_view kOses[] = {
      "aix",   "android", "darwin",  "dragonfly", "freebsd", "illumos", "ios",    "js",
      "linux", "netbsd",  "openbsd", "plan9",     "solaris", "wasip1",  "windows"};
  return std::find(std::begin(kOses), std::end(kOses), os) != std::end(kOses);
}

}  // namespace

MediaKind MediaKindOf(absl::string_view media_type) {
  if (media_type == kMediaTypeOciIndex || media_type == kMediaTypeDockerManifestList) {
    return MediaKind::kIndex;
  }
  if (media_type == kMediaTypeOciManifest || media_type == kMediaTypeDockerManifest) {
    return MediaKind::kManifest;
  }
  if (media_type == kMediaTypeOciConfig || media_type == kMediaTypeDockerConfig) {
    return MediaKind::kConfig;
  }
  if (LayerCompression(media_type).ok()) return MediaKind::kLayer;
  return MediaKind::kUnknown;
}

absl::StatusOr<Compression> LayerCompression(absl::string_view media_type) {
  static constexpr std::pair<absl::string_view, Compression> kLayers[] = {
      {"application/vnd.oci.image.layer.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.diff.tar", Compression::kNone},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar", Compression::kNone},
  };
  for (const auto& [type, compression] : kLayers) {
    if (media_type == type) return compression;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported layer media type ", QuoteForMessage(media_type, kMaxQuoted)));
}

bool IsForeignLayer(absl::string_view media_type) {
  return absl::StrContains(media_type, ".nondistributable.") ||
         absl::StrContains(media_type, ".rootfs.foreign.");
}

std::string Platform::String() const {
  std::string out = absl::StrCat(os, "/", architecture);
  if (!variant.empty()) absl::StrAppend(&out, "/", variant);
  return out;
}

Platform NormalizePlatform(Platform p) {
  p.os = Lower(p.os);
  if (p.os == "macos") p.os = "darwin";
  p.architecture = Lower(p.architecture);
  p.variant = Lower(p.variant);
  const std::string& arch = p.architecture;
  if (arch == "i386") {
    p.architecture = "386";
    p.variant.clear();
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    p.architecture = "amd64";
    if (p.variant == "v1") p.variant.clear();
  } else if (arch == "aarch64" || arch == "arm64") {
    p.architecture = "arm64";
    if (p.variant == "8" || p.variant == "v8" || p.variant == "v8.0") {
      p.variant.clear();
    } else if (p.variant == "9" || p.variant == "9.0" || p.variant == "v9.0") {
      p.variant = "v9";
    }
  } else if (arch == "armhf") {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (arch == "armel") {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (arch == "arm") {
    if (p.variant.empty() || p.variant == "7") {
      p.variant = "v7";
    } else if (p.variant == "5" || p.variant == "6" || p.variant == "8") {
      p.variant = absl::StrCat("v", p.variant);
    }
  }
  return p;
}

absl::StatusOr<Platform> ParsePlatform(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid platform ", QuoteForMessage(text, kMaxQuoted), ": ", why));
  };
  if (text.empty()) return bad("it is empty (expected os/architecture[/variant])");
  std::vector<absl::string_view> parts = absl::StrSplit(text, '/');
  if (parts.size() > 3) return bad("more than 3 components (expected os/architecture[/variant])");
  for (absl::string_view part : parts) {
    if (part.empty()) return bad("an empty component");
    for (char c : part) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
        return bad(absl::StrCat("component ", QuoteForMessage(part, kMaxQuoted),
                                " has a character other than letters, digits, '_', '.', '-'"));
      }
    }
  }
  Platform p;
  if (parts.size() == 1) {
    // Like containerd: a lone OS keeps the host's architecture, a lone architecture is Linux.
    std::string only = Lower(parts[0]);
    if (IsKnownOs(only)) {
      p = HostPlatform();
      p.os = only;
    } else {
      p.architecture = only;
    }
  } else {
    p.os = std::string(parts[0]);
    p.architecture = std::string(parts[1]);
    if (parts.size() == 3) p.variant = std::string(parts[2]);
  }
  return NormalizePlatform(std::move(p));
}

Platform HostPlatform() {
  Platform p;
  struct utsname u;
  if (::uname(&u) != 0) return p;
  std::string machine = Lower(u.machine);
  if (absl::StartsWith(machine, "armv") && machine.size() >= 5 &&
      absl::ascii_isdigit(static_cast<unsigned char>(machine[4]))) {
    p.architecture = "arm";  // armv7l, armv6l, armv8l (32-bit userland on a 64-bit CPU)
    p.variant = absl::StrCat("v", machine.substr(4, 1));
  } else if (machine == "i686" || machine == "i586") {
    p.architecture = "386";
  } else {
    p.architecture = machine;
  }
  return NormalizePlatform(std::move(p));
}

absl::StatusOr<ManifestType> ClassifyManifest(absl::string_view content_type,
                                              absl::string_view body) {
  Doc doc("manifest");
  std::string header = BareContentType(content_type);
  MediaKind header_kind = MediaKind::kUnknown;
  if (!IsGenericContentType(header)) {
    if (IsSchema1(header)) return doc.Bad("", kSchema1Refusal);
    header_kind = MediaKindOf(header);
    if (header_kind == MediaKind::kConfig || header_kind == MediaKind::kLayer) {
      return doc.Bad("", absl::StrCat("Content-Type ", QuoteForMessage(header, kMaxQuoted), " is ",
                                      KindName(header_kind), ", not a manifest"));
    }
    // An OCI or Docker type we do not know (an artifact manifest, a future version): refused.
    // Any other type (text/html from a proxy, a vendor's type) says nothing; the body decides.
    if (header_kind == MediaKind::kUnknown &&
        (absl::StartsWith(header, "application/vnd.oci.") ||
         absl::StartsWith(header, "application/vnd.docker."))) {
      return doc.Bad("", absl::StrCat("unsupported manifest media type ",
                                      QuoteForMessage(header, kMaxQuoted), " (Content-Type)"));
    }
  }

  ASSIGN_OR_RETURN(json obj, doc.ParseObject(body, kMaxManifestSize));
  if (const json* v = Member(obj, "schemaVersion"); v != nullptr && *v == 1) {
    return doc.Bad("", kSchema1Refusal);
  }
  std::string body_type;
  RETURN_IF_ERROR(GetString(doc, obj, "mediaType", "", &body_type, Text::kNoControl));
  MediaKind body_kind = MediaKind::kUnknown;
  if (!body_type.empty()) {
    if (IsSchema1(body_type)) return doc.Bad("", kSchema1Refusal);
    body_kind = MediaKindOf(body_type);
    if (body_kind != MediaKind::kIndex && body_kind != MediaKind::kManifest) {
      return doc.Bad("mediaType", absl::StrCat("unsupported manifest media type ",
                                               QuoteForMessage(body_type, kMaxQuoted)));
    }
    if (header_kind != MediaKind::kUnknown && header != body_type) {
      return doc.Bad("", absl::StrCat("Content-Type ", QuoteForMessage(header, kMaxQuoted),
                                      " and the body's mediaType ",
                                      QuoteForMessage(body_type, kMaxQuoted), " disagree"));
    }
  }

  bool has_manifests = Member(obj, "manifests") != nullptr;
  bool has_config = Member(obj, "config") != nullptr;
  bool has_layers = Member(obj, "layers") != nullptr;
  MediaKind shape_kind = MediaKind::kUnknown;
  if (has_manifests && (has_config || has_layers)) {
    return doc.Bad("", "has both \"manifests\" (an index) and \"config\"/\"layers\" (a manifest)");
  }
  if (has_manifests) shape_kind = MediaKind::kIndex;
  if (has_config && has_layers) shape_kind = MediaKind::kManifest;

  ManifestType out;
  if (body_kind != MediaKind::kUnknown) {
    out = {body_kind, body_type};
  } else if (header_kind != MediaKind::kUnknown) {
    out = {header_kind, header};
  } else if (shape_kind != MediaKind::kUnknown) {
    out = {shape_kind,
           shape_kind == MediaKind::kIndex ? kMediaTypeOciIndex : kMediaTypeOciManifest};
    return out;
  } else {
    return doc.Bad("", absl::StrCat("cannot tell what it is: Content-Type ",
                                    QuoteForMessage(header, kMaxQuoted),
                                    ", no mediaType, neither \"manifests\" nor \"config\" and "
                                    "\"layers\""));
  }
  if (shape_kind != MediaKind::kUnknown && shape_kind != out.kind) {
    return doc.Bad(
        "", absl::StrCat(QuoteForMessage(out.media_type, kMaxQuoted), " is ", KindName(out.kind),
                         " but the body has the shape of ", KindName(shape_kind)));
  }
  return out;
}

absl::StatusOr<Index> ParseIndex(absl::string_view body) {
  Doc doc("image index");
  ASSIGN_OR_RETURN(json obj, doc.ParseObject(body, kMaxManifestSize));
  RETURN_IF_ERROR(CheckSchemaVersion(doc, obj));
  Index index;
  RETURN_IF_ERROR(CheckBodyMediaType(doc, obj, MediaKind::kIndex, &index.media_type));
  ASSIGN_OR_RETURN(const json* manifests,
                   GetArray(doc, obj, "manifests", "", kMaxIndexEntries, /*required=*/true));
  index.manifests.reserve(manifests->size());
  for (size_t i = 0; i < manifests->size(); ++i) {
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(doc, (*manifests)[i], Elem("manifests", i)));
    index.manifests.push_back(std::move(d));
  }
  RETURN_IF_ERROR(GetStringMap(doc, obj, "annotations", "", &index.annotations));
  return index;
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view body) {
  Doc doc("image manifest");
  ASSIGN_OR_RETURN(json obj, doc.ParseObject(body, kMaxManifestSize));
  RETURN_IF_ERROR(CheckSchemaVersion(doc, obj));
  Manifest m;
  RETURN_IF_ERROR(CheckBodyMediaType(doc, obj, MediaKind::kManifest, &m.media_type));
  const json* config = Member(obj, "config");
  if (config == nullptr) return doc.Bad("config", "missing");
  ASSIGN_OR_RETURN(m.config, ParseDescriptor(doc, *config, "config"));
  if (MediaKindOf(m.config.media_type) != MediaKind::kConfig) {
    return doc.Bad("config.mediaType",
                   absl::StrCat(QuoteForMessage(m.config.media_type, kMaxQuoted),
                                " is not an image config type (expected ", kMediaTypeOciConfig,
                                " or ", kMediaTypeDockerConfig, "; an artifact, not an image?)"));
  }
  ASSIGN_OR_RETURN(const json* layers,
                   GetArray(doc, obj, "layers", "", kMaxLayers, /*required=*/true));
  m.layers.reserve(layers->size());
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string path = Elem("layers", i);
    ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(doc, (*layers)[i], path));
    if (!LayerCompression(d.media_type).ok()) {
      return doc.Bad(
          Path(path, "mediaType"),
          absl::StrCat("unsupported layer media type ", QuoteForMessage(d.media_type, kMaxQuoted)));
    }
    m.layers.push_back(std::move(d));
  }
  RETURN_IF_ERROR(GetStringMap(doc, obj, "annotations", "", &m.annotations));
  if (const json* subject = Member(obj, "subject"); subject != nullptr) {
    ASSIGN_OR_RETURN(m.subject, ParseDescriptor(doc, *subject, "subject"));
  }
  return m;
}

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view body) {
  Doc doc("image config");
  ASSIGN_OR_RETURN(json obj, doc.ParseObject(body, kMaxConfigSize));
  ImageConfig c;
  RETURN_IF_ERROR(GetString(doc, obj, "architecture", "", &c.architecture, Text::kNoControl));
  RETURN_IF_ERROR(GetString(doc, obj, "os", "", &c.os, Text::kNoControl));
  RETURN_IF_ERROR(GetString(doc, obj, "variant", "", &c.variant, Text::kNoControl));
  RETURN_IF_ERROR(GetString(doc, obj, "os.version", "", &c.os_version, Text::kNoControl));
  RETURN_IF_ERROR(GetStringList(doc, obj, "os.features", "", &c.os_features, Text::kNoControl));
  RETURN_IF_ERROR(GetString(doc, obj, "created", "", &c.created, Text::kNoControl));

  ASSIGN_OR_RETURN(const json* config, GetObject(doc, obj, "config", ""));
  if (config != nullptr) {
    const json& cfg = *config;
    RETURN_IF_ERROR(GetString(doc, cfg, "User", "config", &c.user, Text::kNoControl));
    RETURN_IF_ERROR(GetKeySet(doc, cfg, "ExposedPorts", "config", &c.exposed_ports));
    RETURN_IF_ERROR(GetStringList(doc, cfg, "Env", "config", &c.env, Text::kNoNul));
    RETURN_IF_ERROR(GetArgs(doc, cfg, "Entrypoint", "config", &c.entrypoint));
    RETURN_IF_ERROR(GetArgs(doc, cfg, "Cmd", "config", &c.cmd));
    RETURN_IF_ERROR(GetKeySet(doc, cfg, "Volumes", "config", &c.volumes));
    RETURN_IF_ERROR(GetString(doc, cfg, "WorkingDir", "config", &c.working_dir, Text::kNoControl));
    RETURN_IF_ERROR(GetStringMap(doc, cfg, "Labels", "config", &c.labels));
    RETURN_IF_ERROR(GetString(doc, cfg, "StopSignal", "config", &c.stop_signal, Text::kNoControl));
  }

  ASSIGN_OR_RETURN(const json* rootfs, GetObject(doc, obj, "rootfs", "", /*required=*/true));
  std::string type;
  RETURN_IF_ERROR(GetString(doc, *rootfs, "type", "rootfs", &type, Text::kNoControl,
                            /*required=*/true));
  if (type != "layers") {
    return doc.Bad("rootfs.type",
                   absl::StrCat(QuoteForMessage(type, kMaxQuoted), " is not \"layers\""));
  }
  ASSIGN_OR_RETURN(const json* diff_ids,
                   GetArray(doc, *rootfs, "diff_ids", "rootfs", kMaxLayers, /*required=*/true));
  c.diff_ids.reserve(diff_ids->size());
  for (size_t i = 0; i < diff_ids->size(); ++i) {
    ASSIGN_OR_RETURN(Digest d, GetDigest(doc, (*diff_ids)[i], Elem("rootfs.diff_ids", i)));
    c.diff_ids.push_back(std::move(d));
  }

  ASSIGN_OR_RETURN(const json* history, GetArray(doc, obj, "history", "", kMaxHistory));
  if (history != nullptr) {
    for (size_t i = 0; i < history->size(); ++i) {
      const json& h = (*history)[i];
      std::string path = Elem("history", i);
      if (!h.is_object()) return doc.WrongType(path, h, "an object");
      HistoryEntry e;
      RETURN_IF_ERROR(GetString(doc, h, "created", path, &e.created, Text::kAny));
      RETURN_IF_ERROR(GetString(doc, h, "created_by", path, &e.created_by, Text::kAny));
      RETURN_IF_ERROR(GetString(doc, h, "author", path, &e.author, Text::kAny));
      RETURN_IF_ERROR(GetString(doc, h, "comment", path, &e.comment, Text::kAny));
      if (const json* empty = Member(h, "empty_layer"); empty != nullptr) {
        if (!empty->is_boolean()) {
          return doc.WrongType(Path(path, "empty_layer"), *empty, "a boolean");
        }
        e.empty_layer = empty->get<bool>();
      }
      c.history.push_back(std::move(e));
    }
  }
  c.raw = std::move(obj);
  return c;
}

absl::StatusOr<Descriptor> SelectPlatform(const Index& index, const Platform& want) {
  Platform w = NormalizePlatform(want);
  const Descriptor* best = nullptr;
  int best_distance = std::numeric_limits<int>::max();
  constexpr int kNoPlatform = 1 << 20;  // after every real match
  std::vector<std::string> offered;
  for (const Descriptor& d : index.manifests) {
    if (d.platform.has_value()) {
      std::string s = d.platform->String();
      if (offered.size() < kMaxListedPlatforms &&
          std::find(offered.begin(), offered.end(), s) == offered.end()) {
        offered.push_back(std::move(s));
      }
    }
    MediaKind kind = MediaKindOf(d.media_type);
    if (kind != MediaKind::kIndex && kind != MediaKind::kManifest) continue;
    int distance =
        d.platform.has_value() ? PlatformDistance(w, NormalizePlatform(*d.platform)) : kNoPlatform;
    if (distance >= 0 && distance < best_distance) {
      best = &d;
      best_distance = distance;
    }
  }
  if (best != nullptr) return *best;
  if (index.manifests.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no manifest for ", w.String(), ": the image index lists no manifests"));
  }
  std::string offers = offered.empty() ? "no platforms" : absl::StrJoin(offered, ", ");
  return absl::NotFoundError(
      absl::StrCat("no manifest for ", w.String(), " in the image index; it offers ", offers));
}

absl::Status CheckConfigMatchesManifest(const Manifest& manifest, const ImageConfig& config) {
  if (manifest.layers.size() != config.diff_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the manifest lists ", manifest.layers.size(), " layers but the image config has ",
        config.diff_ids.size(), " diff_ids (config ", manifest.config.digest.ToString(), ")"));
  }
  return absl::OkStatus();
}

std::vector<Digest> ChainIds(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> out;
  out.reserve(diff_ids.size());
  for (const Digest& d : diff_ids) {
    if (out.empty()) {
      out.push_back(d);
    } else {
      out.push_back(Digest::Of(absl::StrCat(out.back().ToString(), " ", d.ToString())));
    }
  }
  return out;
}

}  // namespace berth::images

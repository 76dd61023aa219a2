#include "images/image_store.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace berth::images {

namespace {

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty();
}

absl::Status NotFound(absl::string_view image) {
  return absl::NotFoundError(absl::StrCat("image \"", image, "\" not found"));
}

constexpr size_t kMaxLayoutFile = 4096;
constexpr size_t kArchiveChunk = 1 << 20;

// "./blobs/sha256/x" and "/blobs/sha256/x" are "blobs/sha256/x".
std::string EntryPath(const char* p) {
  absl::string_view s = p != nullptr ? p : "";
  for (;;) {
    if (absl::ConsumePrefix(&s, "./")) continue;
    if (absl::ConsumePrefix(&s, "/")) continue;
    break;
  }
  return std::string(s);
}

std::string BlobPathIn(const Digest& d) {
  return absl::StrCat("blobs/", d.algorithm_name(), "/", d.hex());
}

// Streams the regular file `want` of the tar at `archive_path` into `sink`, from byte
// `offset`. NotFound when the archive has no such entry; DataLoss when the archive is damaged
// (truncated, not a tar).
absl::Status ReadArchiveEntry(const std::string& archive_path, const std::string& want,
                              int64_t offset, const BlobSink& sink) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  if (!a) return absl::ResourceExhaustedError("archive_read_new");
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the OCI archive: ", archive_error_string(a.get())));
  }
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) {
      return absl::NotFoundError(absl::StrCat("the OCI archive has no ", want));
    }
    if (r < ARCHIVE_WARN) {
      return absl::DataLossError(absl::StrCat("the OCI archive is damaged (looking for ", want,
                                              "): ", archive_error_string(a.get())));
    }
    if (EntryPath(archive_entry_pathname(e)) != want) continue;
    if (archive_entry_filetype(e) != AE_IFREG) {
      return absl::InvalidArgumentError(
          absl::StrCat(want, " in the OCI archive is not a regular file"));
    }
    std::unique_ptr<char[]> buf(new char[kArchiveChunk]);
    int64_t pos = 0;
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf.get(), kArchiveChunk);
      if (n < 0) {
        return absl::DataLossError(absl::StrCat("the OCI archive is damaged (reading ", want,
                                                "): ", archive_error_string(a.get())));
      }
      if (n == 0) return absl::OkStatus();
      int64_t skip = std::clamp<int64_t>(offset - pos, 0, n);
      pos += n;
      if (skip < n) {
        RETURN_IF_ERROR(sink(buf.get() + skip, static_cast<size_t>(n - skip)));
      }
    }
  }
}

absl::StatusOr<std::string> ReadArchiveFile(const std::string& archive_path,
                                            const std::string& want, size_t max) {
  std::string out;
  RETURN_IF_ERROR(
      ReadArchiveEntry(archive_path, want, 0, [&](const char* p, size_t n) -> absl::Status {
        if (out.size() + n > max) {
          return absl::InvalidArgumentError(
              absl::StrCat(want, " in the OCI archive is larger than ", max, " bytes"));
        }
        out.append(p, n);
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace

ImageUser ImageUserOf(absl::string_view config_user) {
  ImageUser u;
  // "user", "uid", "user:group", "uid:gid": only the user part names the user.
  absl::string_view user = config_user.substr(0, config_user.find(':'));
  int64_t uid = 0;
  if (user.empty()) {
    u.uid = 0;  // no User: root
  } else if (absl::SimpleAtoi(user, &uid) && uid >= 0) {
    u.uid = uid;
  } else {
    u.username = std::string(user);
  }
  return u;
}

ImageStore::ImageStore(ImageStoreOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ImageStore>> ImageStore::Open(ImageStoreOptions options) {
  std::unique_ptr<ImageStore> s(new ImageStore(std::move(options)));
  const std::string& root = s->options_.root;
  RETURN_IF_ERROR(MkdirAll(root, 0711));
  ASSIGN_OR_RETURN(s->content_, ContentStore::Open(absl::StrCat(root, "/content")));
  ASSIGN_OR_RETURN(s->snapshots_, SnapshotStore::Open(root));
  ASSIGN_OR_RETURN(s->metadata_, MetadataStore::Open(absl::StrCat(root, "/berth.db")));
  s->registry_ = std::make_unique<RegistryClient>(s->options_.registry);
  s->puller_ = std::make_unique<Puller>(s->registry_.get(), s->content_.get(), s->snapshots_.get(),
                                        s->options_.pull);

  // What a crash (kill -9 during a pull) may have left: partial downloads and extractions.
  absl::StatusOr<std::vector<Digest>> ingests = s->content_->CleanIngests(absl::ZeroDuration());
  if (!ingests.ok()) return ingests.status();
  if (!ingests->empty()) log::Info("removed interrupted downloads", {{"count", ingests->size()}});
  RETURN_IF_ERROR(s->snapshots_->CleanTmp());
  // Snapshots committed by a pull that died before recording them: no record, no use.
  ASSIGN_OR_RETURN(std::vector<Digest> on_disk, s->snapshots_->List());
  for (const Digest& chain_id : on_disk) {
    ASSIGN_OR_RETURN(std::optional<SnapshotRecord> rec, s->metadata_->GetSnapshot(chain_id));
    if (!rec) {
      log::Info("removing unrecorded snapshot", {{"chain_id", chain_id.ToString()}});
      RETURN_IF_ERROR(s->snapshots_->Remove(chain_id));
    }
  }
  RETURN_IF_ERROR(s->CollectGarbage());
  return s;
}

absl::StatusOr<ImageRecord> ImageStore::Pull(
    absl::string_view image, const Credentials& creds,
    const std::function<void(const PullProgress&)>& progress) {
  ASSIGN_OR_RETURN(Reference ref, ParseReference(image));
  std::shared_lock<std::shared_mutex> no_gc(gc_mu_);
  ASSIGN_OR_RETURN(PulledImage pulled, puller_->Pull(ref, creds, progress));

  std::vector<std::string> tags;
  // Pulled by tag: the tag names it; always: name@manifest-digest pulls it again.
  if (!ref.tag.empty() && !ref.digest) tags.push_back(absl::StrCat(ref.Name(), ":", ref.tag));
  return Record(pulled, tags, {absl::StrCat(ref.Name(), "@", pulled.manifest_digest.ToString())});
}

absl::StatusOr<ImageRecord> ImageStore::Record(const PulledImage& pulled,
                                               const std::vector<std::string>& tags,
                                               const std::vector<std::string>& repo_digests) {
  // Snapshot records first (an image record needs them), bottom up.
  for (size_t i = 0; i < pulled.chain_ids.size(); ++i) {
    SnapshotRecord s;
    s.chain_id = pulled.chain_ids[i];
    s.diff_id = pulled.diff_ids[i];
    if (i > 0) s.parent = pulled.chain_ids[i - 1];
    RETURN_IF_ERROR(metadata_->PutSnapshot(s));
  }
  ImageRecord rec;
  absl::StatusOr<ImageRecord> existing = metadata_->GetImage(pulled.config_digest);
  if (existing.ok()) {
    rec = *existing;  // keep its other names
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  } else {
    rec.created_at = absl::Now();
  }
  rec.id = pulled.config_digest;
  rec.manifest_digest = pulled.manifest_digest;
  rec.manifest_media_type = pulled.manifest_media_type;
  rec.size = pulled.size;
  rec.layer_digests = pulled.layer_digests;
  rec.diff_ids = pulled.diff_ids;
  rec.chain_ids = pulled.chain_ids;
  rec.config_json = pulled.config_json;
  rec.last_used = absl::Now();
  for (const std::string& tag : tags) {
    if (std::find(rec.repo_tags.begin(), rec.repo_tags.end(), tag) == rec.repo_tags.end()) {
      rec.repo_tags.push_back(tag);
    }
  }
  for (const std::string& d : repo_digests) {
    if (std::find(rec.repo_digests.begin(), rec.repo_digests.end(), d) == rec.repo_digests.end()) {
      rec.repo_digests.push_back(d);
    }
  }
  RETURN_IF_ERROR(metadata_->PutImage(rec));
  return metadata_->GetImage(rec.id);
}

absl::StatusOr<ImageRecord> ImageStore::Import(
    const std::string& oci_archive_path, const std::vector<std::string>& tags,
    const std::function<void(const PullProgress&)>& progress) {
  const std::string& path = oci_archive_path;
  std::vector<Reference> refs;
  for (const std::string& t : tags) {
    absl::StatusOr<Reference> ref = ParseReference(t);
    if (!ref.ok()) return Annotate(ref.status(), absl::StrCat("tag \"", t, "\""));
    if (ref->digest || ref->tag.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tag \"", t, "\" is a digest reference; a tag is name[:tag]"));
    }
    refs.push_back(*ref);
  }

  // The layout's own files.
  ASSIGN_OR_RETURN(std::string layout, ReadArchiveFile(path, "oci-layout", kMaxLayoutFile));
  nlohmann::json lj = nlohmann::json::parse(layout, nullptr, /*allow_exceptions=*/false);
  if (!lj.is_object() || !lj.contains("imageLayoutVersion") ||
      !lj["imageLayoutVersion"].is_string() ||
      !absl::StartsWith(lj["imageLayoutVersion"].get<std::string>(), "1.")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the archive's oci-layout is not an OCI image layout 1.x marker: ", layout.substr(0, 200)));
  }
  ASSIGN_OR_RETURN(std::string index_json, ReadArchiveFile(path, "index.json", kMaxConfigSize));
  absl::StatusOr<Index> index = ParseIndex(index_json);
  if (!index.ok()) return Annotate(index.status(), "the archive's index.json");
  if (index->manifests.empty()) {
    return absl::InvalidArgumentError("the archive's index.json lists no image");
  }
  Descriptor top_desc = index->manifests[0];
  if (index->manifests.size() > 1) {
    absl::StatusOr<Descriptor> d = SelectPlatform(*index, options_.pull.platform);
    if (!d.ok()) return Annotate(d.status(), "the archive's index.json");
    top_desc = *d;
  }

  ImageSource source;
  source.name = absl::StrCat("in the OCI archive (", top_desc.digest.ToString(), ")");
  source.blob = [&](const Digest& digest, int64_t offset, const BlobSink& sink,
                    const std::function<void()>&) {
    return ReadArchiveEntry(path, BlobPathIn(digest), offset, sink);
  };
  source.manifest = [&](const Descriptor& desc) -> absl::StatusOr<FetchedManifest> {
    if (desc.size > static_cast<int64_t>(kMaxConfigSize)) {
      return absl::InvalidArgumentError(absl::StrCat("manifest ", desc.digest.ToString(), " is ",
                                                     desc.size, " bytes, too large"));
    }
    FetchedManifest m;
    ASSIGN_OR_RETURN(m.body, ReadArchiveFile(path, BlobPathIn(desc.digest), kMaxConfigSize));
    m.digest = Digest::Of(m.body, desc.digest.algorithm());
    if (m.digest != desc.digest) {
      return absl::DataLossError(absl::StrCat("blob ", desc.digest.ToString(),
                                              " in the archive has digest ", m.digest.ToString()));
    }
    ASSIGN_OR_RETURN(ManifestType type, ClassifyManifest(desc.media_type, m.body));
    m.kind = type.kind;
    m.media_type = type.media_type;
    m.endpoint = path;
    return m;
  };

  std::vector<std::string> names;
  names.reserve(refs.size());
  for (const Reference& r : refs) names.push_back(absl::StrCat(r.Name(), ":", r.tag));
  if (refs.empty()) {
    auto it = top_desc.annotations.find("org.opencontainers.image.ref.name");
    if (it != top_desc.annotations.end() && it->second.find_first_of(":/@") != std::string::npos) {
      absl::StatusOr<Reference> r = ParseReference(it->second);
      if (r.ok() && !r->tag.empty() && !r->digest) {
        refs.push_back(*r);
        names.push_back(absl::StrCat(r->Name(), ":", r->tag));
      }
    }
  }

  std::vector<Digest> chain_ids;
  absl::Status failure;
  {
    std::shared_lock<std::shared_mutex> no_gc(gc_mu_);
    absl::StatusOr<FetchedManifest> top = source.manifest(top_desc);
    if (!top.ok()) return top.status();  // nothing stored yet
    absl::StatusOr<PulledImage> pulled = puller_->PullFrom(source, *top, progress, &chain_ids);
    if (pulled.ok()) {
      std::vector<std::string> repo_digests;
      repo_digests.reserve(refs.size());
      for (const Reference& r : refs) {
        repo_digests.push_back(absl::StrCat(r.Name(), "@", pulled->manifest_digest.ToString()));
      }
      absl::StatusOr<ImageRecord> rec = Record(*pulled, names, repo_digests);
      if (rec.ok()) return rec;
      failure = rec.status();
    } else {
      failure = pulled.status();
    }
  }
  // Take back what this import stored: snapshots no record names (no pull is running while
  // gc_mu_ is held exclusively, so such a snapshot is nobody's), then unreferenced blobs.
  std::unique_lock<std::shared_mutex> lock(gc_mu_);
  for (const Digest& chain_id : chain_ids) {
    absl::StatusOr<std::optional<SnapshotRecord>> rec = metadata_->GetSnapshot(chain_id);
    if (rec.ok() && !rec->has_value()) {
      absl::Status s = snapshots_->Remove(chain_id);
      if (!s.ok()) log::Warn("removing a snapshot of a failed import", {{"error", s.ToString()}});
    }
  }
  absl::Status gc = CollectGarbage();
  if (!gc.ok()) log::Warn("cleaning up after a failed import", {{"error", gc.ToString()}});
  return failure;
}

absl::StatusOr<ImageRecord> ImageStore::Resolve(absl::string_view image) {
  absl::string_view s = absl::StripAsciiWhitespace(image);
  if (s.empty()) return absl::InvalidArgumentError("empty image name");
  // An ID, full or short.
  absl::string_view hex = s;
  bool explicit_id = absl::ConsumePrefix(&hex, "sha256:");
  if (IsHex(hex) && (explicit_id || hex.size() >= 12) && hex.size() <= 64) {
    ASSIGN_OR_RETURN(std::vector<ImageRecord> found, metadata_->FindByIdPrefix(hex));
    if (found.size() == 1) return found[0];
    if (found.size() > 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("image ID prefix \"", s, "\" matches ", found.size(), " images"));
    }
    if (explicit_id || hex.size() == 64) return NotFound(image);
  }
  // A reference, normalised as it was when pulled.
  absl::StatusOr<Reference> ref = ParseReference(s);
  if (!ref.ok()) {
    if (absl::IsInvalidArgument(ref.status())) return NotFound(image);
    return ref.status();
  }
  absl::StatusOr<std::optional<ImageRecord>> rec;
  if (ref->digest) {
    rec = metadata_->FindByRepoDigest(absl::StrCat(ref->Name(), "@", ref->digest->ToString()));
  } else {
    rec = metadata_->FindByTag(absl::StrCat(ref->Name(), ":", ref->tag));
  }
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return NotFound(image);
  return **rec;
}

absl::StatusOr<std::vector<ImageRecord>> ImageStore::List() {
  return metadata_->ListImages();
}

absl::Status ImageStore::Remove(absl::string_view image) {
  std::unique_lock<std::shared_mutex> lock(gc_mu_);
  ASSIGN_OR_RETURN(ImageRecord rec, Resolve(image));
  {
    // A tag reference removes that tag only, while the image has others.
    absl::StatusOr<Reference> ref = ParseReference(image);
    bool by_tag = ref.ok() && !ref->digest && !absl::StartsWith(image, "sha256:") &&
                  std::find(rec.repo_tags.begin(), rec.repo_tags.end(),
                            absl::StrCat(ref->Name(), ":", ref->tag)) != rec.repo_tags.end();
    if (by_tag && rec.repo_tags.size() > 1) {
      return metadata_->UntagImage(absl::StrCat(ref->Name(), ":", ref->tag));
    }
    RETURN_IF_ERROR(metadata_->DeleteImage(rec.id));
  }
  return CollectGarbage();
}

// Callers hold gc_mu_ exclusively (or, at Open, no pull can run yet).
absl::Status ImageStore::CollectGarbage() {
  // Snapshots nobody uses (children first), then snapshot directories no record names.
  ASSIGN_OR_RETURN(std::vector<Digest> unused, metadata_->UnusedSnapshots());
  for (const Digest& chain_id : unused) {
    RETURN_IF_ERROR(snapshots_->Remove(chain_id));
    RETURN_IF_ERROR(metadata_->DeleteSnapshot(chain_id));
  }
  // Blobs no image refers to.
  ASSIGN_OR_RETURN(std::vector<ImageRecord> images, metadata_->ListImages());
  std::set<Digest> keep;
  for (const ImageRecord& i : images) {
    keep.insert(i.id);
    keep.insert(i.manifest_digest);
    keep.insert(i.layer_digests.begin(), i.layer_digests.end());
  }
  ASSIGN_OR_RETURN(std::vector<BlobInfo> blobs, content_->List());
  for (const BlobInfo& b : blobs) {
    // (An index's platform manifest is not kept: it is only needed while pulling.)
    if (keep.count(b.digest)) continue;
    RETURN_IF_ERROR(content_->Delete(b.digest));
  }
  return absl::OkStatus();
}

absl::StatusOr<FsUsage> ImageStore::Usage() {
  ASSIGN_OR_RETURN(SnapshotUsage s, snapshots_->Usage());
  ASSIGN_OR_RETURN(ContentUsage c, content_->Usage());
  FsUsage u;
  u.mountpoint = snapshots_->root();
  u.used_bytes = static_cast<uint64_t>(s.bytes + c.bytes);
  u.inodes_used = static_cast<uint64_t>(s.inodes + c.inodes);
  return u;
}

absl::Status ImageStore::AcquireLayers(const std::vector<Digest>& chain_ids) {
  std::shared_lock<std::shared_mutex> no_gc(gc_mu_);
  for (size_t i = 0; i < chain_ids.size(); ++i) {
    absl::Status st = metadata_->AddSnapshotUser(chain_ids[i], +1);
    if (!st.ok()) {
      for (size_t j = 0; j < i; ++j) (void)metadata_->AddSnapshotUser(chain_ids[j], -1);
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status ImageStore::ReleaseLayers(const std::vector<Digest>& chain_ids) {
  std::unique_lock<std::shared_mutex> lock(gc_mu_);
  for (const Digest& c : chain_ids) {
    absl::Status st = metadata_->AddSnapshotUser(c, -1);
    if (!st.ok() && !absl::IsNotFound(st)) return st;
  }
  return CollectGarbage();
}

std::vector<std::string> ImageStore::LayerPaths(const ImageRecord& image) const {
  std::vector<std::string> out;
  for (auto it = image.chain_ids.rbegin(); it != image.chain_ids.rend(); ++it) {
    out.push_back(snapshots_->Path(*it));
  }
  return out;
}

}  // namespace berth::images

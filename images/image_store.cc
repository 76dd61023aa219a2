#include "images/image_store.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

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
  RETURN_IF_ERROR(s->CollectGarbage());
  return s;
}

absl::StatusOr<ImageRecord> ImageStore::Pull(
    absl::string_view image, const Credentials& creds,
    const std::function<void(const PullProgress&)>& progress) {
  ASSIGN_OR_RETURN(Reference ref, ParseReference(image));
  std::shared_lock<std::shared_mutex> no_gc(gc_mu_);
  ASSIGN_OR_RETURN(PulledImage pulled, puller_->Pull(ref, creds, progress));

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
  // Pulled by tag: the tag names it; always: name@manifest-digest pulls it again.
  if (!ref.tag.empty() && !ref.digest) {
    std::string tag = absl::StrCat(ref.Name(), ":", ref.tag);
    if (std::find(rec.repo_tags.begin(), rec.repo_tags.end(), tag) == rec.repo_tags.end()) {
      rec.repo_tags.push_back(tag);
    }
  }
  std::string repo_digest = absl::StrCat(ref.Name(), "@", pulled.manifest_digest.ToString());
  if (std::find(rec.repo_digests.begin(), rec.repo_digests.end(), repo_digest) ==
      rec.repo_digests.end()) {
    rec.repo_digests.push_back(repo_digest);
  }
  RETURN_IF_ERROR(metadata_->PutImage(rec));
  return metadata_->GetImage(rec.id);
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

std::vector<std::string> ImageStore::LayerPaths(const ImageRecord& image) const {
  std::vector<std::string> out;
  for (auto it = image.chain_ids.rbegin(); it != image.chain_ids.rend(); ++it) {
    out.push_back(snapshots_->Path(*it));
  }
  return out;
}

}  // namespace berth::images

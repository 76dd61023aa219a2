#include "images/metadata.h"

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/sqlite.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace berth::images {

namespace {

// Schema migrations: kMigrations[v] takes a database from version v to v + 1.
constexpr const char* kMigrations[] = {
    // 0 -> 1: images, their tags and repo digests, snapshots and which image uses which.
    R"sql(
CREATE TABLE images (
  id              TEXT PRIMARY KEY NOT NULL,
  manifest_digest TEXT NOT NULL,
  media_type      TEXT NOT NULL,
  size            INTEGER NOT NULL,
  layers          TEXT NOT NULL,     -- JSON array of digests, bottom first
  diff_ids        TEXT NOT NULL,     -- JSON array
  chain_ids       TEXT NOT NULL,     -- JSON array
  config          BLOB NOT NULL,
  pinned          INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,  -- Unix nanoseconds
  last_used       INTEGER NOT NULL
) STRICT;
CREATE TABLE image_tags (
  tag      TEXT PRIMARY KEY NOT NULL,
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
) STRICT;
CREATE INDEX image_tags_by_image ON image_tags(image_id);
CREATE TABLE image_digests (
  ref      TEXT PRIMARY KEY NOT NULL,
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
) STRICT;
CREATE INDEX image_digests_by_image ON image_digests(image_id);
CREATE TABLE snapshots (
  chain_id TEXT PRIMARY KEY NOT NULL,
  diff_id  TEXT NOT NULL,
  parent   TEXT REFERENCES snapshots(chain_id),
  size     INTEGER NOT NULL,
  users    INTEGER NOT NULL DEFAULT 0 CHECK (users >= 0)
) STRICT;
CREATE INDEX snapshots_by_parent ON snapshots(parent);
CREATE TABLE image_snapshots (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  chain_id TEXT NOT NULL REFERENCES snapshots(chain_id),
  PRIMARY KEY (image_id, chain_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX image_snapshots_by_chain ON image_snapshots(chain_id);
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == MetadataStore::kSchemaVersion);

constexpr char kImageColumns[] =
    "id, manifest_digest, media_type, size, layers, diff_ids, chain_ids, config, pinned, "
    "created_at, last_used";
constexpr char kSnapshotColumns[] = "chain_id, diff_id, parent, size, users";

using sqlite::Stmt;

std::string DigestsJson(const std::vector<Digest>& digests) {
  nlohmann::json arr = nlohmann::json::array();
  for (const Digest& d : digests) arr.push_back(d.ToString());
  return arr.dump();
}

// Hex digits, optionally after "sha256:" / "sha512:"; lowercased.
absl::StatusOr<std::pair<std::string, std::string>> SplitIdPrefix(absl::string_view prefix) {
  std::string alg;
  absl::string_view hex = prefix;
  if (size_t colon = prefix.find(':'); colon != absl::string_view::npos) {
    alg = std::string(prefix.substr(0, colon));
    hex = prefix.substr(colon + 1);
    if (alg != "sha256" && alg != "sha512") {
      return absl::InvalidArgumentError(
          absl::StrCat("image ID prefix \"", prefix, "\": unknown algorithm \"", alg, "\""));
    }
  }
  if (hex.empty() || hex.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("image ID prefix \"", prefix, "\": needs 1 to 128 hex digits"));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("image ID prefix \"", prefix, "\": not hex digits"));
    }
  }
  return std::make_pair(alg, absl::AsciiStrToLower(hex));
}

}  // namespace

struct MetadataStore::Impl {
  std::unique_ptr<sqlite::Db> db;
  std::mutex mu;
  std::function<void()> before_commit;

  absl::Status DataLoss(absl::string_view what, absl::string_view detail) const {
    return absl::DataLossError(db->Message(absl::StrCat(what, " is corrupted: ", detail)));
  }

  absl::StatusOr<Stmt> Prepare(absl::string_view sql) { return db->Prepare(sql); }

  // Runs `fn` in one transaction, committing when it returns OK and rolling back otherwise
  // (sqlite::Transaction), with the test hook just before a write's COMMIT. Caller holds mu.
  absl::Status Transaction(bool write, const std::function<absl::Status()>& fn) {
    ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(*db, write));
    RETURN_IF_ERROR(fn());
    if (write && before_commit) before_commit();
    return tx.Commit();
  }

  absl::StatusOr<Digest> ParseDigest(absl::string_view text, absl::string_view what) const {
    absl::StatusOr<Digest> d = Digest::Parse(text);
    if (!d.ok()) return DataLoss(what, d.status().message());
    return d;
  }

  absl::StatusOr<std::vector<Digest>> ParseDigests(absl::string_view text,
                                                   absl::string_view what) const {
    nlohmann::json arr = nlohmann::json::parse(text, nullptr, false);
    if (arr.is_discarded() || !arr.is_array()) return DataLoss(what, "not a JSON array");
    std::vector<Digest> out;
    out.reserve(arr.size());
    for (const nlohmann::json& e : arr) {
      if (!e.is_string()) return DataLoss(what, "an entry is not a string");
      ASSIGN_OR_RETURN(Digest d, ParseDigest(e.get<std::string>(), what));
      out.push_back(std::move(d));
    }
    return out;
  }

  // The columns of kImageColumns at the statement's current row; tags and digests not yet.
  absl::StatusOr<ImageRecord> ImageFromRow(const Stmt& st) const {
    std::string id_text = st.Text(0);
    std::string row = absl::StrCat("image row \"", id_text.substr(0, 80), "\"");
    ImageRecord r;
    ASSIGN_OR_RETURN(r.id, ParseDigest(id_text, absl::StrCat(row, " id")));
    ASSIGN_OR_RETURN(r.manifest_digest,
                     ParseDigest(st.Text(1), absl::StrCat(row, " manifest_digest")));
    r.manifest_media_type = st.Text(2);
    r.size = static_cast<uint64_t>(st.Int(3));
    ASSIGN_OR_RETURN(r.layer_digests, ParseDigests(st.Text(4), absl::StrCat(row, " layers")));
    ASSIGN_OR_RETURN(r.diff_ids, ParseDigests(st.Text(5), absl::StrCat(row, " diff_ids")));
    ASSIGN_OR_RETURN(r.chain_ids, ParseDigests(st.Text(6), absl::StrCat(row, " chain_ids")));
    r.config_json = st.Blob(7);
    r.pinned = st.Int(8) != 0;
    r.created_at = absl::FromUnixNanos(st.Int(9));
    r.last_used = absl::FromUnixNanos(st.Int(10));
    return r;
  }

  absl::StatusOr<std::vector<std::string>> Strings(absl::string_view sql, const Digest& id) {
    ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
    st.Bind(1, id.ToString());
    std::vector<std::string> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return out;
      out.push_back(st.Text(0));
    }
  }

  // Runs an images query (selecting kImageColumns) bound by `bind`, with tags and digests.
  absl::StatusOr<std::vector<ImageRecord>> LoadImages(absl::string_view sql,
                                                      const std::function<void(Stmt&)>& bind) {
    std::vector<ImageRecord> out;
    {
      ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
      bind(st);
      while (true) {
        ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(ImageRecord r, ImageFromRow(st));
        out.push_back(std::move(r));
      }
    }
    for (ImageRecord& r : out) {
      ASSIGN_OR_RETURN(r.repo_tags,
                       Strings("SELECT tag FROM image_tags WHERE image_id = ? ORDER BY tag", r.id));
      ASSIGN_OR_RETURN(
          r.repo_digests,
          Strings("SELECT ref FROM image_digests WHERE image_id = ? ORDER BY ref", r.id));
    }
    return out;
  }

  absl::StatusOr<std::vector<ImageRecord>> ReadImages(absl::string_view sql,
                                                      const std::function<void(Stmt&)>& bind) {
    std::vector<ImageRecord> out;
    RETURN_IF_ERROR(Transaction(false, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(out, LoadImages(sql, bind));
      return absl::OkStatus();
    }));
    return out;
  }

  // The image named by `key` in `table` (image_tags.tag or image_digests.ref).
  absl::StatusOr<std::optional<ImageRecord>> FindBy(absl::string_view sql, absl::string_view key) {
    ASSIGN_OR_RETURN(std::vector<ImageRecord> found,
                     ReadImages(sql, [&](Stmt& st) { st.Bind(1, key); }));
    if (found.empty()) return std::nullopt;
    return std::move(found.front());
  }

  absl::StatusOr<SnapshotRecord> SnapshotFromRow(const Stmt& st) const {
    std::string id_text = st.Text(0);
    std::string row = absl::StrCat("snapshot row \"", id_text.substr(0, 80), "\"");
    SnapshotRecord s;
    ASSIGN_OR_RETURN(s.chain_id, ParseDigest(id_text, absl::StrCat(row, " chain_id")));
    ASSIGN_OR_RETURN(s.diff_id, ParseDigest(st.Text(1), absl::StrCat(row, " diff_id")));
    if (!st.IsNull(2)) {
      ASSIGN_OR_RETURN(s.parent, ParseDigest(st.Text(2), absl::StrCat(row, " parent")));
    }
    s.size = static_cast<uint64_t>(st.Int(3));
    s.users = st.Int(4);
    return s;
  }

  absl::StatusOr<std::vector<SnapshotRecord>> AllSnapshots() {
    ASSIGN_OR_RETURN(Stmt st, Prepare(absl::StrCat("SELECT ", kSnapshotColumns,
                                                   " FROM snapshots ORDER BY chain_id")));
    std::vector<SnapshotRecord> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return out;
      ASSIGN_OR_RETURN(SnapshotRecord s, SnapshotFromRow(st));
      out.push_back(std::move(s));
    }
  }

  // users += delta for one snapshot; NotFound / FailedPrecondition as AddSnapshotUser says.
  absl::Status AddUsers(const Digest& chain_id, int64_t delta) {
    ASSIGN_OR_RETURN(Stmt st, Prepare("UPDATE snapshots SET users = users + ? WHERE chain_id = ?"));
    st.Bind(1, delta).Bind(2, chain_id.ToString());
    absl::Status s = st.Run();
    if (absl::IsFailedPrecondition(s)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot ", chain_id.ToString(), ": users would go below zero (adding ", delta, ")"));
    }
    RETURN_IF_ERROR(s);
    if (db->Changes() == 0) {
      return absl::NotFoundError(absl::StrCat("snapshot ", chain_id.ToString(), " not found"));
    }
    return absl::OkStatus();
  }

  absl::Status MoveName(absl::string_view table, absl::string_view column, absl::string_view name,
                        const Digest& id) {
    ASSIGN_OR_RETURN(Stmt st,
                     Prepare(absl::StrCat("INSERT INTO ", table, "(", column,
                                          ", image_id) VALUES(?, ?) ON CONFLICT(", column,
                                          ") DO UPDATE SET image_id = excluded.image_id")));
    st.Bind(1, name).Bind(2, id.ToString());
    return st.Run();
  }

  absl::StatusOr<bool> ImageExists(const Digest& id) {
    ASSIGN_OR_RETURN(Stmt st, Prepare("SELECT 1 FROM images WHERE id = ?"));
    st.Bind(1, id.ToString());
    return st.Step();
  }
};

MetadataStore::MetadataStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetadataStore::~MetadataStore() = default;

const std::string& MetadataStore::path() const {
  return impl_->db->path();
}

absl::StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::string& path) {
  // The file is created 0600 (and so are the -wal/-shm files SQLite derives from it): image
  // configs can carry secrets in their environment.
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->db, sqlite::Db::Open(path, "metadata", "metadata database"));
  RETURN_IF_ERROR(impl->db->Migrate(kMigrations));
  return std::unique_ptr<MetadataStore>(new MetadataStore(std::move(impl)));
}

absl::StatusOr<int> MetadataStore::SchemaVersion() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->db->UserVersion();
}

void MetadataStore::SetBeforeCommitHookForTesting(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->before_commit = std::move(hook);
}

// ---- Images.

absl::Status MetadataStore::PutImage(const ImageRecord& image) {
  std::string what = absl::StrCat("put image ", image.id.ToString());
  if (image.layer_digests.size() != image.diff_ids.size() ||
      image.diff_ids.size() != image.chain_ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", image.layer_digests.size(), " layers, ", image.diff_ids.size(),
                     " diff_ids and ", image.chain_ids.size(), " chain_ids"));
  }
  for (const auto* names : {&image.repo_tags, &image.repo_digests}) {
    for (const std::string& n : *names) {
      if (n.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty name"));
    }
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return Annotate(
      d.Transaction(
          true,
          [&]() -> absl::Status {
            {
              ASSIGN_OR_RETURN(
                  Stmt st,
                  d.Prepare(absl::StrCat(
                      "INSERT INTO images(", kImageColumns,
                      ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                      "manifest_digest = excluded.manifest_digest, media_type = "
                      "excluded.media_type, "
                      "size = excluded.size, layers = excluded.layers, diff_ids = "
                      "excluded.diff_ids, "
                      "chain_ids = excluded.chain_ids, config = excluded.config, "
                      "pinned = excluded.pinned, created_at = excluded.created_at, "
                      "last_used = excluded.last_used")));
              st.Bind(1, image.id.ToString())
                  .Bind(2, image.manifest_digest.ToString())
                  .Bind(3, image.manifest_media_type)
                  .Bind(4, static_cast<int64_t>(image.size))
                  .Bind(5, DigestsJson(image.layer_digests))
                  .Bind(6, DigestsJson(image.diff_ids))
                  .Bind(7, DigestsJson(image.chain_ids))
                  .BindBlob(8, image.config_json)
                  .Bind(9, int64_t{image.pinned ? 1 : 0})
                  .Bind(10, absl::ToUnixNanos(image.created_at))
                  .Bind(11, absl::ToUnixNanos(image.last_used));
              RETURN_IF_ERROR(st.Run());
            }
            // Names: this image's become exactly the given ones, taking them from other images.
            for (auto [table, column, names] :
                 {std::make_tuple("image_tags", "tag", &image.repo_tags),
                  std::make_tuple("image_digests", "ref", &image.repo_digests)}) {
              {
                ASSIGN_OR_RETURN(
                    Stmt st, d.Prepare(absl::StrCat("DELETE FROM ", table, " WHERE image_id = ?")));
                st.Bind(1, image.id.ToString());
                RETURN_IF_ERROR(st.Run());
              }
              for (const std::string& name : *names) {
                RETURN_IF_ERROR(d.MoveName(table, column, name, image.id));
              }
            }
            // Snapshot users: one per (image, chain_id), whatever was recorded before.
            std::set<std::string> had, wants;
            {
              ASSIGN_OR_RETURN(
                  std::vector<std::string> rows,
                  d.Strings("SELECT chain_id FROM image_snapshots WHERE image_id = ?", image.id));
              had.insert(rows.begin(), rows.end());
            }
            for (const Digest& c : image.chain_ids) wants.insert(c.ToString());
            for (const std::string& c : had) {
              if (wants.count(c) != 0) continue;
              ASSIGN_OR_RETURN(
                  Stmt st,
                  d.Prepare("DELETE FROM image_snapshots WHERE image_id = ? AND chain_id = ?"));
              st.Bind(1, image.id.ToString()).Bind(2, c);
              RETURN_IF_ERROR(st.Run());
              ASSIGN_OR_RETURN(Digest chain, d.ParseDigest(c, "image_snapshots chain_id"));
              RETURN_IF_ERROR(d.AddUsers(chain, -1));
            }
            for (const Digest& c : image.chain_ids) {
              std::string text = c.ToString();
              if (had.count(text) != 0) continue;
              had.insert(text);  // a chain_id listed twice takes one user
              absl::Status s = d.AddUsers(c, 1);
              if (absl::IsNotFound(s)) {
                return absl::FailedPreconditionError(
                    absl::StrCat("snapshot ", text, " is not recorded (put the snapshots first)"));
              }
              RETURN_IF_ERROR(s);
              ASSIGN_OR_RETURN(
                  Stmt st,
                  d.Prepare("INSERT INTO image_snapshots(image_id, chain_id) VALUES(?, ?)"));
              st.Bind(1, image.id.ToString()).Bind(2, text);
              RETURN_IF_ERROR(st.Run());
            }
            return absl::OkStatus();
          }),
      what);
}

absl::StatusOr<ImageRecord> MetadataStore::GetImage(const Digest& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(
      std::vector<ImageRecord> found,
      impl_->ReadImages(absl::StrCat("SELECT ", kImageColumns, " FROM images WHERE id = ?"),
                        [&](Stmt& st) { st.Bind(1, id.ToString()); }));
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat("image ", id.ToString(), " not found"));
  }
  return std::move(found.front());
}

absl::StatusOr<std::optional<ImageRecord>> MetadataStore::FindByTag(absl::string_view tag) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->FindBy(absl::StrCat("SELECT ", kImageColumns,
                                    " FROM images WHERE id = "
                                    "(SELECT image_id FROM image_tags WHERE tag = ?)"),
                       tag);
}

absl::StatusOr<std::optional<ImageRecord>> MetadataStore::FindByRepoDigest(absl::string_view ref) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->FindBy(absl::StrCat("SELECT ", kImageColumns,
                                    " FROM images WHERE id = "
                                    "(SELECT image_id FROM image_digests WHERE ref = ?)"),
                       ref);
}

absl::StatusOr<std::vector<ImageRecord>> MetadataStore::FindByIdPrefix(
    absl::string_view hex_prefix) {
  ASSIGN_OR_RETURN(auto split, SplitIdPrefix(hex_prefix));
  const auto& [alg, hex] = split;
  std::lock_guard<std::mutex> lock(impl_->mu);
  // GLOB is case-sensitive and the pattern holds only [a-z0-9:*], so nothing needs escaping.
  if (!alg.empty()) {
    return impl_->ReadImages(
        absl::StrCat("SELECT ", kImageColumns, " FROM images WHERE id GLOB ? ORDER BY id"),
        [&](Stmt& st) { st.Bind(1, absl::StrCat(alg, ":", hex, "*")); });
  }
  return impl_->ReadImages(
      absl::StrCat("SELECT ", kImageColumns,
                   " FROM images WHERE id GLOB ? OR id GLOB ? ORDER BY id"),
      [&](Stmt& st) {
        st.Bind(1, absl::StrCat("sha256:", hex, "*")).Bind(2, absl::StrCat("sha512:", hex, "*"));
      });
}

absl::StatusOr<std::vector<ImageRecord>> MetadataStore::ListImages() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->ReadImages(absl::StrCat("SELECT ", kImageColumns, " FROM images ORDER BY id"),
                           [](Stmt&) {});
}

absl::Status MetadataStore::TagImage(const Digest& id, absl::string_view tag) {
  std::string what = absl::StrCat("tag image ", id.ToString(), " as ", tag);
  if (tag.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty tag"));
  std::lock_guard<std::mutex> lock(impl_->mu);
  return Annotate(impl_->Transaction(true,
                                     [&]() -> absl::Status {
                                       ASSIGN_OR_RETURN(bool exists, impl_->ImageExists(id));
                                       if (!exists) return absl::NotFoundError("no such image");
                                       return impl_->MoveName("image_tags", "tag", tag, id);
                                     }),
                  what);
}

absl::Status MetadataStore::UntagImage(absl::string_view tag) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Stmt st, impl_->Prepare("DELETE FROM image_tags WHERE tag = ?"));
  st.Bind(1, tag);
  RETURN_IF_ERROR(Annotate(st.Run(), absl::StrCat("untag ", tag)));
  if (impl_->db->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("no image is tagged ", tag));
  }
  return absl::OkStatus();
}

absl::Status MetadataStore::DeleteImage(const Digest& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return d.Transaction(true, [&]() -> absl::Status {
    {
      ASSIGN_OR_RETURN(Stmt st, d.Prepare("UPDATE snapshots SET users = users - 1 WHERE chain_id "
                                          "IN (SELECT chain_id FROM image_snapshots WHERE "
                                          "image_id = ?)"));
      st.Bind(1, id.ToString());
      RETURN_IF_ERROR(
          Annotate(st.Run(), absl::StrCat("releasing the snapshots of image ", id.ToString())));
    }
    // Tags, repo digests and image_snapshots rows go with it (ON DELETE CASCADE).
    ASSIGN_OR_RETURN(Stmt st, d.Prepare("DELETE FROM images WHERE id = ?"));
    st.Bind(1, id.ToString());
    RETURN_IF_ERROR(Annotate(st.Run(), absl::StrCat("delete image ", id.ToString())));
    if (d.db->Changes() == 0) {
      return absl::NotFoundError(absl::StrCat("image ", id.ToString(), " not found"));
    }
    return absl::OkStatus();
  });
}

absl::Status MetadataStore::TouchImage(const Digest& id, absl::Time when) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Stmt st, impl_->Prepare("UPDATE images SET last_used = ? WHERE id = ?"));
  st.Bind(1, absl::ToUnixNanos(when)).Bind(2, id.ToString());
  RETURN_IF_ERROR(Annotate(st.Run(), absl::StrCat("touch image ", id.ToString())));
  if (impl_->db->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("image ", id.ToString(), " not found"));
  }
  return absl::OkStatus();
}

// ---- Snapshots.

absl::Status MetadataStore::PutSnapshot(const SnapshotRecord& s) {
  std::string what = absl::StrCat("put snapshot ", s.chain_id.ToString());
  if (s.users < 0) return absl::InvalidArgumentError(absl::StrCat(what, ": negative users"));
  if (s.parent.has_value() && *s.parent == s.chain_id) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": its own parent"));
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return Annotate(
      d.Transaction(
          true,
          [&]() -> absl::Status {
            if (s.parent.has_value()) {
              ASSIGN_OR_RETURN(Stmt st, d.Prepare("SELECT 1 FROM snapshots WHERE chain_id = ?"));
              st.Bind(1, s.parent->ToString());
              ASSIGN_OR_RETURN(bool found, st.Step());
              if (!found) {
                return absl::FailedPreconditionError(
                    absl::StrCat("parent ", s.parent->ToString(), " is not recorded"));
              }
            }
            ASSIGN_OR_RETURN(Stmt st,
                             d.Prepare(absl::StrCat("INSERT INTO snapshots(", kSnapshotColumns,
                                                    ") VALUES(?, ?, ?, ?, ?) "
                                                    "ON CONFLICT(chain_id) DO NOTHING")));
            st.Bind(1, s.chain_id.ToString())
                .Bind(2, s.diff_id.ToString())
                .Bind(4, static_cast<int64_t>(s.size))
                .Bind(5, s.users);
            if (s.parent.has_value()) {
              st.Bind(3, s.parent->ToString());
            } else {
              st.BindNull(3);
            }
            return st.Run();
          }),
      what);
}

absl::StatusOr<std::optional<SnapshotRecord>> MetadataStore::GetSnapshot(const Digest& chain_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(absl::StrCat("SELECT ", kSnapshotColumns,
                                                        " FROM snapshots WHERE chain_id = ?")));
  st.Bind(1, chain_id.ToString());
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::nullopt;
  ASSIGN_OR_RETURN(SnapshotRecord s, impl_->SnapshotFromRow(st));
  return s;
}

absl::StatusOr<std::vector<SnapshotRecord>> MetadataStore::ListSnapshots() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->AllSnapshots();
}

absl::Status MetadataStore::AddSnapshotUser(const Digest& chain_id, int64_t delta) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->AddUsers(chain_id, delta);
}

absl::StatusOr<std::vector<Digest>> MetadataStore::UnusedSnapshots() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(std::vector<SnapshotRecord> all, impl_->AllSnapshots());
  std::map<std::string, const SnapshotRecord*> by_id;
  for (const SnapshotRecord& s : all) by_id[s.chain_id.ToString()] = &s;
  // Walks from `s` down to its base, calling fn on each ancestor; a chain longer than the
  // table (a cycle, or a dangling parent) is corruption.
  auto walk = [&](const SnapshotRecord& s,
                  const std::function<void(const SnapshotRecord&)>& fn) -> absl::StatusOr<size_t> {
    size_t depth = 0;
    const SnapshotRecord* cur = &s;
    while (cur->parent.has_value()) {
      auto it = by_id.find(cur->parent->ToString());
      if (it == by_id.end() || ++depth > all.size()) {
        return impl_->DataLoss(absl::StrCat("snapshot ", s.chain_id.ToString()),
                               "its parent chain is broken");
      }
      cur = it->second;
      fn(*cur);
    }
    return depth;
  };
  std::set<std::string> needed;
  for (const SnapshotRecord& s : all) {
    if (s.users <= 0) continue;
    needed.insert(s.chain_id.ToString());
    RETURN_IF_ERROR(
        walk(s, [&](const SnapshotRecord& a) { needed.insert(a.chain_id.ToString()); }).status());
  }
  std::vector<std::pair<size_t, Digest>> unused;
  for (const SnapshotRecord& s : all) {
    if (needed.count(s.chain_id.ToString()) != 0) continue;
    ASSIGN_OR_RETURN(size_t depth, walk(s, [](const SnapshotRecord&) {}));
    unused.emplace_back(depth, s.chain_id);
  }
  // Deepest first: every child comes before its parent.
  std::sort(unused.begin(), unused.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<Digest> out;
  out.reserve(unused.size());
  for (auto& [depth, id] : unused) out.push_back(std::move(id));
  return out;
}

absl::Status MetadataStore::DeleteSnapshot(const Digest& chain_id) {
  std::string what = absl::StrCat("delete snapshot ", chain_id.ToString());
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return Annotate(
      d.Transaction(
          true,
          [&]() -> absl::Status {
            {
              ASSIGN_OR_RETURN(Stmt st,
                               d.Prepare("SELECT users FROM snapshots WHERE chain_id = ?"));
              st.Bind(1, chain_id.ToString());
              ASSIGN_OR_RETURN(bool found, st.Step());
              if (!found) return absl::NotFoundError("no such snapshot");
              if (int64_t users = st.Int(0); users > 0) {
                return absl::FailedPreconditionError(absl::StrCat("it has ", users, " users"));
              }
            }
            {
              ASSIGN_OR_RETURN(Stmt st,
                               d.Prepare("SELECT chain_id FROM snapshots WHERE parent = ?"));
              st.Bind(1, chain_id.ToString());
              ASSIGN_OR_RETURN(bool child, st.Step());
              if (child) {
                return absl::FailedPreconditionError(
                    absl::StrCat("snapshot ", st.Text(0), " is on top of it"));
              }
            }
            ASSIGN_OR_RETURN(Stmt st, d.Prepare("DELETE FROM snapshots WHERE chain_id = ?"));
            st.Bind(1, chain_id.ToString());
            return st.Run();
          }),
      what);
}

}  // namespace berth::images

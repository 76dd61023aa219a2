#include "images/metadata.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::images {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Digest D(absl::string_view seed) {
  return Digest::Of(seed);
}

class MetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-metadata-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/berth.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<MetadataStore>> s = MetadataStore::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  // Records the snapshots of a chain of `layers` layers named after `name`; returns the
  // chain_ids bottom first.
  std::vector<Digest> PutChain(absl::string_view name, int layers) {
    std::vector<Digest> chain;
    for (int i = 0; i < layers; ++i) {
      SnapshotRecord s;
      s.chain_id = D(absl::StrCat(name, "/chain/", i));
      s.diff_id = D(absl::StrCat(name, "/diff/", i));
      if (i > 0) s.parent = chain.back();
      s.size = 1000 + i;
      EXPECT_TRUE(store_->PutSnapshot(s).ok());
      chain.push_back(s.chain_id);
    }
    return chain;
  }

  ImageRecord Image(absl::string_view name, const std::vector<Digest>& chain) {
    ImageRecord r;
    r.id = D(absl::StrCat(name, "/config"));
    r.repo_tags = {absl::StrCat("docker.io/library/", name, ":latest")};
    r.repo_digests = {
        absl::StrCat("docker.io/library/", name, "@", D(absl::StrCat(name, "/m")).ToString())};
    r.manifest_digest = D(absl::StrCat(name, "/m"));
    r.manifest_media_type = "application/vnd.oci.image.manifest.v1+json";
    r.size = 123456789012ull;
    for (size_t i = 0; i < chain.size(); ++i) {
      r.layer_digests.push_back(D(absl::StrCat(name, "/layer/", i)));
      r.diff_ids.push_back(D(absl::StrCat(name, "/diff/", i)));
    }
    r.chain_ids = chain;
    r.config_json = absl::StrCat(R"({"config":{"Env":["A=)", name, R"("]}})");
    r.created_at = absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(123);
    r.last_used = absl::FromUnixSeconds(1700000100);
    return r;
  }

  int64_t Users(const Digest& chain_id) {
    absl::StatusOr<std::optional<SnapshotRecord>> s = store_->GetSnapshot(chain_id);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok() || !s->has_value()) return -1;
    return (*s)->users;
  }

  // Runs SQL on the database through a separate raw connection.
  void RawSql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
    sqlite3_free(err);
    sqlite3_close(db);
  }

  std::string dir_, path_;
  std::unique_ptr<MetadataStore> store_;
};

void ExpectSame(const ImageRecord& a, const ImageRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.repo_tags, b.repo_tags);
  EXPECT_EQ(a.repo_digests, b.repo_digests);
  EXPECT_EQ(a.manifest_digest, b.manifest_digest);
  EXPECT_EQ(a.manifest_media_type, b.manifest_media_type);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.layer_digests, b.layer_digests);
  EXPECT_EQ(a.diff_ids, b.diff_ids);
  EXPECT_EQ(a.chain_ids, b.chain_ids);
  EXPECT_EQ(a.config_json, b.config_json);
  EXPECT_EQ(a.pinned, b.pinned);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.last_used, b.last_used);
}

TEST_F(MetadataTest, SchemaVersionWalAndMode) {
  absl::StatusOr<int> v = store_->SchemaVersion();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, MetadataStore::kSchemaVersion);
  EXPECT_EQ(*v, 1);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(MetadataTest, PutGetRoundTrip) {
  ImageRecord img = Image("busybox", PutChain("busybox", 3));
  img.repo_tags.push_back("docker.io/library/busybox:1.36");
  img.pinned = true;
  img.config_json += std::string("\0binary\xff", 8);  // stored as a blob, byte for byte
  ASSERT_TRUE(store_->PutImage(img).ok());
  absl::StatusOr<ImageRecord> got = store_->GetImage(img.id);
  ASSERT_TRUE(got.ok()) << got.status();
  std::sort(img.repo_tags.begin(), img.repo_tags.end());
  ExpectSame(*got, img);

  absl::StatusOr<ImageRecord> missing = store_->GetImage(D("nope"));
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(missing.status().message(), HasSubstr(D("nope").ToString()));

  // Putting it again is idempotent: one user per snapshot for the image.
  ASSERT_TRUE(store_->PutImage(img).ok());
  for (const Digest& c : img.chain_ids) EXPECT_EQ(Users(c), 1);

  absl::StatusOr<std::vector<ImageRecord>> all = store_->ListImages();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  ExpectSame(all->front(), img);

  ASSERT_TRUE(store_->TouchImage(img.id, absl::FromUnixSeconds(1800000000)).ok());
  EXPECT_EQ(store_->GetImage(img.id)->last_used, absl::FromUnixSeconds(1800000000));
  EXPECT_TRUE(absl::IsNotFound(store_->TouchImage(D("nope"), absl::Now())));
}

TEST_F(MetadataTest, PutImageChecksItsInput) {
  ImageRecord img = Image("a", PutChain("a", 2));
  img.diff_ids.pop_back();
  EXPECT_TRUE(absl::IsInvalidArgument(store_->PutImage(img)));

  // Snapshots must be recorded first; nothing of the image is left behind.
  ImageRecord b = Image("b", {D("b/chain/0")});
  absl::Status s = store_->PutImage(b);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(D("b/chain/0").ToString()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetImage(b.id).status()));
  EXPECT_FALSE(store_->FindByTag(b.repo_tags[0])->has_value());
}

TEST_F(MetadataTest, TagsMoveBetweenImages) {
  ImageRecord a = Image("a", PutChain("a", 1));
  ImageRecord b = Image("b", PutChain("b", 1));
  a.repo_tags = {"docker.io/library/app:latest", "docker.io/library/app:v1"};
  b.repo_tags = {"docker.io/library/other:1"};
  ASSERT_TRUE(store_->PutImage(a).ok());
  ASSERT_TRUE(store_->PutImage(b).ok());

  // b is pulled as app:latest: the tag moves, a keeps app:v1.
  b.repo_tags.push_back("docker.io/library/app:latest");
  ASSERT_TRUE(store_->PutImage(b).ok());
  EXPECT_THAT(store_->GetImage(a.id)->repo_tags, ElementsAre("docker.io/library/app:v1"));
  EXPECT_THAT(store_->GetImage(b.id)->repo_tags,
              ElementsAre("docker.io/library/app:latest", "docker.io/library/other:1"));
  absl::StatusOr<std::optional<ImageRecord>> found =
      store_->FindByTag("docker.io/library/app:latest");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, b.id);

  // TagImage moves one tag back.
  ASSERT_TRUE(store_->TagImage(a.id, "docker.io/library/app:latest").ok());
  EXPECT_EQ((*store_->FindByTag("docker.io/library/app:latest"))->id, a.id);
  EXPECT_TRUE(absl::IsNotFound(store_->TagImage(D("nope"), "x:y")));

  // Untagging keeps the image, even without tags.
  ASSERT_TRUE(store_->UntagImage("docker.io/library/other:1").ok());
  ASSERT_TRUE(store_->UntagImage("docker.io/library/app:latest").ok());
  ASSERT_TRUE(store_->UntagImage("docker.io/library/app:v1").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->UntagImage("docker.io/library/app:v1")));
  absl::StatusOr<ImageRecord> got = store_->GetImage(a.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(got->repo_tags, IsEmpty());
  EXPECT_EQ(got->repo_digests, a.repo_digests);
  EXPECT_FALSE(store_->FindByTag("docker.io/library/app:v1")->has_value());
  EXPECT_EQ(store_->ListImages()->size(), 2u);
}

TEST_F(MetadataTest, FindByRepoDigestAndIdPrefix) {
  ImageRecord a = Image("a", PutChain("a", 1));
  ImageRecord b = Image("b", PutChain("b", 1));
  ASSERT_TRUE(store_->PutImage(a).ok());
  ASSERT_TRUE(store_->PutImage(b).ok());

  absl::StatusOr<std::optional<ImageRecord>> found = store_->FindByRepoDigest(a.repo_digests[0]);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  ExpectSame(**found, a);
  EXPECT_FALSE(store_->FindByRepoDigest("docker.io/library/a@" + D("x").ToString())->has_value());

  for (std::string prefix :
       {a.id.hex().substr(0, 12), a.id.hex(), "sha256:" + a.id.hex().substr(0, 5)}) {
    SCOPED_TRACE(prefix);
    absl::StatusOr<std::vector<ImageRecord>> r = store_->FindByIdPrefix(prefix);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ(r->front().id, a.id);
  }
  EXPECT_THAT(*store_->FindByIdPrefix("sha512:" + a.id.hex().substr(0, 8)), IsEmpty());

  // Enough images that some share a first hex digit: a short prefix finds all of them.
  for (int i = 0; i < 40; ++i) {
    ImageRecord r = Image(absl::StrCat("img", i), {});
    ASSERT_TRUE(store_->PutImage(r).ok());
  }
  absl::StatusOr<std::vector<ImageRecord>> all = store_->ListImages();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 42u);
  for (char c : std::string("0123456789abcdef")) {
    size_t want = std::count_if(all->begin(), all->end(),
                                [&](const ImageRecord& r) { return r.id.hex()[0] == c; });
    absl::StatusOr<std::vector<ImageRecord>> r = store_->FindByIdPrefix(std::string(1, c));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->size(), want) << c;
  }
  EXPECT_EQ(store_->FindByIdPrefix(absl::AsciiStrToUpper(a.id.hex().substr(0, 12)))->size(), 1u);
  EXPECT_TRUE(absl::IsInvalidArgument(store_->FindByIdPrefix("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->FindByIdPrefix("xyz").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->FindByIdPrefix("12*").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->FindByIdPrefix("md5:12").status()));
}

TEST_F(MetadataTest, DeleteImageReleasesSnapshotUsers) {
  std::vector<Digest> chain = PutChain("base", 2);
  ImageRecord a = Image("a", chain);
  std::vector<Digest> b_chain = chain;
  SnapshotRecord top;
  top.chain_id = D("b/top");
  top.diff_id = D("b/topdiff");
  top.parent = chain.back();
  ASSERT_TRUE(store_->PutSnapshot(top).ok());
  b_chain.push_back(top.chain_id);
  ImageRecord b = Image("b", b_chain);
  ASSERT_TRUE(store_->PutImage(a).ok());
  ASSERT_TRUE(store_->PutImage(b).ok());
  EXPECT_EQ(Users(chain[0]), 2);
  EXPECT_EQ(Users(chain[1]), 2);
  EXPECT_EQ(Users(top.chain_id), 1);
  EXPECT_THAT(*store_->UnusedSnapshots(), IsEmpty());

  // A snapshot in use cannot be deleted.
  absl::Status s = store_->DeleteSnapshot(chain[0]);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(chain[0].ToString()));

  ASSERT_TRUE(store_->DeleteImage(b.id).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->DeleteImage(b.id)));
  EXPECT_TRUE(absl::IsNotFound(store_->GetImage(b.id).status()));
  EXPECT_FALSE(store_->FindByTag(b.repo_tags[0])->has_value());
  EXPECT_FALSE(store_->FindByRepoDigest(b.repo_digests[0])->has_value());
  EXPECT_EQ(Users(chain[0]), 1);
  EXPECT_EQ(Users(top.chain_id), 0);
  EXPECT_THAT(*store_->UnusedSnapshots(), ElementsAre(top.chain_id));

  // A container holding the top snapshot keeps it and everything below.
  ASSERT_TRUE(store_->AddSnapshotUser(top.chain_id, 1).ok());
  ASSERT_TRUE(store_->DeleteImage(a.id).ok());
  EXPECT_EQ(Users(chain[0]), 0);
  EXPECT_THAT(*store_->UnusedSnapshots(), IsEmpty());
  s = store_->DeleteSnapshot(chain[1]);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;  // top sits on it
  EXPECT_THAT(s.message(), HasSubstr(top.chain_id.ToString()));

  // Users never go negative.
  s = store_->AddSnapshotUser(top.chain_id, -2);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(Users(top.chain_id), 1);
  EXPECT_TRUE(absl::IsNotFound(store_->AddSnapshotUser(D("nope"), 1)));

  ASSERT_TRUE(store_->AddSnapshotUser(top.chain_id, -1).ok());
  absl::StatusOr<std::vector<Digest>> unused = store_->UnusedSnapshots();
  ASSERT_TRUE(unused.ok()) << unused.status();
  EXPECT_THAT(*unused, ElementsAre(top.chain_id, chain[1], chain[0]));  // children first
  for (const Digest& d : *unused) ASSERT_TRUE(store_->DeleteSnapshot(d).ok()) << d.ToString();
  EXPECT_THAT(*store_->ListSnapshots(), IsEmpty());
  EXPECT_TRUE(absl::IsNotFound(store_->DeleteSnapshot(chain[0])));
}

TEST_F(MetadataTest, SnapshotsAreWrittenOnce) {
  SnapshotRecord s;
  s.chain_id = D("c");
  s.diff_id = D("d");
  s.size = 42;
  ASSERT_TRUE(store_->PutSnapshot(s).ok());
  SnapshotRecord changed = s;
  changed.size = 99;
  changed.diff_id = D("other");
  ASSERT_TRUE(store_->PutSnapshot(changed).ok());
  absl::StatusOr<std::optional<SnapshotRecord>> got = store_->GetSnapshot(s.chain_id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->size, 42u);
  EXPECT_EQ((*got)->diff_id, s.diff_id);
  EXPECT_FALSE((*got)->parent.has_value());
  EXPECT_FALSE(store_->GetSnapshot(D("none"))->has_value());

  SnapshotRecord orphan;
  orphan.chain_id = D("orphan");
  orphan.diff_id = D("x");
  orphan.parent = D("missing");
  absl::Status st = store_->PutSnapshot(orphan);
  EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
  EXPECT_THAT(st.message(), HasSubstr(D("missing").ToString()));
}

TEST_F(MetadataTest, ReopenKeepsEverything) {
  ImageRecord a = Image("a", PutChain("a", 3));
  ASSERT_TRUE(store_->PutImage(a).ok());
  ASSERT_TRUE(store_->AddSnapshotUser(a.chain_ids.back(), 2).ok());
  Reopen();
  absl::StatusOr<ImageRecord> got = store_->GetImage(a.id);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSame(*got, a);
  EXPECT_EQ(Users(a.chain_ids.back()), 3);
  EXPECT_EQ(store_->ListSnapshots()->size(), 3u);
  EXPECT_EQ(*store_->SchemaVersion(), 1);
}

TEST_F(MetadataTest, ConcurrentPuts) {
  std::vector<Digest> shared = PutChain("shared", 2);
  constexpr int kThreads = 4, kEach = 25;
  std::vector<std::thread> threads;
  std::vector<absl::Status> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ImageRecord r = Image(absl::StrCat("t", t, "-", i), shared);
        r.repo_tags.push_back("docker.io/library/contended:latest");  // everyone moves it
        absl::Status s = store_->PutImage(r);
        if (s.ok()) s = store_->GetImage(r.id).status();
        if (!s.ok() && errors[t].ok()) errors[t] = s;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : errors) EXPECT_TRUE(s.ok()) << s;
  absl::StatusOr<std::vector<ImageRecord>> all = store_->ListImages();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), size_t{kThreads * kEach});
  EXPECT_EQ(Users(shared[0]), kThreads * kEach);
  int holders = 0;
  for (const ImageRecord& r : *all) {
    holders +=
        std::count(r.repo_tags.begin(), r.repo_tags.end(), "docker.io/library/contended:latest");
  }
  EXPECT_EQ(holders, 1);
}

TEST_F(MetadataTest, CrashBeforeCommitLeavesNothingHalfWritten) {
  std::vector<Digest> chain = PutChain("a", 2);
  store_.reset();  // SQLite connections must not cross fork()

  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    absl::StatusOr<std::unique_ptr<MetadataStore>> s = MetadataStore::Open(path_);
    if (!s.ok()) ::_exit(2);
    // The crash comes after every row was written, with the write lock held; an 8 MiB config
    // makes SQLite spill uncommitted pages into the WAL.
    (*s)->SetBeforeCommitHookForTesting([] { ::_exit(42); });
    ImageRecord img = Image("a", chain);
    img.config_json = std::string(8 << 20, 'x');
    (void)(*s)->PutImage(img);
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42);
  struct stat wal;
  ASSERT_EQ(::stat((path_ + "-wal").c_str(), &wal), 0);
  EXPECT_GT(wal.st_size, 4 << 20) << "the uncommitted rows should have reached the WAL";

  Reopen();
  ImageRecord img = Image("a", chain);
  EXPECT_TRUE(absl::IsNotFound(store_->GetImage(img.id).status()));
  EXPECT_THAT(*store_->ListImages(), IsEmpty());
  EXPECT_FALSE(store_->FindByTag(img.repo_tags[0])->has_value());
  EXPECT_EQ(Users(chain[0]), 0);
  EXPECT_EQ(Users(chain[1]), 0);
  // And the database takes writes again (the dead writer's lock is gone).
  ASSERT_TRUE(store_->PutImage(img).ok());
  EXPECT_EQ(Users(chain[1]), 1);
}

TEST_F(MetadataTest, CorruptedDigestIsDataLoss) {
  ImageRecord a = Image("a", PutChain("a", 2));
  ASSERT_TRUE(store_->PutImage(a).ok());
  RawSql(absl::StrCat("UPDATE images SET layers = '[\"sha256:XYZ\"]' WHERE id = '", a.id.ToString(),
                      "'"));
  absl::StatusOr<ImageRecord> got = store_->GetImage(a.id);
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("layers"));
  EXPECT_TRUE(absl::IsDataLoss(store_->ListImages().status()));
  EXPECT_TRUE(absl::IsDataLoss(store_->FindByTag(a.repo_tags[0]).status()));

  RawSql(
      absl::StrCat("UPDATE images SET diff_ids = 'not json' WHERE id = '", a.id.ToString(), "'"));
  EXPECT_TRUE(absl::IsDataLoss(store_->GetImage(a.id).status()));

  RawSql(absl::StrCat("UPDATE snapshots SET diff_id = 'sha256:short' WHERE chain_id = '",
                      a.chain_ids[0].ToString(), "'"));
  absl::StatusOr<std::optional<SnapshotRecord>> s = store_->GetSnapshot(a.chain_ids[0]);
  EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
  EXPECT_TRUE(absl::IsDataLoss(store_->ListSnapshots().status()));
}

TEST(MetadataOpenTest, RefusesWhatItCannotRead) {
  char tmpl[] = "/tmp/berth-metadata-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;

  std::string junk = dir + "/junk.db";
  std::ofstream(junk) << std::string(8192, 'j');
  absl::StatusOr<std::unique_ptr<MetadataStore>> s = MetadataStore::Open(junk);
  EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr(junk));

  std::string newer = dir + "/newer.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(newer.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 7", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  s = MetadataStore::Open(newer);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("7"));

  s = MetadataStore::Open(dir + "/no/such/dir/berth.db");
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();

  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace berth::images

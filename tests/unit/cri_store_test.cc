#include "cri/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::cri {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A 64-hex id: `head` then zero padding.
std::string Id(absl::string_view head) {
  std::string id(head);
  id.resize(64, '0');
  return id;
}

PodRow Pod(absl::string_view head, int64_t created_ns, absl::string_view name = "") {
  PodRow p;
  p.id = Id(head);
  p.name = name.empty() ? absl::StrCat("pod-", head) : std::string(name);
  p.namespace_ = "default";
  p.uid = absl::StrCat("uid-", head);
  p.attempt = 0;
  p.state = 1;
  p.created_ns = created_ns;
  p.data = absl::StrCat(R"({"pod":")", head, R"(","labels":{"a":"b"}})");
  return p;
}

ContainerRow Container(absl::string_view head, const std::string& pod_id, int64_t created_ns) {
  ContainerRow c;
  c.id = Id(head);
  c.pod_id = pod_id;
  c.name = absl::StrCat("ctr-", head);
  c.attempt = 0;
  c.state = 2;
  c.created_ns = created_ns;
  c.data = absl::StrCat(R"({"container":")", head, R"("})");
  return c;
}

std::vector<std::string> PodIds(const std::vector<PodRow>& rows) {
  std::vector<std::string> ids;
  for (const PodRow& r : rows) ids.push_back(r.id);
  return ids;
}

std::vector<std::string> ContainerIds(const std::vector<ContainerRow>& rows) {
  std::vector<std::string> ids;
  for (const ContainerRow& r : rows) ids.push_back(r.id);
  return ids;
}

void ExpectSame(const PodRow& a, const PodRow& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.namespace_, b.namespace_);
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.created_ns, b.created_ns);
  EXPECT_EQ(a.data, b.data);
}

void ExpectSame(const ContainerRow& a, const ContainerRow& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.pod_id, b.pod_id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.created_ns, b.created_ns);
  EXPECT_EQ(a.data, b.data);
}

// Runs one statement on the file through a separate connection (hand edits).
void Sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err != nullptr ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

class CriStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-cri-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/cri.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<CriStore>> s = CriStore::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  std::string dir_, path_;
  std::unique_ptr<CriStore> store_;
};

TEST_F(CriStoreTest, SchemaVersionWalAndMode) {
  absl::StatusOr<int> v = store_->SchemaVersion();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, CriStore::kSchemaVersion);
  EXPECT_EQ(store_->path(), path_);
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

TEST_F(CriStoreTest, PodPutGetListDelete) {
  PodRow a = Pod("a1", 100);
  a.attempt = 4000000000u;  // above INT32_MAX: stored and read back as uint32
  a.state = -3;
  a.data += std::string("\n\t\"\\u00e9\" é");
  ASSERT_TRUE(store_->PutPod(a).ok());

  absl::StatusOr<std::optional<PodRow>> got = store_->GetPod(a.id);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  ExpectSame(**got, a);

  absl::StatusOr<std::optional<PodRow>> missing = store_->GetPod(Id("ff"));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());

  absl::StatusOr<std::vector<PodRow>> list = store_->ListPods();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  ExpectSame(list->front(), a);

  ASSERT_TRUE(store_->DeletePod(a.id).ok());
  got = store_->GetPod(a.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->has_value());
  // Idempotent.
  absl::Status again = store_->DeletePod(a.id);
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_THAT(*store_->ListPods(), IsEmpty());

  PodRow empty = Pod("b", 1);
  empty.id.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(store_->PutPod(empty)));
}

TEST_F(CriStoreTest, PodReplaceKeepsContainers) {
  PodRow a = Pod("a1", 100);
  ASSERT_TRUE(store_->PutPod(a).ok());
  ContainerRow c = Container("c1", a.id, 200);
  ASSERT_TRUE(store_->PutContainer(c).ok());

  a.state = 2;
  a.data = R"({"state":"ready"})";
  a.created_ns = 150;
  absl::Status s = store_->PutPod(a);
  ASSERT_TRUE(s.ok()) << s;
  absl::StatusOr<std::optional<PodRow>> got = store_->GetPod(a.id);
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSame(**got, a);
  EXPECT_EQ(store_->ListPods()->size(), 1u);
  // Replacing is an update in place, not delete + insert: the container is still there.
  EXPECT_THAT(ContainerIds(*store_->ListPodContainers(a.id)), ElementsAre(c.id));
}

TEST_F(CriStoreTest, PodMetadataIsUnique) {
  PodRow a = Pod("a1", 100, "web");
  ASSERT_TRUE(store_->PutPod(a).ok());
  PodRow b = Pod("b2", 200, "web");
  b.uid = a.uid;
  absl::Status s = store_->PutPod(b);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(a.id));
  // Another attempt (or namespace, or uid) is another pod.
  b.attempt = 1;
  s = store_->PutPod(b);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(PodIds(*store_->ListPods()), ElementsAre(a.id, b.id));
}

TEST_F(CriStoreTest, ContainerPutGetListDelete) {
  PodRow p = Pod("a1", 100);
  ASSERT_TRUE(store_->PutPod(p).ok());
  ContainerRow c = Container("c1", p.id, 300);
  c.attempt = 7;
  ASSERT_TRUE(store_->PutContainer(c).ok());

  absl::StatusOr<std::optional<ContainerRow>> got = store_->GetContainer(c.id);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  ExpectSame(**got, c);

  // Replace.
  c.state = 3;
  c.data = R"({"exit_code":137})";
  ASSERT_TRUE(store_->PutContainer(c).ok());
  got = store_->GetContainer(c.id);
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSame(**got, c);
  EXPECT_EQ(store_->ListContainers()->size(), 1u);

  // Same (pod, name, attempt) under another id.
  ContainerRow dup = Container("c2", p.id, 400);
  dup.name = c.name;
  dup.attempt = c.attempt;
  absl::Status s = store_->PutContainer(dup);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(c.id));

  ASSERT_TRUE(store_->DeleteContainer(c.id).ok());
  got = store_->GetContainer(c.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->has_value());
  s = store_->DeleteContainer(c.id);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(*store_->ListContainers(), IsEmpty());
}

TEST_F(CriStoreTest, Ordering) {
  // Put out of order; equal created_ns breaks ties by id.
  ASSERT_TRUE(store_->PutPod(Pod("c3", 20)).ok());
  ASSERT_TRUE(store_->PutPod(Pod("b2", 10)).ok());
  ASSERT_TRUE(store_->PutPod(Pod("a1", 20)).ok());
  ASSERT_TRUE(store_->PutPod(Pod("d4", -5)).ok());
  EXPECT_THAT(PodIds(*store_->ListPods()), ElementsAre(Id("d4"), Id("b2"), Id("a1"), Id("c3")));

  ASSERT_TRUE(store_->PutContainer(Container("f6", Id("a1"), 50)).ok());
  ASSERT_TRUE(store_->PutContainer(Container("e5", Id("b2"), 50)).ok());
  ASSERT_TRUE(store_->PutContainer(Container("99", Id("a1"), 40)).ok());
  ASSERT_TRUE(store_->PutContainer(Container("11", Id("a1"), 60)).ok());
  EXPECT_THAT(ContainerIds(*store_->ListContainers()),
              ElementsAre(Id("99"), Id("e5"), Id("f6"), Id("11")));
  EXPECT_THAT(ContainerIds(*store_->ListPodContainers(Id("a1"))),
              ElementsAre(Id("99"), Id("f6"), Id("11")));
  EXPECT_THAT(ContainerIds(*store_->ListPodContainers(Id("b2"))), ElementsAre(Id("e5")));
  EXPECT_THAT(*store_->ListPodContainers(Id("c3")), IsEmpty());
  EXPECT_THAT(*store_->ListPodContainers(Id("77")), IsEmpty());
}

TEST_F(CriStoreTest, DeletePodRefusedWhileContainersExist) {
  PodRow p = Pod("a1", 100);
  ASSERT_TRUE(store_->PutPod(p).ok());
  ContainerRow c1 = Container("c1", p.id, 200);
  ContainerRow c2 = Container("c2", p.id, 300);
  ASSERT_TRUE(store_->PutContainer(c1).ok());
  ASSERT_TRUE(store_->PutContainer(c2).ok());

  absl::Status s = store_->DeletePod(p.id);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(p.id));
  EXPECT_THAT(s.message(), HasSubstr(c1.id));
  EXPECT_TRUE(store_->GetPod(p.id)->has_value());

  ASSERT_TRUE(store_->DeleteContainer(c1.id).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->DeletePod(p.id)));
  ASSERT_TRUE(store_->DeleteContainer(c2.id).ok());
  s = store_->DeletePod(p.id);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_FALSE(store_->GetPod(p.id)->has_value());
}

TEST_F(CriStoreTest, PutContainerNeedsThePod) {
  ContainerRow c = Container("c1", Id("a1"), 200);
  absl::Status s = store_->PutContainer(c);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(Id("a1")));
  EXPECT_FALSE(store_->GetContainer(c.id)->has_value());

  ASSERT_TRUE(store_->PutPod(Pod("a1", 100)).ok());
  s = store_->PutContainer(c);
  EXPECT_TRUE(s.ok()) << s;

  // Moving it to a pod that is not recorded is refused too, and changes nothing.
  ContainerRow moved = c;
  moved.pod_id = Id("b2");
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->PutContainer(moved)));
  EXPECT_EQ((*store_->GetContainer(c.id))->pod_id, Id("a1"));
}

TEST_F(CriStoreTest, PrefixLookupIsLiteral) {
  ASSERT_TRUE(store_->PutPod(Pod("abc1", 1)).ok());
  ASSERT_TRUE(store_->PutPod(Pod("abc2", 2)).ok());
  ASSERT_TRUE(store_->PutPod(Pod("abd", 3)).ok());
  ASSERT_TRUE(store_->PutContainer(Container("abc9", Id("abc1"), 4)).ok());
  ASSERT_TRUE(store_->PutContainer(Container("ff", Id("abc1"), 5)).ok());

  EXPECT_THAT(*store_->FindPodIds("abc"), ElementsAre(Id("abc1"), Id("abc2")));
  EXPECT_THAT(*store_->FindPodIds("ab"), ElementsAre(Id("abc1"), Id("abc2"), Id("abd")));
  EXPECT_THAT(*store_->FindPodIds(Id("abd")), ElementsAre(Id("abd")));
  EXPECT_THAT(*store_->FindPodIds(Id("abd") + "0"), IsEmpty());
  EXPECT_THAT(*store_->FindPodIds("abe"), IsEmpty());
  EXPECT_THAT(*store_->FindPodIds("ABC"), IsEmpty());  // case-sensitive
  EXPECT_THAT(*store_->FindPodIds(""), ::testing::SizeIs(3));
  EXPECT_THAT(*store_->FindContainerIds("abc"), ElementsAre(Id("abc9")));
  EXPECT_THAT(*store_->FindContainerIds("f"), ElementsAre(Id("ff")));
  EXPECT_THAT(*store_->FindContainerIds("abd"), IsEmpty());  // pods are not containers

  // LIKE or GLOB wildcards in the prefix are plain characters, which no id has.
  for (absl::string_view p :
       {"%", "_", "a%", "ab_", "a_c", "%c", "*", "ab*", "[a]", "?", "\xff", "a\xff"}) {
    absl::StatusOr<std::vector<std::string>> pods = store_->FindPodIds(p);
    ASSERT_TRUE(pods.ok()) << pods.status();
    EXPECT_THAT(*pods, IsEmpty()) << p;
    absl::StatusOr<std::vector<std::string>> ctrs = store_->FindContainerIds(p);
    ASSERT_TRUE(ctrs.ok()) << ctrs.status();
    EXPECT_THAT(*ctrs, IsEmpty()) << p;
  }

  // Ids holding those characters are found by them, and only by them.
  PodRow odd = Pod("x", 6);
  odd.id = "a%_b\xff";
  ASSERT_TRUE(store_->PutPod(odd).ok());
  EXPECT_THAT(*store_->FindPodIds("a%"), ElementsAre(odd.id));
  EXPECT_THAT(*store_->FindPodIds("a%_b\xff"), ElementsAre(odd.id));
  EXPECT_THAT(*store_->FindPodIds("a%_c"), IsEmpty());
  EXPECT_THAT(*store_->FindPodIds("a_"), IsEmpty());
}

TEST_F(CriStoreTest, Persistence) {
  PodRow p = Pod("a1", 100);
  ContainerRow c = Container("c1", p.id, 200);
  ASSERT_TRUE(store_->PutPod(p).ok());
  ASSERT_TRUE(store_->PutContainer(c).ok());
  ASSERT_TRUE(store_->PutPod(Pod("b2", 50)).ok());
  ASSERT_TRUE(store_->DeletePod(Id("b2")).ok());

  Reopen();
  absl::StatusOr<std::optional<PodRow>> gp = store_->GetPod(p.id);
  ASSERT_TRUE(gp.ok() && gp->has_value()) << gp.status();
  ExpectSame(**gp, p);
  absl::StatusOr<std::optional<ContainerRow>> gc = store_->GetContainer(c.id);
  ASSERT_TRUE(gc.ok() && gc->has_value()) << gc.status();
  ExpectSame(**gc, c);
  EXPECT_THAT(PodIds(*store_->ListPods()), ElementsAre(p.id));
  EXPECT_EQ(*store_->SchemaVersion(), CriStore::kSchemaVersion);
  // The foreign key still holds after reopening (PRAGMA foreign_keys is per connection).
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->DeletePod(p.id)));
}

TEST_F(CriStoreTest, ConcurrentPuts) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::vector<absl::Status> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string head = absl::StrCat(t, "a", i, "b");
        PodRow p = Pod(head, t * 1000 + i);
        absl::Status s = store_->PutPod(p);
        if (s.ok()) s = store_->PutContainer(Container(absl::StrCat(head, "c"), p.id, i));
        if (s.ok()) s = store_->GetPod(p.id).status();
        if (s.ok()) s = store_->FindPodIds(absl::StrCat(t, "a")).status();
        if (!s.ok() && errors[t].ok()) errors[t] = s;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (const absl::Status& e : errors) EXPECT_TRUE(e.ok()) << e;
  EXPECT_EQ(store_->ListPods()->size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(store_->ListContainers()->size(), size_t{kThreads * kPerThread});
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(store_->FindPodIds(absl::StrCat(t, "a"))->size(), size_t{kPerThread});
  }
}

TEST_F(CriStoreTest, UndecodableRowIsDataLoss) {
  PodRow p = Pod("a1", 100);
  ASSERT_TRUE(store_->PutPod(p).ok());
  ASSERT_TRUE(store_->PutContainer(Container("c1", p.id, 200)).ok());
  store_.reset();
  Sql(path_,
      "PRAGMA ignore_check_constraints = ON; UPDATE pods SET attempt = -1; "
      "UPDATE containers SET state = 9999999999");
  Reopen();
  absl::StatusOr<std::optional<PodRow>> gp = store_->GetPod(p.id);
  EXPECT_TRUE(absl::IsDataLoss(gp.status())) << gp.status();
  EXPECT_THAT(gp.status().message(), HasSubstr(p.id));
  EXPECT_THAT(gp.status().message(), HasSubstr(path_));
  EXPECT_TRUE(absl::IsDataLoss(store_->ListPods().status()));
  absl::StatusOr<std::vector<ContainerRow>> lc = store_->ListContainers();
  EXPECT_TRUE(absl::IsDataLoss(lc.status())) << lc.status();
  EXPECT_THAT(lc.status().message(), HasSubstr(Id("c1")));
  // Ids alone still come back, so the caller can find and remove the bad records.
  EXPECT_THAT(*store_->FindPodIds(""), ElementsAre(p.id));
}

TEST(CriStoreOpenTest, RefusesWhatItCannotRead) {
  char tmpl[] = "/tmp/berth-cri-store-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;

  std::string newer = dir + "/newer.db";
  Sql(newer, "PRAGMA user_version = 99");
  absl::StatusOr<std::unique_ptr<CriStore>> s = CriStore::Open(newer);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("99"));
  EXPECT_THAT(s.status().message(), HasSubstr(newer));

  std::string junk = dir + "/junk.db";
  std::ofstream(junk) << std::string(8192, 'j');
  s = CriStore::Open(junk);
  EXPECT_TRUE(absl::IsDataLoss(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr(junk));

  s = CriStore::Open(dir + "/no/such/dir/cri.db");
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();

  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace berth::cri

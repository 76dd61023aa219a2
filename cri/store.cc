#include "cri/store.h"

#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/sqlite.h"
#include "base/status.h"

namespace berth::cri {

namespace {

// Schema migrations: kMigrations[v] takes a database from version v to v + 1.
constexpr const char* kMigrations[] = {
    // 0 -> 1: pods and their containers.
    R"sql(
CREATE TABLE pods (
  id         TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
  name       TEXT NOT NULL,
  namespace  TEXT NOT NULL,
  uid        TEXT NOT NULL,
  attempt    INTEGER NOT NULL CHECK (attempt BETWEEN 0 AND 4294967295),
  state      INTEGER NOT NULL,
  created_ns INTEGER NOT NULL,  -- Unix nanoseconds
  data       TEXT NOT NULL      -- the caller's JSON
) STRICT;
CREATE UNIQUE INDEX pods_by_metadata ON pods(namespace, name, uid, attempt);
CREATE TABLE containers (
  id         TEXT PRIMARY KEY NOT NULL CHECK (id <> ''),
  pod_id     TEXT NOT NULL REFERENCES pods(id),
  name       TEXT NOT NULL,
  attempt    INTEGER NOT NULL CHECK (attempt BETWEEN 0 AND 4294967295),
  state      INTEGER NOT NULL,
  created_ns INTEGER NOT NULL,
  data       TEXT NOT NULL
) STRICT;
-- Also the index the foreign key and ListPodContainers look pod_id up in.
CREATE UNIQUE INDEX containers_by_metadata ON containers(pod_id, name, attempt);
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == CriStore::kSchemaVersion);

constexpr char kPodColumns[] = "id, name, namespace, uid, attempt, state, created_ns, data";
constexpr char kContainerColumns[] = "id, pod_id, name, attempt, state, created_ns, data";

using sqlite::Stmt;

// The smallest string greater than every string starting with `prefix` (byte order, as
// SQLite's BINARY collation compares), or nullopt when there is none (empty or all 0xff).
std::optional<std::string> PrefixUpperBound(absl::string_view prefix) {
  std::string upper(prefix);
  while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff) upper.pop_back();
  if (upper.empty()) return std::nullopt;
  upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
  return upper;
}

}  // namespace

struct CriStore::Impl {
  std::unique_ptr<sqlite::Db> db;
  std::mutex mu;

  absl::Status DataLoss(absl::string_view what, absl::string_view detail) const {
    return absl::DataLossError(db->Message(absl::StrCat(what, " is corrupted: ", detail)));
  }

  absl::StatusOr<Stmt> Prepare(absl::string_view sql) { return db->Prepare(sql); }

  // Runs `fn` in one transaction (sqlite::InTransaction). Caller holds mu.
  absl::Status Transaction(bool write, const std::function<absl::Status()>& fn) {
    return sqlite::InTransaction(*db, write, fn);
  }

  // Checks the columns every row has; `row` names it in the error.
  absl::Status CheckCommon(absl::string_view row, absl::string_view id, int64_t attempt,
                           int64_t state) const {
    if (id.empty()) return DataLoss(row, "empty id");
    if (attempt < 0 || attempt > int64_t{UINT32_MAX}) {
      return DataLoss(row, absl::StrCat("attempt ", attempt, " is out of range"));
    }
    if (state < INT_MIN || state > INT_MAX) {
      return DataLoss(row, absl::StrCat("state ", state, " is out of range"));
    }
    return absl::OkStatus();
  }

  // The columns of kPodColumns at the statement's current row.
  absl::StatusOr<PodRow> PodFromRow(const Stmt& st) const {
    PodRow p;
    p.id = st.Text(0);
    std::string row = absl::StrCat("pod row \"", p.id.substr(0, 80), "\"");
    RETURN_IF_ERROR(CheckCommon(row, p.id, st.Int(4), st.Int(5)));
    p.name = st.Text(1);
    p.namespace_ = st.Text(2);
    p.uid = st.Text(3);
    p.attempt = static_cast<uint32_t>(st.Int(4));
    p.state = static_cast<int>(st.Int(5));
    p.created_ns = st.Int(6);
    p.data = st.Text(7);
    return p;
  }

  // The columns of kContainerColumns at the statement's current row.
  absl::StatusOr<ContainerRow> ContainerFromRow(const Stmt& st) const {
    ContainerRow c;
    c.id = st.Text(0);
    std::string row = absl::StrCat("container row \"", c.id.substr(0, 80), "\"");
    RETURN_IF_ERROR(CheckCommon(row, c.id, st.Int(3), st.Int(4)));
    c.pod_id = st.Text(1);
    if (c.pod_id.empty()) return DataLoss(row, "empty pod_id");
    c.name = st.Text(2);
    c.attempt = static_cast<uint32_t>(st.Int(3));
    c.state = static_cast<int>(st.Int(4));
    c.created_ns = st.Int(5);
    c.data = st.Text(6);
    return c;
  }

  // Every row of `sql` (bound by `bind`), decoded by `decode`.
  template <typename Row>
  absl::StatusOr<std::vector<Row>> Rows(absl::string_view sql,
                                        const std::function<void(Stmt&)>& bind,
                                        absl::StatusOr<Row> (Impl::*decode)(const Stmt&) const) {
    ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
    bind(st);
    std::vector<Row> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return out;
      ASSIGN_OR_RETURN(Row r, (this->*decode)(st));
      out.push_back(std::move(r));
    }
  }

  // The first column of the first row of `sql` (bound by `bind`); nullopt when there is none.
  absl::StatusOr<std::optional<std::string>> FirstText(absl::string_view sql,
                                                       const std::function<void(Stmt&)>& bind) {
    ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
    bind(st);
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return std::nullopt;
    return st.Text(0);
  }

  // Ids of `table` starting with `prefix`, byte for byte, as a range on the primary key.
  absl::StatusOr<std::vector<std::string>> IdsWithPrefix(absl::string_view table,
                                                         absl::string_view prefix) {
    std::optional<std::string> upper = PrefixUpperBound(prefix);
    ASSIGN_OR_RETURN(Stmt st, Prepare(absl::StrCat("SELECT id FROM ", table, " WHERE id >= ?",
                                                   upper ? " AND id < ?" : "", " ORDER BY id")));
    st.Bind(1, prefix);
    if (upper) st.Bind(2, *upper);
    std::vector<std::string> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, st.Step());
      if (!row) return out;
      out.push_back(st.Text(0));
    }
  }
};

CriStore::CriStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CriStore::~CriStore() = default;

const std::string& CriStore::path() const {
  return impl_->db->path();
}

absl::StatusOr<std::unique_ptr<CriStore>> CriStore::Open(const std::string& path) {
  // The file is created 0600 (and so are the -wal/-shm files SQLite derives from it): pod and
  // container configs carry environment variables, which may hold secrets.
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->db, sqlite::Db::Open(path, "cri store"));
  RETURN_IF_ERROR(impl->db->Migrate(kMigrations));
  return std::unique_ptr<CriStore>(new CriStore(std::move(impl)));
}

absl::StatusOr<int> CriStore::SchemaVersion() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->db->UserVersion();
}

// ---- Pods.

absl::Status CriStore::PutPod(const PodRow& pod) {
  std::string what = absl::StrCat("put pod ", pod.id);
  if (pod.id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty id"));
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return Annotate(
      d.Transaction(
          true,
          [&]() -> absl::Status {
            ASSIGN_OR_RETURN(std::optional<std::string> holder,
                             d.FirstText("SELECT id FROM pods WHERE namespace = ? AND name = ? "
                                         "AND uid = ? AND attempt = ? AND id <> ?",
                                         [&](Stmt& st) {
                                           st.Bind(1, pod.namespace_)
                                               .Bind(2, pod.name)
                                               .Bind(3, pod.uid)
                                               .Bind(4, int64_t{pod.attempt})
                                               .Bind(5, pod.id);
                                         }));
            if (holder.has_value()) {
              return absl::AlreadyExistsError(absl::StrCat(
                  "pod ", pod.namespace_, "/", pod.name, " (uid ", pod.uid, ", attempt ",
                  pod.attempt, ") is already recorded as pod ", *holder));
            }
            ASSIGN_OR_RETURN(
                Stmt st,
                d.Prepare(absl::StrCat(
                    "INSERT INTO pods(", kPodColumns,
                    ") VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "name = excluded.name, namespace = excluded.namespace, uid = excluded.uid, "
                    "attempt = excluded.attempt, state = excluded.state, "
                    "created_ns = excluded.created_ns, data = excluded.data")));
            st.Bind(1, pod.id)
                .Bind(2, pod.name)
                .Bind(3, pod.namespace_)
                .Bind(4, pod.uid)
                .Bind(5, int64_t{pod.attempt})
                .Bind(6, int64_t{pod.state})
                .Bind(7, pod.created_ns)
                .Bind(8, pod.data);
            return st.Run();
          }),
      what);
}

absl::StatusOr<std::optional<PodRow>> CriStore::GetPod(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(std::vector<PodRow> found,
                   impl_->Rows<PodRow>(
                       absl::StrCat("SELECT ", kPodColumns, " FROM pods WHERE id = ?"),
                       [&](Stmt& st) { st.Bind(1, id); }, &Impl::PodFromRow));
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

absl::StatusOr<std::vector<PodRow>> CriStore::ListPods() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Rows<PodRow>(
      absl::StrCat("SELECT ", kPodColumns, " FROM pods ORDER BY created_ns, id"), [](Stmt&) {},
      &Impl::PodFromRow);
}

absl::Status CriStore::DeletePod(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return Annotate(
      d.Transaction(true,
                    [&]() -> absl::Status {
                      {
                        ASSIGN_OR_RETURN(Stmt st,
                                         d.Prepare("SELECT count(*), min(id) FROM containers "
                                                   "WHERE pod_id = ?"));
                        st.Bind(1, id);
                        ASSIGN_OR_RETURN(bool row, st.Step());
                        if (row && st.Int(0) > 0) {
                          return absl::FailedPreconditionError(
                              absl::StrCat(st.Int(0), " container(s) still reference it (",
                                           st.Text(1), st.Int(0) > 1 ? ", ..." : "", ")"));
                        }
                      }
                      // The foreign key refuses it too, should a container slip past the check
                      // above.
                      ASSIGN_OR_RETURN(Stmt st, d.Prepare("DELETE FROM pods WHERE id = ?"));
                      st.Bind(1, id);
                      return st.Run();
                    }),
      absl::StrCat("delete pod ", id));
}

// ---- Containers.

absl::Status CriStore::PutContainer(const ContainerRow& c) {
  std::string what = absl::StrCat("put container ", c.id);
  if (c.id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": empty id"));
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return Annotate(
      d.Transaction(true,
                    [&]() -> absl::Status {
                      ASSIGN_OR_RETURN(std::optional<std::string> pod,
                                       d.FirstText("SELECT id FROM pods WHERE id = ?",
                                                   [&](Stmt& st) { st.Bind(1, c.pod_id); }));
                      if (!pod.has_value()) {
                        return absl::FailedPreconditionError(
                            absl::StrCat("pod ", c.pod_id, " is not recorded"));
                      }
                      ASSIGN_OR_RETURN(std::optional<std::string> holder,
                                       d.FirstText("SELECT id FROM containers WHERE pod_id = ? AND "
                                                   "name = ? AND attempt = ? AND id <> ?",
                                                   [&](Stmt& st) {
                                                     st.Bind(1, c.pod_id)
                                                         .Bind(2, c.name)
                                                         .Bind(3, int64_t{c.attempt})
                                                         .Bind(4, c.id);
                                                   }));
                      if (holder.has_value()) {
                        return absl::AlreadyExistsError(
                            absl::StrCat("container ", c.name, " (attempt ", c.attempt, ") of pod ",
                                         c.pod_id, " is already recorded as container ", *holder));
                      }
                      ASSIGN_OR_RETURN(
                          Stmt st,
                          d.Prepare(absl::StrCat(
                              "INSERT INTO containers(", kContainerColumns,
                              ") VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                              "pod_id = excluded.pod_id, name = excluded.name, "
                              "attempt = excluded.attempt, state = excluded.state, "
                              "created_ns = excluded.created_ns, data = excluded.data")));
                      st.Bind(1, c.id)
                          .Bind(2, c.pod_id)
                          .Bind(3, c.name)
                          .Bind(4, int64_t{c.attempt})
                          .Bind(5, int64_t{c.state})
                          .Bind(6, c.created_ns)
                          .Bind(7, c.data);
                      return st.Run();
                    }),
      what);
}

absl::StatusOr<std::optional<ContainerRow>> CriStore::GetContainer(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(std::vector<ContainerRow> found,
                   impl_->Rows<ContainerRow>(
                       absl::StrCat("SELECT ", kContainerColumns, " FROM containers WHERE id = ?"),
                       [&](Stmt& st) { st.Bind(1, id); }, &Impl::ContainerFromRow));
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

absl::StatusOr<std::vector<ContainerRow>> CriStore::ListContainers() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Rows<ContainerRow>(
      absl::StrCat("SELECT ", kContainerColumns, " FROM containers ORDER BY created_ns, id"),
      [](Stmt&) {}, &Impl::ContainerFromRow);
}

absl::StatusOr<std::vector<ContainerRow>> CriStore::ListPodContainers(const std::string& pod_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Rows<ContainerRow>(
      absl::StrCat("SELECT ", kContainerColumns,
                   " FROM containers WHERE pod_id = ? ORDER BY created_ns, id"),
      [&](Stmt& st) { st.Bind(1, pod_id); }, &Impl::ContainerFromRow);
}

absl::Status CriStore::DeleteContainer(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(Stmt st, impl_->Prepare("DELETE FROM containers WHERE id = ?"));
  st.Bind(1, id);
  return Annotate(st.Run(), absl::StrCat("delete container ", id));
}

// ---- Truncated-id lookups.

absl::StatusOr<std::vector<std::string>> CriStore::FindPodIds(absl::string_view prefix) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->IdsWithPrefix("pods", prefix);
}

absl::StatusOr<std::vector<std::string>> CriStore::FindContainerIds(absl::string_view prefix) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->IdsWithPrefix("containers", prefix);
}

}  // namespace berth::cri

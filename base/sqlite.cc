#include "base/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth::sqlite {

namespace {

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return absl::StatusCode::kUnavailable;
    case SQLITE_CONSTRAINT: return absl::StatusCode::kFailedPrecondition;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM: return absl::StatusCode::kResourceExhausted;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH: return absl::StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN: return absl::StatusCode::kNotFound;
    default: return absl::StatusCode::kInternal;
  }
}

}  // namespace

// ---- Stmt.

Stmt::Stmt(Stmt&& o) noexcept
    : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)), bind_rc_(o.bind_rc_) {}

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void Stmt::Check(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

Stmt& Stmt::Bind(int i, absl::string_view text) {
  Check(sqlite3_bind_text64(stmt_, i, text.empty() ? "" : text.data(), text.size(),
                            SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}

Stmt& Stmt::Bind(int i, int64_t v) {
  Check(sqlite3_bind_int64(stmt_, i, v));
  return *this;
}

Stmt& Stmt::BindBlob(int i, absl::string_view data) {
  Check(sqlite3_bind_blob64(stmt_, i, data.empty() ? "" : data.data(), data.size(),
                            SQLITE_TRANSIENT));
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  Check(sqlite3_bind_null(stmt_, i));
  return *this;
}

absl::StatusOr<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) {
    return db_->Error(bind_rc_, absl::StrCat("binding \"", sqlite3_sql(stmt_), "\""));
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::string_view sql = sqlite3_sql(stmt_);
  return db_->Error(rc, absl::StrCat("\"", sql.substr(0, 60), "\""));
}

absl::Status Stmt::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::string Stmt::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

int64_t Stmt::Int(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

bool Stmt::IsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

// ---- Db.

Db::Db(std::string path, absl::string_view what) : path_(std::move(path)), what_(what) {}

Db::~Db() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, absl::string_view what,
                                             absl::string_view file_what) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return LastErrnoError(absl::StrCat("open ", file_what.empty() ? what : file_what, " ", path));
  }
  ::close(fd);

  std::unique_ptr<Db> db(new Db(path, what));
  int rc =
      sqlite3_open_v2(path.c_str(), &db->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  if (rc != SQLITE_OK) return db->Error(rc, "opening");
  sqlite3_busy_timeout(db->db_, 5000);
  {
    // The first statement reads the header: a file that is not a database fails here.
    ASSIGN_OR_RETURN(Stmt st, db->Prepare("PRAGMA journal_mode = WAL"));
    absl::StatusOr<bool> row = st.Step();
    if (!row.ok()) return Annotate(row.status(), "enabling WAL");
    if (!*row || absl::AsciiStrToLower(st.Text(0)) != "wal") {
      return absl::FailedPreconditionError(db->Message(
          absl::StrCat("cannot enable WAL (journal mode is \"", *row ? st.Text(0) : "", "\")")));
    }
  }
  RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON"));
  RETURN_IF_ERROR(db->Exec("PRAGMA synchronous = NORMAL"));
  return db;
}

std::string Db::Message(absl::string_view message) const {
  return absl::StrCat(what_, " ", path_, ": ", message);
}

absl::Status Db::Error(int rc, absl::string_view context) const {
  std::string msg = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  return absl::Status(CodeFor(rc), Message(absl::StrCat(context, ": ", msg)));
}

absl::StatusOr<Stmt> Db::Prepare(absl::string_view sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Error(rc, absl::StrCat("preparing \"", sql.substr(0, 60), "\""));
    }
    it = stmts_.emplace(std::string(sql), stmt).first;
  }
  return Stmt(this, it->second);
}

absl::Status Db::Exec(absl::string_view sql) {
  ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
  return st.Run();
}

int Db::Changes() const {
  return sqlite3_changes(db_);
}

absl::StatusOr<int> Db::UserVersion() {
  ASSIGN_OR_RETURN(Stmt st, Prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Error(SQLITE_ERROR, "reading user_version");
  return static_cast<int>(st.Int(0));
}

absl::Status Db::SetUserVersion(int version) {
  return Exec(absl::StrCat("PRAGMA user_version = ", version));
}

absl::Status Db::Migrate(std::span<const char* const> migrations) {
  const int latest = static_cast<int>(migrations.size());
  ASSIGN_OR_RETURN(int version, UserVersion());
  if (version == latest) return absl::OkStatus();
  return InTransaction(*this, true, [&]() -> absl::Status {
    // Again under the write lock: another process may have migrated meanwhile.
    ASSIGN_OR_RETURN(version, UserVersion());
    if (version > latest || version < 0) {
      return absl::FailedPreconditionError(
          Message(absl::StrCat("schema version ", version,
                               " is not one this berth knows (it reads up to ", latest, ")")));
    }
    for (int v = version; v < latest; ++v) {
      char* err = nullptr;
      int rc = sqlite3_exec(db_, migrations[v], nullptr, nullptr, &err);
      if (rc != SQLITE_OK) {
        std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
        sqlite3_free(err);
        return absl::Status(
            CodeFor(rc), Message(absl::StrCat("migrating schema ", v, " -> ", v + 1, ": ", msg)));
      }
    }
    return SetUserVersion(latest);
  });
}

// ---- Transaction.

absl::StatusOr<Transaction> Transaction::Begin(Db& db, bool write) {
  RETURN_IF_ERROR(db.Exec(write ? "BEGIN IMMEDIATE" : "BEGIN"));
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), committed_(o.committed_) {}

Transaction::~Transaction() {
  if (db_ != nullptr && !committed_ && sqlite3_get_autocommit(db_->db_) == 0) {
    sqlite3_exec(db_->db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  committed_ = status.ok();
  return status;
}

absl::Status InTransaction(Db& db, bool write, const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db, write));
  RETURN_IF_ERROR(fn());
  return tx.Commit();
}

}  // namespace berth::sqlite

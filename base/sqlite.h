// The SQLite plumbing berth's stores share (images/metadata, cri/store): one connection with
// the house settings, cached prepared statements, transactions and schema migrations.
//
// Every error names the database the way its store does, "<what> <path>: ...", e.g.
// "metadata /var/lib/berth/berth.db: \"DELETE FROM images WHERE id = ?\": database is locked",
// with a status code that follows the SQLite result code (BUSY -> Unavailable, CONSTRAINT ->
// FailedPrecondition, CORRUPT/NOTADB -> DataLoss, ...).
//
// A Db is not thread-safe (it opens the connection with SQLITE_OPEN_NOMUTEX): its owner
// serialises every call, and every Stmt from it, behind one mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace berth::sqlite {

class Db;

// A cached prepared statement (from Db::Prepare), reset and unbound when the wrapper goes
// away. A failed bind is remembered and reported by the next Step(), so binds chain.
class Stmt {
 public:
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  ~Stmt();

  // Never binds NULL: an empty (even default-constructed) view is the empty string.
  Stmt& Bind(int i, absl::string_view text);
  Stmt& Bind(int i, int64_t v);
  Stmt& BindBlob(int i, absl::string_view data);
  Stmt& BindNull(int i);

  // True when a row is ready, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows (or whose rows are ignored).
  absl::Status Run();

  // Columns of the current row.
  std::string Text(int col) const;
  std::string Blob(int col) const;
  int64_t Int(int col) const;
  bool IsNull(int col) const;

 private:
  friend class Db;
  Stmt(const Db* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void Check(int rc);

  const Db* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = 0;  // SQLITE_OK
};

class Db {
 public:
  // Opens the database at `path`, creating the file (mode 0600, so the -wal/-shm files SQLite
  // derives from it are 0600 too) when missing; the directory must exist (NotFound otherwise).
  // Sets WAL mode (a file that is not a database is DataLoss here), foreign keys on,
  // synchronous=NORMAL and a 5 s busy timeout. `what` names the database in every message
  // ("<what> <path>: ..."); `file_what`, when not empty, names it instead in the error of
  // creating the file ("open <file_what> <path>: <errno>").
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path, absl::string_view what,
                                                  absl::string_view file_what = {});
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& path() const { return path_; }

  // "<what> <path>: <message>".
  std::string Message(absl::string_view message) const;
  // "<what> <path>: <context>: <SQLite's message>", its code following `rc`.
  absl::Status Error(int rc, absl::string_view context) const;

  // The statement for `sql`, prepared once and cached for the connection's lifetime.
  absl::StatusOr<Stmt> Prepare(absl::string_view sql);
  // Prepares (cached) and runs one statement, ignoring its rows.
  absl::Status Exec(absl::string_view sql);
  // Rows changed by the last INSERT, UPDATE or DELETE.
  int Changes() const;

  // PRAGMA user_version.
  absl::StatusOr<int> UserVersion();
  absl::Status SetUserVersion(int version);
  // Brings the schema to version migrations.size(): migrations[v] (a script of one or more
  // statements) takes it from v to v + 1, all of them in one write transaction. A version
  // above migrations.size() (a newer berth's file) is FailedPrecondition.
  absl::Status Migrate(std::span<const char* const> migrations);

 private:
  friend class Transaction;
  Db(std::string path, absl::string_view what);

  std::string path_;
  std::string what_;
  sqlite3* db_ = nullptr;
  std::map<std::string, sqlite3_stmt*, std::less<>> stmts_;
};

// One transaction, rolled back when the object goes away uncommitted (or its COMMIT failed).
class Transaction {
 public:
  // BEGIN IMMEDIATE for writes, so a writer takes the lock up front and never fails halfway
  // on an upgrade; BEGIN for reads.
  static absl::StatusOr<Transaction> Begin(Db& db, bool write);
  Transaction(Transaction&& o) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  absl::Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
  bool committed_ = false;
};

// Runs `fn` in one transaction, committing when it returns OK and rolling back otherwise.
absl::Status InTransaction(Db& db, bool write, const std::function<absl::Status()>& fn);

}  // namespace berth::sqlite

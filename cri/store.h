// berthd's records of pod sandboxes and containers, kept in SQLite (berthd:
// /var/lib/berth/cri.db).
//
// The CRI layer writes a record BEFORE each side effect it describes (a pod is recorded as
// "creating" before its namespaces, network or cgroup exist), so that after a crash the next
// start finds everything it may have left behind and cleans or adopts it.
//
// The payload of each record (`data`) is JSON text owned by the caller, stored byte for byte;
// the store keeps in columns only what it filters, joins or enforces uniqueness on.
//
// Conventions as images/metadata.h: WAL mode, foreign keys on, a 5 s busy timeout,
// synchronous=NORMAL (a committed write survives a process crash; a power loss may lose the
// last commits but never corrupts the file); one connection guarded by a mutex serves every
// caller (thread-safe); statements are prepared once and cached; a change of more than one
// row is one transaction. The schema version is `PRAGMA user_version` and Open() migrates
// older files. A row that cannot be decoded (a corrupted or hand-edited database) is DataLoss
// naming it, never a crash.
//
// Uniqueness: a pod's (namespace, name, uid, attempt) and a container's (pod_id, name, attempt)
// name one record only; putting a second record with the same metadata under another id is
// AlreadyExists naming the holder, checked atomically (so concurrent RunPodSandbox calls
// cannot both reserve the name).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cri {

struct PodRow {
  std::string id;  // 64 hex chars (the store only requires it to be non-empty)
  std::string name, namespace_, uid;
  uint32_t attempt = 0;
  int state = 0;  // caller-defined small int (e.g. creating/ready/notready)
  int64_t created_ns = 0;
  std::string data;  // JSON text, opaque to the store
};

struct ContainerRow {
  std::string id;      // 64 hex chars (the store only requires it to be non-empty)
  std::string pod_id;  // the pod must be recorded
  std::string name;
  uint32_t attempt = 0;
  int state = 0;
  int64_t created_ns = 0;
  std::string data;  // JSON text, opaque to the store
};

class CriStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens (creating it, mode 0600, when missing) the database at `path` and migrates it to
  // kSchemaVersion. A file written by a newer berth is FailedPrecondition; a file that is not
  // a database is DataLoss. The directory must exist.
  static absl::StatusOr<std::unique_ptr<CriStore>> Open(const std::string& path);
  ~CriStore();
  CriStore(const CriStore&) = delete;
  CriStore& operator=(const CriStore&) = delete;

  const std::string& path() const;
  // PRAGMA user_version of the open database.
  absl::StatusOr<int> SchemaVersion();

  // ---- Pods.

  // Inserts or replaces (every field) the record of pod.id; the pod's containers stay.
  // InvalidArgument for an empty id; AlreadyExists when another pod has the same
  // (namespace, name, uid, attempt).
  absl::Status PutPod(const PodRow& pod);
  // nullopt when there is no such pod.
  absl::StatusOr<std::optional<PodRow>> GetPod(const std::string& id);
  // By created_ns, then id.
  absl::StatusOr<std::vector<PodRow>> ListPods();
  // Removes the record. FailedPrecondition (naming one) while containers still reference it;
  // OK when absent (idempotent).
  absl::Status DeletePod(const std::string& id);

  // ---- Containers.

  // Inserts or replaces (every field) the record of c.id. The pod must be recorded
  // (FailedPrecondition otherwise); InvalidArgument for an empty id; AlreadyExists when
  // another container of the pod has the same (name, attempt).
  absl::Status PutContainer(const ContainerRow& c);
  // nullopt when there is no such container.
  absl::StatusOr<std::optional<ContainerRow>> GetContainer(const std::string& id);
  // By created_ns, then id.
  absl::StatusOr<std::vector<ContainerRow>> ListContainers();
  // The pod's containers by created_ns, then id; empty when the pod has none (or is absent).
  absl::StatusOr<std::vector<ContainerRow>> ListPodContainers(const std::string& pod_id);
  // Removes the record; OK when absent (idempotent).
  absl::Status DeleteContainer(const std::string& id);

  // ---- Truncated-id lookups.

  // Ids starting with `prefix`, compared byte for byte (no wildcards: '%', '_', '*' are
  // literal), sorted. An empty prefix matches every id; the caller decides what zero or
  // several matches mean.
  absl::StatusOr<std::vector<std::string>> FindPodIds(absl::string_view prefix);
  absl::StatusOr<std::vector<std::string>> FindContainerIds(absl::string_view prefix);

 private:
  struct Impl;
  explicit CriStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::cri

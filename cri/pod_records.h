// Private to the PodManager (pod_manager.cc, pod_stats.cc): what berthd records about a pod or a
// container in the CriStore, and the helpers that load, save and complete those records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cri/api/cri.h"
#include "cri/monitor_client.h"
#include "cri/store.h"
#include "google/protobuf/map.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace berth::cri::records {

namespace v1 = ::runtime::v1;

enum PodState { kPodCreating = 0, kPodReady = 1, kPodNotReady = 2 };
enum ContainerState { kCtrCreating = 0, kCtrCreated = 1, kCtrRunning = 2, kCtrExited = 3 };

int64_t NowNs();

// 64 hex digits from getrandom.
absl::StatusOr<std::string> RandomId();

// base64 of the serialised message (how configs are kept in a record).
std::string Encode(const google::protobuf::Message& m);

// What berthd knows about a pod; every field that names a side effect is set before it.
struct PodRecord {
  std::string id;
  int state = kPodCreating;
  int64_t created_ns = 0;
  std::string config;  // base64 of the PodSandboxConfig
  std::string handler;
  std::string dir;
  std::string net_pin, ipc_pin, uts_pin;
  std::string cgroup_parent;
  bool cgroup_created = false;
  // The topmost ancestor of cgroup_parent that did not exist either (created with it, and
  // removed with it when nothing else is left in it); empty when only the leaf was missing.
  std::string cgroup_created_top;
  bool network_attached = false;
  std::vector<std::string> ips;
  std::string shm;
  bool shm_mounted = false;
  bool monitor_started = false;
  MonitorProcess monitor;
};

struct ContainerRecord {
  std::string id, pod_id;
  int state = kCtrCreating;
  int64_t created_ns = 0, started_ns = 0, finished_ns = 0;
  int exit_code = 0;
  std::string reason, message;
  std::string config;  // base64 of the ContainerConfig
  std::string image_id, image_name, image_ref;
  std::vector<std::string> chain_ids;
  bool layers_acquired = false;
  std::string dir;       // the bundle: <pod dir>/containers/<id>
  std::string data_dir;  // <root>/containers/<id>: upper, work, volumes
  bool rootfs_mounted = false;
  bool monitor_created = false;
  std::string log_path;
  std::string stop_signal = "SIGTERM";
  std::string cgroup_path;
  int pid = 0;
};

// The records as JSON (the store's data column; verbose status info).
void to_json(nlohmann::json& j, const PodRecord& r);
void from_json(const nlohmann::json& j, PodRecord& r);
void to_json(nlohmann::json& j, const ContainerRecord& r);
void from_json(const nlohmann::json& j, ContainerRecord& r);

struct LoadedPod {
  PodRecord record;
  v1::PodSandboxConfig config;
};

struct LoadedContainer {
  ContainerRecord record;
  v1::ContainerConfig config;
};

absl::Status SavePod(CriStore* store, const PodRecord& r, const v1::PodSandboxConfig& config);
absl::Status SaveContainer(CriStore* store, const ContainerRecord& r,
                           const v1::ContainerConfig& config);

absl::StatusOr<LoadedPod> LoadPodRow(const PodRow& row);
absl::StatusOr<LoadedContainer> LoadContainerRow(const ContainerRow& row);

// A full id or a unique prefix -> the full id (NotFound, or InvalidArgument when ambiguous).
absl::StatusOr<std::string> ResolvePodId(CriStore* store, const std::string& id);
absl::StatusOr<std::string> ResolveContainerId(CriStore* store, const std::string& id);

absl::StatusOr<LoadedPod> GetPod(CriStore* store, const std::string& id);
absl::StatusOr<LoadedContainer> GetContainer(CriStore* store, const std::string& id);

// The exit the monitor recorded (<bundle>/exit), if the container has exited.
struct ExitRecord {
  int exit_code = 0;
  int64_t finished_ns = 0;
  bool oom_killed = false;
  int signal = 0;
};
std::optional<ExitRecord> ReadExit(const std::string& dir);

// The current state of a container: the record, completed by the monitor's exit record.
void Refresh(ContainerRecord& r);

// The CRI's container filters by id and pod id: prefixes, empty matches all.
bool MatchesIdAndPod(const ContainerRow& row, const std::string& id_prefix,
                     const std::string& pod_prefix);

bool MatchesLabels(const google::protobuf::Map<std::string, std::string>& labels,
                   const google::protobuf::Map<std::string, std::string>& selector);

v1::PodSandboxState CriPodState(const PodRecord& r);
v1::ContainerState CriContainerState(const ContainerRecord& r);

// The CRI status messages of a record (as PodSandboxStatus / ContainerStatus return them,
// without the verbose info).
v1::PodSandboxStatus PodStatusMessage(const LoadedPod& pod);
v1::ContainerStatus ContainerStatusMessage(const LoadedContainer& c);

}  // namespace berth::cri::records

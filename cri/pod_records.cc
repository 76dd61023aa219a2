#include "cri/pod_records.h"


#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/random.h"
#include "base/status.h"

namespace berth::cri::records {
namespace {

using json = nlohmann::json;

template <typename T>
absl::Status Decode(const std::string& b64, T* out, absl::string_view what) {
  std::string bytes;
  if (!absl::Base64Unescape(b64, &bytes) || !out->ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("the recorded ", what, " does not parse"));
  }
  return absl::OkStatus();
}

template <typename Record>
absl::StatusOr<Record> ParseRecord(const std::string& data, const std::string& id) {
  json j = json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat("the record of ", id, " is not JSON"));
  }
  try {
    return j.get<Record>();
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("the record of ", id, ": ", e.what()));
  }
}

}  // namespace

int64_t NowNs() {
  return absl::ToUnixNanos(absl::Now());
}

absl::StatusOr<std::string> RandomId() {
  ASSIGN_OR_RETURN(std::string bytes, RandomBytes(32));
  return absl::BytesToHexString(bytes);
}

std::string Encode(const google::protobuf::Message& m) {
  std::string bytes;
  m.SerializeToString(&bytes);
  return absl::Base64Escape(bytes);
}

void to_json(json& j, const PodRecord& r) {
  j = json{{"id", r.id},
           {"state", r.state},
           {"created_ns", r.created_ns},
           {"config", r.config},
           {"handler", r.handler},
           {"dir", r.dir},
           {"net_pin", r.net_pin},
           {"ipc_pin", r.ipc_pin},
           {"uts_pin", r.uts_pin},
           {"cgroup_parent", r.cgroup_parent},
           {"cgroup_created", r.cgroup_created},
           {"cgroup_created_top", r.cgroup_created_top},
           {"network_attached", r.network_attached},
           {"ips", r.ips},
           {"shm", r.shm},
           {"shm_mounted", r.shm_mounted},
           {"monitor_started", r.monitor_started},
           {"monitor_pid", r.monitor.pid},
           {"monitor_start_time", r.monitor.start_time},
           {"holder_pid", r.monitor.holder_pid},
           {"holder_start_time", r.monitor.holder_start_time}};
}

void from_json(const json& j, PodRecord& r) {
  r.id = j.at("id").get<std::string>();
  r.state = j.value("state", 0);
  r.created_ns = j.value("created_ns", int64_t{0});
  r.config = j.value("config", "");
  r.handler = j.value("handler", "");
  r.dir = j.value("dir", "");
  r.net_pin = j.value("net_pin", "");
  r.ipc_pin = j.value("ipc_pin", "");
  r.uts_pin = j.value("uts_pin", "");
  r.cgroup_parent = j.value("cgroup_parent", "");
  r.cgroup_created = j.value("cgroup_created", false);
  r.cgroup_created_top = j.value("cgroup_created_top", "");
  r.network_attached = j.value("network_attached", false);
  r.ips = j.value("ips", std::vector<std::string>{});
  r.shm = j.value("shm", "");
  r.shm_mounted = j.value("shm_mounted", false);
  r.monitor_started = j.value("monitor_started", false);
  r.monitor.pid = j.value("monitor_pid", 0);
  r.monitor.start_time = j.value("monitor_start_time", uint64_t{0});
  r.monitor.holder_pid = j.value("holder_pid", 0);
  r.monitor.holder_start_time = j.value("holder_start_time", uint64_t{0});
}

void to_json(json& j, const ContainerRecord& r) {
  j = json{{"id", r.id},
           {"pod_id", r.pod_id},
           {"state", r.state},
           {"created_ns", r.created_ns},
           {"started_ns", r.started_ns},
           {"finished_ns", r.finished_ns},
           {"exit_code", r.exit_code},
           {"reason", r.reason},
           {"message", r.message},
           {"config", r.config},
           {"image_id", r.image_id},
           {"image_name", r.image_name},
           {"image_ref", r.image_ref},
           {"chain_ids", r.chain_ids},
           {"layers_acquired", r.layers_acquired},
           {"dir", r.dir},
           {"data_dir", r.data_dir},
           {"rootfs_mounted", r.rootfs_mounted},
           {"monitor_created", r.monitor_created},
           {"log_path", r.log_path},
           {"stop_signal", r.stop_signal},
           {"cgroup_path", r.cgroup_path},
           {"pid", r.pid}};
}

void from_json(const json& j, ContainerRecord& r) {
  r.id = j.at("id").get<std::string>();
  r.pod_id = j.at("pod_id").get<std::string>();
  r.state = j.value("state", 0);
  r.created_ns = j.value("created_ns", int64_t{0});
  r.started_ns = j.value("started_ns", int64_t{0});
  r.finished_ns = j.value("finished_ns", int64_t{0});
  r.exit_code = j.value("exit_code", 0);
  r.reason = j.value("reason", "");
  r.message = j.value("message", "");
  r.config = j.value("config", "");
  r.image_id = j.value("image_id", "");
  r.image_name = j.value("image_name", "");
  r.image_ref = j.value("image_ref", "");
  r.chain_ids = j.value("chain_ids", std::vector<std::string>{});
  r.layers_acquired = j.value("layers_acquired", false);
  r.dir = j.value("dir", "");
  r.data_dir = j.value("data_dir", "");
  r.rootfs_mounted = j.value("rootfs_mounted", false);
  r.monitor_created = j.value("monitor_created", false);
  r.log_path = j.value("log_path", "");
  r.stop_signal = j.value("stop_signal", "SIGTERM");
  r.cgroup_path = j.value("cgroup_path", "");
  r.pid = j.value("pid", 0);
}

std::optional<ExitRecord> ReadExit(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadFile(dir + "/exit", 4096);
  if (!text.ok()) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  ExitRecord e;
  e.exit_code = j.value("exit_code", 0);
  e.finished_ns = j.value("finished_ns", int64_t{0});
  e.oom_killed = j.value("oom_killed", false);
  e.signal = j.value("signal", 0);
  return e;
}

bool MatchesIdAndPod(const ContainerRow& row, const std::string& id_prefix,
                     const std::string& pod_prefix) {
  return absl::StartsWith(row.id, id_prefix) && absl::StartsWith(row.pod_id, pod_prefix);
}

bool MatchesLabels(const google::protobuf::Map<std::string, std::string>& labels,
                   const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

// Pod helpers that need no PodManager state.

absl::Status SavePod(CriStore* store, const PodRecord& r, const v1::PodSandboxConfig& config) {
  PodRow row;
  row.id = r.id;
  row.name = config.metadata().name();
  row.namespace_ = config.metadata().namespace_();
  row.uid = config.metadata().uid();
  row.attempt = config.metadata().attempt();
  row.state = r.state;
  row.created_ns = r.created_ns;
  row.data = json(r).dump();
  return store->PutPod(row);
}

absl::Status SaveContainer(CriStore* store, const ContainerRecord& r,
                           const v1::ContainerConfig& config) {
  ContainerRow row;
  row.id = r.id;
  row.pod_id = r.pod_id;
  row.name = config.metadata().name();
  row.attempt = config.metadata().attempt();
  row.state = r.state;
  row.created_ns = r.created_ns;
  row.data = json(r).dump();
  return store->PutContainer(row);
}

absl::StatusOr<LoadedPod> LoadPodRow(const PodRow& row) {
  LoadedPod p;
  ASSIGN_OR_RETURN(p.record, ParseRecord<PodRecord>(row.data, row.id));
  RETURN_IF_ERROR(Decode(p.record.config, &p.config, "pod config"));
  return p;
}

absl::StatusOr<LoadedContainer> LoadContainerRow(const ContainerRow& row) {
  LoadedContainer c;
  ASSIGN_OR_RETURN(c.record, ParseRecord<ContainerRecord>(row.data, row.id));
  RETURN_IF_ERROR(Decode(c.record.config, &c.config, "container config"));
  return c;
}

absl::StatusOr<std::string> ResolvePodId(CriStore* store, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("pod sandbox id is empty");
  ASSIGN_OR_RETURN(std::vector<std::string> ids, store->FindPodIds(id));
  if (ids.empty()) return absl::NotFoundError(absl::StrCat("pod sandbox ", id, " not found"));
  if (std::find(ids.begin(), ids.end(), id) != ids.end()) return id;
  if (ids.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("pod sandbox id ", id, " is ambiguous"));
  }
  return ids.front();
}

absl::StatusOr<std::string> ResolveContainerId(CriStore* store, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("container id is empty");
  ASSIGN_OR_RETURN(std::vector<std::string> ids, store->FindContainerIds(id));
  if (ids.empty()) return absl::NotFoundError(absl::StrCat("container ", id, " not found"));
  if (std::find(ids.begin(), ids.end(), id) != ids.end()) return id;
  if (ids.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("container id ", id, " is ambiguous"));
  }
  return ids.front();
}

absl::StatusOr<LoadedPod> GetPod(CriStore* store, const std::string& id) {
  ASSIGN_OR_RETURN(std::optional<PodRow> row, store->GetPod(id));
  if (!row) return absl::NotFoundError(absl::StrCat("pod sandbox ", id, " not found"));
  return LoadPodRow(*row);
}

absl::StatusOr<LoadedContainer> GetContainer(CriStore* store, const std::string& id) {
  ASSIGN_OR_RETURN(std::optional<ContainerRow> row, store->GetContainer(id));
  if (!row) return absl::NotFoundError(absl::StrCat("container ", id, " not found"));
  return LoadContainerRow(*row);
}

v1::PodSandboxState CriPodState(const PodRecord& r) {
  return r.state == kPodReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
}

// The current state of a container: the record, completed by the monitor's exit record.
void Refresh(ContainerRecord& r) {
  if (r.state != kCtrRunning && r.state != kCtrCreated) return;
  std::optional<ExitRecord> e = ReadExit(r.dir);
  if (!e) return;
  r.state = kCtrExited;
  r.exit_code = e->exit_code;
  r.finished_ns = e->finished_ns;
  if (e->oom_killed) {
    r.reason = "OOMKilled";
  } else {
    r.reason = e->exit_code == 0 ? "Completed" : "Error";
  }
}

v1::ContainerState CriContainerState(const ContainerRecord& r) {
  switch (r.state) {
    case kCtrCreated: return v1::CONTAINER_CREATED;
    case kCtrRunning: return v1::CONTAINER_RUNNING;
    case kCtrExited: return v1::CONTAINER_EXITED;
    default: return v1::CONTAINER_UNKNOWN;
  }
}

v1::PodSandboxStatus PodStatusMessage(const LoadedPod& pod) {
  const PodRecord& r = pod.record;
  v1::PodSandboxStatus s;
  s.set_id(r.id);
  *s.mutable_metadata() = pod.config.metadata();
  s.set_state(CriPodState(r));
  s.set_created_at(r.created_ns);
  if (!r.ips.empty()) {
    s.mutable_network()->set_ip(r.ips.front());
    for (size_t i = 1; i < r.ips.size(); ++i) {
      s.mutable_network()->add_additional_ips()->set_ip(r.ips[i]);
    }
  }
  *s.mutable_linux()->mutable_namespaces()->mutable_options() =
      pod.config.linux().security_context().namespace_options();
  s.mutable_labels()->insert(pod.config.labels().begin(), pod.config.labels().end());
  s.mutable_annotations()->insert(pod.config.annotations().begin(), pod.config.annotations().end());
  s.set_runtime_handler(r.handler);
  return s;
}

v1::ContainerStatus ContainerStatusMessage(const LoadedContainer& c) {
  const ContainerRecord& r = c.record;
  v1::ContainerStatus s;
  s.set_id(r.id);
  *s.mutable_metadata() = c.config.metadata();
  s.set_state(CriContainerState(r));
  s.set_created_at(r.created_ns);
  s.set_started_at(r.started_ns);
  s.set_finished_at(r.finished_ns);
  s.set_exit_code(r.exit_code);
  *s.mutable_image() = c.config.image();
  s.mutable_image()->set_image(r.image_name);
  s.set_image_ref(r.image_ref);
  s.set_image_id(r.image_id);
  s.set_reason(r.reason);
  s.set_message(r.message);
  s.mutable_labels()->insert(c.config.labels().begin(), c.config.labels().end());
  s.mutable_annotations()->insert(c.config.annotations().begin(), c.config.annotations().end());
  for (const v1::Mount& m : c.config.mounts()) *s.add_mounts() = m;
  s.set_log_path(r.log_path);
  if (c.config.has_linux() && c.config.linux().has_resources()) {
    *s.mutable_resources()->mutable_linux() = c.config.linux().resources();
  }
  return s;
}

}  // namespace berth::cri::records

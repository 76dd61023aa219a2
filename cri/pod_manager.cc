#include "cri/pod_manager.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <optional>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cgroups/cgroup.h"
#include "cgroups/mode.h"
#include "cri/container_resources.h"
#include "cri/monitor_client.h"
#include "cri/pod_records.h"
#include "cri/spec_builder.h"
#include "network/netns.h"
#include "network/pod_files.h"
#include "nlohmann/json.hpp"
#include "runtime/spec.h"

namespace berth::cri {
namespace {

using json = nlohmann::json;
using records::ContainerRecord;
using records::CriPodState;
using records::Encode;
using records::GetContainer;
using records::GetPod;
using records::kCtrCreated;
using records::kCtrCreating;
using records::kCtrExited;
using records::kCtrRunning;
using records::kPodCreating;
using records::kPodNotReady;
using records::kPodReady;
using records::LoadContainerRow;
using records::LoadedContainer;
using records::LoadedPod;
using records::LoadPodRow;
using records::MatchesIdAndPod;
using records::MatchesLabels;
using records::NowNs;
using records::PodRecord;
using records::RandomId;
using records::ReadExit;
using records::Refresh;
using records::ResolveContainerId;
using records::ResolvePodId;
using records::SaveContainer;
using records::SavePod;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsMountPoint(const std::string& path) {
  struct stat self, parent;
  if (::stat(path.c_str(), &self) != 0) return false;
  if (::stat((path + "/..").c_str(), &parent) != 0) return false;
  if (self.st_dev != parent.st_dev) return true;
  // An overlay or a bind of a directory on the same device: look in mountinfo.
  absl::StatusOr<std::string> info = ReadFile("/proc/self/mountinfo", 64 << 20);
  if (!info.ok()) return false;
  std::string needle = absl::StrCat(" ", path, " ");
  return absl::StrContains(*info, needle);
}

absl::Status Unmount(const std::string& path) {
  for (int i = 0; i < 8 && IsMountPoint(path); ++i) {
    if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return LastErrnoError("unmount " + path);
    }
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  if (path.empty() || path == "/") return absl::OkStatus();
  std::string parent = path.substr(0, path.find_last_of('/'));
  std::string name = path.substr(path.find_last_of('/') + 1);
  UniqueFd dir(::open(parent.empty() ? "/" : parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoError("open " + parent);
  }
  return RemoveTreeAt(dir.get(), name);
}

int SignalNumber(const std::string& name) {
  absl::StatusOr<int> sig = runtime::ParseSignal(name);
  return sig.ok() ? *sig : SIGTERM;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

PodManager::PodManager(PodManagerOptions options, CriStore* store, images::ImageStore* images,
                       network::NetworkManager* network)
    : options_(std::move(options)), store_(store), images_(images), network_(network) {}

absl::StatusOr<std::unique_ptr<PodManager>> PodManager::Create(PodManagerOptions options,
                                                               CriStore* store,
                                                               images::ImageStore* images,
                                                               network::NetworkManager* network) {
  for (const std::string& dir :
       {options.state + "/pods", options.state + "/runtime", options.root + "/containers"}) {
    RETURN_IF_ERROR(MkdirAll(dir, 0711));
  }
  auto pods =
      std::unique_ptr<PodManager>(new PodManager(std::move(options), store, images, network));
  absl::StatusOr<UniqueFd> image = LoadMonitorImage(pods->options_.monitor_binary);
  if (image.ok()) {
    pods->monitor_image_ = *std::move(image);
  } else {
    // Started from the file instead: everything works, a monitor may just map more.
    log::Warn("berth-monitor is started from its file",
              {{"error", std::string(image.status().message())}});
  }
  return pods;
}

PodManager::~PodManager() {
  events_.Close();
}

OciCli PodManager::OciFor(const PodRecord& pod) const {
  auto it = options_.handlers.find(pod.handler);
  if (it == options_.handlers.end() || it->second.binary.empty()) {
    return OciCli{options_.oci_binary, options_.state + "/runtime"};
  }
  return OciCli{it->second.binary, it->second.root};
}

std::shared_ptr<std::mutex> PodManager::PodLock(const std::string& pod_id) {
  std::lock_guard<std::mutex> lock(locks_mu_);
  std::shared_ptr<std::mutex>& m = pod_locks_[pod_id];
  if (!m) m = std::make_shared<std::mutex>();
  return m;
}

absl::StatusOr<cgroups::Manager*> PodManager::Cgroups() {
  std::lock_guard<std::mutex> lock(cgroups_mu_);
  if (!cgroups_) {
    ASSIGN_OR_RETURN(cgroups_, cgroups::NewManager());
  }
  return cgroups_.get();
}

// ---- Events ---------------------------------------------------------------------------------

std::shared_ptr<EventSubscription> PodManager::SubscribeEvents() {
  return events_.Subscribe();
}

void PodManager::UnsubscribeEvents(const std::shared_ptr<EventSubscription>& subscription) {
  events_.Unsubscribe(subscription);
}

void PodManager::Shutdown() {
  events_.Close();
}

void PodManager::Emit(v1::ContainerEventType type, const LoadedContainer& c) {
  if (!events_.HasSubscribers()) return;
  v1::ContainerEventResponse e;
  e.set_container_id(c.record.id);
  e.set_container_event_type(type);
  e.set_created_at(NowNs());
  if (absl::StatusOr<LoadedPod> pod = GetPod(store_, c.record.pod_id); pod.ok()) {
    *e.mutable_pod_sandbox_status() = records::PodStatusMessage(*pod);
  }
  *e.add_containers_statuses() = records::ContainerStatusMessage(c);
  if (absl::StatusOr<std::vector<ContainerRow>> rows = store_->ListPodContainers(c.record.pod_id);
      rows.ok()) {
    for (const ContainerRow& row : *rows) {
      if (row.id == c.record.id) continue;
      absl::StatusOr<LoadedContainer> other = LoadContainerRow(row);
      if (!other.ok() || other->record.state == kCtrCreating) continue;
      Refresh(other->record);
      *e.add_containers_statuses() = records::ContainerStatusMessage(*other);
    }
  }
  events_.Publish(e);
}

void PodManager::NoteExit(const LoadedContainer& c) {
  if (c.record.state != kCtrExited) return;
  {
    std::lock_guard<std::mutex> lock(stopped_mu_);
    if (starting_.count(c.record.id) > 0) return;  // StartContainer reports it
    if (!stopped_sent_.insert(c.record.id).second) return;
  }
  Emit(v1::CONTAINER_STOPPED_EVENT, c);
}

void PodManager::Forget(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(stopped_mu_);
    stopped_sent_.erase(id);
  }
  std::lock_guard<std::mutex> lock(samples_mu_);
  cpu_samples_.erase(id);
}

absl::StatusOr<size_t> PodManager::PodCount() {
  ASSIGN_OR_RETURN(std::vector<PodRow> rows, store_->ListPods());
  size_t n = 0;
  for (const PodRow& row : rows) {
    if (row.state != kPodCreating) ++n;
  }
  return n;
}

namespace {

// Undoes everything a pod record names, in reverse order of RunPodSandbox. Idempotent; each
// step that succeeded is cleared from the record (and saved) so a retry skips it.
absl::Status UndoPod(CriStore* store, network::NetworkManager* network, LoadedPod& pod,
                     bool remove_dir) {
  PodRecord& r = pod.record;
  std::vector<std::string> errors;
  auto step = [&](const absl::Status& st, absl::string_view what) {
    if (!st.ok()) errors.push_back(absl::StrCat(what, ": ", st.message()));
    return st.ok();
  };
  if (r.monitor_started && step(StopMonitor(r.dir, r.monitor), "stop the monitor")) {
    r.monitor_started = false;
  }
  if (r.network_attached && step(network->TearDown(r.id), "CNI DEL")) {
    r.network_attached = false;
    r.ips.clear();
  }
  if (remove_dir) {
    if (r.shm_mounted && step(Unmount(r.shm), "unmount the pod's /dev/shm")) {
      r.shm_mounted = false;
    }
    for (std::string* pin : {&r.net_pin, &r.ipc_pin, &r.uts_pin}) {
      if (!pin->empty() && step(network::RemovePinnedNamespace(*pin), "remove a namespace pin")) {
        pin->clear();
      }
    }
    if (r.cgroup_created) {
      absl::StatusOr<std::unique_ptr<cgroups::Manager>> manager = cgroups::NewManager();
      if (step(manager.status(), "cgroups")) {
        absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = (*manager)->Load(r.cgroup_parent);
        if (cg.ok()) {
          if (step((*cg)->Remove(absl::Seconds(10)), "remove the pod cgroup")) {
            r.cgroup_created = false;
          }
        } else if (absl::IsNotFound(cg.status())) {
          r.cgroup_created = false;
        } else {
          step(cg.status(), "the pod cgroup");
        }
        // The parents created with it go too, once empty (another pod may still use them:
        // then they stay, and the last pod's removal takes them).
        if (!r.cgroup_created && !r.cgroup_created_top.empty()) {
          std::string path = r.cgroup_parent;
          while (path.size() > r.cgroup_created_top.size() && path.find('/') != std::string::npos) {
            path = path.substr(0, path.rfind('/'));
            absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> parent = (*manager)->Load(path);
            if (!parent.ok()) continue;
            absl::StatusOr<std::vector<pid_t>> procs = (*parent)->Processes();
            if (!procs.ok() || !procs->empty()) break;
            if (!(*parent)->Remove(absl::ZeroDuration()).ok()) break;  // not empty: in use
          }
          r.cgroup_created_top.clear();
        }
      }
    }
    if (errors.empty() && step(RemoveTree(r.dir), "remove the pod dir")) r.dir.clear();
  }
  if (!errors.empty()) {
    (void)SavePod(store, r, pod.config);
    return absl::InternalError(absl::StrJoin(errors, "; "));
  }
  return absl::OkStatus();
}

}  // namespace

// ---- Sandboxes ------------------------------------------------------------------------------

absl::StatusOr<std::string> PodManager::RunPodSandbox(const v1::PodSandboxConfig& config,
                                                      const std::string& runtime_handler) {
  const v1::PodSandboxMetadata& md = config.metadata();
  if (md.name().empty() || md.namespace_().empty() || md.uid().empty()) {
    return absl::InvalidArgumentError("pod sandbox metadata needs a name, namespace and uid");
  }
  if (options_.handlers.count(runtime_handler) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown runtime handler \"", runtime_handler, "\""));
  }
  const v1::NamespaceOption& ns = config.linux().security_context().namespace_options();
  const bool host_network = ns.network() == v1::NODE;
  const bool host_ipc = ns.ipc() == v1::NODE;
  if (ns.pid() == v1::TARGET) {
    return absl::InvalidArgumentError("a pod's pid namespace cannot be TARGET");
  }
  std::string hostname = config.hostname();
  if (!host_network) {
    if (hostname.empty()) hostname = md.name().substr(0, network::kMaxHostnameLength);
    RETURN_IF_ERROR(Annotate(network::ValidateHostname(hostname), "hostname"));
  }
  // Sysctls are checked before anything exists: only namespaced ones, and only for a
  // namespace the pod has of its own.
  for (const auto& [name, value] : config.linux().sysctls()) {
    absl::StatusOr<network::NsType> type = network::SysctlNamespace(name, value);
    if (!type.ok()) return Annotate(type.status(), "RunPodSandbox: linux.sysctls");
    if ((*type == network::NsType::kNet && host_network) ||
        (*type == network::NsType::kIpc && host_ipc)) {
      return absl::InvalidArgumentError(
          absl::StrCat("RunPodSandbox: linux.sysctls: ", name, " would change the node's ",
                       network::NsTypeName(*type), " namespace (the pod shares the host's)"));
    }
  }

  ASSIGN_OR_RETURN(std::string id, RandomId());
  PodGuard lock(PodLock(id));
  LoadedPod pod;
  pod.config = config;
  PodRecord& r = pod.record;
  r.id = id;
  r.created_ns = NowNs();
  r.config = Encode(config);
  r.handler = runtime_handler;
  r.dir = absl::StrCat(options_.state, "/pods/", id);
  if (!host_network) r.net_pin = r.dir + "/netns";
  if (!host_network) r.uts_pin = r.dir + "/utsns";
  if (!host_ipc) r.ipc_pin = r.dir + "/ipcns";
  if (!host_ipc) r.shm = r.dir + "/shm";
  std::string parent = config.linux().cgroup_parent();
  if (parent.empty()) parent = absl::StrCat("berth/", id);
  ASSIGN_OR_RETURN(r.cgroup_parent, cgroups::CleanCgroupPath(parent));
  // Recorded before anything exists; every later step records itself before it acts.
  RETURN_IF_ERROR(SavePod(store_, r, config));

  std::string failed_step;
  auto fail = [&](absl::string_view step, const absl::Status& st) -> absl::Status {
    absl::Status undo = UndoPod(store_, network_, pod, true);
    if (undo.ok()) {
      (void)store_->DeletePod(id);
    } else {
      log::Warn("a failed pod could not be fully undone; it is kept for a retry",
                {{"pod", id}, {"error", std::string(undo.message())}});
    }
    return absl::Status(st.code(), absl::StrCat("RunPodSandbox: ", step, ": ", st.message()));
  };

  if (absl::Status st = MkdirAll(r.dir + "/containers", 0711); !st.ok()) {
    return fail("pod dir", st);
  }
  // Namespaces first: CNI needs the netns, and runs while the rest is set up.
  std::vector<network::NsPin> pins;
  if (!r.net_pin.empty()) pins.push_back({network::NsType::kNet, r.net_pin});
  if (!r.ipc_pin.empty()) pins.push_back({network::NsType::kIpc, r.ipc_pin});
  if (!r.uts_pin.empty()) pins.push_back({network::NsType::kUts, r.uts_pin});
  network::NamespaceSetup setup;
  setup.hostname = host_network ? "" : hostname;
  for (const auto& [k, v] : config.linux().sysctls()) setup.sysctls.emplace_back(k, v);
  if (!pins.empty() || !setup.sysctls.empty()) {
    if (absl::Status st = network::CreatePinnedNamespaces(pins, setup); !st.ok()) {
      return fail("namespaces", st);
    }
  }

  std::future<absl::StatusOr<network::PodNetworkStatus>> cni;
  network::PodNetworkRequest net;
  if (!host_network) {
    net.sandbox_id = id;
    net.pod_name = md.name();
    net.pod_namespace = md.namespace_();
    net.pod_uid = md.uid();
    net.netns_path = r.net_pin;
    for (const v1::PortMapping& pm : config.port_mappings()) {
      network::PortMapping m;
      m.protocol = pm.protocol() == v1::UDP ? "udp" : pm.protocol() == v1::SCTP ? "sctp" : "tcp";
      m.container_port = pm.container_port();
      m.host_port = pm.host_port();
      m.host_ip = pm.host_ip();
      net.port_mappings.push_back(m);
    }
    for (const auto& [k, v] : config.annotations()) net.annotations[k] = v;
    for (const std::string& s : config.dns_config().servers()) net.dns.servers.push_back(s);
    for (const std::string& s : config.dns_config().searches()) net.dns.searches.push_back(s);
    for (const std::string& s : config.dns_config().options()) net.dns.options.push_back(s);
    net.cgroup_parent = r.cgroup_parent;
    r.network_attached = true;
    if (absl::Status st = SavePod(store_, r, config); !st.ok()) return fail("record", st);
    cni = std::async(std::launch::async, [this, &net] { return network_->SetUp(net); });
  }
  // Waits for CNI before any failure return below undoes the pod.
  auto cni_result = [&]() -> absl::StatusOr<network::PodNetworkStatus> {
    if (!cni.valid()) return network::PodNetworkStatus{};
    return cni.get();
  };
  auto fail_after_cni = [&](absl::string_view step, const absl::Status& st) {
    if (cni.valid()) (void)cni.get();
    return fail(step, st);
  };

  // The pod cgroup: the kubelet's parent is used as it is; a missing one is created (and
  // removed with the pod).
  {
    absl::StatusOr<std::unique_ptr<cgroups::Manager>> manager = cgroups::NewManager();
    if (!manager.ok()) return fail_after_cni("cgroups", manager.status());
    absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = (*manager)->Load(r.cgroup_parent);
    if (!cg.ok() && absl::IsNotFound(cg.status())) {
      r.cgroup_created = true;
      // Which of its parents are missing too: those are created with it and are ours.
      for (std::string up = r.cgroup_parent; up.find('/') != std::string::npos;) {
        up = up.substr(0, up.rfind('/'));
        if ((*manager)->Load(up).ok()) break;
        r.cgroup_created_top = up;
      }
      if (absl::Status st = SavePod(store_, r, config); !st.ok()) {
        return fail_after_cni("record", st);
      }
      cg = (*manager)->Create(r.cgroup_parent, cgroups::Resources{});
    }
    if (!cg.ok()) return fail_after_cni("pod cgroup " + r.cgroup_parent, cg.status());
  }

  network::PodFilesSpec files;
  files.hostname = hostname;
  files.host_network = host_network;
  for (const std::string& s : config.dns_config().servers()) files.dns.servers.push_back(s);
  for (const std::string& s : config.dns_config().searches()) files.dns.searches.push_back(s);
  for (const std::string& s : config.dns_config().options()) files.dns.options.push_back(s);
  std::vector<std::string> warnings;
  if (absl::StatusOr<network::PodFilePaths> written =
          network::WritePodFiles(r.dir, files, &warnings);
      !written.ok()) {
    return fail_after_cni("hostname, hosts and resolv.conf", written.status());
  }
  for (const std::string& w : warnings) log::Warn(w, {{"pod", id}});

  if (!r.shm.empty()) {
    r.shm_mounted = true;
    if (absl::Status st = SavePod(store_, r, config); !st.ok()) {
      return fail_after_cni("record", st);
    }
    std::string data = absl::StrCat("mode=1777,size=", options_.shm_size);
    if (::mkdir(r.shm.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail_after_cni("/dev/shm", LastErrnoError("mkdir " + r.shm));
    }
    if (::mount("shm", r.shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data.c_str()) !=
        0) {
      return fail_after_cni("/dev/shm", LastErrnoError("mount a tmpfs on " + r.shm));
    }
  }

  r.monitor_started = true;
  if (absl::Status st = SavePod(store_, r, config); !st.ok()) return fail_after_cni("record", st);
  MonitorSpawn spawn;
  spawn.binary = options_.monitor_binary;
  spawn.image_fd = monitor_image_.get();
  spawn.pod_dir = r.dir;
  spawn.runtime_root = options_.state + "/runtime";
  spawn.pid_holder = ns.pid() == v1::POD;
  spawn.log_max_line = options_.log_max_line;
  absl::StatusOr<MonitorProcess> monitor = SpawnMonitor(spawn);
  if (!monitor.ok()) return fail_after_cni("monitor", monitor.status());
  r.monitor = *monitor;
  if (absl::Status st = SavePod(store_, r, config); !st.ok()) return fail_after_cni("record", st);

  absl::StatusOr<network::PodNetworkStatus> attached = cni_result();
  if (!attached.ok()) return fail("network (CNI ADD)", attached.status());
  r.ips = attached->ips;
  if (!host_network) {
    files.pod_ips = r.ips;
    if (absl::Status st = network::UpdatePodHosts(r.dir, files); !st.ok()) {
      return fail("hosts", st);
    }
  }
  r.state = kPodReady;
  if (absl::Status st = SavePod(store_, r, config); !st.ok()) return fail("record", st);
  log::Info("pod sandbox running", {{"pod", id},
                                    {"name", md.name()},
                                    {"namespace", md.namespace_()},
                                    {"ips", absl::StrJoin(r.ips, ",")}});
  return id;
}

absl::Status PodManager::StopPodSandbox(const std::string& requested) {
  absl::StatusOr<std::string> id = ResolvePodId(store_, requested);
  // Stopping a pod that is gone is not an error (the kubelet retries after a restart).
  if (absl::IsNotFound(id.status())) return absl::OkStatus();
  RETURN_IF_ERROR(id.status());
  ASSIGN_OR_RETURN(std::vector<ContainerRow> rows, store_->ListPodContainers(*id));
  for (const ContainerRow& row : rows) {
    absl::Status st = StopContainer(row.id, 0);
    if (!st.ok() && !absl::IsNotFound(st)) {
      return Annotate(st, absl::StrCat("StopPodSandbox: stop container ", row.id));
    }
  }
  PodGuard lock(PodLock(*id));
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, *id));
  PodRecord& r = pod.record;
  if (r.network_attached) {
    RETURN_IF_ERROR(Annotate(network_->TearDown(r.id), "StopPodSandbox: CNI DEL"));
    r.network_attached = false;
  }
  // The pid namespace holder goes with the containers it served.
  if (SameProcess(r.monitor.holder_pid, r.monitor.holder_start_time)) {
    ::kill(r.monitor.holder_pid, SIGKILL);
  }
  r.state = kPodNotReady;
  return SavePod(store_, r, pod.config);
}

absl::Status PodManager::RemovePodSandbox(const std::string& requested) {
  absl::StatusOr<std::string> id = ResolvePodId(store_, requested);
  if (absl::IsNotFound(id.status())) return absl::OkStatus();
  RETURN_IF_ERROR(id.status());
  ASSIGN_OR_RETURN(std::vector<ContainerRow> rows, store_->ListPodContainers(*id));
  for (const ContainerRow& row : rows) {
    RETURN_IF_ERROR(Annotate(RemoveContainer(row.id),
                             absl::StrCat("RemovePodSandbox: remove container ", row.id)));
  }
  {
    PodGuard lock(PodLock(*id));
    ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, *id));
    RETURN_IF_ERROR(Annotate(UndoPod(store_, network_, pod, true), "RemovePodSandbox"));
    RETURN_IF_ERROR(store_->DeletePod(*id));
  }
  Forget(*id);
  std::lock_guard<std::mutex> lock(locks_mu_);
  pod_locks_.erase(*id);
  return absl::OkStatus();
}

absl::StatusOr<v1::PodSandboxStatusResponse> PodManager::PodSandboxStatus(
    const std::string& requested, bool verbose) {
  ASSIGN_OR_RETURN(std::string id, ResolvePodId(store_, requested));
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, id));
  const PodRecord& r = pod.record;
  v1::PodSandboxStatusResponse resp;
  *resp.mutable_status() = records::PodStatusMessage(pod);
  resp.set_timestamp(NowNs());
  if (verbose) {
    json info = r;
    info.erase("config");
    info["monitor_alive"] = SameProcess(r.monitor.pid, r.monitor.start_time);
    (*resp.mutable_info())["info"] = info.dump();
  }
  return resp;
}

absl::StatusOr<std::vector<v1::PodSandbox>> PodManager::ListPodSandbox(
    const v1::PodSandboxFilter* filter) {
  ASSIGN_OR_RETURN(std::vector<PodRow> rows, store_->ListPods());
  std::vector<v1::PodSandbox> out;
  for (const PodRow& row : rows) {
    if (filter != nullptr && !filter->id().empty() && !absl::StartsWith(row.id, filter->id())) {
      continue;
    }
    absl::StatusOr<LoadedPod> pod = LoadPodRow(row);
    if (!pod.ok()) {
      log::Warn("skipping an unreadable pod record",
                {{"pod", row.id}, {"error", std::string(pod.status().message())}});
      continue;
    }
    if (pod->record.state == kPodCreating) continue;  // not a sandbox yet
    v1::PodSandboxState state = CriPodState(pod->record);
    if (filter != nullptr && filter->has_state() && filter->state().state() != state) continue;
    if (filter != nullptr && !MatchesLabels(pod->config.labels(), filter->label_selector())) {
      continue;
    }
    v1::PodSandbox& p = out.emplace_back();
    p.set_id(row.id);
    *p.mutable_metadata() = pod->config.metadata();
    p.set_state(state);
    p.set_created_at(pod->record.created_ns);
    p.mutable_labels()->insert(pod->config.labels().begin(), pod->config.labels().end());
    p.mutable_annotations()->insert(pod->config.annotations().begin(),
                                    pod->config.annotations().end());
    p.set_runtime_handler(pod->record.handler);
  }
  return out;
}

// ---- Containers -----------------------------------------------------------------------------

namespace {

// Kills everything in the container's cgroup and removes the runtime's state, without the
// monitor (it is gone: killed, OOM-killed, or the node is shutting down). Best effort for the
// runtime's state (it may already be gone); the cgroup must end up empty and removed.
absl::Status ForceDeleteWithoutMonitor(const OciCli& oci, const ContainerRecord& r) {
  if (!oci.binary.empty()) {
    std::vector<std::string> args = {oci.binary, "--root", oci.root, "delete", "--force", r.id};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; ++fd)
      posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
    pid_t pid = 0;
    if (::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) == 0) {
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
  absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = manager->Load(r.cgroup_path);
  if (absl::IsNotFound(cg.status())) return absl::OkStatus();
  RETURN_IF_ERROR(cg.status());
  RETURN_IF_ERROR((*cg)->Kill(SIGKILL));
  return (*cg)->Remove(absl::Seconds(10));
}

// Undoes what a container record names, in reverse order of CreateContainer. Idempotent.
absl::Status UndoContainer(images::ImageStore* images, const std::string& pod_dir,
                           const OciCli& oci, ContainerRecord& r) {
  if (r.monitor_created) {
    absl::StatusOr<json> reply = CallMonitor(pod_dir, {{"op", "delete"}, {"id", r.id}});
    if (!reply.ok() && absl::IsUnavailable(reply.status())) {
      RETURN_IF_ERROR(Annotate(ForceDeleteWithoutMonitor(oci, r),
                               "delete the container (its monitor is gone)"));
    } else if (!reply.ok() && !absl::IsNotFound(reply.status())) {
      return Annotate(reply.status(), "delete the container in its monitor");
    }
    r.monitor_created = false;
  }
  if (r.rootfs_mounted) {
    RETURN_IF_ERROR(Unmount(r.dir + "/rootfs"));
    r.rootfs_mounted = false;
  }
  if (r.layers_acquired) {
    std::vector<Digest> chain;
    for (const std::string& c : r.chain_ids) {
      absl::StatusOr<Digest> d = Digest::Parse(c);
      if (d.ok()) chain.push_back(*d);
    }
    RETURN_IF_ERROR(images->ReleaseLayers(chain));
    r.layers_acquired = false;
  }
  RETURN_IF_ERROR(RemoveTree(r.dir));
  RETURN_IF_ERROR(RemoveTree(r.data_dir));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> PodManager::CreateContainer(
    const std::string& requested_pod, const v1::ContainerConfig& config,
    const v1::PodSandboxConfig& /*sandbox: the recorded one is used*/) {
  if (config.metadata().name().empty()) {
    return absl::InvalidArgumentError("container metadata needs a name");
  }
  ASSIGN_OR_RETURN(std::string pod_id, ResolvePodId(store_, requested_pod));
  PodGuard lock(PodLock(pod_id));
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, pod_id));
  if (pod.record.state != kPodReady) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", pod_id, " is not ready: cannot create containers in it"));
  }
  const std::string image_name = config.image().image();
  if (image_name.empty()) return absl::InvalidArgumentError("container image is empty");
  ASSIGN_OR_RETURN(images::ImageRecord image, images_->Resolve(image_name));
  ASSIGN_OR_RETURN(ImageConfig image_config, ParseImageConfig(image.config_json));

  ASSIGN_OR_RETURN(std::string id, RandomId());
  ContainerRecord r;
  r.id = id;
  r.pod_id = pod_id;
  r.created_ns = NowNs();
  r.config = Encode(config);
  r.image_id = image.id.ToString();
  r.image_name = image_name;
  r.image_ref = image.repo_digests.empty() ? image.id.ToString() : image.repo_digests.front();
  for (const Digest& d : image.chain_ids) r.chain_ids.push_back(d.ToString());
  r.dir = absl::StrCat(pod.record.dir, "/containers/", id);
  r.data_dir = absl::StrCat(options_.root, "/containers/", id);
  // The log file is under the pod's log directory as it was recorded at RunPodSandbox; the
  // container's part must stay inside it.
  if (!pod.config.log_directory().empty() && !config.log_path().empty()) {
    const std::string& rel = config.log_path();
    bool bad = rel.front() == '/' || rel.find('\0') != std::string::npos;
    for (absl::string_view part : absl::StrSplit(rel, '/')) bad = bad || part == "..";
    if (bad) {
      return absl::InvalidArgumentError(absl::StrCat(
          "log_path \"", absl::CEscape(rel), "\" must be relative to the pod's log directory"));
    }
    r.log_path = absl::StrCat(pod.config.log_directory(), "/", rel);
  }
  r.cgroup_path = absl::StrCat(pod.record.cgroup_parent, "/", id);
  RETURN_IF_ERROR(SaveContainer(store_, r, config));

  auto fail = [&](absl::string_view step, const absl::Status& st) -> absl::Status {
    absl::Status undo = UndoContainer(images_, pod.record.dir, OciFor(pod.record), r);
    if (undo.ok()) {
      (void)store_->DeleteContainer(id);
    } else {
      (void)SaveContainer(store_, r, config);
      log::Warn("a failed container could not be fully undone; it is kept for a retry",
                {{"container", id}, {"error", std::string(undo.message())}});
    }
    return absl::Status(st.code(), absl::StrCat("CreateContainer: ", step, ": ", st.message()));
  };

  for (const std::string& d :
       {r.dir + "/rootfs", r.data_dir + "/upper", r.data_dir + "/work", r.data_dir + "/volumes"}) {
    if (absl::Status st = MkdirAll(d, 0755); !st.ok()) return fail("directories", st);
  }
  if (!r.log_path.empty()) {
    std::string log_dir = r.log_path.substr(0, r.log_path.find_last_of('/'));
    if (absl::Status st = MkdirAll(log_dir, 0755); !st.ok()) return fail("log directory", st);
  }
  // Layer users are counts, so this one side effect is recorded right after it is made: a
  // crash in between leaks one count per layer (the layers stay until the image's next
  // removal finds them unused), where recording first could release counts never taken
  // and let garbage collection delete layers another container runs on.
  if (absl::Status st = images_->AcquireLayers(image.chain_ids); !st.ok()) {
    return fail("image layers", st);
  }
  r.layers_acquired = true;
  if (absl::Status st = SaveContainer(store_, r, config); !st.ok()) return fail("record", st);
  // overlayfs: the image's layers (top first) under a per-container upper dir.
  std::vector<std::string> lower = images_->LayerPaths(image);
  if (lower.empty()) lower.push_back(r.data_dir + "/volumes");  // an image without layers
  std::string data = absl::StrCat("lowerdir=", absl::StrJoin(lower, ":"), ",upperdir=", r.data_dir,
                                  "/upper,workdir=", r.data_dir, "/work");
  r.rootfs_mounted = true;
  if (absl::Status st = SaveContainer(store_, r, config); !st.ok()) return fail("record", st);
  // volatile: the writable layer is never synced. A container's upper dir does not outlive
  // the container (after a crash of the node it is removed, never mounted again), and syncing
  // it on unmount made RemoveContainer wait for the whole filesystem's dirty data. Kernels
  // before 5.10 do not know the option: mounted without it there.
  std::string rootfs = r.dir + "/rootfs";
  if (::mount("overlay", rootfs.c_str(), "overlay", 0, (data + ",volatile").c_str()) != 0 &&
      (errno != EINVAL || ::mount("overlay", rootfs.c_str(), "overlay", 0, data.c_str()) != 0)) {
    return fail("rootfs", LastErrnoError("mount the overlay rootfs"));
  }

  SpecInputs in;
  in.container = &config;
  in.sandbox = &pod.config;  // as recorded: what the pod was made with
  in.image = image_config;
  in.image_name = image_name;
  in.container_id = id;
  in.sandbox_id = pod_id;
  in.rootfs = r.dir + "/rootfs";
  in.pod_dir = pod.record.dir;
  in.shm_path = pod.record.shm;
  in.netns_path = pod.record.net_pin;
  in.ipc_ns_path = pod.record.ipc_pin;
  in.uts_ns_path = pod.record.uts_pin;
  const v1::NamespaceOption& cns = config.linux().security_context().namespace_options();
  if (cns.pid() == v1::POD) {
    if (!SameProcess(pod.record.monitor.holder_pid, pod.record.monitor.holder_start_time)) {
      return fail("pid namespace",
                  absl::FailedPreconditionError("the pod's shared pid namespace is gone"));
    }
    in.pod_pid_ns_path = absl::StrCat("/proc/", pod.record.monitor.holder_pid, "/ns/pid");
  } else if (cns.pid() == v1::TARGET) {
    absl::StatusOr<LoadedContainer> target = GetContainer(store_, cns.target_id());
    if (target.ok()) Refresh(target->record);
    if (!target.ok() || target->record.pod_id != pod_id || target->record.pid <= 0 ||
        target->record.state != kCtrRunning) {
      return fail("pid namespace", absl::NotFoundError(absl::StrCat(
                                       "target container ", cns.target_id(), " is not running")));
    }
    in.target_pid_ns_path = absl::StrCat("/proc/", target->record.pid, "/ns/pid");
  }
  // Absolute: runc reads a relative cgroupsPath as relative to its own cgroup.
  in.cgroups_path = "/" + r.cgroup_path;
  in.volumes_dir = r.data_dir + "/volumes";
  absl::StatusOr<cgroups::Mode> mode = cgroups::DetectMode();
  in.cgroup_v2 = mode.ok() && *mode == cgroups::Mode::kUnified;
  absl::StatusOr<BuiltSpec> built = BuildSpec(in);
  if (!built.ok()) return fail("OCI spec", built.status());
  for (const std::string& w : built->warnings) log::Warn(w, {{"container", id}});
  r.stop_signal = built->stop_signal;
  if (absl::Status st = WriteFileAtomic(r.dir + "/config.json", built->spec.dump(2), 0644, false);
      !st.ok()) {
    return fail("config.json", st);
  }

  const RuntimeHandler& handler = options_.handlers.at(pod.record.handler);
  json request = {{"op", "create"},          {"id", id},
                  {"bundle", r.dir},         {"dir", r.dir},
                  {"log_path", r.log_path},  {"tty", config.tty()},
                  {"stdin", config.stdin()}, {"stdin_once", config.stdin_once()}};
  if (!handler.binary.empty()) {
    request["runtime"] = handler.binary;
    request["runtime_root"] = handler.root;
  }
  r.monitor_created = true;
  if (absl::Status st = SaveContainer(store_, r, config); !st.ok()) return fail("record", st);
  absl::StatusOr<json> reply = CallMonitor(pod.record.dir, request, absl::Minutes(4));
  if (!reply.ok()) return fail("create", reply.status());
  r.pid = reply->value("pid", 0);
  r.state = kCtrCreated;
  if (absl::Status st = SaveContainer(store_, r, config); !st.ok()) return fail("record", st);
  Emit(v1::CONTAINER_CREATED_EVENT, LoadedContainer{r, config});
  return id;
}

absl::Status PodManager::StartContainer(const std::string& requested) {
  ASSIGN_OR_RETURN(std::string id, ResolveContainerId(store_, requested));
  ASSIGN_OR_RETURN(LoadedContainer c, GetContainer(store_, id));
  PodGuard lock(PodLock(c.record.pod_id));
  ASSIGN_OR_RETURN(c, GetContainer(store_, id));
  if (c.record.state != kCtrCreated) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", id, " is not in the created state"));
  }
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, c.record.pod_id));
  // An exit seen by another call while this one starts the container waits for the STARTED
  // event: the STOPPED one comes after it.
  auto starting = [this, &id](bool on) {
    std::lock_guard<std::mutex> events_lock(stopped_mu_);
    if (on) {
      starting_.insert(id);
    } else {
      starting_.erase(id);
    }
  };
  starting(true);
  absl::StatusOr<json> reply = CallMonitor(pod.record.dir, {{"op", "start"}, {"id", id}});
  if (!reply.ok()) {
    starting(false);
    // A container that failed to start is exited with the error as its message.
    c.record.state = kCtrExited;
    c.record.exit_code = 128;
    c.record.reason = "StartError";
    c.record.message = std::string(reply.status().message());
    c.record.finished_ns = NowNs();
    (void)SaveContainer(store_, c.record, c.config);
    NoteExit(c);
    return Annotate(reply.status(), "StartContainer");
  }
  c.record.state = kCtrRunning;
  c.record.started_ns = reply->value("started_ns", NowNs());
  absl::Status saved = SaveContainer(store_, c.record, c.config);
  if (saved.ok()) Emit(v1::CONTAINER_STARTED_EVENT, c);
  starting(false);
  Refresh(c.record);  // it may have exited already
  NoteExit(c);
  return saved;
}

absl::Status PodManager::StopContainer(const std::string& requested, int64_t timeout_seconds) {
  ASSIGN_OR_RETURN(std::string id, ResolveContainerId(store_, requested));
  ASSIGN_OR_RETURN(LoadedContainer c, GetContainer(store_, id));
  Refresh(c.record);
  if (c.record.state == kCtrExited || c.record.state == kCtrCreating) {
    NoteExit(c);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, c.record.pod_id));
  // Not under the pod lock: a stop waits for the grace period, and other calls for the pod
  // (status, exec, other containers) must go on meanwhile. The monitor serialises the rest.
  // (A grace period of more than a year is a year.)
  const int64_t grace_seconds = std::clamp<int64_t>(timeout_seconds, 0, 365 * 24 * 3600);
  json request = {{"op", "stop"},
                  {"id", id},
                  {"signal", SignalNumber(c.record.stop_signal)},
                  {"timeout_ms", grace_seconds * 1000}};
  absl::StatusOr<json> reply =
      CallMonitor(pod.record.dir, request, absl::Seconds(grace_seconds + 60));
  if (!reply.ok()) {
    if (!absl::IsUnavailable(reply.status())) return Annotate(reply.status(), "StopContainer");
    // The monitor is gone. Whatever it recorded stands; a container it can no longer report
    // on is killed here and recorded as killed.
    if (!ReadExit(c.record.dir)) {
      RETURN_IF_ERROR(Annotate(ForceDeleteWithoutMonitor(OciFor(pod.record), c.record),
                               "StopContainer (the pod's monitor is gone)"));
      json exit = {{"exit_code", 128 + SIGKILL},
                   {"signal", SIGKILL},
                   {"finished_ns", NowNs()},
                   {"oom_killed", false}};
      RETURN_IF_ERROR(WriteFileAtomic(c.record.dir + "/exit", exit.dump(), 0644, true));
    }
    PodGuard lock(PodLock(c.record.pod_id));
    ASSIGN_OR_RETURN(c, GetContainer(store_, id));
    Refresh(c.record);
    RETURN_IF_ERROR(SaveContainer(store_, c.record, c.config));
    NoteExit(c);
    return absl::OkStatus();
  }
  // A created container that never ran has no exit record from an exec'd process: it is
  // recorded as exited here.
  PodGuard lock(PodLock(c.record.pod_id));
  ASSIGN_OR_RETURN(c, GetContainer(store_, id));
  Refresh(c.record);
  if (c.record.state == kCtrCreated) {
    c.record.state = kCtrExited;
    c.record.finished_ns = NowNs();
    c.record.exit_code = 137;
    c.record.reason = "Error";
  }
  RETURN_IF_ERROR(SaveContainer(store_, c.record, c.config));
  NoteExit(c);
  return absl::OkStatus();
}

absl::Status PodManager::RemoveContainer(const std::string& requested) {
  absl::StatusOr<std::string> resolved = ResolveContainerId(store_, requested);
  if (absl::IsNotFound(resolved.status())) return absl::OkStatus();
  RETURN_IF_ERROR(resolved.status());
  const std::string id = *resolved;
  ASSIGN_OR_RETURN(LoadedContainer c, GetContainer(store_, id));
  Refresh(c.record);
  if (c.record.state == kCtrRunning || c.record.state == kCtrCreated) {
    RETURN_IF_ERROR(StopContainer(id, 0));
  }
  PodGuard lock(PodLock(c.record.pod_id));
  absl::StatusOr<LoadedContainer> again = GetContainer(store_, id);
  if (absl::IsNotFound(again.status())) return absl::OkStatus();
  RETURN_IF_ERROR(again.status());
  c = *std::move(again);
  Refresh(c.record);
  NoteExit(c);  // a STOPPED event always precedes the DELETED one
  const LoadedContainer last_known = c;
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, c.record.pod_id));
  absl::Status st = UndoContainer(images_, pod.record.dir, OciFor(pod.record), c.record);
  if (!st.ok()) {
    (void)SaveContainer(store_, c.record, c.config);
    return Annotate(st, "RemoveContainer");
  }
  RETURN_IF_ERROR(store_->DeleteContainer(id));
  Emit(v1::CONTAINER_DELETED_EVENT, last_known);
  Forget(id);
  return absl::OkStatus();
}

absl::StatusOr<v1::ContainerStatusResponse> PodManager::ContainerStatus(
    const std::string& requested, bool verbose) {
  ASSIGN_OR_RETURN(std::string id, ResolveContainerId(store_, requested));
  ASSIGN_OR_RETURN(LoadedContainer c, GetContainer(store_, id));
  Refresh(c.record);
  NoteExit(c);
  v1::ContainerStatusResponse resp;
  *resp.mutable_status() = records::ContainerStatusMessage(c);
  if (verbose) {
    json info = c.record;
    info.erase("config");
    (*resp.mutable_info())["info"] = info.dump();
  }
  return resp;
}

absl::StatusOr<std::vector<v1::Container>> PodManager::ListContainers(
    const v1::ContainerFilter* filter) {
  ASSIGN_OR_RETURN(std::vector<ContainerRow> rows, store_->ListContainers());
  std::vector<v1::Container> out;
  for (const ContainerRow& row : rows) {
    if (filter != nullptr && !MatchesIdAndPod(row, filter->id(), filter->pod_sandbox_id())) {
      continue;
    }
    absl::StatusOr<LoadedContainer> c = LoadContainerRow(row);
    if (!c.ok()) {
      log::Warn("skipping an unreadable container record",
                {{"container", row.id}, {"error", std::string(c.status().message())}});
      continue;
    }
    if (c->record.state == kCtrCreating) continue;
    Refresh(c->record);
    NoteExit(*c);
    v1::ContainerState state = c->record.state == kCtrCreated   ? v1::CONTAINER_CREATED
                               : c->record.state == kCtrRunning ? v1::CONTAINER_RUNNING
                                                                : v1::CONTAINER_EXITED;
    if (filter != nullptr && filter->has_state() && filter->state().state() != state) continue;
    if (filter != nullptr && !MatchesLabels(c->config.labels(), filter->label_selector())) {
      continue;
    }
    v1::Container& o = out.emplace_back();
    o.set_id(row.id);
    o.set_pod_sandbox_id(row.pod_id);
    *o.mutable_metadata() = c->config.metadata();
    *o.mutable_image() = c->config.image();
    o.set_image_ref(c->record.image_ref);
    o.set_image_id(c->record.image_id);
    o.set_state(state);
    o.set_created_at(c->record.created_ns);
    o.mutable_labels()->insert(c->config.labels().begin(), c->config.labels().end());
    o.mutable_annotations()->insert(c->config.annotations().begin(), c->config.annotations().end());
  }
  return out;
}

absl::Status PodManager::ReopenContainerLog(const std::string& requested) {
  ASSIGN_OR_RETURN(std::string id, ResolveContainerId(store_, requested));
  ASSIGN_OR_RETURN(LoadedContainer c, GetContainer(store_, id));
  Refresh(c.record);
  if (c.record.state != kCtrRunning) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " is not running"));
  }
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, c.record.pod_id));
  return CallMonitor(pod.record.dir, {{"op", "reopen_log"}, {"id", id}}).status();
}

absl::Status PodManager::UpdateContainerResources(const std::string& requested,
                                                  const v1::LinuxContainerResources& update) {
  ASSIGN_OR_RETURN(std::string id, ResolveContainerId(store_, requested));
  ASSIGN_OR_RETURN(LoadedContainer c, GetContainer(store_, id));
  PodGuard lock(PodLock(c.record.pod_id));
  ASSIGN_OR_RETURN(c, GetContainer(store_, id));
  Refresh(c.record);
  NoteExit(c);
  if (c.record.state != kCtrRunning && c.record.state != kCtrCreated) {
    return absl::FailedPreconditionError(absl::StrCat(
        "UpdateContainerResources: container ", id, " is ",
        c.record.state == kCtrExited ? "not running (exited)" : "still being created"));
  }
  ASSIGN_OR_RETURN(cgroups::Manager * manager, Cgroups());
  const bool v2 = manager->mode() == cgroups::Mode::kUnified;
  // The request alone first, so that an error names what the caller sent.
  RETURN_IF_ERROR(Annotate(ToCgroupResources(update, v2).status(), "UpdateContainerResources"));
  v1::LinuxContainerResources merged = MergeResources(c.config.linux().resources(), update);
  std::vector<std::string> warnings;
  absl::StatusOr<cgroups::Resources> resources = ToCgroupResources(merged, v2, &warnings);
  if (!resources.ok()) return Annotate(resources.status(), "UpdateContainerResources");
  for (const std::string& w : warnings) log::Warn(w, {{"container", id}});
  absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = manager->Load(c.record.cgroup_path);
  if (absl::IsNotFound(cg.status())) {
    return absl::FailedPreconditionError(absl::StrCat("UpdateContainerResources: the cgroup ",
                                                      c.record.cgroup_path, " of container ", id,
                                                      " is gone"));
  }
  if (!cg.ok()) return Annotate(cg.status(), "UpdateContainerResources");
  RETURN_IF_ERROR(
      Annotate((*cg)->Apply(*resources),
               absl::StrCat("UpdateContainerResources: cgroup ", c.record.cgroup_path)));
  *c.config.mutable_linux()->mutable_resources() = merged;
  c.record.config = Encode(c.config);
  RETURN_IF_ERROR(SaveContainer(store_, c.record, c.config));
  log::Info("container resources updated", {{"container", id}});
  return absl::OkStatus();
}

namespace {

// Reads both pipes until EOF or the deadline; output beyond `cap` per stream is dropped.
// Reads both pipes until they close or the deadline; output beyond `cap` per stream is
// dropped. The process (`pidfd`) is watched too: once it has exited, what is left in the pipes
// is read for at most 100 ms more, so a background child that keeps them open cannot hold the
// call (nor, with no timeout, hang it).
void Collect(int out_fd, int err_fd, int pidfd, size_t cap, absl::Time deadline, std::string* out,
             std::string* err, bool* timed_out) {
  struct pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
  std::string* sinks[2] = {out, err};
  int open = 2;
  while (open > 0) {
    int ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (left <= 0) {
        *timed_out = fds[2].fd >= 0;  // the process still runs
        return;
      }
      ms = static_cast<int>(std::min<int64_t>(left, 1 << 30));
    }
    int n = ::poll(fds, 3, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    if (fds[2].fd >= 0 && fds[2].revents != 0) {
      fds[2].fd = -1;  // exited: drain a little longer, then stop
      deadline = std::min(deadline, absl::Now() + absl::Milliseconds(100));
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      size_t room = cap > sinks[i]->size() ? cap - sinks[i]->size() : 0;
      sinks[i]->append(buf, std::min(room, static_cast<size_t>(r)));
    }
  }
}

}  // namespace

absl::StatusOr<LoadedContainer> PodManager::RunningContainer(const std::string& requested) {
  ASSIGN_OR_RETURN(std::string id, ResolveContainerId(store_, requested));
  ASSIGN_OR_RETURN(LoadedContainer c, GetContainer(store_, id));
  Refresh(c.record);
  NoteExit(c);
  if (c.record.state != kCtrRunning) {
    return absl::FailedPreconditionError(absl::StrCat("container ", id, " is not running"));
  }
  return c;
}

absl::StatusOr<ExecSyncResult> PodManager::ExecSync(const std::string& requested,
                                                    const std::vector<std::string>& cmd,
                                                    absl::Duration timeout) {
  if (cmd.empty()) return absl::InvalidArgumentError("ExecSync: cmd is empty");
  ASSIGN_OR_RETURN(LoadedContainer c, RunningContainer(requested));
  const std::string& id = c.record.id;
  ASSIGN_OR_RETURN(LoadedPod pod, GetPod(store_, c.record.pod_id));
  const RuntimeHandler& handler = options_.handlers.at(pod.record.handler);
  // The OCI runtime's own exec: the process joins every namespace and the cgroup of the
  // container and gets its security settings (runc exec / berth-oci exec).
  std::string binary = handler.binary.empty() ? options_.oci_binary : handler.binary;
  std::string root = handler.binary.empty() ? options_.state + "/runtime" : handler.root;
  ASSIGN_OR_RETURN(std::string nonce, RandomId());
  std::string pid_file = absl::StrCat(c.record.dir, "/exec-", nonce.substr(0, 16), ".pid");
  std::vector<std::string> args = {binary, "--root", root, "exec", "--pid-file", pid_file, id};
  if (!handler.binary.empty()) {
    // An external runtime's foreground exec would wait for every writer of its output pipes:
    // berth-monitor runs `exec --detach` as a subreaper and waits for the process instead.
    args = {options_.monitor_binary, "exec-wait", binary, root, pid_file, id};
  }
  args.insert(args.end(), cmd.begin(), cmd.end());

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return LastErrnoError("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return LastErrnoError("pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);
  ASSIGN_OR_RETURN(pid_t pid, Spawn(args, -1, out_w.get(), err_w.get()));
  out_w.reset();
  err_w.reset();
  absl::Cleanup remove_pid_file = [&pid_file] { ::unlink(pid_file.c_str()); };
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return LastErrnoError("pidfd_open");
  }
  ExecSyncResult result;
  bool timed_out = false;
  absl::Time deadline =
      timeout > absl::ZeroDuration() ? absl::Now() + timeout : absl::InfiniteFuture();
  Collect(out_r.get(), err_r.get(), pidfd.get(), options_.exec_sync_max_output, deadline,
          &result.stdout_data, &result.stderr_data, &timed_out);
  if (timed_out) {
    // The exec'd process goes first (it is not the runtime's child once detached), then the
    // runtime that waits for it.
    absl::StatusOr<std::string> text = ReadFile(pid_file, 64);
    int target = 0;
    if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &target) && target > 0) {
      ::kill(target, SIGKILL);
    }
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat("ExecSync: command ", absl::StrJoin(cmd, " "),
                                                    " timed out after ",
                                                    absl::FormatDuration(timeout)));
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

// ---- Recovery -------------------------------------------------------------------------------

absl::Status PodManager::Recover() {
  ASSIGN_OR_RETURN(std::vector<ContainerRow> containers, store_->ListContainers());
  for (const ContainerRow& row : containers) {
    absl::StatusOr<LoadedContainer> c = LoadContainerRow(row);
    if (!c.ok()) {
      log::Warn("unreadable container record", {{"container", row.id}});
      continue;
    }
    ContainerRecord& r = c->record;
    if (r.state == kCtrCreating) {
      // Half-created when berthd stopped: undone.
      absl::StatusOr<LoadedPod> pod = GetPod(store_, r.pod_id);
      std::string pod_dir = pod.ok() ? pod->record.dir : "";
      absl::Status st =
          UndoContainer(images_, pod_dir, pod.ok() ? OciFor(pod->record) : OciFor(PodRecord{}), r);
      if (st.ok()) st = store_->DeleteContainer(r.id);
      if (!st.ok()) {
        (void)SaveContainer(store_, r, c->config);
        log::Warn("could not undo a half-created container",
                  {{"container", r.id}, {"error", std::string(st.message())}});
      } else {
        log::Info("undid a half-created container", {{"container", r.id}});
      }
      continue;
    }
    Refresh(r);
    if ((r.state == kCtrRunning || r.state == kCtrCreated) && !Exists(r.dir)) {
      // The run dir is gone (a reboot): the container cannot be running.
      r.state = kCtrExited;
      r.exit_code = 255;
      r.reason = "Unknown";
      r.message = "the node restarted";
    }
    (void)SaveContainer(store_, r, c->config);
    // No one was subscribed to hear about the exits before now.
    if (r.state == kCtrExited) {
      std::lock_guard<std::mutex> lock(stopped_mu_);
      stopped_sent_.insert(r.id);
    }
  }
  ASSIGN_OR_RETURN(std::vector<PodRow> pods, store_->ListPods());
  for (const PodRow& row : pods) {
    absl::StatusOr<LoadedPod> pod = LoadPodRow(row);
    if (!pod.ok()) continue;
    PodRecord& r = pod->record;
    if (r.state == kPodCreating) {
      absl::Status st = UndoPod(store_, network_, *pod, true);
      if (st.ok()) st = store_->DeletePod(r.id);
      if (!st.ok()) {
        log::Warn("could not undo a half-created pod",
                  {{"pod", r.id}, {"error", std::string(st.message())}});
      } else {
        log::Info("undid a half-created pod", {{"pod", r.id}});
      }
      continue;
    }
    if (r.state == kPodReady && !SameProcess(r.monitor.pid, r.monitor.start_time)) {
      log::Warn("the pod's monitor is gone; the pod is not ready", {{"pod", r.id}});
      r.state = kPodNotReady;
      (void)SavePod(store_, r, pod->config);
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::cri

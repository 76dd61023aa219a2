// ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats: cgroup counters
// (cgroups library), the writable layer's disk usage and the pod network's interface counters.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "cgroups/cgroup.h"
#include "cri/pod_manager.h"
#include "cri/pod_records.h"
#include "cri/stats_util.h"

namespace berth::cri {
namespace {

using records::kCtrCreating;
using records::kPodCreating;
using records::kPodReady;
using records::LoadedContainer;
using records::LoadedPod;

// v1 reports an unlimited memory.limit_in_bytes as PAGE_COUNTER_MAX pages; v2 "max".
bool Unlimited(uint64_t limit) {
  return limit == 0 || limit >= (uint64_t{1} << 62);
}

void FillMemory(const cgroups::Stats& s, int64_t now, v1::MemoryUsage* m) {
  m->set_timestamp(now);
  m->mutable_working_set_bytes()->set_value(s.memory.working_set);
  m->mutable_usage_bytes()->set_value(s.memory.usage);
  m->mutable_rss_bytes()->set_value(s.memory.rss);
  m->mutable_page_faults()->set_value(s.memory.page_faults);
  m->mutable_major_page_faults()->set_value(s.memory.major_page_faults);
  if (!Unlimited(s.memory.limit)) {
    m->mutable_available_bytes()->set_value(
        s.memory.limit > s.memory.working_set ? s.memory.limit - s.memory.working_set : 0);
  }
}

void FillInterface(const InterfaceCounters& c, v1::NetworkInterfaceUsage* u) {
  u->set_name(c.name);
  u->mutable_rx_bytes()->set_value(c.rx_bytes);
  u->mutable_rx_errors()->set_value(c.rx_errors);
  u->mutable_tx_bytes()->set_value(c.tx_bytes);
  u->mutable_tx_errors()->set_value(c.tx_errors);
}

// The stats of a cgroup that may be gone (an exited container's): nullopt then.
std::optional<cgroups::Stats> CgroupStats(cgroups::Manager* manager, const std::string& path,
                                          absl::string_view whose) {
  if (manager == nullptr || path.empty()) return std::nullopt;
  absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> cg = manager->Load(path);
  if (!cg.ok()) {
    if (!absl::IsNotFound(cg.status())) {
      log::Debug("no cgroup stats",
                 {{"of", std::string(whose)}, {"error", std::string(cg.status().message())}});
    }
    return std::nullopt;
  }
  absl::StatusOr<cgroups::Stats> stats = (*cg)->GetStats();
  if (!stats.ok()) {
    log::Debug("no cgroup stats",
               {{"of", std::string(whose)}, {"error", std::string(stats.status().message())}});
    return std::nullopt;
  }
  return *std::move(stats);
}

}  // namespace

uint64_t PodManager::NanoCores(const std::string& id, int64_t timestamp_ns, uint64_t usage_ns) {
  std::lock_guard<std::mutex> lock(samples_mu_);
  auto [it, first] = cpu_samples_.try_emplace(id, CpuSample{timestamp_ns, usage_ns});
  if (first) return 0;
  const CpuSample prev = it->second;
  it->second = CpuSample{timestamp_ns, usage_ns};
  if (timestamp_ns <= prev.timestamp_ns || usage_ns < prev.usage_ns) return 0;
  const unsigned __int128 used = usage_ns - prev.usage_ns;
  return static_cast<uint64_t>(used * 1000000000u /
                               static_cast<uint64_t>(timestamp_ns - prev.timestamp_ns));
}

v1::ContainerStats PodManager::BuildContainerStats(const LoadedContainer& c) {
  const records::ContainerRecord& r = c.record;
  v1::ContainerStats s;
  v1::ContainerAttributes* a = s.mutable_attributes();
  a->set_id(r.id);
  *a->mutable_metadata() = c.config.metadata();
  a->mutable_labels()->insert(c.config.labels().begin(), c.config.labels().end());
  a->mutable_annotations()->insert(c.config.annotations().begin(), c.config.annotations().end());

  absl::StatusOr<cgroups::Manager*> manager = Cgroups();
  const int64_t now = records::NowNs();
  std::optional<cgroups::Stats> cg =
      CgroupStats(manager.ok() ? *manager : nullptr, r.cgroup_path, r.id);
  if (cg) {
    v1::CpuUsage* cpu = s.mutable_cpu();
    cpu->set_timestamp(now);
    cpu->mutable_usage_core_nano_seconds()->set_value(cg->cpu.usage_ns);
    cpu->mutable_usage_nano_cores()->set_value(NanoCores(r.id, now, cg->cpu.usage_ns));
    FillMemory(*cg, now, s.mutable_memory());
    s.mutable_swap()->set_timestamp(now);
    s.mutable_swap()->mutable_swap_usage_bytes()->set_value(cg->memory.swap);
  }
  if (!r.data_dir.empty()) {
    const std::string upper = r.data_dir + "/upper";
    absl::StatusOr<DiskUsage> du = WalkDiskUsage(upper);
    if (du.ok()) {
      v1::FilesystemUsage* fs = s.mutable_writable_layer();
      fs->set_timestamp(records::NowNs());
      fs->mutable_fs_id()->set_mountpoint(upper);
      fs->mutable_used_bytes()->set_value(du->bytes);
      fs->mutable_inodes_used()->set_value(du->inodes);
    } else if (!absl::IsNotFound(du.status())) {
      log::Debug("no writable layer usage",
                 {{"container", r.id}, {"error", std::string(du.status().message())}});
    }
  }
  return s;
}

v1::PodSandboxStats PodManager::BuildPodStats(const LoadedPod& pod) {
  const records::PodRecord& r = pod.record;
  v1::PodSandboxStats s;
  v1::PodSandboxAttributes* a = s.mutable_attributes();
  a->set_id(r.id);
  *a->mutable_metadata() = pod.config.metadata();
  a->mutable_labels()->insert(pod.config.labels().begin(), pod.config.labels().end());
  a->mutable_annotations()->insert(pod.config.annotations().begin(),
                                   pod.config.annotations().end());
  v1::LinuxPodSandboxStats* linux = s.mutable_linux();

  absl::StatusOr<cgroups::Manager*> manager = Cgroups();
  const int64_t now = records::NowNs();
  std::optional<cgroups::Stats> cg =
      CgroupStats(manager.ok() ? *manager : nullptr, r.cgroup_parent, r.id);
  if (cg) {
    v1::CpuUsage* cpu = linux->mutable_cpu();
    cpu->set_timestamp(now);
    cpu->mutable_usage_core_nano_seconds()->set_value(cg->cpu.usage_ns);
    cpu->mutable_usage_nano_cores()->set_value(NanoCores(r.id, now, cg->cpu.usage_ns));
    FillMemory(*cg, now, linux->mutable_memory());
  }

  std::vector<LoadedContainer> containers;
  if (absl::StatusOr<std::vector<ContainerRow>> rows = store_->ListPodContainers(r.id); rows.ok()) {
    for (const ContainerRow& row : *rows) {
      absl::StatusOr<LoadedContainer> c = records::LoadContainerRow(row);
      if (!c.ok() || c->record.state == kCtrCreating) continue;
      records::Refresh(c->record);
      NoteExit(*c);
      containers.push_back(*std::move(c));
    }
  }

  // Processes: the pids controller counts the whole subtree; without it, each container
  // cgroup's members.
  uint64_t processes = cg ? cg->pids.current : 0;
  if (processes == 0 && manager.ok()) {
    for (const LoadedContainer& c : containers) {
      absl::StatusOr<std::unique_ptr<cgroups::Cgroup>> ccg = (*manager)->Load(c.record.cgroup_path);
      if (!ccg.ok()) continue;
      absl::StatusOr<std::vector<pid_t>> pids = (*ccg)->Processes();
      if (pids.ok()) processes += pids->size();
    }
  }
  linux->mutable_process()->set_timestamp(now);
  linux->mutable_process()->mutable_process_count()->set_value(processes);

  if (!r.net_pin.empty() && r.state != kPodCreating) {
    absl::StatusOr<std::vector<InterfaceCounters>> ifaces = ReadNamespaceInterfaces(r.net_pin);
    if (ifaces.ok()) {
      v1::NetworkUsage* net = linux->mutable_network();
      net->set_timestamp(records::NowNs());
      for (const InterfaceCounters& i : *ifaces) {
        FillInterface(i,
                      i.name == "eth0" ? net->mutable_default_interface() : net->add_interfaces());
      }
    } else {
      log::Debug("no network stats",
                 {{"pod", r.id}, {"error", std::string(ifaces.status().message())}});
    }
  }

  for (const LoadedContainer& c : containers) *linux->add_containers() = BuildContainerStats(c);
  return s;
}

absl::StatusOr<v1::ContainerStats> PodManager::ContainerStats(const std::string& requested) {
  ASSIGN_OR_RETURN(std::string id, records::ResolveContainerId(store_, requested));
  ASSIGN_OR_RETURN(LoadedContainer c, records::GetContainer(store_, id));
  if (c.record.state == kCtrCreating) {
    return absl::NotFoundError(absl::StrCat("container ", id, " is still being created"));
  }
  records::Refresh(c.record);
  NoteExit(c);
  return BuildContainerStats(c);
}

absl::StatusOr<std::vector<v1::ContainerStats>> PodManager::ListContainerStats(
    const v1::ContainerStatsFilter* filter) {
  ASSIGN_OR_RETURN(std::vector<ContainerRow> rows, store_->ListContainers());
  std::vector<v1::ContainerStats> out;
  for (const ContainerRow& row : rows) {
    if (filter != nullptr &&
        !records::MatchesIdAndPod(row, filter->id(), filter->pod_sandbox_id())) {
      continue;
    }
    absl::StatusOr<LoadedContainer> c = records::LoadContainerRow(row);
    if (!c.ok()) {
      log::Warn("skipping an unreadable container record",
                {{"container", row.id}, {"error", std::string(c.status().message())}});
      continue;
    }
    if (c->record.state == kCtrCreating) continue;
    if (filter != nullptr &&
        !records::MatchesLabels(c->config.labels(), filter->label_selector())) {
      continue;
    }
    records::Refresh(c->record);
    NoteExit(*c);
    out.push_back(BuildContainerStats(*c));
  }
  return out;
}

absl::StatusOr<v1::PodSandboxStats> PodManager::PodSandboxStats(const std::string& requested) {
  ASSIGN_OR_RETURN(std::string id, records::ResolvePodId(store_, requested));
  ASSIGN_OR_RETURN(LoadedPod pod, records::GetPod(store_, id));
  if (pod.record.state == kPodCreating) {
    return absl::NotFoundError(absl::StrCat("pod sandbox ", id, " is still being created"));
  }
  return BuildPodStats(pod);
}

absl::StatusOr<std::vector<v1::PodSandboxStats>> PodManager::ListPodSandboxStats(
    const v1::PodSandboxStatsFilter* filter) {
  ASSIGN_OR_RETURN(std::vector<PodRow> rows, store_->ListPods());
  std::vector<v1::PodSandboxStats> out;
  for (const PodRow& row : rows) {
    if (filter != nullptr && !filter->id().empty() && !absl::StartsWith(row.id, filter->id())) {
      continue;
    }
    absl::StatusOr<LoadedPod> pod = records::LoadPodRow(row);
    if (!pod.ok()) {
      log::Warn("skipping an unreadable pod record",
                {{"pod", row.id}, {"error", std::string(pod.status().message())}});
      continue;
    }
    // Stats are for running sandboxes (as the kubelet asks for them).
    if (pod->record.state != kPodReady) continue;
    if (filter != nullptr &&
        !records::MatchesLabels(pod->config.labels(), filter->label_selector())) {
      continue;
    }
    out.push_back(BuildPodStats(*pod));
  }
  return out;
}

}  // namespace berth::cri

#include "cri/container_resources.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth::cri {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("linux.", field, ": ", why));
}

bool ValidPageSize(const std::string& size) {
  size_t digits = 0;
  while (digits < size.size() && absl::ascii_isdigit(static_cast<unsigned char>(size[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits == size.size() || size.size() > 16) return false;
  for (size_t k = digits; k < size.size(); ++k) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(size[k]))) return false;
  }
  return true;
}

bool SingleLine(absl::string_view s) {
  return s.find('\n') == absl::string_view::npos && s.find('\0') == absl::string_view::npos;
}

}  // namespace

absl::StatusOr<cgroups::Resources> ToCgroupResources(const v1::LinuxContainerResources& r,
                                                     bool cgroup_v2,
                                                     std::vector<std::string>* warnings) {
  cgroups::Resources out;
  auto warn = [&](std::string w) {
    if (warnings != nullptr) warnings->push_back(std::move(w));
  };

  if (r.cpu_shares() < 0)
    return Invalid("cpu_shares", absl::StrCat(r.cpu_shares(), " is negative"));
  if (r.cpu_shares() > 0) {
    int64_t shares = std::clamp<int64_t>(r.cpu_shares(), 2, 262144);
    if (shares != r.cpu_shares()) {
      warn(absl::StrCat("linux.cpu_shares ", r.cpu_shares(), " clamped to ", shares));
    }
    out.cpu.shares = static_cast<uint64_t>(shares);
  }
  // The kernel's CFS bandwidth bounds: a period of 1 ms .. 1 s, a quota of at least 1 ms.
  if (r.cpu_period() < 0) {
    return Invalid("cpu_period", absl::StrCat(r.cpu_period(), " is negative"));
  }
  if (r.cpu_period() > 0) {
    if (r.cpu_period() < 1000) {
      return Invalid("cpu_period", absl::StrCat(r.cpu_period(), " is below 1000 (1 ms)"));
    }
    if (r.cpu_period() > 1000000) {
      return Invalid("cpu_period", absl::StrCat(r.cpu_period(), " is above 1000000 (1 s)"));
    }
    out.cpu.period = static_cast<uint64_t>(r.cpu_period());
  }
  if (r.cpu_quota() < -1) return Invalid("cpu_quota", absl::StrCat(r.cpu_quota(), " is negative"));
  if (r.cpu_quota() > 0 && r.cpu_quota() < 1000) {
    return Invalid("cpu_quota", absl::StrCat(r.cpu_quota(), " is below 1000 (1 ms)"));
  }
  if (r.cpu_quota() != 0) out.cpu.quota = r.cpu_quota();
  for (const auto& [list, name] :
       {std::pair{&r.cpuset_cpus(), "cpuset_cpus"}, std::pair{&r.cpuset_mems(), "cpuset_mems"}}) {
    if (list->empty()) continue;
    absl::Status valid = cgroups::ValidateCpuList(*list, name);
    if (!valid.ok()) return Invalid(name, valid.message());
  }
  out.cpu.cpus = r.cpuset_cpus();
  out.cpu.mems = r.cpuset_mems();

  if (r.memory_limit_in_bytes() < 0) {
    return Invalid("memory_limit_in_bytes",
                   absl::StrCat(r.memory_limit_in_bytes(), " is negative"));
  }
  if (r.memory_limit_in_bytes() > 0) out.memory.limit = r.memory_limit_in_bytes();
  if (r.memory_swap_limit_in_bytes() < -1) {
    return Invalid("memory_swap_limit_in_bytes",
                   absl::StrCat(r.memory_swap_limit_in_bytes(), " is negative"));
  }
  if (r.memory_swap_limit_in_bytes() > 0 && r.memory_limit_in_bytes() > 0 &&
      r.memory_swap_limit_in_bytes() < r.memory_limit_in_bytes()) {
    return Invalid(
        "memory_swap_limit_in_bytes",
        absl::StrCat(r.memory_swap_limit_in_bytes(), " is below memory_limit_in_bytes ",
                     r.memory_limit_in_bytes(), " (it counts memory and swap together)"));
  }
  if (r.memory_swap_limit_in_bytes() != 0) out.memory.swap = r.memory_swap_limit_in_bytes();

  for (int i = 0; i < r.hugepage_limits_size(); ++i) {
    const v1::HugepageLimit& h = r.hugepage_limits(i);
    std::string field = absl::StrCat("hugepage_limits[", i, "].page_size");
    if (!ValidPageSize(h.page_size())) {
      return Invalid(field, absl::StrCat("\"", h.page_size(), "\" is not a page size like 2MB"));
    }
    if (!out.hugepage_limits.emplace(h.page_size(), h.limit()).second) {
      return Invalid(field, absl::StrCat("duplicate page size \"", h.page_size(), "\""));
    }
  }

  if (!r.unified().empty()) {
    if (!cgroup_v2) return Invalid("unified", "needs the unified cgroup hierarchy (cgroup v2)");
    for (const auto& [key, value] : r.unified()) {
      std::string field = absl::StrCat("unified[\"", key, "\"]");
      if (!SingleLine(key) || !SingleLine(value)) return Invalid(field, "must be a single line");
      absl::Status valid = cgroups::ValidateUnifiedKey(key);
      if (!valid.ok()) return Invalid(field, valid.message());
      out.unified[key] = value;
    }
  }
  return out;
}

v1::LinuxContainerResources MergeResources(const v1::LinuxContainerResources& current,
                                           const v1::LinuxContainerResources& update) {
  v1::LinuxContainerResources m = current;
  if (update.cpu_period() != 0) m.set_cpu_period(update.cpu_period());
  if (update.cpu_quota() != 0) m.set_cpu_quota(update.cpu_quota());
  if (update.cpu_shares() != 0) m.set_cpu_shares(update.cpu_shares());
  if (update.memory_limit_in_bytes() != 0) {
    m.set_memory_limit_in_bytes(update.memory_limit_in_bytes());
  }
  if (update.memory_swap_limit_in_bytes() != 0) {
    m.set_memory_swap_limit_in_bytes(update.memory_swap_limit_in_bytes());
  }
  if (!update.cpuset_cpus().empty()) m.set_cpuset_cpus(update.cpuset_cpus());
  if (!update.cpuset_mems().empty()) m.set_cpuset_mems(update.cpuset_mems());
  if (update.hugepage_limits_size() > 0) {
    std::map<std::string, uint64_t> pages;
    for (const v1::HugepageLimit& h : current.hugepage_limits()) pages[h.page_size()] = h.limit();
    for (const v1::HugepageLimit& h : update.hugepage_limits()) pages[h.page_size()] = h.limit();
    m.clear_hugepage_limits();
    for (const auto& [size, limit] : pages) {
      v1::HugepageLimit* h = m.add_hugepage_limits();
      h->set_page_size(size);
      h->set_limit(limit);
    }
  }
  for (const auto& [key, value] : update.unified()) (*m.mutable_unified())[key] = value;
  return m;
}

}  // namespace berth::cri

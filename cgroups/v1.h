// The cgroup v1 driver, for hybrid and legacy hosts: one directory per controller hierarchy.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cgroups/cgroup.h"

namespace berth::cgroups {

// Controller name -> mount point of its v1 hierarchy, from /proc/self/mountinfo text.
std::map<std::string, std::string> ParseV1Mounts(absl::string_view mountinfo);

class V1Manager final : public Manager {
 public:
  // `mounts`: controller -> hierarchy mount point (co-mounted controllers share one).
  explicit V1Manager(Mode mode, std::map<std::string, std::string> mounts);
  static absl::StatusOr<std::unique_ptr<V1Manager>> FromHost(Mode mode);

  Mode mode() const override { return mode_; }
  absl::StatusOr<std::unique_ptr<Cgroup>> Create(const std::string& path,
                                                 const Resources& resources) override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Load(const std::string& path) override;
  std::vector<std::string> Controllers() const override;

 private:
  Mode mode_;
  std::map<std::string, std::string> mounts_;
};

}  // namespace berth::cgroups

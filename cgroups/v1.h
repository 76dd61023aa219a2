// The cgroup v1 driver, for hybrid and legacy hosts: one directory per controller hierarchy.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

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

  // Hierarchies without resource controllers: the cgroup2 mount of a hybrid host
  // (/sys/fs/cgroup/unified) and named v1 hierarchies (name=systemd). berth puts nothing
  // there, but runc (the runc handler) mirrors its cgroups into them, creating the parents
  // too; a cgroup's Remove() also removes its directories there.
  void set_extra_mounts(std::vector<std::string> mounts) { extra_mounts_ = std::move(mounts); }

 private:
  std::vector<std::string> ExtraDirs(const std::string& rel) const;
  Mode mode_;
  std::map<std::string, std::string> mounts_;
  std::vector<std::string> extra_mounts_;
};

}  // namespace berth::cgroups

// The cgroup v2 driver, for unified hosts: one hierarchy at the root (default /sys/fs/cgroup),
// controllers enabled per level through cgroup.subtree_control.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cgroups/cgroup.h"

namespace berth::cgroups {

class V2Manager final : public Manager {
 public:
  // `root`: the cgroup2 mount point.
  explicit V2Manager(std::string root = "/sys/fs/cgroup");

  Mode mode() const override { return Mode::kUnified; }
  // Creates each missing level, enabling in every ancestor (root included, only when needed)
  // the controllers the resources use, then applies them.
  absl::StatusOr<std::unique_ptr<Cgroup>> Create(const std::string& path,
                                                 const Resources& resources) override;
  absl::StatusOr<std::unique_ptr<Cgroup>> Load(const std::string& path) override;
  // The root's cgroup.controllers.
  std::vector<std::string> Controllers() const override;

 private:
  std::string root_;
};

}  // namespace berth::cgroups

// Running one CNI plugin binary: environment, stdin, stdout/stderr capture, a timeout.
// Behind an interface so that the CNI protocol logic can be tested with scripted plugins.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace berth::network {

struct PluginRun {
  std::string path;              // absolute path of the plugin binary
  std::vector<std::string> env;  // complete environment, "K=V"
  std::string stdin_data;        // the network config
  absl::Duration timeout = absl::Seconds(60);
};

struct PluginOutput {
  int exit_code = -1;
  std::string out;  // stdout (result or error object), capped
  std::string err;  // stderr, capped
  absl::Duration elapsed;
};

class PluginExecutor {
 public:
  virtual ~PluginExecutor() = default;
  // Runs the plugin to completion. An error status only when it could not be run or timed out
  // (DeadlineExceeded, after killing its process group); a plugin that ran and failed is an
  // OK status with a non-zero exit code.
  virtual absl::StatusOr<PluginOutput> Run(const PluginRun& run) = 0;
};

// The real one: posix_spawn in a new process group, pipes polled together so neither side can
// block the other, SIGKILL to the whole group on timeout.
class ProcessPluginExecutor final : public PluginExecutor {
 public:
  static constexpr size_t kMaxStdout = 1 << 20;
  static constexpr size_t kMaxStderr = 64 << 10;
  absl::StatusOr<PluginOutput> Run(const PluginRun& run) override;
};

}  // namespace berth::network

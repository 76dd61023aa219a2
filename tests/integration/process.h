// Helpers for integration tests: run commands, start berthd in a private sandbox of dirs.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace berth::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
  absl::Duration elapsed;
};

// Runs argv (no shell) with the extra environment entries, waits at most `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(30),
                         const std::vector<std::string>& extra_env = {});

// A temporary directory removed (rm -rf) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A child process with stdout/stderr redirected to files.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  // Starts argv with stdout and stderr appended to `log_path`.
  void Start(const std::vector<std::string>& argv, const std::string& log_path);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Sends `sig` and waits up to `timeout`; returns the raw wait status, or -1 on timeout
  // (the process is then SIGKILLed and reaped).
  int Stop(int sig, absl::Duration timeout);

  // Waits up to `timeout` for the process to exit by itself; raw wait status or -1.
  int Wait(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
};

// Waits until `path` exists as a socket; false on timeout.
bool WaitForSocket(const std::string& path, absl::Duration timeout);

std::string ReadFileOrEmpty(const std::string& path);

// A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick).
int FreeLoopbackPort();

// KEY=VALUE lines (the fixtures' registry.env, digests.env); other lines are ignored.
std::map<std::string, std::string> ReadEnvFile(const std::string& path);
void WriteFileOrDie(const std::string& path, const std::string& text);

}  // namespace berth::testing

// The commands of berth-oci, the runc-compatible CLI over Runtime. Each returns the process
// exit code; errors are printed to stderr and, with --log, logged in runc's format (containerd
// and podman read the last "error" entry of that log to explain a failure).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/container.h"

namespace berth::runtime::cli {

struct Globals {
  std::string root = "/run/berth-oci";
  std::string log;                  // file to log to (besides stderr)
  std::string log_format = "text";  // text (logfmt, as runc) or json
  bool debug = false;
  bool systemd_cgroup = false;  // refused: berth drives cgroupfs only
};

struct RunFlags {
  CreateOptions create;
  bool detach = false;
  bool keep = false;
};

struct ExecFlags {
  std::string process_file;
  bool tty = false;
  bool detach = false;
  std::string pid_file;
  std::string console_socket;
  std::string cwd;
  std::vector<std::string> env;
  std::string user;  // UID[:GID]
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;
  bool no_new_privs = false;
  int preserve_fds = 0;
  std::vector<std::string> args;
};

class Cli {
 public:
  explicit Cli(Globals globals);

  int Create(const std::string& id, const CreateOptions& options);
  int Start(const std::string& id);
  int Run(const std::string& id, const RunFlags& flags);
  int State(const std::string& id);
  int Kill(const std::string& id, const std::string& signal, bool all);
  int Delete(const std::string& id, bool force);
  int Exec(const std::string& id, const ExecFlags& flags);
  int List(const std::string& format, bool quiet);
  int Ps(const std::string& id, const std::string& format);
  int Pause(const std::string& id);
  int Resume(const std::string& id);
  int Spec(const std::string& bundle, bool rootless);
  int Features();
  static int Version();

  // Logs `status` as an error and returns 1.
  int Fail(const absl::Status& status);

 private:
  void Log(absl::string_view level, absl::string_view message);
  absl::Status CheckGlobals();

  Globals globals_;
  Runtime runtime_;
};

// A wait status as a shell reports it: the exit code, or 128 + the signal.
int ExitCode(int wait_status);

}  // namespace berth::runtime::cli

// berthd's configuration: /etc/berth/berth.toml (or --config PATH). Every key has a default,
// so berthd runs with no file at all; unknown keys and bad values are refused at start-up with
// the file, the key and the reason. packaging/berth.toml documents every key.
#pragma once

#include <sys/types.h>
#include "absl/strings/string_view.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "nlohmann/json.hpp"

namespace berth::cri {

inline constexpr char kDefaultConfigPath[] = "/etc/berth/berth.toml";

struct Config {
  std::string source;  // the file it was read from; empty when only defaults apply

  std::string root = "/var/lib/berth";  // persistent state
  std::string state = "/run/berth";     // volatile state
  absl::Duration shutdown_timeout = absl::Seconds(10);

  struct Grpc {
    std::string address = "unix:///run/berth/berth.sock";
    gid_t gid = 0;  // group owning the socket (mode 0660)
    int64_t max_recv_message_size = 16 << 20;
    int64_t max_send_message_size = 16 << 20;
  } grpc;

  struct Log {
    spdlog::level::level_enum level = spdlog::level::info;
    log::Format format = log::Format::kText;
    std::string file;  // empty: stderr
  } log;

  struct Images {
    int max_concurrent_downloads = 4;                         // layers fetched in parallel per pull
    absl::Duration pull_progress_timeout = absl::Minutes(1);  // no bytes this long: cancelled
    absl::Duration request_timeout = absl::Seconds(30);
    std::string platform;   // "linux/amd64"; empty: the host's
    std::string auth_file;  // docker config.json for credentials; empty: none
  } images;

  struct Registry {
    std::vector<std::string> mirrors;  // endpoints tried before the host, in order
    bool insecure = false;             // plain http
    std::string ca_file, cert_file, key_file;
  };
  std::map<std::string, Registry> registries;  // by host ("docker.io", "127.0.0.1:5000")

  struct Cgroup {
    // Only the cgroupfs driver exists; true is refused at start-up (no systemd here to test
    // a systemd driver against).
    bool systemd_cgroup = false;
  } cgroup;

  struct Cni {
    std::string conf_dir = "/etc/cni/net.d";
    std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
    std::string network_name;                           // empty: the lexically first valid config
    absl::Duration plugin_timeout = absl::Seconds(60);  // one plugin run (ADD, DEL, CHECK)
  } cni;

  struct Runtime {
    // The per-pod monitor and the OCI runtime CLI (used for ExecSync); empty: the binaries
    // next to berthd's own.
    std::string monitor_path, oci_path;
    int64_t log_max_line = 16 * 1024;  // longer lines are split into partial (P) records
    int64_t shm_size = 64 << 20;       // the pod's /dev/shm, bytes
    // RuntimeClass handlers besides the default ("" , berth's own runtime): a runc-compatible
    // binary and its --root. [runtime.handlers.<name>] path = ..., root = ...
    struct Handler {
      std::string path, root;
    };
    std::map<std::string, Handler> handlers = {{"runc", {"/usr/sbin/runc", "/run/berth/runc"}}};
  } runtime;

  // The streaming server (Exec/PortForward URLs): like containerd's stream_server_*.
  struct Streaming {
    std::string address = "127.0.0.1";
    int64_t port = 0;  // 0: a free port chosen at start
    std::string tls_cert_file, tls_key_file;  // both: https
    absl::Duration idle_timeout = absl::Hours(4);
    absl::Duration token_ttl = absl::Minutes(1);
  } streaming;

  // The filesystem path of the unix socket (grpc.address without "unix://").
  std::string SocketPath() const;

  // The effective configuration, for Status verbose info and `berthd --print-config`.
  nlohmann::json ToJson() const;
};

// Parses TOML text; `source` names the file in error messages.
absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, const std::string& source);

// Loads `path`. When `required` is false and the file does not exist, returns the defaults.
absl::StatusOr<Config> LoadConfig(const std::string& path, bool required);

}  // namespace berth::cri

// CNI network configuration discovery (CNI spec 1.0 "network configuration lists"), as libcni
// does it: the files in a conf dir ending in .conf, .conflist or .json, in lexical order; a
// single-plugin .conf/.json is treated as a list of one.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::network {

struct CniConfigList {
  std::string file;         // where it was loaded from
  std::string name;         // network name
  std::string cni_version;  // "1.0.0", "0.4.0", ...
  bool disable_check = false;
  std::vector<nlohmann::json> plugins;  // each has at least a string "type"
  std::string raw;                      // the config text as read (kept in the result cache)
};

// Parses config text; `source` (a file name) decides .conflist vs single-plugin when the text
// has no "plugins" key and names the origin in errors. Fails with InvalidArgument.
absl::StatusOr<CniConfigList> ParseCniConfig(absl::string_view text, const std::string& source);

// Reads and parses one config file.
absl::StatusOr<CniConfigList> LoadCniConfigFile(const std::string& path);

// Returns the network to use: the one named `name`, or when `name` is empty the lexically first
// valid config in `conf_dir`. NotFound when there is none; the message lists what was skipped.
absl::StatusOr<CniConfigList> FindCniNetwork(const std::string& conf_dir, const std::string& name);

// Finds an executable plugin binary by type in the search path; NotFound names the dirs.
absl::StatusOr<std::string> FindCniPlugin(const std::string& type,
                                          const std::vector<std::string>& bin_dirs);

struct NetworkReadiness {
  bool ready = false;
  std::string reason;   // "NetworkPluginNotReady" when not ready
  std::string message;  // human-readable explanation when not ready
  std::string network;  // name of the chosen network when ready
  std::string file;     // its config file
};

// Ready when a usable network config exists and every plugin it names is installed.
NetworkReadiness CheckCniReadiness(const std::string& conf_dir,
                                   const std::vector<std::string>& bin_dirs,
                                   const std::string& name);

}  // namespace berth::network

// Where a CRI client connects: --runtime-endpoint, then $CONTAINER_RUNTIME_ENDPOINT, then
// /etc/crictl.yaml's runtime-endpoint, then berth's own socket (crictl's order, with berth's
// socket as the last resort).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace berth::cri::client {

inline constexpr char kDefaultEndpoint[] = "unix:///run/berth/berth.sock";
inline constexpr char kDefaultCrictlConfig[] = "/etc/crictl.yaml";

// "unix:///path" stays; a bare absolute path becomes "unix:///path". Anything else (tcp://,
// npipe://, relative paths) is refused with a message saying what is accepted.
absl::StatusOr<std::string> NormalizeEndpoint(absl::string_view endpoint);

// The filesystem path of a normalized unix endpoint.
std::string SocketPathOf(absl::string_view endpoint);

// Reads the flat `key: value` pairs of a crictl.yaml. A missing file is an empty map.
absl::StatusOr<std::map<std::string, std::string>> ReadCrictlConfig(const std::string& path);

// Picks the endpoint from the sources above; empty strings mean "not given".
absl::StatusOr<std::string> ResolveEndpoint(absl::string_view flag, absl::string_view env,
                                            const std::string& crictl_config_path);

}  // namespace berth::cri::client

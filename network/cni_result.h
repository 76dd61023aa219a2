// CNI results (what a plugin prints on stdout after ADD), CNI error objects and VERSION answers,
// parsed from untrusted plugin output and rendered back in any supported result version, as
// libcni's types/020, types/040 and types/100 do it.
//
// Result shapes by cniVersion:
//   0.1.0, 0.2.0         {"ip4":{"ip","gateway","routes":[...]},"ip6":{...},"dns":{...}}
//   0.3.0, 0.3.1, 0.4.0  {"interfaces":[...],"ips":[{"version","interface","address","gateway"}],
//                         "routes":[...],"dns":{...}}
//   1.0.0, 1.1.0         the same without ips[].version
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace berth::network {

struct CniVersion {
  int major = 0, minor = 0, patch = 0;
};

// "1.0.0", "0.4.0", "1.1.0"; like libcni "1" and "1.0" mean "1.0.0". Each part is 1 to 9
// decimal digits; anything else (empty, signs, spaces, a fourth part) is InvalidArgument.
absl::StatusOr<CniVersion> ParseCniVersion(absl::string_view v);

// <0, 0 or >0 as a is older than, the same as or newer than b.
int CompareCniVersions(const CniVersion& a, const CniVersion& b);

// True for the result versions this file parses and renders: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0,
// 1.0.0 and 1.1.0 (libcni's list, matched exactly).
bool IsSupportedCniResultVersion(absl::string_view version);

struct CniInterface {
  std::string name, mac, sandbox;
};

struct CniIpConfig {
  std::string address;           // CIDR as the plugin wrote it ("10.1.0.5/16"), validated
  std::string gateway;           // optional IP, validated when present
  std::optional<int> interface;  // index into CniResult::interfaces, in range when present
  int family = 4;                // 4 or 6, from the address
};

struct CniRoute {
  std::string dst;  // CIDR, validated
  std::string gw;   // optional IP, validated when present
};

struct CniDns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search, options;
};

struct CniResult {
  std::string cni_version;  // the version the result was written in
  std::vector<CniInterface> interfaces;
  std::vector<CniIpConfig> ips;
  std::vector<CniRoute> routes;
  CniDns dns;
};

// Parses a result of any supported version; `default_version` (the config's cniVersion) is used
// when the text has none. The text is untrusted: more than 1 MiB, JSON nested deeper than 64
// levels, more than 1024 entries in a list, a value of the wrong type, a bad CIDR or IP and an
// interface index out of range, a control character in a name, MAC, sandbox or DNS entry are
// refused with InvalidArgument naming the JSON path, e.g.
// `CNI result: ips[1].address: "10.0.0.300/8" is not a CIDR`. Unknown fields are ignored
// (including 1.1.0's socketPath, pciID, mtu, advmss, priority, table and scope, which are not
// kept). A 0.1.0/0.2.0 result's ip4 and ip6 become ips without an interface, their routes are
// concatenated.
absl::StatusOr<CniResult> ParseCniResult(absl::string_view text, absl::string_view default_version);

// Renders the result as a plugin of a list with cniVersion `version` expects its prevResult.
// To 0.3.x/0.4.0 every ip gets "version" from its address family; to 0.1.0/0.2.0 only the first
// IPv4 and first IPv6 address are kept, routes go to ip4 or ip6 by their destination's family
// (and are dropped when that family has no address), interfaces are dropped, and a result with
// no address at all fails ("no valid IP addresses"). InvalidArgument for an unsupported version
// or an interface index out of range.
absl::StatusOr<nlohmann::json> CniResultToJson(const CniResult& result, absl::string_view version);

// The pod's IPs as the CRI reports them, without prefix length and in canonical text form: the
// ips whose interface is the sandbox interface named `ifname` (an interfaces entry with a
// non-empty sandbox and that name), or, when no ips entry names an interface, all ips. IPv4
// first, then IPv6, each family in result order, duplicates removed.
std::vector<std::string> PodIps(const CniResult& result, absl::string_view ifname);

// The error object a failed plugin prints on stdout:
// {"cniVersion":"1.0.0","code":7,"msg":"...","details":"..."}.
struct CniError {
  uint32_t code = 0;
  std::string msg, details;
};

// Parses a plugin's error object; nullopt when `text` is not one (not JSON, not an object, no
// unsigned 32-bit integer "code", "msg" or "details" present but not a string, over 1 MiB).
std::optional<CniError> ParseCniError(absl::string_view text);

// The spec's name for a well-known error code ("incompatible CNI version" for 1, ...); "" for
// any other code (100 and up are plugin-specific).
absl::string_view CniErrorCodeName(uint32_t code);

// Parses a plugin's answer to VERSION, {"cniVersion":"1.0.0","supportedVersions":["0.1.0",...]},
// into the supported versions. Like libcni, a "0.2.0" answer without supportedVersions means
// 0.1.0 and 0.2.0. InvalidArgument when the answer is malformed or a version does not parse.
absl::StatusOr<std::vector<std::string>> ParseCniVersionResult(absl::string_view text);

}  // namespace berth::network

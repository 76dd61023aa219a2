// The pod's /etc/resolv.conf, /etc/hosts and /etc/hostname. They are written into the pod dir
// and bind-mounted into every container of the pod.
//
// resolv.conf follows containerd: rendered from the CRI DNSConfig ("search ...", one
// "nameserver" line per server, "options ..."), or, when the DNSConfig is empty, a copy of the
// host's resolv.conf. The kubelet's limits (3 nameservers, 32 search domains, a search line of at
// most 2048 characters) are applied again here and what they drop is reported. Every entry is
// validated so that no value can add lines to the file.
//
// hosts is self-contained, in the kubelet's format for pods that are not on the host network
// (localhost and the ip6 names, then one line per pod IP); host-network pods get the host's
// /etc/hosts unchanged.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::network {

// Limits from Kubernetes' pod validation (k8s.io/kubernetes/pkg/apis/core/validation).
inline constexpr size_t kMaxDnsNameservers = 3;
inline constexpr size_t kMaxDnsSearchPaths = 32;
inline constexpr size_t kMaxDnsSearchListChars = 2048;  // the search domains joined with " "
inline constexpr size_t kMaxHostnameLength = 64;        // HOST_NAME_MAX
inline constexpr size_t kMaxHostResolvConfSize = 64 << 10;
inline constexpr size_t kMaxHostHostsSize = 16 << 20;  // ad-blocking hosts files can be MBs

// The CRI DNSConfig.
struct DnsConfig {
  std::vector<std::string> servers, searches, options;
};

struct ResolvConf {
  std::string text;
  std::vector<std::string> dropped_searches;  // beyond the count or the character limit
  std::vector<std::string> dropped_servers;   // beyond the count limit
};

// Checks one DNSConfig entry. InvalidArgument names the field, index and (escaped) value.
// A server is an IPv4 or IPv6 address (IPv6 may carry a %zone); a search domain is a DNS name
// (labels of 1-63 characters of [A-Za-z0-9_-], at most 253 characters, a trailing dot allowed,
// or "." alone); an option is `name` or `name:value` with name of [A-Za-z0-9._-] and a value of
// printable characters without spaces, '#' or ';'.
absl::Status ValidateDnsServer(absl::string_view server);
absl::Status ValidateDnsSearch(absl::string_view search);
absl::Status ValidateDnsOption(absl::string_view option);

// From the CRI DNSConfig, or when it is empty, the host's resolv.conf text (returned as is).
// Fails with InvalidArgument when any entry (kept or dropped) is invalid.
absl::StatusOr<ResolvConf> RenderResolvConf(const DnsConfig& dns,
                                            absl::string_view host_resolv_conf);

// A hostname: 1-64 bytes, dot-separated labels of 1-63 characters of [A-Za-z0-9_-] that neither
// start nor end with '-'. InvalidArgument otherwise.
absl::Status ValidateHostname(absl::string_view hostname);

// The hosts file of a pod that is not on the host network. Pod IPs are validated (inet_pton)
// and listed in the order given, each as "<ip>\t<hostname>".
absl::StatusOr<std::string> RenderHosts(absl::string_view hostname,
                                        const std::vector<std::string>& pod_ips);

struct PodFilesSpec {
  std::string hostname;
  DnsConfig dns;
  std::vector<std::string> pod_ips;  // may be empty (written before CNI returns; rewritten after)
  bool host_network = false;
  std::string host_resolv_conf_path = "/etc/resolv.conf";
  std::string host_hosts_path = "/etc/hosts";
};

struct PodFilePaths {
  std::string hostname, hosts, resolv_conf;
};

// Writes <pod_dir>/hostname, <pod_dir>/hosts, <pod_dir>/resolv.conf, each atomically with mode
// 0644; the pod dir must exist. Everything is validated and rendered before the first file is
// written. The host's resolv.conf is read only when the DNSConfig is empty; it must exist and be
// at most 64 KiB. Returns the paths, and through `warnings` (optional) one line per kind of
// entry dropped by the limits.
absl::StatusOr<PodFilePaths> WritePodFiles(const std::string& pod_dir, const PodFilesSpec& spec,
                                           std::vector<std::string>* warnings = nullptr);

// Rewrites only <pod_dir>/hosts (when the pod IPs become known after CNI ADD).
absl::Status UpdatePodHosts(const std::string& pod_dir, const PodFilesSpec& spec);

}  // namespace berth::network

#include "network/pod_files.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::network {

namespace {

constexpr size_t kMaxDnsNameLength = 253;
constexpr size_t kMaxLabelLength = 63;
constexpr size_t kMaxZoneLength = 15;     // IFNAMSIZ - 1
constexpr size_t kMaxQuotedLength = 128;  // of a value shown in an error message

constexpr char kHostsHeader[] =
    "# Kubernetes-managed hosts file (berth).\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n";

// A value for an error message: escaped (a newline shows as \n) and shortened.
std::string Quote(absl::string_view value) {
  std::string out = absl::StrCat("\"", absl::CEscape(value.substr(0, kMaxQuotedLength)), "\"");
  if (value.size() > kMaxQuotedLength) absl::StrAppend(&out, "... (", value.size(), " bytes)");
  return out;
}

bool IsLabelChar(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '_';
}

// Dot-separated labels of 1-63 label characters; no empty label.
bool AreLabels(absl::string_view name, bool rfc1123_hyphens) {
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > kMaxLabelLength) return false;
    for (char c : label) {
      if (!IsLabelChar(c)) return false;
    }
    if (rfc1123_hyphens && (label.front() == '-' || label.back() == '-')) return false;
  }
  return true;
}

bool IsIpv4(const std::string& s) {
  struct in_addr addr;
  return ::inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

bool IsIpv6(const std::string& s) {
  struct in6_addr addr;
  return ::inet_pton(AF_INET6, s.c_str(), &addr) == 1;
}

// An IPv4 or IPv6 address without a zone.
bool IsIp(absl::string_view ip) {
  // inet_pton reads a C string: a NUL inside the value must not cut it short.
  if (ip.find('\0') != absl::string_view::npos) return false;
  std::string s(ip);
  return IsIpv4(s) || IsIpv6(s);
}

absl::Status InvalidEntry(absl::string_view field, size_t index, const absl::Status& status) {
  return absl::InvalidArgumentError(
      absl::StrCat("DNS config ", field, "[", index, "]: ", status.message()));
}

absl::Status CheckPodDir(const std::string& pod_dir) {
  struct stat st;
  if (::stat(pod_dir.c_str(), &st) != 0) return LastErrnoError(absl::StrCat("pod dir ", pod_dir));
  if (!S_ISDIR(st.st_mode)) return ErrnoError(ENOTDIR, absl::StrCat("pod dir ", pod_dir));
  return absl::OkStatus();
}

absl::StatusOr<std::string> HostsText(const PodFilesSpec& spec) {
  if (!spec.host_network) return RenderHosts(spec.hostname, spec.pod_ips);
  absl::StatusOr<std::string> text = ReadFile(spec.host_hosts_path, kMaxHostHostsSize);
  if (!text.ok()) return Annotate(text.status(), "reading the host's hosts file");
  return text;
}

}  // namespace

absl::Status ValidateDnsServer(absl::string_view server) {
  absl::string_view addr = server;
  absl::string_view zone;
  bool has_zone = false;
  if (size_t pct = server.find('%'); pct != absl::string_view::npos) {
    addr = server.substr(0, pct);
    zone = server.substr(pct + 1);
    has_zone = true;
  }
  bool ok = addr.find('\0') == absl::string_view::npos;
  if (ok) {
    std::string s(addr);
    ok = has_zone ? IsIpv6(s) : (IsIpv4(s) || IsIpv6(s));
  }
  if (ok && has_zone) {
    ok = !zone.empty() && zone.size() <= kMaxZoneLength;
    for (char c : zone) ok = ok && (absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("nameserver ", Quote(server), " is not an IPv4 or IPv6 address"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDnsSearch(absl::string_view search) {
  // "." alone (Kubernetes' relaxed search validation) keeps the resolver from appending domains.
  if (search == ".") return absl::OkStatus();
  absl::string_view name = search;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // a trailing dot is fine
  bool ok = !name.empty() && name.size() <= kMaxDnsNameLength && AreLabels(name, false);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "search domain ", Quote(search),
        " is not a DNS name (labels of 1-63 characters of [A-Za-z0-9_-], at most 253 characters)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDnsOption(absl::string_view option) {
  absl::string_view name = option;
  absl::string_view value;
  bool has_value = false;
  if (size_t colon = option.find(':'); colon != absl::string_view::npos) {
    name = option.substr(0, colon);
    value = option.substr(colon + 1);
    has_value = true;
  }
  bool ok = !name.empty() && (!has_value || !value.empty());
  for (char c : name) ok = ok && (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.');
  for (char c : value) ok = ok && (c > ' ' && c < 0x7f && c != '#' && c != ';');
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "option ", Quote(option),
        " is not `name` or `name:value` (name of [A-Za-z0-9._-], a value without spaces)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ResolvConf> RenderResolvConf(const DnsConfig& dns,
                                            absl::string_view host_resolv_conf) {
  ResolvConf out;
  if (dns.servers.empty() && dns.searches.empty() && dns.options.empty()) {
    out.text = std::string(host_resolv_conf);
    return out;
  }
  // Every entry is checked, including those the limits drop below: an invalid one means the
  // config did not come from a well-behaved kubelet.
  for (size_t i = 0; i < dns.servers.size(); ++i) {
    if (absl::Status st = ValidateDnsServer(dns.servers[i]); !st.ok()) {
      return InvalidEntry("servers", i, st);
    }
  }
  for (size_t i = 0; i < dns.searches.size(); ++i) {
    if (absl::Status st = ValidateDnsSearch(dns.searches[i]); !st.ok()) {
      return InvalidEntry("searches", i, st);
    }
  }
  for (size_t i = 0; i < dns.options.size(); ++i) {
    if (absl::Status st = ValidateDnsOption(dns.options[i]); !st.ok()) {
      return InvalidEntry("options", i, st);
    }
  }

  // The kubelet's limits, applied the way it applies them.
  std::vector<std::string> servers = dns.servers;
  if (servers.size() > kMaxDnsNameservers) {
    out.dropped_servers.assign(servers.begin() + kMaxDnsNameservers, servers.end());
    servers.resize(kMaxDnsNameservers);
  }
  std::vector<std::string> searches = dns.searches;
  if (searches.size() > kMaxDnsSearchPaths) {
    out.dropped_searches.assign(searches.begin() + kMaxDnsSearchPaths, searches.end());
    searches.resize(kMaxDnsSearchPaths);
  }
  size_t line = 0;  // length of the searches joined with " "
  for (const std::string& s : searches) line += s.size() + (line == 0 ? 0 : 1);
  size_t keep = searches.size();
  while (keep > 0 && line > kMaxDnsSearchListChars) {
    --keep;
    line -= searches[keep].size() + (keep == 0 ? 0 : 1);
  }
  out.dropped_searches.insert(out.dropped_searches.begin(),
                              searches.begin() + static_cast<std::ptrdiff_t>(keep), searches.end());
  searches.resize(keep);

  if (!searches.empty()) absl::StrAppend(&out.text, "search ", absl::StrJoin(searches, " "), "\n");
  for (const std::string& s : servers) absl::StrAppend(&out.text, "nameserver ", s, "\n");
  if (!dns.options.empty()) {
    absl::StrAppend(&out.text, "options ", absl::StrJoin(dns.options, " "), "\n");
  }
  return out;
}

absl::Status ValidateHostname(absl::string_view hostname) {
  if (hostname.empty()) return absl::InvalidArgumentError("hostname is empty");
  if (hostname.size() > kMaxHostnameLength) {
    return absl::InvalidArgumentError(absl::StrCat("hostname ", Quote(hostname), " is longer than ",
                                                   kMaxHostnameLength, " bytes"));
  }
  if (!AreLabels(hostname, true)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hostname ", Quote(hostname),
                     " is not a host name (dot-separated labels of 1-63 characters of "
                     "[A-Za-z0-9_-], not starting or ending with '-')"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RenderHosts(absl::string_view hostname,
                                        const std::vector<std::string>& pod_ips) {
  RETURN_IF_ERROR(ValidateHostname(hostname));
  std::string text = kHostsHeader;
  for (size_t i = 0; i < pod_ips.size(); ++i) {
    if (!IsIp(pod_ips[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("pod IP [", i, "] ", Quote(pod_ips[i]), " is not an IPv4 or IPv6 address"));
    }
    absl::StrAppend(&text, pod_ips[i], "\t", hostname, "\n");
  }
  return text;
}

absl::StatusOr<PodFilePaths> WritePodFiles(const std::string& pod_dir, const PodFilesSpec& spec,
                                           std::vector<std::string>* warnings) {
  RETURN_IF_ERROR(CheckPodDir(pod_dir));
  RETURN_IF_ERROR(ValidateHostname(spec.hostname));
  ASSIGN_OR_RETURN(std::string hosts, HostsText(spec));

  std::string host_resolv_conf;
  const DnsConfig& dns = spec.dns;
  if (dns.servers.empty() && dns.searches.empty() && dns.options.empty()) {
    absl::StatusOr<std::string> text = ReadFile(spec.host_resolv_conf_path, kMaxHostResolvConfSize);
    if (!text.ok()) return Annotate(text.status(), "reading the host's resolv.conf");
    host_resolv_conf = *std::move(text);
  }
  ASSIGN_OR_RETURN(ResolvConf resolv, RenderResolvConf(dns, host_resolv_conf));

  if (warnings != nullptr) {
    if (!resolv.dropped_servers.empty()) {
      warnings->push_back(absl::StrCat("resolv.conf: dropped ", resolv.dropped_servers.size(),
                                       " nameserver(s) beyond the limit of ", kMaxDnsNameservers,
                                       ": ", absl::StrJoin(resolv.dropped_servers, " ")));
    }
    if (!resolv.dropped_searches.empty()) {
      warnings->push_back(absl::StrCat(
          "resolv.conf: dropped ", resolv.dropped_searches.size(),
          " search domain(s) beyond the limits of ", kMaxDnsSearchPaths, " domains and ",
          kMaxDnsSearchListChars, " characters: ", absl::StrJoin(resolv.dropped_searches, " ")));
    }
  }

  PodFilePaths paths;
  paths.hostname = absl::StrCat(pod_dir, "/hostname");
  paths.hosts = absl::StrCat(pod_dir, "/hosts");
  paths.resolv_conf = absl::StrCat(pod_dir, "/resolv.conf");
  RETURN_IF_ERROR(WriteFileAtomic(paths.hostname, absl::StrCat(spec.hostname, "\n"), 0644));
  RETURN_IF_ERROR(WriteFileAtomic(paths.hosts, hosts, 0644));
  RETURN_IF_ERROR(WriteFileAtomic(paths.resolv_conf, resolv.text, 0644));
  return paths;
}

absl::Status UpdatePodHosts(const std::string& pod_dir, const PodFilesSpec& spec) {
  RETURN_IF_ERROR(CheckPodDir(pod_dir));
  ASSIGN_OR_RETURN(std::string hosts, HostsText(spec));
  return WriteFileAtomic(absl::StrCat(pod_dir, "/hosts"), hosts, 0644);
}

}  // namespace berth::network

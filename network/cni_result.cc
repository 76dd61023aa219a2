#include "network/cni_result.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/json.h"
#include "base/status.h"

namespace berth::network {

namespace {

using nlohmann::json;

constexpr size_t kMaxTextSize = 1 << 20;
constexpr size_t kMaxListEntries = 1024;
constexpr int kMaxDepth = 64;
constexpr size_t kMaxQuoted = 64;

constexpr const char* kSupportedVersions[] = {"0.1.0", "0.2.0", "0.3.0", "0.3.1",
                                              "0.4.0", "1.0.0", "1.1.0"};

bool IsLegacyVersion(absl::string_view v) {
  return v == "0.1.0" || v == "0.2.0";
}
bool HasIpVersionField(absl::string_view v) {
  return v == "0.3.0" || v == "0.3.1" || v == "0.4.0";
}

// Parses bounded untrusted JSON that must be an object; `what` prefixes errors.
absl::StatusOr<json> ParseObject(absl::string_view text, absl::string_view what) {
  if (text.size() > kMaxTextSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", text.size(), " bytes, more than the ", kMaxTextSize, " allowed"));
  }
  if (!JsonNestingWithin(text, kMaxDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": JSON nested deeper than ", kMaxDepth, " levels"));
  }
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON"));
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected a JSON object, got ", doc.type_name()));
  }
  return doc;
}

absl::Status Bad(absl::string_view path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("CNI result: ", path, ": ", why));
}

absl::Status WrongType(absl::string_view path, const json& v, absl::string_view want) {
  return Bad(path, absl::StrCat("expected ", want, ", got ", v.type_name()));
}

std::string Path(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

std::string Index(absl::string_view parent, size_t i) {
  return absl::StrCat(parent, "[", i, "]");
}

// The member `key` of `obj`, or nullptr when absent or null (Go's encoding/json, which wrote the
// plugin's output, treats null like absent).
const json* Member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// Names, paths and DNS entries end up in logs, file names and resolv.conf lines: none of them
// has a reason to hold a control character (a newline, a NUL from "\u0000").
absl::Status CheckText(absl::string_view path, absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Bad(path,
                 absl::StrCat(QuoteForMessage(s, kMaxQuoted), " contains a control character"));
    }
  }
  return absl::OkStatus();
}

absl::Status GetString(const json& obj, const char* key, absl::string_view parent,
                       std::string* out) {
  const json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return WrongType(Path(parent, key), *v, "a string");
  RETURN_IF_ERROR(CheckText(Path(parent, key), v->get_ref<const std::string&>()));
  *out = v->get<std::string>();
  return absl::OkStatus();
}

// The array `key` of `obj` (nullptr when absent), bounded to kMaxListEntries.
absl::StatusOr<const json*> GetArray(const json& obj, const char* key, absl::string_view parent) {
  const json* v = Member(obj, key);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) return WrongType(Path(parent, key), *v, "an array");
  if (v->size() > kMaxListEntries) {
    return Bad(Path(parent, key),
               absl::StrCat(v->size(), " entries, more than the ", kMaxListEntries, " allowed"));
  }
  return v;
}

absl::Status GetStringList(const json& obj, const char* key, absl::string_view parent,
                           std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(const json* list, GetArray(obj, key, parent));
  if (list == nullptr) return absl::OkStatus();
  std::string path = Path(parent, key);
  for (size_t i = 0; i < list->size(); ++i) {
    const json& v = (*list)[i];
    if (!v.is_string()) return WrongType(Index(path, i), v, "a string");
    RETURN_IF_ERROR(CheckText(Index(path, i), v.get_ref<const std::string&>()));
    out->push_back(v.get<std::string>());
  }
  return absl::OkStatus();
}

// 4 or 6 for an IP address literal, 0 for anything else.
int IpFamily(absl::string_view ip) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (ip.empty() || ip.size() >= sizeof(buf) || ip.find('\0') != absl::string_view::npos) {
    return 0;
  }
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  unsigned char addr[sizeof(struct in6_addr)];
  if (::inet_pton(AF_INET, buf, addr) == 1) return 4;
  if (::inet_pton(AF_INET6, buf, addr) == 1) return 6;
  return 0;
}

// 4 or 6 for "address/prefix" with a prefix in range for the family (decimal, no leading zero),
// 0 for anything else.
int CidrFamily(absl::string_view cidr) {
  size_t slash = cidr.find('/');
  if (slash == absl::string_view::npos) return 0;
  int family = IpFamily(cidr.substr(0, slash));
  if (family == 0) return 0;
  absl::string_view prefix = cidr.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3 || (prefix.size() > 1 && prefix[0] == '0')) return 0;
  int bits = 0;
  for (char c : prefix) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return 0;
    bits = bits * 10 + (c - '0');
  }
  return bits <= (family == 4 ? 32 : 128) ? family : 0;
}

// The address of a CIDR in canonical text form (inet_ntop), "" when it does not parse.
std::string CanonicalIp(absl::string_view cidr) {
  absl::string_view ip = cidr.substr(0, cidr.find('/'));
  int family = IpFamily(ip);
  if (family == 0) return "";
  std::string s(ip);
  unsigned char addr[sizeof(struct in6_addr)];
  char out[INET6_ADDRSTRLEN];
  int af = family == 4 ? AF_INET : AF_INET6;
  if (::inet_pton(af, s.c_str(), addr) != 1 || ::inet_ntop(af, addr, out, sizeof(out)) == nullptr) {
    return "";
  }
  return out;
}

// The family of an ip: from its address when that parses, else the family field.
int FamilyOf(const CniIpConfig& ip) {
  int family = CidrFamily(ip.address);
  return family != 0 ? family : ip.family;
}

absl::Status GetCidr(const json& obj, const char* key, absl::string_view parent, std::string* out,
                     int* family) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) return Bad(path, "missing");
  if (!v->is_string()) return WrongType(path, *v, "a string");
  const std::string& s = v->get_ref<const std::string&>();
  int f = CidrFamily(s);
  if (f == 0) return Bad(path, absl::StrCat(QuoteForMessage(s, kMaxQuoted), " is not a CIDR"));
  *out = s;
  if (family != nullptr) *family = f;
  return absl::OkStatus();
}

absl::Status GetIp(const json& obj, const char* key, absl::string_view parent, std::string* out) {
  std::string s;
  RETURN_IF_ERROR(GetString(obj, key, parent, &s));
  if (!s.empty() && IpFamily(s) == 0) {
    return Bad(Path(parent, key),
               absl::StrCat(QuoteForMessage(s, kMaxQuoted), " is not an IP address"));
  }
  *out = std::move(s);
  return absl::OkStatus();
}

absl::StatusOr<const json*> GetObject(const json& obj, const char* key, absl::string_view parent) {
  const json* v = Member(obj, key);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) return WrongType(Path(parent, key), *v, "an object");
  return v;
}

absl::Status ParseRoutes(const json& obj, absl::string_view parent, std::vector<CniRoute>* out) {
  ASSIGN_OR_RETURN(const json* routes, GetArray(obj, "routes", parent));
  if (routes == nullptr) return absl::OkStatus();
  std::string path = Path(parent, "routes");
  if (out->size() + routes->size() > kMaxListEntries) {
    return Bad(path, absl::StrCat("more than ", kMaxListEntries, " routes in all"));
  }
  for (size_t i = 0; i < routes->size(); ++i) {
    const json& r = (*routes)[i];
    std::string rpath = Index(path, i);
    if (!r.is_object()) return WrongType(rpath, r, "an object");
    CniRoute route;
    RETURN_IF_ERROR(GetCidr(r, "dst", rpath, &route.dst, nullptr));
    RETURN_IF_ERROR(GetIp(r, "gw", rpath, &route.gw));
    out->push_back(std::move(route));
  }
  return absl::OkStatus();
}

absl::Status ParseDns(const json& doc, CniDns* dns) {
  ASSIGN_OR_RETURN(const json* d, GetObject(doc, "dns", ""));
  if (d == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(GetStringList(*d, "nameservers", "dns", &dns->nameservers));
  RETURN_IF_ERROR(GetString(*d, "domain", "dns", &dns->domain));
  RETURN_IF_ERROR(GetStringList(*d, "search", "dns", &dns->search));
  RETURN_IF_ERROR(GetStringList(*d, "options", "dns", &dns->options));
  return absl::OkStatus();
}

// 0.3.0 and later: interfaces, ips, routes.
absl::Status ParseCurrent(const json& doc, CniResult* r) {
  ASSIGN_OR_RETURN(const json* interfaces, GetArray(doc, "interfaces", ""));
  if (interfaces != nullptr) {
    for (size_t i = 0; i < interfaces->size(); ++i) {
      const json& itf = (*interfaces)[i];
      std::string path = Index("interfaces", i);
      if (!itf.is_object()) return WrongType(path, itf, "an object");
      CniInterface out;
      RETURN_IF_ERROR(GetString(itf, "name", path, &out.name));
      RETURN_IF_ERROR(GetString(itf, "mac", path, &out.mac));
      RETURN_IF_ERROR(GetString(itf, "sandbox", path, &out.sandbox));
      r->interfaces.push_back(std::move(out));
    }
  }

  bool versioned = HasIpVersionField(r->cni_version);
  ASSIGN_OR_RETURN(const json* ips, GetArray(doc, "ips", ""));
  if (ips != nullptr) {
    for (size_t i = 0; i < ips->size(); ++i) {
      const json& ip = (*ips)[i];
      std::string path = Index("ips", i);
      if (!ip.is_object()) return WrongType(path, ip, "an object");
      CniIpConfig out;
      RETURN_IF_ERROR(GetCidr(ip, "address", path, &out.address, &out.family));
      RETURN_IF_ERROR(GetIp(ip, "gateway", path, &out.gateway));
      if (const json* idx = Member(ip, "interface"); idx != nullptr) {
        std::string ipath = Path(path, "interface");
        if (!idx->is_number_integer()) return WrongType(ipath, *idx, "an integer");
        bool in_range = idx->is_number_unsigned()
                            ? idx->get<uint64_t>() < r->interfaces.size()
                            : idx->get<int64_t>() >= 0 &&
                                  static_cast<uint64_t>(idx->get<int64_t>()) < r->interfaces.size();
        if (!in_range) {
          return Bad(ipath, absl::StrCat(idx->dump(), " is out of range (", r->interfaces.size(),
                                         " interfaces)"));
        }
        out.interface = static_cast<int>(idx->get<int64_t>());
      }
      // libcni ignores "version" on input (the address says it all); it need only be "4" or "6".
      if (const json* v = Member(ip, "version"); versioned && v != nullptr) {
        std::string vpath = Path(path, "version");
        if (!v->is_string()) return WrongType(vpath, *v, "a string");
        const std::string& s = v->get_ref<const std::string&>();
        if (s != "4" && s != "6") {
          return Bad(vpath, absl::StrCat(QuoteForMessage(s, kMaxQuoted), " is not \"4\" or \"6\""));
        }
      }
      r->ips.push_back(std::move(out));
    }
  }
  return ParseRoutes(doc, "", &r->routes);
}

// 0.1.0 and 0.2.0: ip4 and ip6, each with its routes.
absl::Status ParseLegacy(const json& doc, CniResult* r) {
  for (const char* key : {"ip4", "ip6"}) {
    ASSIGN_OR_RETURN(const json* cfg, GetObject(doc, key, ""));
    if (cfg == nullptr) continue;
    CniIpConfig ip;
    RETURN_IF_ERROR(GetCidr(*cfg, "ip", key, &ip.address, &ip.family));
    RETURN_IF_ERROR(GetIp(*cfg, "gateway", key, &ip.gateway));
    r->ips.push_back(std::move(ip));
    RETURN_IF_ERROR(ParseRoutes(*cfg, key, &r->routes));
  }
  return absl::OkStatus();
}

json DnsToJson(const CniDns& dns) {
  json out = json::object();
  if (!dns.nameservers.empty()) out["nameservers"] = dns.nameservers;
  if (!dns.domain.empty()) out["domain"] = dns.domain;
  if (!dns.search.empty()) out["search"] = dns.search;
  if (!dns.options.empty()) out["options"] = dns.options;
  return out;
}

json RouteToJson(const CniRoute& route) {
  json out = {{"dst", route.dst}};
  if (!route.gw.empty()) out["gw"] = route.gw;
  return out;
}

absl::StatusOr<json> ToLegacyJson(const CniResult& result, absl::string_view version) {
  const CniIpConfig* ip4 = nullptr;
  const CniIpConfig* ip6 = nullptr;
  for (const CniIpConfig& ip : result.ips) {
    int family = FamilyOf(ip);
    if (family == 4 && ip4 == nullptr) ip4 = &ip;
    if (family == 6 && ip6 == nullptr) ip6 = &ip;
  }
  if (ip4 == nullptr && ip6 == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot convert CNI result from ",
                                                   result.cni_version, " to ", version,
                                                   ": no valid IP addresses"));
  }
  json out = {{"cniVersion", std::string(version)}};
  auto ip_json = [](const CniIpConfig& ip) {
    json j = {{"ip", ip.address}};
    if (!ip.gateway.empty()) j["gateway"] = ip.gateway;
    return j;
  };
  if (ip4 != nullptr) out["ip4"] = ip_json(*ip4);
  if (ip6 != nullptr) out["ip6"] = ip_json(*ip6);
  for (const CniRoute& route : result.routes) {
    int family = CidrFamily(route.dst);
    if (family == 0) family = route.dst.find(':') != std::string::npos ? 6 : 4;
    const char* key = family == 4 ? "ip4" : "ip6";
    if (!out.contains(key)) continue;
    out[key]["routes"].push_back(RouteToJson(route));
  }
  out["dns"] = DnsToJson(result.dns);
  return out;
}

}  // namespace

absl::StatusOr<CniVersion> ParseCniVersion(absl::string_view v) {
  std::vector<absl::string_view> parts = absl::StrSplit(v, '.');
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid CNI version ", QuoteForMessage(v, kMaxQuoted)));
  };
  if (v.empty() || parts.size() > 3) return bad();
  int numbers[3] = {0, 0, 0};
  for (size_t i = 0; i < parts.size(); ++i) {
    absl::string_view p = parts[i];
    if (p.empty() || p.size() > 9) return bad();
    for (char c : p) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return bad();
    }
    if (!absl::SimpleAtoi(p, &numbers[i])) return bad();
  }
  return CniVersion{numbers[0], numbers[1], numbers[2]};
}

int CompareCniVersions(const CniVersion& a, const CniVersion& b) {
  if (a.major != b.major) return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
  return 0;
}

bool IsSupportedCniResultVersion(absl::string_view version) {
  return std::find(std::begin(kSupportedVersions), std::end(kSupportedVersions), version) !=
         std::end(kSupportedVersions);
}

absl::StatusOr<CniResult> ParseCniResult(absl::string_view text,
                                         absl::string_view default_version) {
  ASSIGN_OR_RETURN(json doc, ParseObject(text, "CNI result"));
  CniResult r;
  RETURN_IF_ERROR(GetString(doc, "cniVersion", "", &r.cni_version));
  if (r.cni_version.empty()) r.cni_version = std::string(default_version);
  if (r.cni_version.empty()) {
    return absl::InvalidArgumentError("CNI result: no cniVersion and no default version");
  }
  if (!IsSupportedCniResultVersion(r.cni_version)) {
    return Bad("cniVersion", absl::StrCat(QuoteForMessage(r.cni_version, kMaxQuoted),
                                          " is not supported (supported: ",
                                          absl::StrJoin(kSupportedVersions, ", "), ")"));
  }
  if (IsLegacyVersion(r.cni_version)) {
    RETURN_IF_ERROR(ParseLegacy(doc, &r));
  } else {
    RETURN_IF_ERROR(ParseCurrent(doc, &r));
  }
  RETURN_IF_ERROR(ParseDns(doc, &r.dns));
  return r;
}

absl::StatusOr<json> CniResultToJson(const CniResult& result, absl::string_view version) {
  if (!IsSupportedCniResultVersion(version)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot convert CNI result to version ", QuoteForMessage(version, kMaxQuoted),
                     ": not supported (supported: ", absl::StrJoin(kSupportedVersions, ", "), ")"));
  }
  if (IsLegacyVersion(version)) return ToLegacyJson(result, version);

  json out = {{"cniVersion", std::string(version)}};
  if (!result.interfaces.empty()) {
    json& interfaces = out["interfaces"] = json::array();
    for (const CniInterface& itf : result.interfaces) {
      json j = {{"name", itf.name}};
      if (!itf.mac.empty()) j["mac"] = itf.mac;
      if (!itf.sandbox.empty()) j["sandbox"] = itf.sandbox;
      interfaces.push_back(std::move(j));
    }
  }
  bool versioned = HasIpVersionField(version);
  if (!result.ips.empty()) {
    json& ips = out["ips"] = json::array();
    for (size_t i = 0; i < result.ips.size(); ++i) {
      const CniIpConfig& ip = result.ips[i];
      json j = {{"address", ip.address}};
      if (versioned) j["version"] = FamilyOf(ip) == 6 ? "6" : "4";
      if (!ip.gateway.empty()) j["gateway"] = ip.gateway;
      if (ip.interface.has_value()) {
        if (*ip.interface < 0 || static_cast<size_t>(*ip.interface) >= result.interfaces.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("cannot convert CNI result: ips[", i, "].interface ", *ip.interface,
                           " is out of range (", result.interfaces.size(), " interfaces)"));
        }
        j["interface"] = *ip.interface;
      }
      ips.push_back(std::move(j));
    }
  }
  if (!result.routes.empty()) {
    json& routes = out["routes"] = json::array();
    for (const CniRoute& route : result.routes) routes.push_back(RouteToJson(route));
  }
  out["dns"] = DnsToJson(result.dns);
  return out;
}

std::vector<std::string> PodIps(const CniResult& result, absl::string_view ifname) {
  bool any_named = std::any_of(result.ips.begin(), result.ips.end(),
                               [](const CniIpConfig& ip) { return ip.interface.has_value(); });
  std::vector<std::string> v4, v6;
  for (const CniIpConfig& ip : result.ips) {
    if (any_named) {
      if (!ip.interface.has_value() || *ip.interface < 0 ||
          static_cast<size_t>(*ip.interface) >= result.interfaces.size()) {
        continue;
      }
      const CniInterface& itf = result.interfaces[*ip.interface];
      if (itf.sandbox.empty() || itf.name != ifname) continue;
    }
    std::string addr = CanonicalIp(ip.address);
    if (addr.empty()) continue;
    std::vector<std::string>& list = addr.find(':') != std::string::npos ? v6 : v4;
    if (std::find(list.begin(), list.end(), addr) == list.end()) list.push_back(std::move(addr));
  }
  for (std::string& addr : v6) v4.push_back(std::move(addr));
  return v4;
}

std::optional<CniError> ParseCniError(absl::string_view text) {
  absl::StatusOr<json> doc = ParseObject(text, "CNI error");
  if (!doc.ok()) return std::nullopt;
  auto code = doc->find("code");
  if (code == doc->end() || !code->is_number_unsigned() ||
      code->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
    return std::nullopt;
  }
  CniError err;
  err.code = static_cast<uint32_t>(code->get<uint64_t>());
  for (auto [key, out] : {std::pair{"msg", &err.msg}, std::pair{"details", &err.details}}) {
    const json* v = Member(*doc, key);
    if (v == nullptr) continue;
    if (!v->is_string()) return std::nullopt;
    *out = v->get<std::string>();
  }
  return err;
}

absl::string_view CniErrorCodeName(uint32_t code) {
  switch (code) {
    case 1: return "incompatible CNI version";
    case 2: return "unsupported field in network configuration";
    case 3: return "container unknown or does not exist";
    case 4: return "invalid necessary environment variables";
    case 5: return "I/O failure";
    case 6: return "failed to decode content";
    case 7: return "invalid network config";
    case 11: return "try again later";
    case 50: return "plugin not available";
    case 51: return "plugin not available, existing containers may have limited connectivity";
    default: return "";
  }
}

absl::StatusOr<std::vector<std::string>> ParseCniVersionResult(absl::string_view text) {
  ASSIGN_OR_RETURN(json doc, ParseObject(text, "CNI VERSION result"));
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("CNI VERSION result: ", why));
  };
  const json* version = Member(doc, "cniVersion");
  if (version == nullptr) return bad("missing cniVersion");
  if (!version->is_string()) {
    return bad(absl::StrCat("cniVersion: expected a string, got ", version->type_name()));
  }
  const std::string& cni_version = version->get_ref<const std::string&>();
  if (!ParseCniVersion(cni_version).ok()) {
    return bad(absl::StrCat("cniVersion: ", QuoteForMessage(cni_version, kMaxQuoted),
                            " is not a version"));
  }
  std::vector<std::string> out;
  const json* supported = Member(doc, "supportedVersions");
  if (supported != nullptr) {
    if (!supported->is_array()) {
      return bad(
          absl::StrCat("supportedVersions: expected an array, got ", supported->type_name()));
    }
    if (supported->size() > kMaxListEntries) {
      return bad(absl::StrCat("supportedVersions: ", supported->size(), " entries, more than the ",
                              kMaxListEntries, " allowed"));
    }
    for (size_t i = 0; i < supported->size(); ++i) {
      const json& v = (*supported)[i];
      if (!v.is_string()) {
        return bad(
            absl::StrCat("supportedVersions[", i, "]: expected a string, got ", v.type_name()));
      }
      const std::string& s = v.get_ref<const std::string&>();
      if (!ParseCniVersion(s).ok()) {
        return bad(absl::StrCat("supportedVersions[", i, "]: ", QuoteForMessage(s, kMaxQuoted),
                                " is not a version"));
      }
      out.push_back(s);
    }
  }
  if (out.empty()) {
    // A plugin from before VERSION listed its versions answers only its own.
    if (cni_version == "0.2.0") return std::vector<std::string>{"0.1.0", "0.2.0"};
    return bad("missing supportedVersions");
  }
  return out;
}

}  // namespace berth::network

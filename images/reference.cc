#include "images/reference.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace berth::images {

namespace {

constexpr size_t kMaxName = 255;   // domain "/" path, as distribution/reference
constexpr size_t kMaxText = 1024;  // whole references: name, tag, a sha512 digest fit
constexpr size_t kMaxTag = 128;
constexpr size_t kMaxQuoted = 160;
constexpr absl::string_view kDockerHub = "docker.io";
constexpr absl::string_view kLegacyDockerHub = "index.docker.io";

// The input for an error message: JSON-quoted and ASCII only (control characters and
// terminal escapes cannot reach a log), cut to kMaxQuoted bytes.
std::string Quote(absl::string_view s) {
  std::string out =
      nlohmann::json(std::string(s.substr(0, kMaxQuoted)))
          .dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  if (s.size() > kMaxQuoted) out.insert(out.size() - 1, "...");
  return out;
}

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
bool ValidPathComponent(absl::string_view s) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t start = i;
    while (i < s.size() && IsLowerAlnum(s[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < s.size() && s[i] == '_') ++i;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

// [\w][\w.-]{0,127}
bool ValidTag(absl::string_view s) {
  if (s.empty() || s.size() > kMaxTag) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool word = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (!word && (i == 0 || (c != '.' && c != '-'))) return false;
  }
  return true;
}

// A DNS name component: [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9].
bool ValidHostComponent(absl::string_view s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

bool ValidIpv6(absl::string_view s) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (s.empty() || s.size() >= sizeof(buf)) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  }
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  unsigned char addr[sizeof(struct in6_addr)];
  return ::inet_pton(AF_INET6, buf, addr) == 1;
}

// "" when `domain` (host[:port]) is well-formed, else why not.
std::string CheckDomain(absl::string_view domain) {
  absl::string_view host = domain, port;
  bool has_port = false;
  if (absl::StartsWith(domain, "[")) {
    size_t close = domain.find(']');
    if (close == absl::string_view::npos) return "an IPv6 address needs a closing ']'";
    host = domain.substr(0, close + 1);
    absl::string_view after = domain.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "expected ':' and a port after the IPv6 address";
      port = after.substr(1);
      has_port = true;
    }
    if (!ValidIpv6(host.substr(1, host.size() - 2))) {
      return absl::StrCat(Quote(host), " is not an IPv6 address");
    }
  } else {
    size_t colon = domain.find(':');
    if (colon != absl::string_view::npos) {
      host = domain.substr(0, colon);
      port = domain.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return "the host is empty";
    for (absl::string_view part : absl::StrSplit(host, '.')) {
      if (!ValidHostComponent(part)) {
        return absl::StrCat("host ", Quote(host),
                            " is not a host name (letters, digits and '-' between dots)");
      }
    }
  }
  if (has_port) {
    bool digits = !port.empty() && port.size() <= 5;
    int value = 0;
    for (char c : port) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) digits = false;
      if (digits) value = value * 10 + (c - '0');
    }
    if (!digits || value < 1 || value > 65535) {
      return absl::StrCat("port ", Quote(port), " is not a number from 1 to 65535");
    }
  }
  return "";
}

// The first component names a registry rather than a repository when it looks like a host.
bool LooksLikeDomain(absl::string_view component) {
  return component.find_first_of(".:") != absl::string_view::npos || component == "localhost" ||
         absl::StartsWith(component, "[");
}

}  // namespace

std::string Reference::Name() const {
  return absl::StrCat(domain, "/", path);
}

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (digest.has_value()) absl::StrAppend(&out, "@", digest->ToString());
  return out;
}

absl::StatusOr<Reference> ParseReference(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid image reference ", Quote(text), ": ", why));
  };
  if (text.empty()) return absl::InvalidArgumentError("invalid image reference: it is empty");
  if (text.size() > kMaxText) {
    return bad(absl::StrCat(text.size(), " characters, more than the ", kMaxText, " allowed"));
  }
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isspace(u)) return bad("it contains whitespace");
    if (u < 0x20 || u == 0x7f) return bad("it contains a control character");
    if (u >= 0x80) return bad("it contains a non-ASCII character");
  }
  if (text.find("://") != absl::string_view::npos) {
    return bad("references have no URL scheme; name the registry as host[:port]/path");
  }
  if (IsHex64(text) || (absl::StartsWith(text, "sha256:") && IsHex64(text.substr(7)))) {
    return bad("this looks like an image ID (64 hex digits), not a reference");
  }

  Reference ref;
  absl::string_view rest = text;
  if (size_t at = text.find('@'); at != absl::string_view::npos) {
    absl::string_view digest = text.substr(at + 1);
    rest = text.substr(0, at);
    if (digest.empty()) return bad("nothing after '@' (expected a digest like sha256:<64 hex>)");
    absl::StatusOr<Digest> d = Digest::Parse(digest);
    if (!d.ok()) {
      return absl::Status(d.status().code(), absl::StrCat("invalid image reference ", Quote(text),
                                                          ": ", d.status().message()));
    }
    ref.digest = *std::move(d);
  }
  size_t colon = rest.rfind(':');
  size_t slash = rest.rfind('/');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    absl::string_view tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (tag.empty()) return bad("nothing after ':' (expected a tag)");
    if (!ValidTag(tag)) {
      return bad(absl::StrCat("tag ", Quote(tag),
                              " is invalid (letters, digits, '_', '.' and '-', not starting "
                              "with '.' or '-', at most ",
                              kMaxTag, " characters)"));
    }
    ref.tag = std::string(tag);
  }
  if (rest.empty()) return bad("the repository name is empty");
  if (rest.front() == '/') return bad("it starts with '/'");
  if (rest.back() == '/') return bad("it ends with '/'");
  if (rest.find("//") != absl::string_view::npos) return bad("it has an empty path component");

  absl::string_view path = rest;
  if (size_t first = rest.find('/'); first != absl::string_view::npos) {
    absl::string_view head = rest.substr(0, first);
    if (LooksLikeDomain(head)) {
      std::string why = CheckDomain(head);
      if (!why.empty()) return bad(absl::StrCat("registry ", Quote(head), ": ", why));
      ref.domain = std::string(head);
      path = rest.substr(first + 1);
    }
  }
  if (ref.domain.empty() || ref.domain == kLegacyDockerHub) ref.domain = std::string(kDockerHub);
  for (absl::string_view component : absl::StrSplit(path, '/')) {
    if (!ValidPathComponent(component)) {
      for (char c : component) {
        if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
          return bad("repository name must be lowercase");
        }
      }
      return bad(absl::StrCat("path component ", Quote(component),
                              " is invalid (lowercase letters and digits, separated by '.', "
                              "'_', '__' or '-')"));
    }
  }
  ref.path = std::string(path);
  if (ref.domain == kDockerHub && ref.path.find('/') == std::string::npos) {
    ref.path = absl::StrCat("library/", ref.path);
  }
  if (size_t n = ref.domain.size() + 1 + ref.path.size(); n > kMaxName) {
    return bad(absl::StrCat("the repository name ", Quote(ref.Name()), " is ", n,
                            " characters, more than the ", kMaxName, " allowed"));
  }
  if (ref.tag.empty() && !ref.digest.has_value()) ref.tag = "latest";
  return ref;
}

}  // namespace berth::images

#include "cri/client/endpoint.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::cri::client {

absl::StatusOr<std::string> NormalizeEndpoint(absl::string_view endpoint) {
  absl::string_view e = absl::StripAsciiWhitespace(endpoint);
  if (absl::StartsWith(e, "/")) return absl::StrCat("unix://", e);
  if (absl::StartsWith(e, "unix:///") && e.size() > 8) return std::string(e);
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported runtime endpoint \"", endpoint,
                   "\": use unix:///path/to/socket (or an absolute socket path)"));
}

std::string SocketPathOf(absl::string_view endpoint) {
  if (absl::StartsWith(endpoint, "unix://")) return std::string(endpoint.substr(7));
  return std::string(endpoint);
}

absl::StatusOr<std::map<std::string, std::string>> ReadCrictlConfig(const std::string& path) {
  std::map<std::string, std::string> out;
  absl::StatusOr<std::string> text = ReadFile(path, 1 << 20);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return out;
    return text.status();
  }
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#' || l == "---") continue;
    size_t colon = l.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view key = absl::StripAsciiWhitespace(l.substr(0, colon));
    absl::string_view value = absl::StripAsciiWhitespace(l.substr(colon + 1));
    // A trailing comment, then optional quotes.
    if (!value.empty() && value[0] != '"' && value[0] != '\'') {
      size_t hash = value.find(" #");
      if (hash != absl::string_view::npos)
        value = absl::StripAsciiWhitespace(value.substr(0, hash));
    }
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    out[std::string(key)] = std::string(value);
  }
  return out;
}

absl::StatusOr<std::string> ResolveEndpoint(absl::string_view flag, absl::string_view env,
                                            const std::string& crictl_config_path) {
  if (!flag.empty()) return NormalizeEndpoint(flag);
  if (!env.empty()) return NormalizeEndpoint(env);
  absl::StatusOr<std::map<std::string, std::string>> cfg = ReadCrictlConfig(crictl_config_path);
  if (!cfg.ok()) return Annotate(cfg.status(), absl::StrCat("reading ", crictl_config_path));
  if (auto it = cfg->find("runtime-endpoint"); it != cfg->end() && !it->second.empty()) {
    return NormalizeEndpoint(it->second);
  }
  return std::string(kDefaultEndpoint);
}

}  // namespace berth::cri::client

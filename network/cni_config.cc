#include "network/cni_config.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/json.h"
#include "base/status.h"

namespace berth::network {

namespace {

constexpr size_t kMaxConfigSize = 1 << 20;
constexpr int kMaxConfigDepth = 64;

absl::Status Invalid(const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("CNI config ", path, ": ", why));
}

absl::Status CheckPlugin(const std::string& path, const nlohmann::json& plugin, size_t index) {
  if (!plugin.is_object())
    return Invalid(path, absl::StrCat("plugins[", index, "] is not an object"));
  auto type = plugin.find("type");
  if (type == plugin.end() || !type->is_string() || type->get<std::string>().empty()) {
    return Invalid(path, absl::StrCat("plugins[", index, "] has no \"type\""));
  }
  const std::string& t = type->get_ref<const std::string&>();
  if (t.find('/') != std::string::npos || t == "." || t == "..") {
    return Invalid(path, absl::StrCat("plugins[", index, "] type \"", t, "\" is not a plain name"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CniConfigList> LoadCniConfigFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxConfigSize));
  return ParseCniConfig(text, path);
}

absl::StatusOr<CniConfigList> ParseCniConfig(absl::string_view text, const std::string& path) {
  if (!JsonNestingWithin(text, kMaxConfigDepth)) {
    return Invalid(path, absl::StrCat("JSON nested deeper than ", kMaxConfigDepth, " levels"));
  }
  nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid(path, "not valid JSON");
  if (!doc.is_object()) return Invalid(path, "not a JSON object");

  CniConfigList list;
  list.file = path;
  list.raw = std::string(text);
  auto name = doc.find("name");
  if (name == doc.end() || !name->is_string() || name->get<std::string>().empty()) {
    return Invalid(path, "missing network \"name\"");
  }
  list.name = name->get<std::string>();
  // The name becomes part of cache and IPAM file names.
  if (list.name.find('/') != std::string::npos || list.name == "." || list.name == ".." ||
      list.name.size() > 200) {
    return Invalid(path,
                   absl::StrCat("network name \"", list.name, "\" is not usable as a file name"));
  }
  auto version = doc.find("cniVersion");
  if (version != doc.end()) {
    if (!version->is_string()) return Invalid(path, "\"cniVersion\" is not a string");
    list.cni_version = version->get<std::string>();
  }
  if (auto dc = doc.find("disableCheck"); dc != doc.end() && dc->is_boolean()) {
    list.disable_check = dc->get<bool>();
  }

  bool is_list = absl::EndsWith(path, ".conflist") || doc.contains("plugins");
  if (is_list) {
    auto plugins = doc.find("plugins");
    if (plugins == doc.end() || !plugins->is_array()) return Invalid(path, "no \"plugins\" array");
    if (plugins->empty()) return Invalid(path, "\"plugins\" is empty");
    for (size_t i = 0; i < plugins->size(); ++i) {
      RETURN_IF_ERROR(CheckPlugin(path, (*plugins)[i], i));
      list.plugins.push_back((*plugins)[i]);
    }
  } else {
    RETURN_IF_ERROR(CheckPlugin(path, doc, 0));
    list.plugins.push_back(doc);
  }
  if (list.cni_version.empty()) return Invalid(path, "missing \"cniVersion\"");
  return list;
}

absl::StatusOr<CniConfigList> FindCniNetwork(const std::string& conf_dir, const std::string& name) {
  DIR* dir = ::opendir(conf_dir.c_str());
  if (dir == nullptr) return LastErrnoError(absl::StrCat("read CNI config dir ", conf_dir));
  std::vector<std::string> files;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir is safe on a DIR* used by one thread.
  while (struct dirent* ent = ::readdir(dir)) {
    std::string n = ent->d_name;
    if (absl::EndsWith(n, ".conf") || absl::EndsWith(n, ".conflist") ||
        absl::EndsWith(n, ".json")) {
      files.push_back(n);
    }
  }
  ::closedir(dir);
  std::sort(files.begin(), files.end());

  std::vector<std::string> skipped;
  for (const std::string& f : files) {
    absl::StatusOr<CniConfigList> list = LoadCniConfigFile(absl::StrCat(conf_dir, "/", f));
    if (!list.ok()) {
      skipped.push_back(std::string(list.status().message()));
      continue;
    }
    if (name.empty() || list->name == name) return list;
  }
  std::string what = name.empty()
                         ? "no valid CNI network config"
                         : absl::StrCat("no valid CNI network config named \"", name, "\"");
  std::string msg = absl::StrCat(what, " found in ", conf_dir);
  if (!skipped.empty()) absl::StrAppend(&msg, " (skipped: ", absl::StrJoin(skipped, "; "), ")");
  return absl::NotFoundError(msg);
}

absl::StatusOr<std::string> FindCniPlugin(const std::string& type,
                                          const std::vector<std::string>& bin_dirs) {
  for (const std::string& dir : bin_dirs) {
    std::string path = absl::StrCat(dir, "/", type);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return absl::NotFoundError(
      absl::StrCat("CNI plugin \"", type, "\" not found in ", absl::StrJoin(bin_dirs, ":")));
}

NetworkReadiness CheckCniReadiness(const std::string& conf_dir,
                                   const std::vector<std::string>& bin_dirs,
                                   const std::string& name) {
  NetworkReadiness r;
  r.reason = "NetworkPluginNotReady";
  absl::StatusOr<CniConfigList> list = FindCniNetwork(conf_dir, name);
  if (!list.ok()) {
    r.message = absl::StrCat("Network plugin returns error: cni config uninitialized: ",
                             list.status().message());
    return r;
  }
  for (const nlohmann::json& plugin : list->plugins) {
    absl::StatusOr<std::string> bin = FindCniPlugin(plugin["type"].get<std::string>(), bin_dirs);
    if (!bin.ok()) {
      r.message = absl::StrCat("Network plugin returns error: network \"", list->name, "\" (",
                               list->file, "): ", bin.status().message());
      return r;
    }
  }
  r.ready = true;
  r.reason.clear();
  r.network = list->name;
  r.file = list->file;
  return r;
}

}  // namespace berth::network

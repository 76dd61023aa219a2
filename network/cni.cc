#include "network/cni.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"

extern char** environ;

namespace berth::network {

namespace {

thread_local absl::Duration t_plugin_time;

constexpr char kCacheKind[] = "cniCacheV1";

bool AtLeast(const std::string& version, int major, int minor) {
  absl::StatusOr<CniVersion> v = ParseCniVersion(version);
  if (!v.ok()) return false;
  return CompareCniVersions(*v, CniVersion{major, minor, 0}) >= 0;
}

// The process environment at start-up, without any CNI_* variables of our own.
std::vector<std::string> BaseEnvironment() {
  std::vector<std::string> env;
  bool have_path = false;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view kv(*e);
    if (absl::StartsWith(kv, "CNI_")) continue;
    if (absl::StartsWith(kv, "PATH=")) have_path = true;
    env.emplace_back(kv);
  }
  // Plugins such as portmap and bridge (ipMasq) run iptables found through PATH.
  if (!have_path)
    env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  return env;
}

absl::Status PluginFailure(const std::string& command, const CniConfigList& list,
                           const std::string& type, const PluginOutput& out) {
  std::string where =
      absl::StrCat("CNI plugin ", type, " (", command, ", network \"", list.name, "\")");
  std::optional<CniError> e = ParseCniError(out.out);
  if (!e) {
    std::string err(absl::StripAsciiWhitespace(out.err.empty() ? out.out : out.err));
    return absl::InternalError(absl::StrCat(where, " failed with exit code ", out.exit_code,
                                            err.empty() ? "" : ": ", err));
  }
  std::string msg = absl::StrCat(where, ": ", e->msg);
  if (!e->details.empty()) absl::StrAppend(&msg, ": ", e->details);
  absl::string_view name = CniErrorCodeName(e->code);
  absl::StrAppend(&msg, " (code ", e->code, name.empty() ? "" : ": ", name, ")");
  switch (e->code) {
    case 11: return absl::UnavailableError(msg);  // try again later
    case 3: return absl::NotFoundError(msg);      // container unknown
    default: return absl::InternalError(msg);
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> KubernetesCniArgs(const std::string& pod_namespace,
                                                                   const std::string& pod_name,
                                                                   const std::string& sandbox_id,
                                                                   const std::string& pod_uid) {
  return {{"IgnoreUnknown", "1"},
          {"K8S_POD_NAMESPACE", pod_namespace},
          {"K8S_POD_NAME", pod_name},
          {"K8S_POD_INFRA_CONTAINER_ID", sandbox_id},
          {"K8S_POD_UID", pod_uid}};
}

CniInvoker::CniInvoker(Options options, std::shared_ptr<PluginExecutor> executor)
    : options_(std::move(options)), executor_(std::move(executor)) {}

absl::Duration CniInvoker::LastPluginTime() {
  return t_plugin_time;
}

absl::StatusOr<std::string> CniInvoker::RunPlugin(const std::string& command,
                                                  const CniConfigList& list,
                                                  const nlohmann::json& plugin,
                                                  const CniRuntimeConf& rt,
                                                  const std::optional<CniResult>& prev) {
  const std::string type = plugin["type"].get<std::string>();
  ASSIGN_OR_RETURN(std::string path, FindCniPlugin(type, options_.bin_dirs));

  // The plugin's own stdin: its object from the list, with the list's name and version, the
  // previous result, and only the capability args it declared.
  nlohmann::json conf = plugin;
  conf["name"] = list.name;
  conf["cniVersion"] = list.cni_version;
  if (prev) {
    ASSIGN_OR_RETURN(nlohmann::json prev_json, CniResultToJson(*prev, list.cni_version));
    conf["prevResult"] = std::move(prev_json);
  }
  nlohmann::json runtime_config = nlohmann::json::object();
  if (auto caps = plugin.find("capabilities"); caps != plugin.end() && caps->is_object()) {
    for (const auto& [name, value] : rt.capability_args.items()) {
      auto c = caps->find(name);
      if (c != caps->end() && c->is_boolean() && c->get<bool>()) runtime_config[name] = value;
    }
  }
  if (!runtime_config.empty()) conf["runtimeConfig"] = std::move(runtime_config);

  std::vector<std::string> args;
  for (const auto& [k, v] : rt.args) args.push_back(absl::StrCat(k, "=", v));
  PluginRun run;
  run.path = path;
  run.timeout = options_.plugin_timeout;
  run.stdin_data = conf.dump();
  run.env = {absl::StrCat("CNI_COMMAND=", command),
             absl::StrCat("CNI_CONTAINERID=", rt.container_id),
             absl::StrCat("CNI_NETNS=", rt.netns),
             absl::StrCat("CNI_ARGS=", absl::StrJoin(args, ";")),
             absl::StrCat("CNI_IFNAME=", rt.ifname),
             absl::StrCat("CNI_PATH=", absl::StrJoin(options_.bin_dirs, ":"))};
  static const std::vector<std::string>* base = new std::vector<std::string>(BaseEnvironment());
  run.env.insert(run.env.end(), base->begin(), base->end());

  absl::StatusOr<PluginOutput> out = executor_->Run(run);
  if (!out.ok()) {
    return Annotate(out.status(), absl::StrCat("CNI plugin ", type, " (", command, ", network \"",
                                               list.name, "\")"));
  }
  t_plugin_time += out->elapsed;
  if (out->exit_code != 0) return PluginFailure(command, list, type, *out);
  return std::move(out->out);
}

absl::StatusOr<CniResult> CniInvoker::RunAdd(const CniConfigList& list, const CniRuntimeConf& rt) {
  std::optional<CniResult> prev;
  for (const nlohmann::json& plugin : list.plugins) {
    ASSIGN_OR_RETURN(std::string out, RunPlugin("ADD", list, plugin, rt, prev));
    absl::StatusOr<CniResult> result = ParseCniResult(out, list.cni_version);
    if (!result.ok()) {
      return Annotate(result.status(),
                      absl::StrCat("CNI plugin ", plugin["type"].get<std::string>(),
                                   " (ADD) returned an invalid result"));
    }
    prev = std::move(*result);
  }
  if (!prev) return absl::InternalError(absl::StrCat("network \"", list.name, "\" has no plugins"));
  return std::move(*prev);
}

absl::Status CniInvoker::RunDel(const CniConfigList& list, const CniRuntimeConf& rt,
                                const std::optional<CniResult>& prev) {
  CniRuntimeConf del_rt = rt;
  // Plugins clean up what they can without a namespace; a stale path would make them fail.
  if (!del_rt.netns.empty() && ::access(del_rt.netns.c_str(), F_OK) != 0) del_rt.netns.clear();
  std::optional<CniResult> prev_for_del;
  if (AtLeast(list.cni_version, 0, 4)) prev_for_del = prev;

  absl::Status last;
  for (int attempt = 0; attempt < std::max(1, options_.del_attempts); ++attempt) {
    if (attempt > 0) absl::SleepFor(absl::Milliseconds(100) * (1 << (2 * (attempt - 1))));
    last = absl::OkStatus();
    for (auto it = list.plugins.rbegin(); it != list.plugins.rend(); ++it) {
      absl::StatusOr<std::string> out = RunPlugin("DEL", list, *it, del_rt, prev_for_del);
      if (!out.ok()) {
        last = out.status();
        break;
      }
    }
    if (last.ok()) return last;
  }
  return last;
}

absl::StatusOr<CniResult> CniInvoker::Add(const CniConfigList& list, const CniRuntimeConf& rt) {
  t_plugin_time = absl::ZeroDuration();
  // Recorded before the first plugin runs: whatever happens next, DEL can find it.
  RETURN_IF_ERROR(WriteCache(list, rt, std::nullopt));
  absl::StatusOr<CniResult> result = RunAdd(list, rt);
  if (!result.ok()) {
    absl::Status undo = RunDel(list, rt, std::nullopt);
    if (!undo.ok()) {
      // Keep the record: a later DelCached (pod removal, restart) retries the clean-up.
      return Annotate(result.status(),
                      absl::StrCat("(and undoing it failed, will retry: ", undo.message(), ")"));
    }
    if (::unlink(CachePath(list.name, rt).c_str()) != 0 && errno != ENOENT) {
      return Annotate(result.status(), "(and removing its cache entry failed)");
    }
    return result.status();
  }
  RETURN_IF_ERROR(WriteCache(list, rt, *result));
  return result;
}

absl::Status CniInvoker::Check(const CniConfigList& list, const CniRuntimeConf& rt) {
  if (!AtLeast(list.cni_version, 0, 4)) {
    return absl::FailedPreconditionError(absl::StrCat("network \"", list.name, "\": cniVersion ",
                                                      list.cni_version, " has no CHECK command"));
  }
  if (list.disable_check) return absl::OkStatus();
  ASSIGN_OR_RETURN(CachedAttachment cached, ReadCache(CachePath(list.name, rt)));
  if (!cached.result) {
    return absl::FailedPreconditionError(
        absl::StrCat("network \"", list.name, "\": no result cached for ", rt.container_id));
  }
  for (const nlohmann::json& plugin : list.plugins) {
    absl::StatusOr<std::string> out = RunPlugin("CHECK", list, plugin, rt, cached.result);
    if (!out.ok()) return out.status();
  }
  return absl::OkStatus();
}

absl::Status CniInvoker::Del(const CniConfigList& list, const CniRuntimeConf& rt) {
  t_plugin_time = absl::ZeroDuration();
  std::string path = CachePath(list.name, rt);
  std::optional<CniResult> prev;
  absl::StatusOr<CachedAttachment> cached = ReadCache(path);
  if (cached.ok()) prev = cached->result;  // a missing or corrupt entry: DEL without it
  RETURN_IF_ERROR(RunDel(list, rt, prev));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("remove CNI cache entry ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CachedAttachment>> CniInvoker::CachedAttachments(
    const std::string& container_id) {
  std::vector<CachedAttachment> out;
  std::string dir = absl::StrCat(options_.cache_dir, "/results");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return LastErrnoError(absl::StrCat("read CNI cache ", dir));
  }
  std::vector<std::string> names;
  const std::string needle = absl::StrCat("-", container_id, "-");
  // NOLINTNEXTLINE(concurrency-mt-unsafe): readdir is safe on a DIR* used by one thread.
  while (struct dirent* e = ::readdir(d)) {
    if (absl::StrContains(e->d_name, needle)) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const std::string& n : names) {
    absl::StatusOr<CachedAttachment> a = ReadCache(absl::StrCat(dir, "/", n));
    if (!a.ok()) return a.status();
    if (a->runtime.container_id == container_id) out.push_back(std::move(*a));
  }
  return out;
}

absl::Status CniInvoker::DelCached(const std::string& container_id) {
  t_plugin_time = absl::ZeroDuration();
  ASSIGN_OR_RETURN(std::vector<CachedAttachment> attachments, CachedAttachments(container_id));
  for (const CachedAttachment& a : attachments) {
    RETURN_IF_ERROR(RunDel(a.config, a.runtime, a.result));
    if (::unlink(a.path.c_str()) != 0 && errno != ENOENT) {
      return LastErrnoError(absl::StrCat("remove CNI cache entry ", a.path));
    }
  }
  return absl::OkStatus();
}

std::string CniInvoker::CachePath(const std::string& network, const CniRuntimeConf& rt) const {
  return absl::StrCat(options_.cache_dir, "/results/", network, "-", rt.container_id, "-",
                      rt.ifname);
}

absl::Status CniInvoker::WriteCache(const CniConfigList& list, const CniRuntimeConf& rt,
                                    const std::optional<CniResult>& result) {
  // libcni's cniCacheV1 layout, so tools that read libcni caches read ours.
  nlohmann::json j;
  j["kind"] = kCacheKind;
  j["containerId"] = rt.container_id;
  j["config"] = absl::Base64Escape(list.raw);
  j["ifName"] = rt.ifname;
  j["networkName"] = list.name;
  if (!rt.netns.empty()) j["netns"] = rt.netns;
  if (!rt.args.empty()) {
    nlohmann::json args = nlohmann::json::array();
    for (const auto& [k, v] : rt.args) args.push_back({k, v});
    j["cniArgs"] = std::move(args);
  }
  if (!rt.capability_args.empty()) j["capabilityArgs"] = rt.capability_args;
  if (result) {
    ASSIGN_OR_RETURN(nlohmann::json r, CniResultToJson(*result, list.cni_version));
    j["result"] = std::move(r);
  }
  RETURN_IF_ERROR(MkdirAll(absl::StrCat(options_.cache_dir, "/results"), 0700));
  // Not fsynced, as libcni does not: the entry must survive berthd crashing, and a machine
  // crash takes the namespaces with it.
  return WriteFileAtomic(CachePath(list.name, rt), j.dump(), 0600, /*sync=*/false);
}

absl::StatusOr<CachedAttachment> CniInvoker::ReadCache(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 4 << 20));
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("CNI cache entry ", path, ": ", why));
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("kind", "") != kCacheKind) return bad("not a cniCacheV1 entry");
  CachedAttachment a;
  a.path = path;
  std::string raw;
  if (!j["config"].is_string() || !absl::Base64Unescape(j["config"].get<std::string>(), &raw)) {
    return bad("config is not base64");
  }
  absl::StatusOr<CniConfigList> config = ParseCniConfig(raw, path);
  if (!config.ok()) return bad(config.status().message());
  a.config = std::move(*config);
  if (!j["containerId"].is_string() || !j["ifName"].is_string()) return bad("missing ids");
  a.runtime.container_id = j["containerId"].get<std::string>();
  a.runtime.ifname = j["ifName"].get<std::string>();
  if (j.contains("netns") && j["netns"].is_string())
    a.runtime.netns = j["netns"].get<std::string>();
  if (j.contains("cniArgs")) {
    if (!j["cniArgs"].is_array()) return bad("cniArgs is not a list");
    for (const nlohmann::json& kv : j["cniArgs"]) {
      if (!kv.is_array() || kv.size() != 2 || !kv[0].is_string() || !kv[1].is_string()) {
        return bad("cniArgs entry is not a [key, value] pair");
      }
      a.runtime.args.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
    }
  }
  if (j.contains("capabilityArgs")) a.runtime.capability_args = j["capabilityArgs"];
  if (j.contains("result")) {
    absl::StatusOr<CniResult> r = ParseCniResult(j["result"].dump(), a.config.cni_version);
    if (!r.ok()) return bad(r.status().message());
    a.result = std::move(*r);
  }
  return a;
}

}  // namespace berth::network

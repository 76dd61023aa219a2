#include "cri/config.h"

#include <sys/stat.h>
#include <cerrno>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/file.h"
#include "base/status.h"
#include "spdlog/common.h"
#include "toml++/toml.h"

namespace berth::cri {

namespace {

// Walks the parsed document, checking every key against what is known and converting values.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  absl::Status Error(const toml::node* node, const std::string& key, absl::string_view why) const {
    std::string where = source_;
    if (node != nullptr && node->source().begin) {
      absl::StrAppend(&where, ":", node->source().begin.line);
    }
    return absl::InvalidArgumentError(absl::StrCat(where, ": key \"", key, "\": ", why));
  }

  // Refuses keys of `table` not in `known`.
  absl::Status CheckKeys(const toml::table& table, const std::string& prefix,
                         const std::set<std::string>& known) const {
    for (const auto& [k, v] : table) {
      if (!known.count(std::string(k.str()))) {
        std::string full = Full(prefix, std::string(k.str()));
        return Error(&v, full,
                     absl::StrCat("unknown key (known here: ", absl::StrJoin(known, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<const toml::table*> Table(const toml::table& parent,
                                           const std::string& key) const {
    const toml::node* n = parent.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) return Error(n, key, "must be a table");
    return n->as_table();
  }

  absl::Status String(const toml::table& t, const std::string& prefix, const std::string& key,
                      std::string* out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return absl::OkStatus();
    if (!n->is_string()) return Error(n, Full(prefix, key), "must be a string");
    *out = n->value<std::string>().value();
    return absl::OkStatus();
  }

  absl::Status AbsPath(const toml::table& t, const std::string& prefix, const std::string& key,
                       std::string* out, bool allow_empty) const {
    std::string v = *out;
    RETURN_IF_ERROR(String(t, prefix, key, &v));
    if (v.empty() && allow_empty) {
      *out = v;
      return absl::OkStatus();
    }
    if (!absl::StartsWith(v, "/")) {
      return Error(t.get(key), Full(prefix, key),
                   absl::StrCat("\"", v, "\" is not an absolute path"));
    }
    *out = v;
    return absl::OkStatus();
  }

  absl::Status Bool(const toml::table& t, const std::string& prefix, const std::string& key,
                    bool* out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return absl::OkStatus();
    if (!n->is_boolean()) return Error(n, Full(prefix, key), "must be true or false");
    *out = n->value<bool>().value();
    return absl::OkStatus();
  }

  absl::Status Integer(const toml::table& t, const std::string& prefix, const std::string& key,
                       int64_t min, int64_t max, int64_t* out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return absl::OkStatus();
    if (!n->is_integer()) return Error(n, Full(prefix, key), "must be an integer");
    int64_t v = n->value<int64_t>().value();
    if (v < min || v > max) {
      return Error(n, Full(prefix, key),
                   absl::StrCat(v, " is out of range [", min, ", ", max, "]"));
    }
    *out = v;
    return absl::OkStatus();
  }

  absl::Status Duration(const toml::table& t, const std::string& prefix, const std::string& key,
                        absl::Duration* out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return absl::OkStatus();
    if (!n->is_string())
      return Error(n, Full(prefix, key), "must be a duration string such as \"10s\"");
    std::string s = n->value<std::string>().value();
    absl::Duration d;
    if (!absl::ParseDuration(s, &d) || d <= absl::ZeroDuration()) {
      return Error(
          n, Full(prefix, key),
          absl::StrCat("\"", s, "\" is not a positive duration (e.g. \"500ms\", \"10s\", \"2m\")"));
    }
    *out = d;
    return absl::OkStatus();
  }

  absl::Status PathList(const toml::table& t, const std::string& prefix, const std::string& key,
                        std::vector<std::string>* out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return absl::OkStatus();
    if (!n->is_array()) return Error(n, Full(prefix, key), "must be an array of absolute paths");
    std::vector<std::string> v;
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string() || !absl::StartsWith(e.value<std::string>().value(), "/")) {
        return Error(&e, Full(prefix, key), "every entry must be an absolute path string");
      }
      v.push_back(e.value<std::string>().value());
    }
    if (v.empty()) return Error(n, Full(prefix, key), "must not be empty");
    *out = std::move(v);
    return absl::OkStatus();
  }

  static std::string Full(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? std::string(key) : absl::StrCat(prefix, ".", key);
  }

 private:
  std::string source_;
};

absl::Status ValidateAddress(const Reader& r, const toml::table* t, const std::string& address) {
  constexpr absl::string_view kScheme = "unix://";
  if (!absl::StartsWith(address, kScheme) || address.size() <= kScheme.size() ||
      address[kScheme.size()] != '/') {
    return r.Error(t ? t->get("address") : nullptr, "grpc.address",
                   absl::StrCat("\"", address, "\" must be unix:///absolute/path"));
  }
  // sun_path holds 108 bytes including the terminating NUL.
  if (address.size() - kScheme.size() > 107) {
    return r.Error(t ? t->get("address") : nullptr, "grpc.address",
                   "socket path is longer than the 107 bytes a unix socket address can hold");
  }
  return absl::OkStatus();
}

}  // namespace

std::string Config::SocketPath() const {
  return grpc.address.substr(absl::string_view("unix://").size());
}

nlohmann::json Config::ToJson() const {
  nlohmann::json j;
  j["config_file"] = source;
  j["root"] = root;
  j["state"] = state;
  j["shutdown_timeout"] = absl::FormatDuration(shutdown_timeout);
  j["grpc"] = {{"address", grpc.address},
               {"gid", grpc.gid},
               {"max_recv_message_size", grpc.max_recv_message_size},
               {"max_send_message_size", grpc.max_send_message_size}};
  j["log"] = {{"level", std::string(spdlog::level::to_string_view(log.level).data(),
                                    spdlog::level::to_string_view(log.level).size())},
              {"format", log.format == log::Format::kJson ? "json" : "text"},
              {"file", log.file}};
  j["images"] = {{"max_concurrent_downloads", images.max_concurrent_downloads},
                 {"pull_progress_timeout", absl::FormatDuration(images.pull_progress_timeout)},
                 {"request_timeout", absl::FormatDuration(images.request_timeout)},
                 {"platform", images.platform},
                 {"auth_file", images.auth_file}};
  nlohmann::json regs = nlohmann::json::object();
  for (const auto& [host, reg] : registries) {
    regs[host] = {{"mirrors", reg.mirrors},
                  {"insecure", reg.insecure},
                  {"ca_file", reg.ca_file},
                  {"cert_file", reg.cert_file},
                  {"key_file", reg.key_file}};
  }
  j["registries"] = std::move(regs);
  j["cgroup"] = {{"systemd_cgroup", cgroup.systemd_cgroup}};
  j["cni"] = {{"conf_dir", cni.conf_dir},
              {"bin_dirs", cni.bin_dirs},
              {"network_name", cni.network_name},
              {"plugin_timeout", absl::FormatDuration(cni.plugin_timeout)}};
  nlohmann::json handlers = nlohmann::json::object();
  for (const auto& [name, h] : runtime.handlers) {
    handlers[name] = {{"path", h.path}, {"root", h.root}};
  }
  j["streaming"] = {{"address", streaming.address},
                    {"port", streaming.port},
                    {"tls_cert_file", streaming.tls_cert_file},
                    {"tls_key_file", streaming.tls_key_file},
                    {"idle_timeout", absl::FormatDuration(streaming.idle_timeout)},
                    {"token_ttl", absl::FormatDuration(streaming.token_ttl)}};
  j["runtime"] = {{"monitor_path", runtime.monitor_path},
                  {"oci_path", runtime.oci_path},
                  {"log_max_line", runtime.log_max_line},
                  {"shm_size", runtime.shm_size},
                  {"handlers", handlers}};
  return j;
}

absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, const std::string& source) {
  toml::table doc;
  try {
    doc = toml::parse(std::string_view(toml_text.data(), toml_text.size()), source);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.source().begin.line, ":",
                                                   e.source().begin.column, ": ",
                                                   std::string(e.description())));
  }

  Reader r(source);
  Config c;
  c.source = source;
  RETURN_IF_ERROR(r.CheckKeys(doc, "",
                              {"root", "state", "shutdown_timeout", "grpc", "log", "images",
                               "registries", "cgroup", "cni", "runtime", "streaming"}));
  RETURN_IF_ERROR(r.AbsPath(doc, "", "root", &c.root, false));
  RETURN_IF_ERROR(r.AbsPath(doc, "", "state", &c.state, false));
  RETURN_IF_ERROR(r.Duration(doc, "", "shutdown_timeout", &c.shutdown_timeout));

  ASSIGN_OR_RETURN(const toml::table* grpc, r.Table(doc, "grpc"));
  if (grpc != nullptr) {
    RETURN_IF_ERROR(r.CheckKeys(
        *grpc, "grpc", {"address", "gid", "max_recv_message_size", "max_send_message_size"}));
    RETURN_IF_ERROR(r.String(*grpc, "grpc", "address", &c.grpc.address));
    int64_t gid = c.grpc.gid;
    RETURN_IF_ERROR(r.Integer(*grpc, "grpc", "gid", 0, 0xfffffffeLL, &gid));
    c.grpc.gid = static_cast<gid_t>(gid);
    RETURN_IF_ERROR(r.Integer(*grpc, "grpc", "max_recv_message_size", 4096, INT32_MAX,
                              &c.grpc.max_recv_message_size));
    RETURN_IF_ERROR(r.Integer(*grpc, "grpc", "max_send_message_size", 4096, INT32_MAX,
                              &c.grpc.max_send_message_size));
  }
  RETURN_IF_ERROR(ValidateAddress(r, grpc, c.grpc.address));

  ASSIGN_OR_RETURN(const toml::table* lg, r.Table(doc, "log"));
  if (lg != nullptr) {
    RETURN_IF_ERROR(r.CheckKeys(*lg, "log", {"level", "format", "file"}));
    std::string level, format;
    RETURN_IF_ERROR(r.String(*lg, "log", "level", &level));
    if (!level.empty()) {
      absl::StatusOr<spdlog::level::level_enum> l = log::ParseLevel(level);
      if (!l.ok()) return r.Error(lg->get("level"), "log.level", l.status().message());
      c.log.level = *l;
    }
    RETURN_IF_ERROR(r.String(*lg, "log", "format", &format));
    if (!format.empty()) {
      absl::StatusOr<log::Format> f = log::ParseFormat(format);
      if (!f.ok()) return r.Error(lg->get("format"), "log.format", f.status().message());
      c.log.format = *f;
    }
    RETURN_IF_ERROR(r.AbsPath(*lg, "log", "file", &c.log.file, /*allow_empty=*/true));
  }

  ASSIGN_OR_RETURN(const toml::table* im, r.Table(doc, "images"));
  if (im != nullptr) {
    RETURN_IF_ERROR(r.CheckKeys(*im, "images",
                                {"max_concurrent_downloads", "pull_progress_timeout",
                                 "request_timeout", "platform", "auth_file"}));
    int64_t downloads = c.images.max_concurrent_downloads;
    RETURN_IF_ERROR(r.Integer(*im, "images", "max_concurrent_downloads", 1, 64, &downloads));
    c.images.max_concurrent_downloads = static_cast<int>(downloads);
    RETURN_IF_ERROR(
        r.Duration(*im, "images", "pull_progress_timeout", &c.images.pull_progress_timeout));
    RETURN_IF_ERROR(r.Duration(*im, "images", "request_timeout", &c.images.request_timeout));
    RETURN_IF_ERROR(r.String(*im, "images", "platform", &c.images.platform));
    RETURN_IF_ERROR(
        r.AbsPath(*im, "images", "auth_file", &c.images.auth_file, /*allow_empty=*/true));
  }

  ASSIGN_OR_RETURN(const toml::table* regs, r.Table(doc, "registries"));
  if (regs != nullptr) {
    for (const auto& [host_key, node] : *regs) {
      std::string host(host_key.str());
      std::string prefix = absl::StrCat("registries.\"", host, "\"");
      if (host.empty() || host.find('/') != std::string::npos ||
          host.find(' ') != std::string::npos) {
        return r.Error(&node, prefix,
                       "must be a registry host such as \"docker.io\" or \"127.0.0.1:5000\"");
      }
      if (!node.is_table()) return r.Error(&node, prefix, "must be a table");
      const toml::table& t = *node.as_table();
      RETURN_IF_ERROR(
          r.CheckKeys(t, prefix, {"mirrors", "insecure", "ca_file", "cert_file", "key_file"}));
      Config::Registry reg;
      if (const toml::node* m = t.get("mirrors")) {
        if (!m->is_array()) return r.Error(m, prefix + ".mirrors", "must be an array of URLs");
        for (const toml::node& e : *m->as_array()) {
          std::string url = e.value<std::string>().value_or("");
          if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
            return r.Error(&e, prefix + ".mirrors",
                           "every mirror must be an http:// or https:// URL");
          }
          reg.mirrors.push_back(url);
        }
      }
      RETURN_IF_ERROR(r.Bool(t, prefix, "insecure", &reg.insecure));
      RETURN_IF_ERROR(r.AbsPath(t, prefix, "ca_file", &reg.ca_file, true));
      RETURN_IF_ERROR(r.AbsPath(t, prefix, "cert_file", &reg.cert_file, true));
      RETURN_IF_ERROR(r.AbsPath(t, prefix, "key_file", &reg.key_file, true));
      if (reg.cert_file.empty() != reg.key_file.empty()) {
        return r.Error(&node, prefix, "cert_file and key_file go together");
      }
      c.registries[host] = std::move(reg);
    }
  }

  ASSIGN_OR_RETURN(const toml::table* cg, r.Table(doc, "cgroup"));
  if (cg != nullptr) {
    RETURN_IF_ERROR(r.CheckKeys(*cg, "cgroup", {"systemd_cgroup"}));
    RETURN_IF_ERROR(r.Bool(*cg, "cgroup", "systemd_cgroup", &c.cgroup.systemd_cgroup));
    if (c.cgroup.systemd_cgroup) {
      return r.Error(cg->get("systemd_cgroup"), "cgroup.systemd_cgroup",
                     "the systemd cgroup driver is not supported yet; use the cgroupfs driver "
                     "(false) and the kubelet's --cgroup-driver=cgroupfs");
    }
  }

  ASSIGN_OR_RETURN(const toml::table* cni, r.Table(doc, "cni"));
  if (cni != nullptr) {
    RETURN_IF_ERROR(
        r.CheckKeys(*cni, "cni", {"conf_dir", "bin_dirs", "network_name", "plugin_timeout"}));
    RETURN_IF_ERROR(r.AbsPath(*cni, "cni", "conf_dir", &c.cni.conf_dir, false));
    RETURN_IF_ERROR(r.PathList(*cni, "cni", "bin_dirs", &c.cni.bin_dirs));
    RETURN_IF_ERROR(r.String(*cni, "cni", "network_name", &c.cni.network_name));
    RETURN_IF_ERROR(r.Duration(*cni, "cni", "plugin_timeout", &c.cni.plugin_timeout));
  }

  ASSIGN_OR_RETURN(const toml::table* st, r.Table(doc, "streaming"));
  if (st != nullptr) {
    RETURN_IF_ERROR(r.CheckKeys(*st, "streaming",
                                {"address", "port", "tls_cert_file", "tls_key_file",
                                 "idle_timeout", "token_ttl"}));
    RETURN_IF_ERROR(r.String(*st, "streaming", "address", &c.streaming.address));
    RETURN_IF_ERROR(r.Integer(*st, "streaming", "port", 0, 65535, &c.streaming.port));
    RETURN_IF_ERROR(r.AbsPath(*st, "streaming", "tls_cert_file", &c.streaming.tls_cert_file, true));
    RETURN_IF_ERROR(r.AbsPath(*st, "streaming", "tls_key_file", &c.streaming.tls_key_file, true));
    RETURN_IF_ERROR(r.Duration(*st, "streaming", "idle_timeout", &c.streaming.idle_timeout));
    RETURN_IF_ERROR(r.Duration(*st, "streaming", "token_ttl", &c.streaming.token_ttl));
    if (c.streaming.tls_cert_file.empty() != c.streaming.tls_key_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": streaming: tls_cert_file and tls_key_file go together"));
    }
  }

  ASSIGN_OR_RETURN(const toml::table* rt, r.Table(doc, "runtime"));
  if (rt != nullptr) {
    RETURN_IF_ERROR(r.CheckKeys(
        *rt, "runtime", {"monitor_path", "oci_path", "log_max_line", "shm_size", "handlers"}));
    RETURN_IF_ERROR(r.AbsPath(*rt, "runtime", "monitor_path", &c.runtime.monitor_path, true));
    RETURN_IF_ERROR(r.AbsPath(*rt, "runtime", "oci_path", &c.runtime.oci_path, true));
    RETURN_IF_ERROR(
        r.Integer(*rt, "runtime", "log_max_line", 256, 1 << 24, &c.runtime.log_max_line));
    RETURN_IF_ERROR(
        r.Integer(*rt, "runtime", "shm_size", 1 << 20, int64_t{1} << 40, &c.runtime.shm_size));
    ASSIGN_OR_RETURN(const toml::table* hs, r.Table(*rt, "handlers"));
    if (hs != nullptr) {
      for (const auto& [name_key, node] : *hs) {
        std::string name(name_key.str());
        std::string prefix = absl::StrCat("runtime.handlers.", name);
        if (!node.is_table()) return r.Error(&node, prefix, "must be a table");
        const toml::table& t = *node.as_table();
        RETURN_IF_ERROR(r.CheckKeys(t, prefix, {"path", "root"}));
        Config::Runtime::Handler h;
        RETURN_IF_ERROR(r.AbsPath(t, prefix, "path", &h.path, false));
        h.root = absl::StrCat(c.state, "/", name);
        RETURN_IF_ERROR(r.AbsPath(t, prefix, "root", &h.root, false));
        c.runtime.handlers[name] = h;
      }
    }
  }
  // The default runc handler's root follows the state dir.
  if (auto it = c.runtime.handlers.find("runc");
      it != c.runtime.handlers.end() && it->second.root == "/run/berth/runc") {
    it->second.root = c.state + "/runc";
  }
  return c;
}

absl::StatusOr<Config> LoadConfig(const std::string& path, bool required) {
  absl::StatusOr<std::string> text = ReadFile(path, 1 << 20);
  if (!text.ok()) {
    if (!required && absl::IsNotFound(text.status())) {
      return Config{};
    }
    return Annotate(text.status(), "reading config");
  }
  return ParseConfig(*text, path);
}

}  // namespace berth::cri

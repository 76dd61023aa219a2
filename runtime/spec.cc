#include "runtime/spec.h"

#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mount.h>  // MS_*, and MOUNT_ATTR_* through <linux/mount.h> when glibc has it
#include <sys/resource.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/json.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

// Older headers lack the newest constants; the values are kernel ABI.
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef MS_LAZYTIME
#define MS_LAZYTIME (1 << 25)
#endif
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#ifndef MOUNT_ATTR_NOSUID
#define MOUNT_ATTR_NOSUID 0x00000002
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef MOUNT_ATTR_NOEXEC
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef MOUNT_ATTR__ATIME
#define MOUNT_ATTR__ATIME 0x00000070
#endif
#ifndef MOUNT_ATTR_RELATIME
#define MOUNT_ATTR_RELATIME 0x00000000
#endif
#ifndef MOUNT_ATTR_NOATIME
#define MOUNT_ATTR_NOATIME 0x00000010
#endif
#ifndef MOUNT_ATTR_STRICTATIME
#define MOUNT_ATTR_STRICTATIME 0x00000020
#endif
#ifndef MOUNT_ATTR_NODIRATIME
#define MOUNT_ATTR_NODIRATIME 0x00000080
#endif
#ifndef MOUNT_ATTR_NOSYMFOLLOW
#define MOUNT_ATTR_NOSYMFOLLOW 0x00200000
#endif

namespace berth::runtime {

namespace {

using nlohmann::json;

// config.json nests 5 levels at most (linux.seccomp.syscalls[].args[]); unknown extension
// fields may add a few more.
constexpr int kMaxDepth = 64;
// Far above any real config.json (a big seccomp profile is ~100 KiB), so only a runaway
// document is refused before parsing.
constexpr size_t kMaxSize = 32 << 20;
constexpr size_t kMaxQuoted = 64;
// setgroups(2) refuses more than NGROUPS_MAX (65536) groups.
constexpr size_t kMaxGroups = 65536;
// sethostname(2) and setdomainname(2) refuse more than __NEW_UTS_LEN (64) bytes.
constexpr size_t kMaxUtsName = 64;

// A value for a message: strings quoted (and sanitised), numbers and booleans as written.
std::string Describe(const json& v) {
  switch (v.type()) {
    case json::value_t::string: return QuoteForMessage(v.get_ref<const std::string&>(), kMaxQuoted);
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    default: return v.dump();
  }
}

std::string Quote(absl::string_view s) {
  return QuoteForMessage(s, kMaxQuoted);
}

// Errors name the document ("config.json") and the JSON path in it.
class Doc {
 public:
  explicit Doc(absl::string_view name) : name_(name) {}

  absl::Status Bad(absl::string_view path, absl::string_view why) const {
    return absl::InvalidArgumentError(path.empty() ? absl::StrCat(name_, ": ", why)
                                                   : absl::StrCat(name_, ": ", path, ": ", why));
  }
  absl::Status WrongType(absl::string_view path, const json& v, absl::string_view want) const {
    return Bad(path, absl::StrCat("expected ", want, ", got ", Describe(v)));
  }
  absl::Status Missing(absl::string_view path) const { return Bad(path, "missing (required)"); }

  // Parses the document, which must be a JSON object.
  absl::StatusOr<json> ParseObject(absl::string_view text) const {
    if (text.size() > kMaxSize) {
      return Bad("", absl::StrCat(text.size(), " bytes, more than the ", kMaxSize, " allowed"));
    }
    if (!JsonNestingWithin(text, kMaxDepth)) {
      return Bad("", absl::StrCat("JSON nested deeper than ", kMaxDepth, " levels"));
    }
    json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return Bad("", "not valid JSON");
    if (!doc.is_object()) return WrongType("", doc, "a JSON object");
    return doc;
  }

 private:
  std::string name_;
};

std::string Path(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

std::string Elem(absl::string_view parent, size_t i) {
  return absl::StrCat(parent, "[", i, "]");
}

// A member of a map: linux.sysctl["net.ipv4.ip_forward"].
std::string KeyPath(absl::string_view parent, absl::string_view key) {
  return absl::StrCat(parent, "[", Quote(key), "]");
}

// The member `key` of `obj`, or nullptr when absent or null: Go's encoding/json, with which
// runc and the CRI runtimes read and write config.json, treats null like absent.
const json* Member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// A NUL cannot reach a syscall (paths, argv, hostnames), so no string that goes to one may
// carry it; only annotations are opaque.
absl::Status NoNul(const Doc& doc, absl::string_view path, absl::string_view s) {
  if (s.find('\0') != absl::string_view::npos) {
    return doc.Bad(path, absl::StrCat(Quote(s), " contains a NUL character"));
  }
  return absl::OkStatus();
}

absl::Status Absolute(const Doc& doc, absl::string_view path, absl::string_view s) {
  if (!absl::StartsWith(s, "/")) {
    return doc.Bad(path, absl::StrCat(Quote(s), " is not an absolute path"));
  }
  return absl::OkStatus();
}

absl::Status GetString(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                       std::string* out, bool required = false) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) return required ? doc.Missing(path) : absl::OkStatus();
  if (!v->is_string()) return doc.WrongType(path, *v, "a string");
  RETURN_IF_ERROR(NoNul(doc, path, v->get_ref<const std::string&>()));
  *out = v->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetBool(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                     bool* out, bool required = false) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) return required ? doc.Missing(path) : absl::OkStatus();
  if (!v->is_boolean()) return doc.WrongType(path, *v, "a boolean");
  *out = v->get<bool>();
  return absl::OkStatus();
}

absl::Status GetOptBool(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                        std::optional<bool>* out) {
  if (Member(obj, key) == nullptr) return absl::OkStatus();
  bool b = false;
  RETURN_IF_ERROR(GetBool(doc, obj, key, parent, &b));
  *out = b;
  return absl::OkStatus();
}

// "an unsigned 32-bit integer", "a 64-bit integer", ...
template <typename T>
std::string IntegerKind() {
  return absl::StrCat(std::is_signed_v<T> ? "a " : "an unsigned ", sizeof(T) * 8, "-bit integer");
}

// An integer that fits T. Floats (1.0, 1e3) are refused as Go's encoding/json refuses them.
template <typename T>
absl::StatusOr<T> AsInteger(const Doc& doc, const json& v, absl::string_view path) {
  static_assert(std::is_integral_v<T> && sizeof(T) <= sizeof(int64_t));
  using Limits = std::numeric_limits<T>;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(Limits::max())) return static_cast<T>(u);
  } else if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if constexpr (std::is_signed_v<T>) {
      if (i >= static_cast<int64_t>(Limits::min()) && i <= static_cast<int64_t>(Limits::max())) {
        return static_cast<T>(i);
      }
    } else {
      if (i >= 0 && static_cast<uint64_t>(i) <= static_cast<uint64_t>(Limits::max())) {
        return static_cast<T>(i);
      }
    }
  }
  return doc.WrongType(path, v, IntegerKind<T>());
}

template <typename T>
absl::Status GetInt(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                    T* out, bool required = false) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) return required ? doc.Missing(path) : absl::OkStatus();
  ASSIGN_OR_RETURN(*out, AsInteger<T>(doc, *v, path));
  return absl::OkStatus();
}

template <typename T>
absl::Status GetOptInt(const Doc& doc, const json& obj, const char* key, absl::string_view parent,
                       std::optional<T>* out) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(*out, AsInteger<T>(doc, *v, path));
  return absl::OkStatus();
}

// For the cgroup values where -1 means "unlimited" and anything lower is a mistake.
absl::Status AtLeastMinusOne(const Doc& doc, absl::string_view path,
                             const std::optional<int64_t>& v) {
  if (v.has_value() && *v < -1) {
    return doc.Bad(path, absl::StrCat(*v, " is negative (only -1, unlimited, is allowed)"));
  }
  return absl::OkStatus();
}

// The member `key` if it is there and of the kind `is` tests for (`what` names that kind in
// the error); nullptr when absent (an error when `required`).
absl::StatusOr<const json*> GetOfKind(const Doc& doc, const json& obj, const char* key,
                                      absl::string_view parent, bool required,
                                      bool (json::*is)() const noexcept, const char* what) {
  std::string path = Path(parent, key);
  const json* v = Member(obj, key);
  if (v == nullptr) {
    if (required) return doc.Missing(path);
    return nullptr;
  }
  if (!(v->*is)()) return doc.WrongType(path, *v, what);
  return v;
}

absl::StatusOr<const json*> GetObject(const Doc& doc, const json& obj, const char* key,
                                      absl::string_view parent, bool required = false) {
  return GetOfKind(doc, obj, key, parent, required, &json::is_object, "an object");
}

absl::StatusOr<const json*> GetArray(const Doc& doc, const json& obj, const char* key,
                                     absl::string_view parent, bool required = false) {
  return GetOfKind(doc, obj, key, parent, required, &json::is_array, "an array");
}

using ElementFn = std::function<absl::Status(const json&, const std::string&)>;

// Calls fn(element, its path) for each element of the array `key` (absent or null: none), each
// of which must be an object.
absl::Status ForEachObject(const Doc& doc, const json& obj, const char* key,
                           absl::string_view parent, const ElementFn& fn) {
  ASSIGN_OR_RETURN(const json* list, GetArray(doc, obj, key, parent));
  if (list == nullptr) return absl::OkStatus();
  std::string path = Path(parent, key);
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = (*list)[i];
    std::string epath = Elem(path, i);
    if (!e.is_object()) return doc.WrongType(epath, e, "an object");
    RETURN_IF_ERROR(fn(e, epath));
  }
  return absl::OkStatus();
}

// Strings, each checked by `check` (may be null) with its path.
absl::Status GetStringList(
    const Doc& doc, const json& obj, const char* key, absl::string_view parent,
    std::vector<std::string>* out,
    const std::function<absl::Status(const std::string&, const std::string&)>& check = nullptr) {
  ASSIGN_OR_RETURN(const json* list, GetArray(doc, obj, key, parent));
  if (list == nullptr) return absl::OkStatus();
  std::string path = Path(parent, key);
  out->clear();
  out->reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = (*list)[i];
    std::string epath = Elem(path, i);
    if (!e.is_string()) return doc.WrongType(epath, e, "a string");
    const std::string& s = e.get_ref<const std::string&>();
    RETURN_IF_ERROR(NoNul(doc, epath, s));
    if (check) RETURN_IF_ERROR(check(s, epath));
    out->push_back(s);
  }
  return absl::OkStatus();
}

// An object of strings; a null value counts as "" (as Go reads it).
absl::Status GetStringMap(const Doc& doc, const json& obj, const char* key,
                          absl::string_view parent, std::map<std::string, std::string>* out,
                          bool allow_nul = false) {
  ASSIGN_OR_RETURN(const json* m, GetObject(doc, obj, key, parent));
  if (m == nullptr) return absl::OkStatus();
  std::string path = Path(parent, key);
  out->clear();
  for (const auto& [k, v] : m->items()) {
    std::string kpath = KeyPath(path, k);
    if (v.is_null()) {
      (*out)[k] = "";
      continue;
    }
    if (!v.is_string()) return doc.WrongType(kpath, v, "a string");
    if (!allow_nul) {
      RETURN_IF_ERROR(NoNul(doc, kpath, k));
      RETURN_IF_ERROR(NoNul(doc, kpath, v.get_ref<const std::string&>()));
    }
    (*out)[k] = v.get<std::string>();
  }
  return absl::OkStatus();
}

// "KEY=value" with a non-empty key, as execve's callers (and runc) require.
absl::Status CheckEnv(const Doc& doc, const std::string& s, const std::string& path) {
  size_t eq = s.find('=');
  if (eq == std::string::npos) return doc.Bad(path, absl::StrCat(Quote(s), " has no '='"));
  if (eq == 0) return doc.Bad(path, absl::StrCat(Quote(s), " has an empty variable name"));
  return absl::OkStatus();
}

absl::Status GetEnv(const Doc& doc, const json& obj, absl::string_view parent,
                    std::vector<std::string>* out) {
  return GetStringList(
      doc, obj, "env", parent, out,
      [&](const std::string& s, const std::string& path) { return CheckEnv(doc, s, path); });
}

absl::Status GetAbsolutePaths(const Doc& doc, const json& obj, const char* key,
                              absl::string_view parent, std::vector<std::string>* out) {
  return GetStringList(
      doc, obj, key, parent, out,
      [&](const std::string& s, const std::string& path) { return Absolute(doc, path, s); });
}

// ---- process ---------------------------------------------------------------------------------

struct RlimitName {
  const char* name;
  int resource;
};

constexpr RlimitName kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};

absl::Status ParseUser(const Doc& doc, const json& v, const std::string& path, User* user) {
  RETURN_IF_ERROR(GetInt(doc, v, "uid", path, &user->uid));
  RETURN_IF_ERROR(GetInt(doc, v, "gid", path, &user->gid));
  RETURN_IF_ERROR(GetOptInt(doc, v, "umask", path, &user->umask));
  if (user->umask.has_value() && *user->umask > 0777) {
    return doc.Bad(Path(path, "umask"), absl::StrCat(*user->umask, " is not a umask (0..0777)"));
  }
  ASSIGN_OR_RETURN(const json* gids, GetArray(doc, v, "additionalGids", path));
  if (gids != nullptr) {
    std::string gpath = Path(path, "additionalGids");
    if (gids->size() > kMaxGroups) {
      return doc.Bad(gpath,
                     absl::StrCat(gids->size(), " groups, more than the ", kMaxGroups, " allowed"));
    }
    for (size_t i = 0; i < gids->size(); ++i) {
      ASSIGN_OR_RETURN(uint32_t gid, AsInteger<uint32_t>(doc, (*gids)[i], Elem(gpath, i)));
      user->additional_gids.push_back(gid);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseCapabilities(const Doc& doc, const json& v, const std::string& path,
                               Capabilities* caps) {
  const std::pair<const char*, std::vector<int> Capabilities::*> kSets[] = {
      {"bounding", &Capabilities::bounding},       {"effective", &Capabilities::effective},
      {"inheritable", &Capabilities::inheritable}, {"permitted", &Capabilities::permitted},
      {"ambient", &Capabilities::ambient},
  };
  for (const auto& [key, member] : kSets) {
    std::vector<std::string> names;
    RETURN_IF_ERROR(GetStringList(doc, v, key, path, &names));
    std::string set_path = Path(path, key);
    for (size_t i = 0; i < names.size(); ++i) {
      absl::StatusOr<int> cap = CapabilityFromName(names[i]);
      if (!cap.ok()) return doc.Bad(Elem(set_path, i), cap.status().message());
      (caps->*member).push_back(*cap);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseRlimits(const Doc& doc, const json& v, absl::string_view parent,
                          std::vector<Rlimit>* out) {
  std::set<int> seen;
  return ForEachObject(
      doc, v, "rlimits", parent, [&](const json& r, const std::string& path) -> absl::Status {
        Rlimit limit;
        RETURN_IF_ERROR(GetString(doc, r, "type", path, &limit.name, /*required=*/true));
        std::string type_path = Path(path, "type");
        bool known = false;
        for (const RlimitName& n : kRlimits) {
          if (limit.name == n.name) {
            limit.resource = n.resource;
            known = true;
            break;
          }
        }
        if (!known) {
          return doc.Bad(type_path, absl::StrCat("unknown resource limit ", Quote(limit.name)));
        }
        if (!seen.insert(limit.resource).second) {
          return doc.Bad(type_path, absl::StrCat("duplicate resource limit ", Quote(limit.name)));
        }
        RETURN_IF_ERROR(GetInt(doc, r, "soft", path, &limit.soft, /*required=*/true));
        RETURN_IF_ERROR(GetInt(doc, r, "hard", path, &limit.hard, /*required=*/true));
        if (limit.soft > limit.hard) {
          return doc.Bad(path, absl::StrCat("soft limit ", limit.soft, " is above the hard limit ",
                                            limit.hard));
        }
        out->push_back(std::move(limit));
        return absl::OkStatus();
      });
}

absl::StatusOr<Process> ParseProcessObject(const Doc& doc, const json& v, absl::string_view path) {
  if (!v.is_object()) return doc.WrongType(path, v, "an object");
  Process p;
  RETURN_IF_ERROR(GetBool(doc, v, "terminal", path, &p.terminal));

  ASSIGN_OR_RETURN(const json* console, GetObject(doc, v, "consoleSize", path));
  if (console != nullptr) {
    std::string cpath = Path(path, "consoleSize");
    ConsoleSize size;
    RETURN_IF_ERROR(GetInt(doc, *console, "height", cpath, &size.height, /*required=*/true));
    RETURN_IF_ERROR(GetInt(doc, *console, "width", cpath, &size.width, /*required=*/true));
    p.console_size = size;
  }

  ASSIGN_OR_RETURN(const json* user, GetObject(doc, v, "user", path));
  if (user != nullptr) RETURN_IF_ERROR(ParseUser(doc, *user, Path(path, "user"), &p.user));

  std::string args_path = Path(path, "args");
  ASSIGN_OR_RETURN(const json* args, GetArray(doc, v, "args", path, /*required=*/true));
  if (args->empty()) return doc.Bad(args_path, "empty: a process needs at least its program");
  RETURN_IF_ERROR(GetStringList(doc, v, "args", path, &p.args));
  if (p.args[0].empty()) return doc.Bad(Elem(args_path, 0), "empty program name");

  RETURN_IF_ERROR(GetEnv(doc, v, path, &p.env));

  RETURN_IF_ERROR(GetString(doc, v, "cwd", path, &p.cwd, /*required=*/true));
  RETURN_IF_ERROR(Absolute(doc, Path(path, "cwd"), p.cwd));

  ASSIGN_OR_RETURN(const json* caps, GetObject(doc, v, "capabilities", path));
  if (caps != nullptr) {
    Capabilities c;
    RETURN_IF_ERROR(ParseCapabilities(doc, *caps, Path(path, "capabilities"), &c));
    p.capabilities = std::move(c);
  }

  RETURN_IF_ERROR(ParseRlimits(doc, v, path, &p.rlimits));
  RETURN_IF_ERROR(GetBool(doc, v, "noNewPrivileges", path, &p.no_new_privileges));

  RETURN_IF_ERROR(GetOptInt(doc, v, "oomScoreAdj", path, &p.oom_score_adj));
  if (p.oom_score_adj.has_value() && (*p.oom_score_adj < -1000 || *p.oom_score_adj > 1000)) {
    return doc.Bad(Path(path, "oomScoreAdj"),
                   absl::StrCat(*p.oom_score_adj, " is outside -1000..1000"));
  }

  RETURN_IF_ERROR(GetString(doc, v, "apparmorProfile", path, &p.apparmor_profile));
  RETURN_IF_ERROR(GetString(doc, v, "selinuxLabel", path, &p.selinux_label));
  return p;
}

// ---- mounts and hooks ------------------------------------------------------------------------

absl::Status GetIdMappings(const Doc& doc, const json& obj, const char* key,
                           absl::string_view parent, std::vector<IdMapping>* out) {
  return ForEachObject(
      doc, obj, key, parent, [&](const json& m, const std::string& path) -> absl::Status {
        IdMapping id;
        RETURN_IF_ERROR(GetInt(doc, m, "containerID", path, &id.container_id, /*required=*/true));
        RETURN_IF_ERROR(GetInt(doc, m, "hostID", path, &id.host_id, /*required=*/true));
        RETURN_IF_ERROR(GetInt(doc, m, "size", path, &id.size, /*required=*/true));
        if (id.size == 0) return doc.Bad(Path(path, "size"), "0: a mapping maps at least one id");
        // The kernel keeps ids in 32 bits (and (uid_t)-1 is "no id"), so a range must end there.
        constexpr uint64_t kIdEnd = uint64_t{1} << 32;
        if (uint64_t{id.container_id} + id.size > kIdEnd ||
            uint64_t{id.host_id} + id.size > kIdEnd) {
          return doc.Bad(path,
                         absl::StrCat("the range of ", id.size, " ids does not fit in 32 bits"));
        }
        out->push_back(id);
        return absl::OkStatus();
      });
}

absl::Status ParseMounts(const Doc& doc, const json& root, std::vector<Mount>* out) {
  return ForEachObject(
      doc, root, "mounts", "", [&](const json& m, const std::string& path) -> absl::Status {
        Mount mount;
        RETURN_IF_ERROR(
            GetString(doc, m, "destination", path, &mount.destination, /*required=*/true));
        RETURN_IF_ERROR(Absolute(doc, Path(path, "destination"), mount.destination));
        RETURN_IF_ERROR(GetString(doc, m, "type", path, &mount.type));
        RETURN_IF_ERROR(GetString(doc, m, "source", path, &mount.source));
        RETURN_IF_ERROR(GetStringList(doc, m, "options", path, &mount.options));
        // Checked now so that a bad option is refused at create, with its mount's path.
        absl::StatusOr<MountOptions> options = ParseMountOptions(mount.options);
        if (!options.ok()) return doc.Bad(Path(path, "options"), options.status().message());
        RETURN_IF_ERROR(GetIdMappings(doc, m, "uidMappings", path, &mount.uid_mappings));
        RETURN_IF_ERROR(GetIdMappings(doc, m, "gidMappings", path, &mount.gid_mappings));
        // Mappings make an idmapped mount (runtime-spec 1.1); ignoring them would give the
        // container files owned by the wrong ids, so they are refused like "idmap".
        if (!mount.uid_mappings.empty() || !mount.gid_mappings.empty()) {
          return doc.Bad(path, "idmapped mounts (uidMappings/gidMappings) are not supported yet");
        }
        out->push_back(std::move(mount));
        return absl::OkStatus();
      });
}

absl::Status ParseHooks(const Doc& doc, const json& hooks, const std::string& parent, Hooks* out) {
  const std::pair<const char*, std::vector<Hook> Hooks::*> kKinds[] = {
      {"prestart", &Hooks::prestart},
      {"createRuntime", &Hooks::create_runtime},
      {"createContainer", &Hooks::create_container},
      {"startContainer", &Hooks::start_container},
      {"poststart", &Hooks::poststart},
      {"poststop", &Hooks::poststop},
  };
  for (const auto& [key, member] : kKinds) {
    std::vector<Hook>* list = &(out->*member);
    RETURN_IF_ERROR(ForEachObject(
        doc, hooks, key, parent, [&](const json& h, const std::string& path) -> absl::Status {
          Hook hook;
          RETURN_IF_ERROR(GetString(doc, h, "path", path, &hook.path, /*required=*/true));
          RETURN_IF_ERROR(Absolute(doc, Path(path, "path"), hook.path));
          RETURN_IF_ERROR(GetStringList(doc, h, "args", path, &hook.args));
          RETURN_IF_ERROR(GetEnv(doc, h, path, &hook.env));
          RETURN_IF_ERROR(GetOptInt(doc, h, "timeout", path, &hook.timeout));
          if (hook.timeout.has_value() && *hook.timeout <= 0) {
            return doc.Bad(Path(path, "timeout"),
                           absl::StrCat(*hook.timeout, " is not a positive number of seconds"));
          }
          list->push_back(std::move(hook));
          return absl::OkStatus();
        }));
  }
  return absl::OkStatus();
}

// ---- linux.resources -------------------------------------------------------------------------

absl::Status ParseDeviceRules(const Doc& doc, const json& v, absl::string_view parent,
                              std::vector<cgroups::DeviceRule>* out) {
  return ForEachObject(
      doc, v, "devices", parent, [&](const json& d, const std::string& path) -> absl::Status {
        cgroups::DeviceRule rule;
        RETURN_IF_ERROR(GetBool(doc, d, "allow", path, &rule.allow, /*required=*/true));
        std::string type;
        RETURN_IF_ERROR(GetString(doc, d, "type", path, &type));
        // runc: absent or "" means every type. (A char, not `type = "a"`: g++ 12 at -O3 warns
        // falsely about that assignment, -Wrestrict.)
        const char t = type.empty() ? 'a' : type[0];
        if (type.size() > 1 || (t != 'a' && t != 'b' && t != 'c')) {
          return doc.Bad(Path(path, "type"), absl::StrCat(Quote(type), " is not a, b or c"));
        }
        rule.type = t;
        // Absent means any; -1 written out means the same.
        RETURN_IF_ERROR(GetInt(doc, d, "major", path, &rule.major));
        RETURN_IF_ERROR(GetInt(doc, d, "minor", path, &rule.minor));
        if (rule.major < -1) return doc.Bad(Path(path, "major"), "negative");
        if (rule.minor < -1) return doc.Bad(Path(path, "minor"), "negative");
        RETURN_IF_ERROR(GetString(doc, d, "access", path, &rule.access));
        for (char c : rule.access) {
          if (c != 'r' && c != 'w' && c != 'm') {
            return doc.Bad(Path(path, "access"),
                           absl::StrCat(Quote(rule.access), " is not made of r, w and m"));
          }
        }
        out->push_back(std::move(rule));
        return absl::OkStatus();
      });
}

absl::Status ParseMemory(const Doc& doc, const json& m, const std::string& path,
                         cgroups::Resources::Memory* out) {
  RETURN_IF_ERROR(GetOptInt(doc, m, "limit", path, &out->limit));
  RETURN_IF_ERROR(AtLeastMinusOne(doc, Path(path, "limit"), out->limit));
  RETURN_IF_ERROR(GetOptInt(doc, m, "reservation", path, &out->reservation));
  RETURN_IF_ERROR(AtLeastMinusOne(doc, Path(path, "reservation"), out->reservation));
  RETURN_IF_ERROR(GetOptInt(doc, m, "swap", path, &out->swap));
  RETURN_IF_ERROR(AtLeastMinusOne(doc, Path(path, "swap"), out->swap));
  // "kernel" and "kernelTCP" are deprecated (cgroup v2 has no such limits; runc ignores them).
  RETURN_IF_ERROR(GetOptInt(doc, m, "swappiness", path, &out->swappiness));
  if (out->swappiness.has_value() && *out->swappiness > 100) {
    return doc.Bad(Path(path, "swappiness"), absl::StrCat(*out->swappiness, " is above 100"));
  }
  RETURN_IF_ERROR(GetOptBool(doc, m, "disableOOMKiller", path, &out->disable_oom_killer));
  return absl::OkStatus();
}

absl::Status CpuList(const Doc& doc, absl::string_view path, const std::string& list) {
  if (list.empty()) return absl::OkStatus();
  if (!cgroups::ValidateCpuList(list, "list").ok()) {
    return doc.Bad(path, absl::StrCat(Quote(list), " is not a list like 0-3,5"));
  }
  return absl::OkStatus();
}

absl::Status ParseCpu(const Doc& doc, const json& c, const std::string& path,
                      cgroups::Resources::Cpu* out) {
  RETURN_IF_ERROR(GetOptInt(doc, c, "shares", path, &out->shares));
  RETURN_IF_ERROR(GetOptInt(doc, c, "quota", path, &out->quota));
  RETURN_IF_ERROR(AtLeastMinusOne(doc, Path(path, "quota"), out->quota));
  RETURN_IF_ERROR(GetOptInt(doc, c, "period", path, &out->period));
  RETURN_IF_ERROR(GetOptInt(doc, c, "realtimeRuntime", path, &out->realtime_runtime));
  RETURN_IF_ERROR(GetOptInt(doc, c, "realtimePeriod", path, &out->realtime_period));
  RETURN_IF_ERROR(GetString(doc, c, "cpus", path, &out->cpus));
  RETURN_IF_ERROR(CpuList(doc, Path(path, "cpus"), out->cpus));
  RETURN_IF_ERROR(GetString(doc, c, "mems", path, &out->mems));
  RETURN_IF_ERROR(CpuList(doc, Path(path, "mems"), out->mems));
  RETURN_IF_ERROR(GetOptInt(doc, c, "idle", path, &out->idle));
  return absl::OkStatus();
}

absl::Status ParseThrottle(const Doc& doc, const json& b, const char* key,
                           const std::string& parent, std::vector<cgroups::ThrottleDevice>* out) {
  return ForEachObject(
      doc, b, key, parent, [&](const json& t, const std::string& path) -> absl::Status {
        cgroups::ThrottleDevice dev;
        RETURN_IF_ERROR(GetInt(doc, t, "major", path, &dev.major, /*required=*/true));
        RETURN_IF_ERROR(GetInt(doc, t, "minor", path, &dev.minor, /*required=*/true));
        if (dev.major < 0) return doc.Bad(Path(path, "major"), "negative");
        if (dev.minor < 0) return doc.Bad(Path(path, "minor"), "negative");
        RETURN_IF_ERROR(GetInt(doc, t, "rate", path, &dev.rate, /*required=*/true));
        out->push_back(dev);
        return absl::OkStatus();
      });
}

absl::Status ParseBlockIo(const Doc& doc, const json& b, const std::string& path,
                          cgroups::Resources::BlockIo* out) {
  RETURN_IF_ERROR(GetOptInt(doc, b, "weight", path, &out->weight));
  RETURN_IF_ERROR(GetOptInt(doc, b, "leafWeight", path, &out->leaf_weight));
  RETURN_IF_ERROR(ForEachObject(
      doc, b, "weightDevice", path, [&](const json& w, const std::string& wpath) -> absl::Status {
        cgroups::WeightDevice dev;
        RETURN_IF_ERROR(GetInt(doc, w, "major", wpath, &dev.major, /*required=*/true));
        RETURN_IF_ERROR(GetInt(doc, w, "minor", wpath, &dev.minor, /*required=*/true));
        if (dev.major < 0) return doc.Bad(Path(wpath, "major"), "negative");
        if (dev.minor < 0) return doc.Bad(Path(wpath, "minor"), "negative");
        RETURN_IF_ERROR(GetOptInt(doc, w, "weight", wpath, &dev.weight));
        RETURN_IF_ERROR(GetOptInt(doc, w, "leafWeight", wpath, &dev.leaf_weight));
        out->weight_device.push_back(dev);
        return absl::OkStatus();
      }));
  RETURN_IF_ERROR(ParseThrottle(doc, b, "throttleReadBpsDevice", path, &out->read_bps));
  RETURN_IF_ERROR(ParseThrottle(doc, b, "throttleWriteBpsDevice", path, &out->write_bps));
  RETURN_IF_ERROR(ParseThrottle(doc, b, "throttleReadIOPSDevice", path, &out->read_iops));
  RETURN_IF_ERROR(ParseThrottle(doc, b, "throttleWriteIOPSDevice", path, &out->write_iops));
  return absl::OkStatus();
}

// "2MB", "1GB", "64KB": the page size becomes part of a file name (hugetlb.2MB.max), so it is
// held to digits and a unit.
bool ValidPageSize(absl::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits == s.size() || s.size() > 16) return false;
  for (char c : s.substr(digits)) {
    if (!absl::ascii_isalpha(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<cgroups::Resources> ParseResources(const Doc& doc, const json& v,
                                                  const std::string& path) {
  cgroups::Resources r;
  RETURN_IF_ERROR(ParseDeviceRules(doc, v, path, &r.devices));

  ASSIGN_OR_RETURN(const json* memory, GetObject(doc, v, "memory", path));
  if (memory != nullptr)
    RETURN_IF_ERROR(ParseMemory(doc, *memory, Path(path, "memory"), &r.memory));
  ASSIGN_OR_RETURN(const json* cpu, GetObject(doc, v, "cpu", path));
  if (cpu != nullptr) RETURN_IF_ERROR(ParseCpu(doc, *cpu, Path(path, "cpu"), &r.cpu));

  ASSIGN_OR_RETURN(const json* pids, GetObject(doc, v, "pids", path));
  if (pids != nullptr) {
    std::string ppath = Path(path, "pids");
    int64_t limit = 0;
    RETURN_IF_ERROR(GetInt(doc, *pids, "limit", ppath, &limit, /*required=*/true));
    r.pids_limit = limit;
    RETURN_IF_ERROR(AtLeastMinusOne(doc, Path(ppath, "limit"), r.pids_limit));
  }

  ASSIGN_OR_RETURN(const json* block_io, GetObject(doc, v, "blockIO", path));
  if (block_io != nullptr) {
    RETURN_IF_ERROR(ParseBlockIo(doc, *block_io, Path(path, "blockIO"), &r.block_io));
  }

  RETURN_IF_ERROR(ForEachObject(
      doc, v, "hugepageLimits", path, [&](const json& h, const std::string& hpath) -> absl::Status {
        std::string page_size;
        uint64_t limit = 0;
        RETURN_IF_ERROR(GetString(doc, h, "pageSize", hpath, &page_size, /*required=*/true));
        if (!ValidPageSize(page_size)) {
          return doc.Bad(Path(hpath, "pageSize"),
                         absl::StrCat(Quote(page_size), " is not a page size like 2MB"));
        }
        RETURN_IF_ERROR(GetInt(doc, h, "limit", hpath, &limit, /*required=*/true));
        if (!r.hugepage_limits.emplace(page_size, limit).second) {
          return doc.Bad(Path(hpath, "pageSize"),
                         absl::StrCat("duplicate page size ", Quote(page_size)));
        }
        return absl::OkStatus();
      }));

  RETURN_IF_ERROR(GetStringMap(doc, v, "unified", path, &r.unified));
  for (const auto& [key, value] : r.unified) {
    absl::Status valid = cgroups::ValidateUnifiedKey(key);
    if (!valid.ok()) {
      // The key is in the path already (quoted); keep only the reason.
      absl::string_view why = valid.message();
      absl::ConsumePrefix(&why, absl::StrCat("unified key \"", key, "\": "));
      return doc.Bad(KeyPath(Path(path, "unified"), key), why);
    }
  }
  // "network" and "rdma" are not supported and ignored, as unknown fields are.
  return r;
}

// ---- linux -----------------------------------------------------------------------------------

constexpr std::pair<NamespaceType, const char*> kNamespaces[] = {
    {NamespaceType::kPid, "pid"},       {NamespaceType::kNetwork, "network"},
    {NamespaceType::kMount, "mount"},   {NamespaceType::kIpc, "ipc"},
    {NamespaceType::kUts, "uts"},       {NamespaceType::kUser, "user"},
    {NamespaceType::kCgroup, "cgroup"}, {NamespaceType::kTime, "time"},
};

absl::Status ParseNamespaces(const Doc& doc, const json& v, absl::string_view parent,
                             std::vector<Namespace>* out) {
  std::set<NamespaceType> seen;
  return ForEachObject(
      doc, v, "namespaces", parent, [&](const json& n, const std::string& path) -> absl::Status {
        std::string type;
        RETURN_IF_ERROR(GetString(doc, n, "type", path, &type, /*required=*/true));
        std::optional<NamespaceType> found;
        for (const auto& [t, name] : kNamespaces) {
          if (type == name) found = t;
        }
        std::string type_path = Path(path, "type");
        if (!found.has_value()) {
          return doc.Bad(type_path, absl::StrCat("unknown namespace ", Quote(type)));
        }
        if (!seen.insert(*found).second) {
          return doc.Bad(type_path, absl::StrCat("duplicate namespace ", Quote(type)));
        }
        Namespace ns;
        ns.type = *found;
        RETURN_IF_ERROR(GetString(doc, n, "path", path, &ns.path));
        if (!ns.path.empty()) RETURN_IF_ERROR(Absolute(doc, Path(path, "path"), ns.path));
        out->push_back(std::move(ns));
        return absl::OkStatus();
      });
}

absl::Status ParseDevices(const Doc& doc, const json& v, absl::string_view parent,
                          std::vector<Device>* out) {
  return ForEachObject(
      doc, v, "devices", parent, [&](const json& d, const std::string& path) -> absl::Status {
        Device dev;
        RETURN_IF_ERROR(GetString(doc, d, "path", path, &dev.path, /*required=*/true));
        RETURN_IF_ERROR(Absolute(doc, Path(path, "path"), dev.path));
        std::string type;
        RETURN_IF_ERROR(GetString(doc, d, "type", path, &type, /*required=*/true));
        if (type != "c" && type != "u" && type != "b" && type != "p") {
          return doc.Bad(Path(path, "type"), absl::StrCat(Quote(type), " is not c, u, b or p"));
        }
        dev.type = type[0];
        // A FIFO has no device number; the others need both.
        bool numbered = dev.type != 'p';
        RETURN_IF_ERROR(GetInt(doc, d, "major", path, &dev.major, numbered));
        RETURN_IF_ERROR(GetInt(doc, d, "minor", path, &dev.minor, numbered));
        if (dev.major < 0) return doc.Bad(Path(path, "major"), "negative");
        if (dev.minor < 0) return doc.Bad(Path(path, "minor"), "negative");
        RETURN_IF_ERROR(GetOptInt(doc, d, "fileMode", path, &dev.file_mode));
        if (dev.file_mode.has_value() && *dev.file_mode > 07777) {
          return doc.Bad(Path(path, "fileMode"),
                         absl::StrCat(*dev.file_mode, " is not a permission mode (0..07777)"));
        }
        RETURN_IF_ERROR(GetOptInt(doc, d, "uid", path, &dev.uid));
        RETURN_IF_ERROR(GetOptInt(doc, d, "gid", path, &dev.gid));
        out->push_back(std::move(dev));
        return absl::OkStatus();
      });
}

constexpr const char* kSeccompActions[] = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY",
};

constexpr const char* kSeccompOps[] = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

template <size_t N>
bool OneOf(const std::string& s, const char* const (&names)[N]) {
  for (const char* name : names) {
    if (s == name) return true;
  }
  return false;
}

absl::Status SeccompAction(const Doc& doc, const json& obj, const char* key,
                           absl::string_view parent, std::string* out) {
  RETURN_IF_ERROR(GetString(doc, obj, key, parent, out, /*required=*/true));
  if (!OneOf(*out, kSeccompActions)) {
    return doc.Bad(Path(parent, key), absl::StrCat("unknown seccomp action ", Quote(*out)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Seccomp> ParseSeccomp(const Doc& doc, const json& v, const std::string& path) {
  Seccomp s;
  RETURN_IF_ERROR(SeccompAction(doc, v, "defaultAction", path, &s.default_action));
  RETURN_IF_ERROR(GetOptInt(doc, v, "defaultErrnoRet", path, &s.default_errno_ret));
  // Architectures and flags are checked against libseccomp by PrepareSeccomp.
  RETURN_IF_ERROR(GetStringList(doc, v, "architectures", path, &s.architectures));
  RETURN_IF_ERROR(GetStringList(doc, v, "flags", path, &s.flags));
  RETURN_IF_ERROR(GetString(doc, v, "listenerPath", path, &s.listener_path));
  RETURN_IF_ERROR(GetString(doc, v, "listenerMetadata", path, &s.listener_metadata));
  RETURN_IF_ERROR(ForEachObject(
      doc, v, "syscalls", path, [&](const json& c, const std::string& cpath) -> absl::Status {
        SeccompSyscall call;
        ASSIGN_OR_RETURN(const json* names, GetArray(doc, c, "names", cpath, /*required=*/true));
        if (names->empty()) return doc.Bad(Path(cpath, "names"), "empty");
        RETURN_IF_ERROR(GetStringList(doc, c, "names", cpath, &call.names,
                                      [&](const std::string& name, const std::string& npath) {
                                        return name.empty() ? doc.Bad(npath, "empty")
                                                            : absl::OkStatus();
                                      }));
        RETURN_IF_ERROR(SeccompAction(doc, c, "action", cpath, &call.action));
        RETURN_IF_ERROR(GetOptInt(doc, c, "errnoRet", cpath, &call.errno_ret));
        RETURN_IF_ERROR(ForEachObject(
            doc, c, "args", cpath, [&](const json& a, const std::string& apath) -> absl::Status {
              SeccompArg arg;
              RETURN_IF_ERROR(GetInt(doc, a, "index", apath, &arg.index, /*required=*/true));
              if (arg.index > 5) {
                return doc.Bad(Path(apath, "index"),
                               absl::StrCat(arg.index, " is not an argument index (0..5)"));
              }
              RETURN_IF_ERROR(GetInt(doc, a, "value", apath, &arg.value, /*required=*/true));
              RETURN_IF_ERROR(GetInt(doc, a, "valueTwo", apath, &arg.value_two));
              RETURN_IF_ERROR(GetString(doc, a, "op", apath, &arg.op, /*required=*/true));
              if (!OneOf(arg.op, kSeccompOps)) {
                return doc.Bad(Path(apath, "op"),
                               absl::StrCat("unknown seccomp operator ", Quote(arg.op)));
              }
              call.args.push_back(std::move(arg));
              return absl::OkStatus();
            }));
        s.syscalls.push_back(std::move(call));
        return absl::OkStatus();
      }));
  return s;
}

// The key becomes a path under /proc/sys ("net.ipv4.ip_forward" or "net/ipv4/ip_forward"), so
// it must not climb out of it.
absl::Status CheckSysctlKey(const Doc& doc, absl::string_view path, const std::string& key) {
  bool ok = !key.empty() && key.front() != '/' && key.front() != '.';
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ok = false;
  }
  for (absl::string_view part : absl::StrSplit(key, absl::ByAnyChar("./"))) {
    if (part.empty()) ok = false;  // "..", "a//b", a trailing dot
  }
  if (!ok) return doc.Bad(path, "not a sysctl name like net.ipv4.ip_forward");
  return absl::OkStatus();
}

absl::Status ParseLinux(const Doc& doc, const json& v, const std::string& path, Linux* out) {
  RETURN_IF_ERROR(ParseNamespaces(doc, v, path, &out->namespaces));
  RETURN_IF_ERROR(GetIdMappings(doc, v, "uidMappings", path, &out->uid_mappings));
  RETURN_IF_ERROR(GetIdMappings(doc, v, "gidMappings", path, &out->gid_mappings));
  RETURN_IF_ERROR(ParseDevices(doc, v, path, &out->devices));

  RETURN_IF_ERROR(GetString(doc, v, "cgroupsPath", path, &out->cgroups_path));
  // Either a path or systemd's "slice:prefix:name"; neither may climb out of the hierarchy.
  for (absl::string_view part : absl::StrSplit(out->cgroups_path, absl::ByAnyChar("/:"))) {
    if (part == "..") {
      return doc.Bad(Path(path, "cgroupsPath"),
                     absl::StrCat(Quote(out->cgroups_path), " contains \"..\""));
    }
  }

  ASSIGN_OR_RETURN(const json* resources, GetObject(doc, v, "resources", path));
  if (resources != nullptr) {
    ASSIGN_OR_RETURN(out->resources, ParseResources(doc, *resources, Path(path, "resources")));
  }

  RETURN_IF_ERROR(GetString(doc, v, "rootfsPropagation", path, &out->rootfs_propagation));
  const std::string& prop = out->rootfs_propagation;
  if (!prop.empty()) {
    absl::string_view base = prop;
    absl::ConsumePrefix(&base, "r");
    if (base != "shared" && base != "slave" && base != "private" && base != "unbindable") {
      return doc.Bad(Path(path, "rootfsPropagation"),
                     absl::StrCat(Quote(prop),
                                  " is not [r]shared, [r]slave, [r]private or "
                                  "[r]unbindable"));
    }
  }

  RETURN_IF_ERROR(GetAbsolutePaths(doc, v, "maskedPaths", path, &out->masked_paths));
  RETURN_IF_ERROR(GetAbsolutePaths(doc, v, "readonlyPaths", path, &out->readonly_paths));
  RETURN_IF_ERROR(GetString(doc, v, "mountLabel", path, &out->mount_label));

  RETURN_IF_ERROR(GetStringMap(doc, v, "sysctl", path, &out->sysctl));
  for (const auto& [key, value] : out->sysctl) {
    RETURN_IF_ERROR(CheckSysctlKey(doc, KeyPath(Path(path, "sysctl"), key), key));
  }

  ASSIGN_OR_RETURN(const json* seccomp, GetObject(doc, v, "seccomp", path));
  if (seccomp != nullptr) {
    ASSIGN_OR_RETURN(out->seccomp, ParseSeccomp(doc, *seccomp, Path(path, "seccomp")));
  }

  ASSIGN_OR_RETURN(const json* personality, GetObject(doc, v, "personality", path));
  if (personality != nullptr) {
    std::string ppath = Path(path, "personality");
    std::string domain;
    RETURN_IF_ERROR(GetString(doc, *personality, "domain", ppath, &domain, /*required=*/true));
    if (domain != "LINUX" && domain != "LINUX32") {
      return doc.Bad(Path(ppath, "domain"),
                     absl::StrCat(Quote(domain), " is not LINUX or LINUX32"));
    }
    // The spec defines no flag values yet; they are type-checked and otherwise ignored.
    std::vector<std::string> flags;
    RETURN_IF_ERROR(GetStringList(doc, *personality, "flags", ppath, &flags));
    out->personality = domain;
  }

  ASSIGN_OR_RETURN(const json* offsets, GetObject(doc, v, "timeOffsets", path));
  if (offsets != nullptr) {
    std::string opath = Path(path, "timeOffsets");
    for (const auto& [clock, value] : offsets->items()) {
      std::string cpath = KeyPath(opath, clock);
      if (clock != "monotonic" && clock != "boottime") {
        return doc.Bad(cpath, "unknown clock (monotonic or boottime)");
      }
      if (!value.is_object()) return doc.WrongType(cpath, value, "an object");
      TimeOffset offset;
      RETURN_IF_ERROR(GetInt(doc, value, "secs", cpath, &offset.secs));
      RETURN_IF_ERROR(GetInt(doc, value, "nanosecs", cpath, &offset.nanosecs));
      if (offset.nanosecs >= 1000000000) {
        return doc.Bad(Path(cpath, "nanosecs"), absl::StrCat(offset.nanosecs, " is not below 1e9"));
      }
      out->time_offsets[clock] = offset;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckUtsName(const Doc& doc, absl::string_view path, const std::string& name) {
  if (name.size() > kMaxUtsName) {
    return doc.Bad(path, absl::StrCat(Quote(name), " is longer than ", kMaxUtsName, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Spec> ParseSpecObject(const Doc& doc, const json& root) {
  Spec spec;
  RETURN_IF_ERROR(GetString(doc, root, "ociVersion", "", &spec.oci_version));
  // Within a major version the spec only adds fields; another major version would not be read
  // right, so it is refused rather than half understood.
  if (!spec.oci_version.empty() && !absl::StartsWith(spec.oci_version, "1.")) {
    return doc.Bad("ociVersion", absl::StrCat(Quote(spec.oci_version), " is not a 1.x version"));
  }

  if (const json* process = Member(root, "process"); process != nullptr) {
    ASSIGN_OR_RETURN(spec.process, ParseProcessObject(doc, *process, "process"));
  }

  ASSIGN_OR_RETURN(const json* r, GetObject(doc, root, "root", "", /*required=*/true));
  RETURN_IF_ERROR(GetString(doc, *r, "path", "root", &spec.root.path, /*required=*/true));
  if (spec.root.path.empty()) return doc.Bad("root.path", "empty");
  RETURN_IF_ERROR(GetBool(doc, *r, "readonly", "root", &spec.root.readonly));

  RETURN_IF_ERROR(GetString(doc, root, "hostname", "", &spec.hostname));
  RETURN_IF_ERROR(CheckUtsName(doc, "hostname", spec.hostname));
  RETURN_IF_ERROR(GetString(doc, root, "domainname", "", &spec.domainname));
  RETURN_IF_ERROR(CheckUtsName(doc, "domainname", spec.domainname));

  RETURN_IF_ERROR(ParseMounts(doc, root, &spec.mounts));

  ASSIGN_OR_RETURN(const json* hooks, GetObject(doc, root, "hooks", ""));
  if (hooks != nullptr) RETURN_IF_ERROR(ParseHooks(doc, *hooks, "hooks", &spec.hooks));

  // Annotations are opaque to the runtime, so they may hold anything JSON can.
  RETURN_IF_ERROR(GetStringMap(doc, root, "annotations", "", &spec.annotations,
                               /*allow_nul=*/true));

  ASSIGN_OR_RETURN(const json* linux_section, GetObject(doc, root, "linux", ""));
  if (linux_section != nullptr) {
    RETURN_IF_ERROR(ParseLinux(doc, *linux_section, "linux", &spec.linux));
  }
  return spec;
}

// ---- mount options ---------------------------------------------------------------------------

struct FlagOption {
  const char* name;
  bool clear;
  unsigned long flag;
};

// runc's table (libcontainer/specconv), so a config.json means the same with either runtime.
constexpr FlagOption kFlagOptions[] = {
    {"acl", false, MS_POSIXACL},
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"iversion", false, MS_I_VERSION},
    {"lazytime", false, MS_LAZYTIME},
    {"loud", true, MS_SILENT},
    {"mand", false, MS_MANDLOCK},
    {"noacl", true, MS_POSIXACL},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"noiversion", true, MS_I_VERSION},
    {"nolazytime", true, MS_LAZYTIME},
    {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},
    {"nosymfollow", false, MS_NOSYMFOLLOW},
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"silent", false, MS_SILENT},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
    {"symfollow", true, MS_NOSYMFOLLOW},
    {"sync", false, MS_SYNCHRONOUS},
};

struct PropagationOption {
  const char* name;
  unsigned long flag;
};

constexpr PropagationOption kPropagationOptions[] = {
    {"private", MS_PRIVATE},
    {"shared", MS_SHARED},
    {"slave", MS_SLAVE},
    {"unbindable", MS_UNBINDABLE},
    {"rprivate", MS_PRIVATE | MS_REC},
    {"rshared", MS_SHARED | MS_REC},
    {"rslave", MS_SLAVE | MS_REC},
    {"runbindable", MS_UNBINDABLE | MS_REC},
};

struct RecursiveOption {
  const char* name;
  uint64_t attr;
  bool clear;
  bool atime;  // one of the access-time modes, which mount_setattr treats as one field
};

constexpr RecursiveOption kRecursiveOptions[] = {
    {"rro", MOUNT_ATTR_RDONLY, false, false},
    {"rrw", MOUNT_ATTR_RDONLY, true, false},
    {"rnosuid", MOUNT_ATTR_NOSUID, false, false},
    {"rsuid", MOUNT_ATTR_NOSUID, true, false},
    {"rnodev", MOUNT_ATTR_NODEV, false, false},
    {"rdev", MOUNT_ATTR_NODEV, true, false},
    {"rnoexec", MOUNT_ATTR_NOEXEC, false, false},
    {"rexec", MOUNT_ATTR_NOEXEC, true, false},
    {"rnodiratime", MOUNT_ATTR_NODIRATIME, false, false},
    {"rdiratime", MOUNT_ATTR_NODIRATIME, true, false},
    {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, false, false},
    {"rsymfollow", MOUNT_ATTR_NOSYMFOLLOW, true, false},
    {"rrelatime", MOUNT_ATTR_RELATIME, false, true},
    {"rnorelatime", MOUNT_ATTR_RELATIME, true, true},
    {"rnoatime", MOUNT_ATTR_NOATIME, false, true},
    {"ratime", MOUNT_ATTR_NOATIME, true, true},
    {"rstrictatime", MOUNT_ATTR_STRICTATIME, false, true},
    {"rnostrictatime", MOUNT_ATTR_STRICTATIME, true, true},
};

void ApplyRecursive(const RecursiveOption& o, MountOptions* out) {
  if (!o.atime) {
    if (o.clear) {
      out->recursive_clear |= o.attr;
      out->recursive_set &= ~o.attr;
    } else {
      out->recursive_set |= o.attr;
      out->recursive_clear &= ~o.attr;
    }
    return;
  }
  // The access-time mode is a value in MOUNT_ATTR__ATIME, not a set of bits: mount_setattr(2)
  // takes a new mode only with all of MOUNT_ATTR__ATIME in attr_clr and refuses a partial clear
  // with EINVAL. So every atime option picks a whole mode, the last one winning.
  if (o.attr == MOUNT_ATTR_RELATIME && o.clear) {
    // "rnorelatime": relatime is the kernel's default, so this only takes back an earlier
    // "rrelatime" (runc and crun treat it as a no-op, MOUNT_ATTR_RELATIME being 0).
    bool relatime_pending = (out->recursive_clear & MOUNT_ATTR__ATIME) == MOUNT_ATTR__ATIME &&
                            (out->recursive_set & MOUNT_ATTR__ATIME) == MOUNT_ATTR_RELATIME;
    if (relatime_pending) out->recursive_clear &= ~uint64_t{MOUNT_ATTR__ATIME};
    return;
  }
  out->recursive_set &= ~uint64_t{MOUNT_ATTR__ATIME};
  out->recursive_clear |= MOUNT_ATTR__ATIME;
  // Turning noatime or strictatime off leaves the default mode, relatime (0).
  if (!o.clear) out->recursive_set |= o.attr;
}

// ---- signals ---------------------------------------------------------------------------------

struct SignalName {
  const char* name;
  int number;
};

constexpr SignalName kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
    {"CHLD", SIGCHLD},     {"CLD", SIGCHLD},  {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
    {"SYS", SIGSYS},
};

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::string_view NamespaceName(NamespaceType type) {
  for (const auto& [t, name] : kNamespaces) {
    if (t == type) return name;
  }
  return "unknown";
}

int NamespaceCloneFlag(NamespaceType type) {
  switch (type) {
    case NamespaceType::kPid: return CLONE_NEWPID;
    case NamespaceType::kNetwork: return CLONE_NEWNET;
    case NamespaceType::kMount: return CLONE_NEWNS;
    case NamespaceType::kIpc: return CLONE_NEWIPC;
    case NamespaceType::kUts: return CLONE_NEWUTS;
    case NamespaceType::kUser: return CLONE_NEWUSER;
    case NamespaceType::kCgroup: return CLONE_NEWCGROUP;
    case NamespaceType::kTime: return CLONE_NEWTIME;
  }
  return 0;
}

const Namespace* Linux::Find(NamespaceType type) const {
  for (const Namespace& ns : namespaces) {
    if (ns.type == type) return &ns;
  }
  return nullptr;
}

absl::StatusOr<Spec> ParseSpec(absl::string_view json_text) {
  Doc doc("config.json");
  // Every access is type-checked first, so nlohmann should not throw; this is the backstop that
  // keeps the promise that no exception leaves this function.
  try {
    ASSIGN_OR_RETURN(json root, doc.ParseObject(json_text));
    return ParseSpecObject(doc, root);
  } catch (const std::exception& e) {
    return doc.Bad("", e.what());
  }
}

absl::StatusOr<Process> ParseProcess(absl::string_view json_text) {
  Doc doc("process.json");
  try {
    ASSIGN_OR_RETURN(json root, doc.ParseObject(json_text));
    return ParseProcessObject(doc, root, "");
  } catch (const std::exception& e) {
    return doc.Bad("", e.what());
  }
}

std::string DefaultSpecJson(bool rootless, uid_t uid, gid_t gid) {
  // ordered_json keeps runc's field order, so the file reads like the one `runc spec` writes.
  using ojson = nlohmann::ordered_json;
  auto strings = [](std::initializer_list<const char*> list) {
    ojson a = ojson::array();
    for (const char* s : list) a.push_back(s);
    return a;
  };
  auto mount = [&](const char* destination, const char* type, const char* source,
                   std::initializer_list<const char*> options) {
    ojson m = ojson::object();
    m["destination"] = destination;
    m["type"] = type;
    m["source"] = source;
    if (options.size() > 0) m["options"] = strings(options);
    return m;
  };

  ojson caps = strings({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  ojson process = ojson::object();
  process["terminal"] = true;
  process["user"] = ojson{{"uid", 0}, {"gid", 0}};
  process["args"] = strings({"sh"});
  process["env"] =
      strings({"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"});
  process["cwd"] = "/";
  process["capabilities"] = ojson{{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  process["rlimits"] =
      ojson::array({ojson{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}});
  process["noNewPrivileges"] = true;

  ojson mounts = ojson::array();
  mounts.push_back(mount("/proc", "proc", "proc", {}));
  mounts.push_back(
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  if (rootless) {
    // A user namespace cannot use gid=5 (the tty group is not mapped).
    mounts.push_back(mount("/dev/pts", "devpts", "devpts",
                           {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}));
  } else {
    mounts.push_back(
        mount("/dev/pts", "devpts", "devpts",
              {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  }
  mounts.push_back(
      mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  if (rootless) {
    // sysfs cannot be mounted without owning the network namespace: bind the host's instead.
    mounts.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  } else {
    mounts.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  }
  mounts.push_back(
      mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));

  ojson linux_section = ojson::object();
  ojson namespaces = ojson::array();
  if (rootless) {
    linux_section["uidMappings"] =
        ojson::array({ojson{{"containerID", 0}, {"hostID", uid}, {"size", 1}}});
    linux_section["gidMappings"] =
        ojson::array({ojson{{"containerID", 0}, {"hostID", gid}, {"size", 1}}});
    for (const char* type : {"pid", "ipc", "uts", "mount", "user"}) {
      namespaces.push_back(ojson{{"type", type}});
    }
  } else {
    linux_section["resources"] =
        ojson{{"devices", ojson::array({ojson{{"allow", false}, {"access", "rwm"}}})}};
    for (const char* type : {"pid", "network", "ipc", "uts", "mount", "cgroup"}) {
      namespaces.push_back(ojson{{"type", type}});
    }
  }
  linux_section["namespaces"] = namespaces;
  linux_section["maskedPaths"] =
      strings({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
               "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
               "/proc/scsi"});
  linux_section["readonlyPaths"] =
      strings({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});

  ojson spec = ojson::object();
  spec["ociVersion"] = "1.1.0";
  spec["process"] = std::move(process);
  spec["root"] = ojson{{"path", "rootfs"}, {"readonly", true}};
  spec["hostname"] = "berth";
  spec["mounts"] = std::move(mounts);
  spec["linux"] = std::move(linux_section);
  // Every string above is ASCII, so dump cannot meet invalid UTF-8 and throw.
  return spec.dump(1, '\t');
}

absl::StatusOr<MountOptions> ParseMountOptions(const std::vector<std::string>& options) {
  MountOptions out;
  std::vector<absl::string_view> data;
  for (const std::string& option : options) {
    if (option.empty()) continue;
    if (option == "idmap" || option == "ridmap") {
      return absl::InvalidArgumentError(
          absl::StrCat("mount option ", Quote(option), ": idmapped mounts are not supported yet"));
    }
    if (option == "tmpcopyup") {
      out.tmpcopyup = true;
      continue;
    }
    bool handled = false;
    for (const FlagOption& f : kFlagOptions) {
      if (option != f.name) continue;
      if (f.clear) {
        out.flags &= ~f.flag;
        out.clear_flags |= f.flag;
      } else {
        out.flags |= f.flag;
        out.clear_flags &= ~f.flag;
      }
      handled = true;
      break;
    }
    for (const PropagationOption& p : kPropagationOptions) {
      if (handled || option != p.name) continue;
      // Propagation types exclude each other; the last one given wins, as with mount(8).
      out.propagation = p.flag;
      handled = true;
    }
    for (const RecursiveOption& r : kRecursiveOptions) {
      if (handled || option != r.name) continue;
      ApplyRecursive(r, &out);
      handled = true;
    }
    if (!handled) data.push_back(option);
  }
  out.data = absl::StrJoin(data, ",");
  return out;
}

absl::StatusOr<int> CapabilityFromName(absl::string_view name) {
  // cap_from_name also takes numbers ("21") and ignores trailing blanks, so only the names are
  // let through to it.
  bool ok = name.size() > 4 && name.size() <= 64 && absl::StartsWithIgnoreCase(name, "CAP_");
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') ok = false;
  }
  if (!ok) return absl::NotFoundError(absl::StrCat("unknown capability ", Quote(name)));
  std::string lower = absl::AsciiStrToLower(name);
  cap_value_t value = -1;
  if (cap_from_name(lower.c_str(), &value) != 0 || value < 0) {
    return absl::NotFoundError(absl::StrCat("unknown capability ", Quote(name)));
  }
  int last = static_cast<int>(cap_max_bits()) - 1;
  if (value > last) {
    return absl::NotFoundError(absl::StrCat("capability ", Quote(name), " (", value,
                                            ") is not supported by this kernel (last is ", last,
                                            ")"));
  }
  return static_cast<int>(value);
}

std::vector<std::string> KnownCapabilityNames() {
  std::vector<std::string> names;
  int count = static_cast<int>(cap_max_bits());
  for (int i = 0; i < count; ++i) {
    char* name = cap_to_name(static_cast<cap_value_t>(i));
    if (name == nullptr) continue;
    std::string upper = absl::AsciiStrToUpper(name);
    cap_free(name);
    // libcap names a capability newer than itself by its number: not a name anyone can use.
    if (absl::StartsWith(upper, "CAP_")) names.push_back(std::move(upper));
  }
  return names;
}

absl::StatusOr<int> ParseSignal(absl::string_view name) {
  const int rtmin = SIGRTMIN, rtmax = SIGRTMAX;
  if (AllDigits(name)) {
    int n = 0;
    if (!absl::SimpleAtoi(name, &n) || n < 1 || n > rtmax) {
      return absl::InvalidArgumentError(
          absl::StrCat("signal ", Quote(name), " is not a signal number (1..", rtmax, ")"));
    }
    return n;
  }
  auto unknown = [&] {
    return absl::InvalidArgumentError(absl::StrCat("unknown signal ", Quote(name)));
  };
  std::string upper = absl::AsciiStrToUpper(name);
  absl::string_view s = upper;
  absl::ConsumePrefix(&s, "SIG");
  for (const SignalName& sig : kSignals) {
    if (s == sig.name) return sig.number;
  }
  // "RTMIN", "RTMIN+3", "RTMAX", "RTMAX-2" (glibc keeps the first real-time signals for itself,
  // so RTMIN is not the kernel's 32).
  int base = 0, sign = 1;
  if (absl::ConsumePrefix(&s, "RTMIN")) {
    base = rtmin;
  } else if (absl::ConsumePrefix(&s, "RTMAX")) {
    base = rtmax;
    sign = -1;
  } else {
    return unknown();
  }
  int offset = 0;
  if (!s.empty()) {
    if (!absl::ConsumePrefix(&s, sign > 0 ? "+" : "-") || !AllDigits(s) ||
        !absl::SimpleAtoi(s, &offset)) {
      return unknown();
    }
  }
  int n = base + sign * offset;
  if (n < rtmin || n > rtmax) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signal ", Quote(name), " is outside the real-time signals (", rtmin, "..", rtmax, ")"));
  }
  return n;
}

}  // namespace berth::runtime

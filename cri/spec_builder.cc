#include "cri/spec_builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/copy_tree.h"
#include "base/file.h"
#include "base/json.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cgroups/resources.h"
#include "runtime/spec.h"

namespace berth::cri {

namespace {

using nlohmann::json;

constexpr char kDefaultPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr uint32_t kMaxId = 4294967294U;  // (uid_t)-1 means "no id"
constexpr size_t kMaxEtcFile = 4 << 20;   // /etc/passwd, /etc/group
constexpr size_t kMaxSeccompFile = 4 << 20;
constexpr size_t kMaxQuoted = 128;

// containerd's default capability set.
constexpr const char* kDefaultCaps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE",
};

constexpr const char* kDefaultMaskedPaths[] = {
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};

constexpr const char* kDefaultReadonlyPaths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

std::string Quote(absl::string_view s) {
  return QuoteForMessage(s, kMaxQuoted);
}

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status NoNul(absl::string_view field, absl::string_view s) {
  if (s.find('\0') != absl::string_view::npos) {
    return Invalid(field, absl::StrCat(Quote(s), " contains a NUL character"));
  }
  return absl::OkStatus();
}

absl::Status AbsolutePath(absl::string_view field, absl::string_view s) {
  RETURN_IF_ERROR(NoNul(field, s));
  if (s.empty()) return Invalid(field, "empty (an absolute path is required)");
  if (s[0] != '/') return Invalid(field, absl::StrCat(Quote(s), ": must be absolute"));
  return absl::OkStatus();
}

// "/a//b/./c/../d/" -> "/a/b/d" (lexically; ".." never climbs above "/").
std::string CleanPath(absl::string_view p) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(p, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  return absl::StrCat("/", absl::StrJoin(parts, "/"));
}

size_t PathDepth(absl::string_view clean) {
  if (clean == "/") return 0;
  return static_cast<size_t>(std::count(clean.begin(), clean.end(), '/'));
}

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

absl::StatusOr<uint32_t> IdFrom(absl::string_view field, int64_t v) {
  if (v < 0 || v > kMaxId) return Invalid(field, absl::StrCat(v, " is not a valid id"));
  return static_cast<uint32_t>(v);
}

// ---- image config ----------------------------------------------------------------------------

absl::Status ImageString(const json& cfg, const char* key, std::string* out) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return Invalid(absl::StrCat("image config: config.", key), "not a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ImageStrings(const json& cfg, const char* key, std::vector<std::string>* out) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return absl::OkStatus();
  std::string field = absl::StrCat("image config: config.", key);
  if (!it->is_array()) return Invalid(field, "not an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    if (!e.is_string()) return Invalid(absl::StrCat(field, "[", i, "]"), "not a string");
    out->push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

// ---- /etc/passwd and /etc/group of the rootfs ------------------------------------------------

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// Every character and block device node under `dir` (the host's /dev), as OCI devices
// entries with the node's own mode and owner, the way runc's HostDevices finds them for
// containerd: subdirectories are walked but pts, shm, fd, mqueue and the .lxc, .lxd-mounts,
// .udev ones; console is left out (the container gets its own); symlinks are not followed.
// `rel` is the directory below the root ("" for the root itself).
absl::StatusOr<std::vector<nlohmann::json>> HostDevices(const std::string& root,
                                                        const std::string& rel = "",
                                                        int depth = 0) {
  std::vector<nlohmann::json> out;
  const std::string dir = root + rel;
  if (depth > 8) return out;
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == EACCES) return out;
    return LastErrnoError(absl::StrCat("open ", dir));
  }
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return LastErrnoError(absl::StrCat("read ", dir));
  (void)fd.release();
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (name == "." || name == "..") continue;
    const std::string path = absl::StrCat(dir, "/", name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return LastErrnoError(absl::StrCat("stat ", path));
    }
    if (S_ISDIR(st.st_mode)) {
      if (name == "pts" || name == "shm" || name == "fd" || name == "mqueue" || name == ".lxc" ||
          name == ".lxd-mounts" || name == ".udev") {
        continue;
      }
      ASSIGN_OR_RETURN(std::vector<nlohmann::json> sub,
                       HostDevices(root, absl::StrCat(rel, "/", name), depth + 1));
      for (nlohmann::json& j : sub) out.push_back(std::move(j));
      continue;
    }
    if (name == "console" || (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))) continue;
    // Paths in the container are the host's, under /dev.
    out.push_back(nlohmann::json{{"path", absl::StrCat("/dev", rel, "/", name)},
                                 {"type", S_ISBLK(st.st_mode) ? "b" : "c"},
                                 {"major", static_cast<int64_t>(::major(st.st_rdev))},
                                 {"minor", static_cast<int64_t>(::minor(st.st_rdev))},
                                 {"fileMode", st.st_mode & 07777},
                                 {"uid", st.st_uid},
                                 {"gid", st.st_gid}});
  }
  return out;
}

// `rel` inside the directory `root` (the rootfs, named `rootfs` in messages), resolved as if
// `root` were "/" (symlinks in the image cannot lead out of it) and opened with `flags`;
// nullopt when it does not exist.
absl::StatusOr<std::optional<UniqueFd>> OpenInRootfs(int root, const std::string& rootfs,
                                                     const std::string& rel, uint64_t flags) {
  struct open_how how {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = -1;
  do {
    fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how);
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    return LastErrnoError(absl::StrCat("open ", rootfs, "/", rel));
  }
  return std::optional<UniqueFd>(UniqueFd(static_cast<int>(fd)));
}

// The contents of `rel` inside the rootfs (see OpenInRootfs); nullopt when it does not exist.
absl::StatusOr<std::optional<std::string>> ReadInRoot(int root, const std::string& rootfs,
                                                      const char* rel) {
  ASSIGN_OR_RETURN(std::optional<UniqueFd> file,
                   OpenInRootfs(root, rootfs, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK));
  if (!file) return std::nullopt;
  const std::string name = absl::StrCat(rootfs, "/", rel);
  struct stat st {};
  if (::fstat(file->get(), &st) != 0) return LastErrnoError(absl::StrCat("stat ", name));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not a regular file"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFd(file->get(), name, kMaxEtcFile));
  return std::optional<std::string>(std::move(text));
}

std::vector<PasswdEntry> ParsePasswd(absl::string_view text) {
  std::vector<PasswdEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 4 || f[0].empty() || f[0][0] == '#' || f[0][0] == '+' || f[0][0] == '-') {
      continue;
    }
    PasswdEntry e;
    e.name = std::string(absl::StripAsciiWhitespace(f[0]));
    if (!AllDigits(f[2]) || !AllDigits(f[3]) || !absl::SimpleAtoi(f[2], &e.uid) ||
        !absl::SimpleAtoi(f[3], &e.gid)) {
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<GroupEntry> ParseGroup(absl::string_view text) {
  std::vector<GroupEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < 3 || f[0].empty() || f[0][0] == '#' || f[0][0] == '+' || f[0][0] == '-') {
      continue;
    }
    GroupEntry e;
    e.name = std::string(absl::StripAsciiWhitespace(f[0]));
    if (!AllDigits(f[2]) || !absl::SimpleAtoi(f[2], &e.gid)) continue;
    if (f.size() >= 4) {
      for (absl::string_view m : absl::StrSplit(f[3], ',', absl::SkipWhitespace())) {
        e.members.emplace_back(absl::StripAsciiWhitespace(m));
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

// ---- mounts ----------------------------------------------------------------------------------

struct MountEntry {
  std::string destination;  // clean
  std::string type, source;
  std::vector<std::string> options;
};

json MountJson(const MountEntry& m) {
  json j = {{"destination", m.destination}, {"type", m.type}, {"source", m.source}};
  j["options"] = m.options;
  return j;
}

MountEntry BindEntry(std::string destination, std::string source, bool readonly) {
  return MountEntry{.destination = std::move(destination),
                    .type = "bind",
                    .source = std::move(source),
                    .options = {"rbind", "rprivate", readonly ? "ro" : "rw"}};
}

// The deprecated string forms of the seccomp and AppArmor profiles, which the kubelet still
// fills in for older runtimes.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
const std::string& SeccompProfilePath(const v1::LinuxContainerSecurityContext& sc) {
  return sc.seccomp_profile_path();
}
const std::string& ApparmorProfile(const v1::LinuxContainerSecurityContext& sc) {
  return sc.apparmor_profile();
}
#pragma GCC diagnostic pop

// "SIGRTMINPLUS3" -> "SIGRTMIN+3", "SIGRTMAXMINUS2" -> "SIGRTMAX-2" (ParseSignal's spelling).
std::string CriSignalName(const std::string& name) {
  std::string s = name;
  for (const auto& [from, to] :
       {std::pair<const char*, const char*>{"PLUS", "+"}, {"MINUS", "-"}}) {
    size_t at = s.find(from);
    if (at != std::string::npos) s.replace(at, std::string(from).size(), to);
  }
  return s;
}

// "add_capabilities[2]" -> "CAP_NET_ADMIN" from "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN".
absl::StatusOr<std::pair<int, std::string>> Capability(absl::string_view field,
                                                       const std::string& raw) {
  RETURN_IF_ERROR(NoNul(field, raw));
  std::string name = absl::AsciiStrToUpper(raw);
  if (!absl::StartsWith(name, "CAP_")) name = absl::StrCat("CAP_", name);
  absl::StatusOr<int> n = runtime::CapabilityFromName(name);
  if (!n.ok()) return Invalid(field, n.status().message());
  return std::make_pair(*n, name);
}

class Builder {
 public:
  explicit Builder(const SpecInputs& in)
      : in_(in),
        c_(*in.container),
        sb_(*in.sandbox),
        sc_(in.container->linux().security_context()),
        res_(in.container->linux().resources()),
        privileged_(sc_.privileged()) {}

  absl::StatusOr<BuiltSpec> Build() {
    RETURN_IF_ERROR(AbsolutePath("rootfs", in_.rootfs));
    if (privileged_ && !sb_.linux().security_context().privileged()) {
      return Invalid("linux.security_context.privileged",
                     "a privileged container needs a privileged pod sandbox");
    }
    RETURN_IF_ERROR(CheckUnsupported());

    spec_["ociVersion"] = "1.1.0";
    spec_["root"] = {{"path", in_.rootfs}, {"readonly", sc_.readonly_rootfs()}};
    // The pod's uts namespace (when it has one) already carries its hostname, set by the
    // sandbox: a container only joins it, and berth's runtime sets a hostname only in a uts
    // namespace it creates, so "hostname" stays unset.
    RETURN_IF_ERROR(BuildProcess());
    RETURN_IF_ERROR(BuildMounts());
    RETURN_IF_ERROR(BuildLinux());
    RETURN_IF_ERROR(BuildAnnotations());
    RETURN_IF_ERROR(BuildStopSignal());

    // Whatever reaches here was validated field by field; this is the backstop for what the
    // runtime would refuse (and dump's throw on invalid UTF-8, which proto3 strings rule out).
    try {
      absl::StatusOr<runtime::Spec> parsed = runtime::ParseSpec(spec_.dump());
      if (!parsed.ok()) return absl::InvalidArgumentError(parsed.status().message());
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("config.json: ", e.what()));
    }
    out_.spec = std::move(spec_);
    return std::move(out_);
  }

 private:
  void Warn(std::string line) { out_.warnings.push_back(std::move(line)); }

  // ---- what berth does not do ----------------------------------------------------------------

  absl::Status CheckUnsupported() {
    const v1::SELinuxOption& se = sc_.selinux_options();
    if (!se.user().empty() || !se.role().empty() || !se.type().empty() || !se.level().empty()) {
      return Invalid("linux.security_context.selinux_options", "SELinux is not supported");
    }
    // AppArmor: berth confines nothing with it, which is what RuntimeDefault (the runtime's
    // default) and Unconfined mean here; a named profile cannot be honoured.
    if (sc_.has_apparmor() && sc_.apparmor().profile_type() == v1::SecurityProfile::Localhost) {
      return Invalid("linux.security_context.apparmor",
                     absl::StrCat("AppArmor is not supported (profile ",
                                  Quote(sc_.apparmor().localhost_ref()), ")"));
    }
    const std::string& aa = ApparmorProfile(sc_);
    if (!aa.empty() && aa != "unconfined" && aa != "runtime/default") {
      return Invalid("linux.security_context.apparmor_profile",
                     absl::StrCat("AppArmor is not supported (profile ", Quote(aa), ")"));
    }
    const v1::NamespaceOption& ns = sc_.namespace_options();
    if (ns.has_userns_options() && ns.userns_options().mode() != v1::NODE) {
      return Invalid("linux.security_context.namespace_options.userns_options",
                     "user namespaces are not supported");
    }
    if (c_.cdi_devices_size() > 0) {
      return Invalid("CDI_devices", absl::StrCat("CDI devices are not supported (",
                                                 Quote(c_.cdi_devices(0).name()), ")"));
    }
    return absl::OkStatus();
  }

  // ---- process -------------------------------------------------------------------------------

  absl::Status BuildProcess() {
    json process = json::object();
    process["terminal"] = c_.tty();

    // Kubernetes: command replaces the entrypoint (and drops the image's cmd); args alone
    // replace the cmd.
    std::vector<std::string> args;
    if (c_.command_size() > 0) {
      args.assign(c_.command().begin(), c_.command().end());
      args.insert(args.end(), c_.args().begin(), c_.args().end());
    } else if (c_.args_size() > 0) {
      args = in_.image.entrypoint;
      args.insert(args.end(), c_.args().begin(), c_.args().end());
    } else {
      args = in_.image.entrypoint;
      args.insert(args.end(), in_.image.cmd.begin(), in_.image.cmd.end());
    }
    if (args.empty()) return absl::InvalidArgumentError("no command specified");
    if (args[0].empty()) return Invalid("command", "the program name is empty");
    for (size_t i = 0; i < args.size(); ++i) {
      RETURN_IF_ERROR(NoNul(absl::StrCat("args[", i, "]"), args[i]));
    }
    process["args"] = args;

    ASSIGN_OR_RETURN(process["env"], Env());

    std::string cwd = "/";
    if (!c_.working_dir().empty()) {
      RETURN_IF_ERROR(AbsolutePath("working_dir", c_.working_dir()));
      cwd = c_.working_dir();
    } else if (!in_.image.working_dir.empty()) {
      RETURN_IF_ERROR(NoNul("image config: config.WorkingDir", in_.image.working_dir));
      cwd = CleanPath(in_.image.working_dir);  // Docker reads a relative one from "/"
    }
    process["cwd"] = cwd;

    ASSIGN_OR_RETURN(process["user"], User());
    RETURN_IF_ERROR(Capabilities(&process));
    process["noNewPrivileges"] = sc_.no_new_privs() && !privileged_;

    int64_t oom = res_.oom_score_adj();
    if (oom < -1000 || oom > 1000) {
      int64_t clamped = std::clamp<int64_t>(oom, -1000, 1000);
      Warn(absl::StrCat("linux.resources.oom_score_adj ", oom, " clamped to ", clamped));
      oom = clamped;
    }
    process["oomScoreAdj"] = oom;
    spec_["process"] = std::move(process);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Hostname() {
    if (!sb_.hostname().empty()) return sb_.hostname();
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return LastErrnoError("gethostname");
    return std::string(buf);
  }

  absl::StatusOr<json> Env() {
    // containerd's order: the default PATH and HOSTNAME, then the image's, then the request's,
    // each replacing an earlier value of the same name in place.
    std::vector<std::string> env;
    std::map<std::string, size_t> index;
    auto set = [&](const std::string& key, std::string entry) {
      auto [it, added] = index.emplace(key, env.size());
      if (added) {
        env.push_back(std::move(entry));
      } else {
        env[it->second] = std::move(entry);
      }
    };
    set("PATH", kDefaultPath);
    ASSIGN_OR_RETURN(std::string hostname, Hostname());
    RETURN_IF_ERROR(NoNul("hostname", hostname));
    set("HOSTNAME", absl::StrCat("HOSTNAME=", hostname));
    for (const std::string& e : in_.image.env) {
      size_t eq = e.find('=');
      if (eq == std::string::npos || eq == 0 || e.find('\0') != std::string::npos) {
        Warn(absl::StrCat("image config: config.Env entry ", Quote(e), " ignored (not KEY=value)"));
        continue;
      }
      set(e.substr(0, eq), e);
    }
    for (int i = 0; i < c_.envs_size(); ++i) {
      const v1::KeyValue& kv = c_.envs(i);
      std::string field = absl::StrCat("envs[", i, "]");
      if (kv.key().empty()) return Invalid(absl::StrCat(field, ".key"), "empty");
      if (kv.key().find('=') != std::string::npos) {
        return Invalid(absl::StrCat(field, ".key"), absl::StrCat(Quote(kv.key()), " contains '='"));
      }
      RETURN_IF_ERROR(NoNul(absl::StrCat(field, ".key"), kv.key()));
      RETURN_IF_ERROR(NoNul(absl::StrCat(field, ".value"), kv.value()));
      set(kv.key(), absl::StrCat(kv.key(), "=", kv.value()));
    }
    return json(env);
  }

  // /etc/passwd and /etc/group of the image, read once, when first needed.
  absl::Status LoadEtc() {
    if (etc_loaded_) return absl::OkStatus();
    UniqueFd root(::open(in_.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return LastErrnoError(absl::StrCat("open the rootfs ", in_.rootfs));
    ASSIGN_OR_RETURN(std::optional<std::string> passwd,
                     ReadInRoot(root.get(), in_.rootfs, "etc/passwd"));
    ASSIGN_OR_RETURN(std::optional<std::string> group,
                     ReadInRoot(root.get(), in_.rootfs, "etc/group"));
    if (passwd.has_value()) passwd_ = ParsePasswd(*passwd);
    if (group.has_value()) groups_ = ParseGroup(*group);
    etc_loaded_ = true;
    return absl::OkStatus();
  }

  const PasswdEntry* UserByName(absl::string_view name) const {
    for (const PasswdEntry& e : passwd_) {
      if (e.name == name) return &e;
    }
    return nullptr;
  }

  const PasswdEntry* UserById(uint32_t uid) const {
    for (const PasswdEntry& e : passwd_) {
      if (e.uid == uid) return &e;
    }
    return nullptr;
  }

  absl::StatusOr<json> User() {
    RETURN_IF_ERROR(LoadEtc());
    uint32_t uid = 0;
    std::optional<uint32_t> gid;
    std::optional<std::string> username;  // for the memberships in /etc/group
    const std::string& image_user = in_.image.user;

    if (sc_.has_run_as_user() && !sc_.run_as_username().empty()) {
      return Invalid("linux.security_context",
                     "run_as_user and run_as_username are mutually exclusive");
    }
    if (sc_.has_run_as_user()) {
      ASSIGN_OR_RETURN(
          uid, IdFrom("linux.security_context.run_as_user.value", sc_.run_as_user().value()));
    } else if (!sc_.run_as_username().empty()) {
      const std::string& name = sc_.run_as_username();
      RETURN_IF_ERROR(NoNul("linux.security_context.run_as_username", name));
      const PasswdEntry* e = UserByName(name);
      if (e == nullptr) {
        return Invalid("linux.security_context.run_as_username",
                       absl::StrCat("no user ", Quote(name), " in the image's /etc/passwd"));
      }
      uid = e->uid;
      gid = e->gid;
      username = e->name;
    } else if (!image_user.empty()) {
      RETURN_IF_ERROR(NoNul("image config: config.User", image_user));
      std::vector<std::string> parts = absl::StrSplit(image_user, absl::MaxSplits(':', 1));
      const std::string& user = parts[0];
      if (AllDigits(user)) {
        if (!absl::SimpleAtoi(user, &uid) || uid > kMaxId) {
          return Invalid("image config: config.User", absl::StrCat(Quote(image_user), ": bad uid"));
        }
      } else {
        const PasswdEntry* e = UserByName(user);
        if (e == nullptr) {
          return Invalid("image config: config.User",
                         absl::StrCat("no user ", Quote(user), " in the image's /etc/passwd"));
        }
        uid = e->uid;
        gid = e->gid;
        username = e->name;
      }
      if (parts.size() == 2) {
        const std::string& group = parts[1];
        uint32_t g = 0;
        if (AllDigits(group)) {
          if (!absl::SimpleAtoi(group, &g) || g > kMaxId) {
            return Invalid("image config: config.User",
                           absl::StrCat(Quote(image_user), ": bad gid"));
          }
        } else {
          bool found = false;
          for (const GroupEntry& e : groups_) {
            if (e.name == group) {
              g = e.gid;
              found = true;
              break;
            }
          }
          if (!found) {
            return Invalid("image config: config.User",
                           absl::StrCat("no group ", Quote(group), " in the image's /etc/group"));
          }
        }
        gid = g;
      }
    }

    if (sc_.has_run_as_group()) {
      if (!sc_.has_run_as_user() && sc_.run_as_username().empty() && image_user.empty()) {
        return Invalid("linux.security_context.run_as_group",
                       "needs run_as_user or run_as_username (or a user in the image)");
      }
      ASSIGN_OR_RETURN(
          gid, IdFrom("linux.security_context.run_as_group.value", sc_.run_as_group().value()));
    }
    const PasswdEntry* entry = UserById(uid);
    if (!username.has_value() && entry != nullptr) username = entry->name;
    if (!gid.has_value()) gid = entry != nullptr ? entry->gid : 0;

    std::set<uint32_t> additional;
    for (int i = 0; i < sc_.supplemental_groups_size(); ++i) {
      ASSIGN_OR_RETURN(uint32_t g,
                       IdFrom(absl::StrCat("linux.security_context.supplemental_groups[", i, "]"),
                              sc_.supplemental_groups(i)));
      additional.insert(g);
    }
    if (sc_.supplemental_groups_policy() == v1::Merge && username.has_value()) {
      for (const GroupEntry& g : groups_) {
        if (std::find(g.members.begin(), g.members.end(), *username) != g.members.end()) {
          additional.insert(g.gid);
        }
      }
    }
    json user = {{"uid", uid}, {"gid", *gid}};
    if (!additional.empty()) {
      user["additionalGids"] = std::vector<uint32_t>(additional.begin(), additional.end());
    }
    return user;
  }

  absl::Status Capabilities(json* process) {
    std::map<int, std::string> caps, ambient;
    // "Every capability" (privileged, or ALL) is every one in berthd's own bounding set, as
    // containerd's WithAllCurrentCapabilities: a container cannot hold one its runtime lacks
    // (this kind of host's bounding set has no CAP_SYS_RESOURCE), and asking for it fails the
    // container's start.
    auto all = [&]() -> absl::Status {
      for (const std::string& name : runtime::KnownCapabilityNames()) {
        absl::StatusOr<int> n = runtime::CapabilityFromName(name);
        if (n.ok() && ::prctl(PR_CAPBSET_READ, *n, 0, 0, 0) != 0) caps[*n] = name;
      }
      return absl::OkStatus();
    };
    if (privileged_) {
      RETURN_IF_ERROR(all());
    } else {
      for (const char* name : kDefaultCaps) {
        ASSIGN_OR_RETURN(auto cap, Capability("default capabilities", name));
        caps.insert(cap);
      }
    }
    const v1::Capability& req = sc_.capabilities();
    auto is_all = [](const std::string& s) { return absl::EqualsIgnoreCase(s, "ALL"); };
    const std::string base = "linux.security_context.capabilities";
    // containerd's order: ALL first, so that "add ALL, drop X" and "drop ALL, add X" work.
    if (std::any_of(req.add_capabilities().begin(), req.add_capabilities().end(), is_all)) {
      RETURN_IF_ERROR(all());
    }
    if (std::any_of(req.drop_capabilities().begin(), req.drop_capabilities().end(), is_all)) {
      caps.clear();
    }
    for (int i = 0; i < req.add_capabilities_size(); ++i) {
      if (is_all(req.add_capabilities(i))) continue;
      ASSIGN_OR_RETURN(auto cap, Capability(absl::StrCat(base, ".add_capabilities[", i, "]"),
                                            req.add_capabilities(i)));
      caps.insert(cap);
    }
    for (int i = 0; i < req.add_ambient_capabilities_size(); ++i) {
      ASSIGN_OR_RETURN(auto cap,
                       Capability(absl::StrCat(base, ".add_ambient_capabilities[", i, "]"),
                                  req.add_ambient_capabilities(i)));
      caps.insert(cap);
      ambient.insert(cap);
    }
    for (int i = 0; i < req.drop_capabilities_size(); ++i) {
      if (is_all(req.drop_capabilities(i))) continue;
      ASSIGN_OR_RETURN(auto cap, Capability(absl::StrCat(base, ".drop_capabilities[", i, "]"),
                                            req.drop_capabilities(i)));
      caps.erase(cap.first);
      ambient.erase(cap.first);
    }
    for (const auto& [n, name] : caps) effective_caps_.push_back(name);
    std::vector<std::string> ambient_names;
    ambient_names.reserve(ambient.size());
    for (const auto& [n, name] : ambient) ambient_names.push_back(name);
    json c = {{"bounding", effective_caps_},
              {"effective", effective_caps_},
              {"permitted", effective_caps_},
              {"inheritable", ambient_names},
              {"ambient", ambient_names}};
    (*process)["capabilities"] = std::move(c);
    return absl::OkStatus();
  }

  // ---- mounts --------------------------------------------------------------------------------

  absl::Status BuildMounts() {
    std::vector<MountEntry> cri;  // request, pod files, image volumes: sorted below
    std::set<std::string> taken;  // their destinations
    bool shared = false, slave = false;

    for (int i = 0; i < c_.mounts_size(); ++i) {
      const v1::Mount& m = c_.mounts(i);
      std::string field = absl::StrCat("mounts[", i, "]");
      RETURN_IF_ERROR(AbsolutePath(absl::StrCat(field, ".container_path"), m.container_path()));
      std::string dest = CleanPath(m.container_path());
      if (!m.image().image().empty()) {
        return Invalid(
            absl::StrCat(field, ".image"),
            absl::StrCat("image volumes are not supported (", Quote(m.image().image()), ")"));
      }
      if (m.uidmappings_size() > 0 || m.gidmappings_size() > 0) {
        return Invalid(field, "idmapped mounts (uidMappings/gidMappings) are not supported");
      }
      std::string host_field = absl::StrCat(field, ".host_path");
      RETURN_IF_ERROR(AbsolutePath(host_field, m.host_path()));
      struct stat st {};
      if (::stat(m.host_path().c_str(), &st) != 0) {
        int err = errno;
        return Invalid(host_field, absl::StrCat(Quote(m.host_path()), ": ", ErrnoString(err)));
      }
      if (!taken.insert(dest).second) {
        return Invalid(absl::StrCat(field, ".container_path"),
                       absl::StrCat(Quote(dest), " is mounted twice"));
      }
      MountEntry e = BindEntry(dest, m.host_path(), m.readonly());
      switch (m.propagation()) {
        case v1::PROPAGATION_PRIVATE: break;
        case v1::PROPAGATION_HOST_TO_CONTAINER:
          e.options[1] = "rslave";
          slave = true;
          break;
        case v1::PROPAGATION_BIDIRECTIONAL:
          e.options[1] = "rshared";
          shared = true;
          break;
        default:
          return Invalid(absl::StrCat(field, ".propagation"),
                         absl::StrCat("unknown propagation ", m.propagation()));
      }
      if (m.recursive_read_only()) {
        if (!m.readonly() || m.propagation() != v1::PROPAGATION_PRIVATE) {
          return Invalid(absl::StrCat(field, ".recursive_read_only"),
                         "needs readonly and PROPAGATION_PRIVATE");
        }
        e.options.push_back("rro");
      }
      if (m.selinux_relabel()) {
        Warn(
            absl::StrCat(field, ".selinux_relabel ignored (no SELinux support) for ", Quote(dest)));
      }
      cri.push_back(std::move(e));
    }

    // The pod's files, as containerd: read-only when the rootfs is.
    bool ro = sc_.readonly_rootfs();
    if (!in_.pod_dir.empty()) {
      RETURN_IF_ERROR(AbsolutePath("pod_dir", in_.pod_dir));
      for (const char* name : {"hostname", "hosts", "resolv.conf"}) {
        std::string dest = absl::StrCat("/etc/", name);
        if (taken.count(dest) > 0) continue;
        std::string source = absl::StrCat(in_.pod_dir, "/", name);
        struct stat st {};
        if (::stat(source.c_str(), &st) != 0) {
          int err = errno;
          Warn(absl::StrCat(dest, " not mounted: ", source, ": ", ErrnoString(err)));
          continue;
        }
        taken.insert(dest);
        cri.push_back(BindEntry(dest, source, ro));
      }
    }
    if (taken.count("/dev/shm") == 0) {
      std::string source = in_.shm_path.empty() ? "/dev/shm" : in_.shm_path;
      RETURN_IF_ERROR(AbsolutePath("shm_path", source));
      taken.insert("/dev/shm");
      cri.push_back(BindEntry("/dev/shm", source, false));
    }

    // Image VOLUMEs nobody mounted anything on get a directory of their own, with what the
    // image has at that path copied in (as Docker and containerd do).
    for (size_t i = 0; i < in_.image.volumes.size(); ++i) {
      const std::string& v = in_.image.volumes[i];
      RETURN_IF_ERROR(NoNul("image config: config.Volumes", v));
      std::string dest = CleanPath(v);
      if (dest == "/" || taken.count(dest) > 0) continue;
      RETURN_IF_ERROR(AbsolutePath("volumes_dir", in_.volumes_dir));
      std::string dir = absl::StrCat(in_.volumes_dir, "/", i);
      RETURN_IF_ERROR(MkdirAll(dir, 0755));
      if (::chmod(dir.c_str(), 0755) != 0) return LastErrnoError(absl::StrCat("chmod ", dir));
      if (absl::Status st = CopyImageContent(dest, dir); !st.ok()) {
        return absl::Status(st.code(),
                            absl::StrCat("image volume ", Quote(dest), ": ", st.message()));
      }
      taken.insert(dest);
      cri.push_back(BindEntry(dest, dir, false));
    }

    // Parents before children.
    std::stable_sort(cri.begin(), cri.end(), [](const MountEntry& a, const MountEntry& b) {
      return PathDepth(a.destination) < PathDepth(b.destination);
    });

    json mounts = json::array();
    for (const MountEntry& m : DefaultMounts()) {
      if (taken.count(m.destination) > 0) continue;
      // A /dev of the request's own replaces everything the defaults put under it.
      if (taken.count("/dev") > 0 && absl::StartsWith(m.destination, "/dev/")) continue;
      mounts.push_back(MountJson(m));
    }
    for (const MountEntry& m : cri) mounts.push_back(MountJson(m));
    spec_["mounts"] = std::move(mounts);

    // A propagating mount needs the rootfs to propagate too.
    if (shared) {
      rootfs_propagation_ = "rshared";
    } else if (slave) {
      rootfs_propagation_ = "rslave";
    }
    return absl::OkStatus();
  }

  std::vector<MountEntry> DefaultMounts() const {
    std::vector<MountEntry> m;
    m.push_back({"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}});
    m.push_back({"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}});
    m.push_back({"/dev/pts",
                 "devpts",
                 "devpts",
                 {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}});
    m.push_back({"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}});
    if (privileged_) {
      m.push_back({"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "rw"}});
    } else if (in_.netns_path.empty()) {
      // On the host's network a new sysfs would not be the container's to mount (as
      // containerd): the host's is bound, read-only all the way down.
      m.push_back({"/sys", "bind", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro", "rro"}});
    } else {
      m.push_back({"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}});
    }
    m.push_back({"/sys/fs/cgroup",
                 "cgroup",
                 "cgroup",
                 {"nosuid", "noexec", "nodev", "relatime", privileged_ ? "rw" : "ro"}});
    return m;
  }

  // ---- linux ---------------------------------------------------------------------------------

  absl::Status BuildLinux() {
    json linux_section = json::object();
    ASSIGN_OR_RETURN(linux_section["namespaces"], Namespaces());
    if (!in_.cgroups_path.empty()) {
      RETURN_IF_ERROR(NoNul("cgroups_path", in_.cgroups_path));
      linux_section["cgroupsPath"] = in_.cgroups_path;
    }
    json devices = json::array();
    ASSIGN_OR_RETURN(linux_section["resources"], Resources(&devices));
    if (!devices.empty()) linux_section["devices"] = std::move(devices);
    if (!rootfs_propagation_.empty()) linux_section["rootfsPropagation"] = rootfs_propagation_;

    if (!privileged_) {
      ASSIGN_OR_RETURN(
          linux_section["maskedPaths"],
          Paths("linux.security_context.masked_paths", sc_.masked_paths(), kDefaultMaskedPaths));
      ASSIGN_OR_RETURN(linux_section["readonlyPaths"],
                       Paths("linux.security_context.readonly_paths", sc_.readonly_paths(),
                             kDefaultReadonlyPaths));
    }

    json sysctl = json::object();
    for (const auto& [key, value] : sb_.linux().sysctls()) {
      std::string field = absl::StrCat("sandbox linux.sysctls[", Quote(key), "]");
      RETURN_IF_ERROR(NoNul(field, key));
      RETURN_IF_ERROR(NoNul(field, value));
      bool ok = !key.empty() && key[0] != '.' && key[0] != '/';
      for (absl::string_view part : absl::StrSplit(key, absl::ByAnyChar("./"))) {
        if (part.empty() || part == "..") ok = false;
      }
      for (char ch : key) {
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ok = false;
      }
      if (!ok) return Invalid(field, "not a sysctl name like net.ipv4.ip_forward");
      sysctl[key] = value;
    }
    if (!sysctl.empty()) linux_section["sysctl"] = std::move(sysctl);

    ASSIGN_OR_RETURN(std::optional<json> seccomp, Seccomp());
    if (seccomp.has_value()) linux_section["seccomp"] = std::move(*seccomp);
    spec_["linux"] = std::move(linux_section);
    return absl::OkStatus();
  }

  template <size_t N>
  absl::StatusOr<json> Paths(absl::string_view field,
                             const google::protobuf::RepeatedPtrField<std::string>& given,
                             const char* const (&defaults)[N]) {
    json out = json::array();
    if (given.empty()) {
      for (const char* p : defaults) out.push_back(p);
      return out;
    }
    for (int i = 0; i < given.size(); ++i) {
      RETURN_IF_ERROR(AbsolutePath(absl::StrCat(field, "[", i, "]"), given[i]));
      out.push_back(given[i]);
    }
    return out;
  }

  absl::StatusOr<json> Namespaces() {
    json list = json::array();
    auto join = [&](const char* type, const std::string& path,
                    absl::string_view field) -> absl::Status {
      if (path.empty()) return absl::OkStatus();  // the host's
      RETURN_IF_ERROR(AbsolutePath(field, path));
      list.push_back(json{{"type", type}, {"path", path}});
      return absl::OkStatus();
    };
    const v1::NamespaceOption& ns = sc_.namespace_options();
    const char* pid_field = "linux.security_context.namespace_options.pid";
    switch (ns.pid()) {
      case v1::POD:
        if (in_.pod_pid_ns_path.empty()) {
          // POD is the zero value, so a request that says nothing (crictl's) asks for it; a
          // pod without a shared pid namespace gives each container its own.
          Warn(absl::StrCat(pid_field,
                            " POD, but the pod shares no pid namespace: the container gets its "
                            "own"));
          list.push_back(json{{"type", "pid"}});
          break;
        }
        RETURN_IF_ERROR(join("pid", in_.pod_pid_ns_path, "pod_pid_ns_path"));
        break;
      case v1::CONTAINER: list.push_back(json{{"type", "pid"}}); break;
      case v1::NODE: break;
      case v1::TARGET:
        if (in_.target_pid_ns_path.empty()) {
          return Invalid(pid_field, absl::StrCat("TARGET, but the pid namespace of ",
                                                 Quote(ns.target_id()), " is unknown"));
        }
        RETURN_IF_ERROR(join("pid", in_.target_pid_ns_path, "target_pid_ns_path"));
        break;
      default: return Invalid(pid_field, absl::StrCat("unknown mode ", ns.pid()));
    }
    RETURN_IF_ERROR(join("network", in_.netns_path, "netns_path"));
    RETURN_IF_ERROR(join("ipc", in_.ipc_ns_path, "ipc_ns_path"));
    RETURN_IF_ERROR(join("uts", in_.uts_ns_path, "uts_ns_path"));
    list.push_back(json{{"type", "mount"}});
    // As containerd: a cgroup namespace of its own on the unified hierarchy only.
    if (in_.cgroup_v2) list.push_back(json{{"type", "cgroup"}});
    return list;
  }

  absl::StatusOr<json> Resources(json* devices) {
    const std::string base = "linux.resources";
    json r = json::object();

    json cpu = json::object();
    if (res_.cpu_shares() < 0) {
      return Invalid(base + ".cpu_shares", absl::StrCat(res_.cpu_shares(), " is negative"));
    }
    if (res_.cpu_shares() > 0) {
      int64_t shares = std::clamp<int64_t>(res_.cpu_shares(), 2, 262144);
      if (shares != res_.cpu_shares()) {
        Warn(absl::StrCat(base, ".cpu_shares ", res_.cpu_shares(), " clamped to ", shares));
      }
      cpu["shares"] = shares;
    }
    if (res_.cpu_quota() < -1) {
      return Invalid(base + ".cpu_quota", absl::StrCat(res_.cpu_quota(), " is negative"));
    }
    if (res_.cpu_quota() != 0) cpu["quota"] = res_.cpu_quota();
    if (res_.cpu_period() < 0) {
      return Invalid(base + ".cpu_period", absl::StrCat(res_.cpu_period(), " is negative"));
    }
    if (res_.cpu_period() > 0) cpu["period"] = res_.cpu_period();
    for (const auto& [key, list, name] : {std::tuple{"cpus", &res_.cpuset_cpus(), "cpuset_cpus"},
                                          std::tuple{"mems", &res_.cpuset_mems(), "cpuset_mems"}}) {
      if (list->empty()) continue;
      std::string field = absl::StrCat(base, ".", name);
      RETURN_IF_ERROR(NoNul(field, *list));
      absl::Status valid = cgroups::ValidateCpuList(*list, name);
      if (!valid.ok()) return Invalid(field, valid.message());
      cpu[key] = *list;
    }
    if (!cpu.empty()) r["cpu"] = std::move(cpu);

    json memory = json::object();
    if (res_.memory_limit_in_bytes() < 0) {
      return Invalid(base + ".memory_limit_in_bytes",
                     absl::StrCat(res_.memory_limit_in_bytes(), " is negative"));
    }
    if (res_.memory_limit_in_bytes() > 0) memory["limit"] = res_.memory_limit_in_bytes();
    if (res_.memory_swap_limit_in_bytes() < -1) {
      return Invalid(base + ".memory_swap_limit_in_bytes",
                     absl::StrCat(res_.memory_swap_limit_in_bytes(), " is negative"));
    }
    // Only when asked: a swap limit on a host without swap accounting is an error at create.
    if (res_.memory_swap_limit_in_bytes() != 0) memory["swap"] = res_.memory_swap_limit_in_bytes();
    if (!memory.empty()) r["memory"] = std::move(memory);

    json hugepages = json::array();
    std::set<std::string> sizes;
    for (int i = 0; i < res_.hugepage_limits_size(); ++i) {
      const v1::HugepageLimit& h = res_.hugepage_limits(i);
      std::string field = absl::StrCat(base, ".hugepage_limits[", i, "].page_size");
      const std::string& size = h.page_size();
      size_t digits = 0;
      while (digits < size.size() &&
             absl::ascii_isdigit(static_cast<unsigned char>(size[digits]))) {
        ++digits;
      }
      bool ok = digits > 0 && digits < size.size() && size.size() <= 16;
      for (size_t k = digits; k < size.size(); ++k) {
        if (!absl::ascii_isalpha(static_cast<unsigned char>(size[k]))) ok = false;
      }
      if (!ok) return Invalid(field, absl::StrCat(Quote(size), " is not a page size like 2MB"));
      if (!sizes.insert(size).second) {
        return Invalid(field, absl::StrCat("duplicate page size ", Quote(size)));
      }
      hugepages.push_back(json{{"pageSize", size}, {"limit", h.limit()}});
    }
    if (!hugepages.empty()) r["hugepageLimits"] = std::move(hugepages);

    if (!res_.unified().empty()) {
      if (!in_.cgroup_v2) {
        return Invalid(base + ".unified", "needs the unified cgroup hierarchy (cgroup v2)");
      }
      json unified = json::object();
      for (const auto& [key, value] : res_.unified()) {
        std::string field = absl::StrCat(base, ".unified[", Quote(key), "]");
        RETURN_IF_ERROR(NoNul(field, key));
        RETURN_IF_ERROR(NoNul(field, value));
        absl::Status valid = cgroups::ValidateUnifiedKey(key);
        if (!valid.ok()) return Invalid(field, valid.message());
        unified[key] = value;
      }
      r["unified"] = std::move(unified);
    }

    // The device cgroup: deny all, then containerd's defaults (mknod of anything; the standard
    // nodes, ptys, tun) or, privileged, everything. A privileged container also gets every
    // device node of the host's /dev, as with containerd (its devices list; the request's
    // devices come after and win for the same path).
    json rules = json::array();
    rules.push_back(json{{"allow", false}, {"access", "rwm"}});
    if (privileged_) {
      rules.push_back(json{{"allow", true}, {"access", "rwm"}});
      ASSIGN_OR_RETURN(std::vector<json> host, HostDevices(in_.host_dev));
      for (json& d : host) devices->push_back(std::move(d));
    } else {
      auto allow = [&](const char* type, int64_t major, int64_t minor, const char* access) {
        json rule = {{"allow", true}, {"type", type}, {"access", access}};
        if (major >= 0) rule["major"] = major;
        if (minor >= 0) rule["minor"] = minor;
        rules.push_back(std::move(rule));
      };
      allow("c", -1, -1, "m");
      allow("b", -1, -1, "m");
      for (auto [major, minor] : {std::pair{1, 3},
                                  {1, 8},
                                  {1, 7},
                                  {5, 0},
                                  {1, 5},
                                  {1, 9},
                                  {5, 1},
                                  {136, -1},
                                  {5, 2},
                                  {10, 200}}) {
        allow("c", major, minor, "rwm");
      }
    }
    for (int i = 0; i < c_.devices_size(); ++i) {
      const v1::Device& d = c_.devices(i);
      std::string field = absl::StrCat("devices[", i, "]");
      std::string host_field = absl::StrCat(field, ".host_path");
      RETURN_IF_ERROR(AbsolutePath(host_field, d.host_path()));
      std::string path = d.container_path().empty() ? d.host_path() : d.container_path();
      RETURN_IF_ERROR(AbsolutePath(absl::StrCat(field, ".container_path"), path));
      std::string access = d.permissions().empty() ? "rwm" : d.permissions();
      for (char ch : access) {
        if (ch != 'r' && ch != 'w' && ch != 'm') {
          return Invalid(absl::StrCat(field, ".permissions"),
                         absl::StrCat(Quote(access), " is not made of r, w and m"));
        }
      }
      struct stat st {};
      if (::stat(d.host_path().c_str(), &st) != 0) {
        int err = errno;
        return Invalid(host_field, absl::StrCat(Quote(d.host_path()), ": ", ErrnoString(err)));
      }
      if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
        return Invalid(host_field, absl::StrCat(Quote(d.host_path()), " is not a device"));
      }
      const char* type = S_ISBLK(st.st_mode) ? "b" : "c";
      int64_t major = ::major(st.st_rdev), minor = ::minor(st.st_rdev);
      // A host device of the same path (privileged) gives way to the request's.
      const std::string clean = CleanPath(path);
      for (auto it = devices->begin(); it != devices->end();) {
        it = (*it)["path"] == clean ? devices->erase(it) : it + 1;
      }
      devices->push_back(json{{"path", clean},
                              {"type", type},
                              {"major", major},
                              {"minor", minor},
                              {"fileMode", st.st_mode & 07777},
                              {"uid", st.st_uid},
                              {"gid", st.st_gid}});
      rules.push_back(json{
          {"allow", true}, {"type", type}, {"major", major}, {"minor", minor}, {"access", access}});
    }
    r["devices"] = std::move(rules);
    return r;
  }

  // What the image has at `dest` (a directory, found inside the rootfs: its symlinks cannot
  // lead out) copied into the volume's directory `dir`, with the directory's own owner and
  // mode. Nothing when the image has nothing there.
  absl::Status CopyImageContent(const std::string& dest, const std::string& dir) {
    if (in_.rootfs.empty()) return absl::OkStatus();
    UniqueFd root(::open(in_.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return LastErrnoError(absl::StrCat("open ", in_.rootfs));
    ASSIGN_OR_RETURN(std::optional<UniqueFd> src,
                     OpenInRootfs(root.get(), in_.rootfs, dest.substr(1), O_RDONLY | O_DIRECTORY));
    if (!src) return absl::OkStatus();
    UniqueFd out(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!out) return LastErrnoError(absl::StrCat("open ", dir));
    RETURN_IF_ERROR(CopyTreeContents(src->get(), out.get(), in_.rootfs + dest));
    return CopyDirMetadata(src->get(), out.get(), dir);
  }

  // ---- seccomp -------------------------------------------------------------------------------

  absl::StatusOr<json> LoadProfile(absl::string_view field, const std::string& ref) {
    RETURN_IF_ERROR(NoNul(field, ref));
    if (ref.empty()) return Invalid(field, "a Localhost profile needs a path");
    std::string path = ref;
    if (ref[0] != '/') {
      for (absl::string_view part : absl::StrSplit(ref, '/')) {
        if (part == "..") {
          return Invalid(field, absl::StrCat(Quote(ref), " climbs out of the profile root"));
        }
      }
      path = absl::StrCat(in_.seccomp_profile_root, "/", ref);
    }
    absl::StatusOr<std::string> text = ReadFile(path, kMaxSeccompFile);
    if (!text.ok()) {
      return Invalid(field,
                     absl::StrCat("seccomp profile ", Quote(path), ": ", text.status().message()));
    }
    absl::StatusOr<json> profile = SeccompFromDockerProfile(*text, effective_caps_);
    if (!profile.ok()) {
      return Invalid(
          field, absl::StrCat("seccomp profile ", Quote(path), ": ", profile.status().message()));
    }
    return *std::move(profile);
  }

  absl::StatusOr<std::optional<json>> Seccomp() {
    if (privileged_) return std::optional<json>();  // privileged ignores seccomp, as containerd
    const std::string base = "linux.security_context";
    if (sc_.has_seccomp()) {
      const v1::SecurityProfile& p = sc_.seccomp();
      switch (p.profile_type()) {
        case v1::SecurityProfile::RuntimeDefault:
          return std::optional<json>(DefaultSeccompProfile(effective_caps_));
        case v1::SecurityProfile::Unconfined: return std::optional<json>();
        case v1::SecurityProfile::Localhost: {
          ASSIGN_OR_RETURN(json profile,
                           LoadProfile(base + ".seccomp.localhost_ref", p.localhost_ref()));
          return std::optional<json>(std::move(profile));
        }
        default:
          return Invalid(base + ".seccomp.profile_type",
                         absl::StrCat("unknown profile type ", p.profile_type()));
      }
    }
    // The deprecated string form; the kubelet always sends one of the two, "" being unconfined.
    const std::string& s = SeccompProfilePath(sc_);
    std::string field = base + ".seccomp_profile_path";
    if (s.empty() || s == "unconfined") return std::optional<json>();
    if (s == "runtime/default" || s == "docker/default") {
      return std::optional<json>(DefaultSeccompProfile(effective_caps_));
    }
    absl::string_view rest = s;
    if (absl::ConsumePrefix(&rest, "localhost/")) {
      ASSIGN_OR_RETURN(json profile, LoadProfile(field, std::string(rest)));
      return std::optional<json>(std::move(profile));
    }
    return Invalid(field, absl::StrCat(Quote(s),
                                       " is not unconfined, runtime/default, docker/default or "
                                       "localhost/<path>"));
  }

  // ---- annotations and the stop signal -------------------------------------------------------

  absl::Status BuildAnnotations() {
    json a = json::object();
    for (const auto& [key, value] : c_.annotations()) a[key] = value;
    a["io.kubernetes.cri.container-type"] = "container";
    a["io.kubernetes.cri.container-name"] = c_.metadata().name();
    a["io.kubernetes.cri.sandbox-id"] = in_.sandbox_id;
    a["io.kubernetes.cri.image-name"] = in_.image_name;
    a["io.kubernetes.cri.sandbox-name"] = sb_.metadata().name();
    a["io.kubernetes.cri.sandbox-namespace"] = sb_.metadata().namespace_();
    a["io.kubernetes.cri.sandbox-uid"] = sb_.metadata().uid();
    spec_["annotations"] = std::move(a);
    return absl::OkStatus();
  }

  absl::Status BuildStopSignal() {
    out_.stop_signal = "SIGTERM";
    int sig = static_cast<int>(c_.stop_signal());
    if (sig != v1::RUNTIME_DEFAULT) {
      if (!v1::Signal_IsValid(sig)) {
        return Invalid("stop_signal", absl::StrCat("unknown signal ", sig));
      }
      out_.stop_signal = CriSignalName(v1::Signal_Name(c_.stop_signal()));
      return absl::OkStatus();
    }
    const std::string& s = in_.image.stop_signal;
    if (s.empty()) return absl::OkStatus();
    if (s.find('\0') != std::string::npos || !runtime::ParseSignal(s).ok()) {
      Warn(absl::StrCat("image config: config.StopSignal ", Quote(s),
                        " is not a signal; SIGTERM is used"));
      return absl::OkStatus();
    }
    out_.stop_signal = s;
    return absl::OkStatus();
  }

  const SpecInputs& in_;
  const v1::ContainerConfig& c_;
  const v1::PodSandboxConfig& sb_;
  const v1::LinuxContainerSecurityContext& sc_;
  const v1::LinuxContainerResources& res_;
  const bool privileged_;

  json spec_ = json::object();
  BuiltSpec out_;
  std::vector<std::string> effective_caps_;
  std::string rootfs_propagation_;
  bool etc_loaded_ = false;
  std::vector<PasswdEntry> passwd_;
  std::vector<GroupEntry> groups_;
};

}  // namespace

absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view config_json) {
  constexpr size_t kMaxConfig = 8 << 20;
  if (config_json.size() > kMaxConfig) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image config: ", config_json.size(), " bytes, more than the ", kMaxConfig, " allowed"));
  }
  if (!JsonNestingWithin(config_json, 64)) {
    return absl::InvalidArgumentError("image config: JSON nested too deeply");
  }
  json doc = json::parse(config_json.begin(), config_json.end(), nullptr,
                         /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("image config: not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("image config: not a JSON object");
  ImageConfig out;
  auto it = doc.find("config");
  if (it == doc.end() || it->is_null()) return out;
  if (!it->is_object()) return Invalid("image config: config", "not an object");
  const json& cfg = *it;
  RETURN_IF_ERROR(ImageStrings(cfg, "Entrypoint", &out.entrypoint));
  RETURN_IF_ERROR(ImageStrings(cfg, "Cmd", &out.cmd));
  RETURN_IF_ERROR(ImageStrings(cfg, "Env", &out.env));
  RETURN_IF_ERROR(ImageString(cfg, "WorkingDir", &out.working_dir));
  RETURN_IF_ERROR(ImageString(cfg, "User", &out.user));
  RETURN_IF_ERROR(ImageString(cfg, "StopSignal", &out.stop_signal));
  auto volumes = cfg.find("Volumes");
  if (volumes != cfg.end() && !volumes->is_null()) {
    if (!volumes->is_object()) return Invalid("image config: config.Volumes", "not an object");
    for (const auto& [key, value] : volumes->items()) out.volumes.push_back(key);
    std::sort(out.volumes.begin(), out.volumes.end());
  }
  return out;
}

absl::StatusOr<BuiltSpec> BuildSpec(const SpecInputs& in) {
  if (in.container == nullptr) return absl::InvalidArgumentError("no container config");
  if (in.sandbox == nullptr) return absl::InvalidArgumentError("no pod sandbox config");
  Builder builder(in);
  return builder.Build();
}

}  // namespace berth::cri

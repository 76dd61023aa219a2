#include "runtime/oci_cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"
#include "base/version.h"
#include "cgroups/mode.h"
#include "runtime/console.h"
#include "runtime/state.h"

namespace berth::runtime::cli {

namespace {

// logfmt quoting, as logrus writes it.
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

absl::StatusOr<User> ParseUser(const std::string& text) {
  User user;
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  if (parts.empty() || parts.size() > 2 || !absl::SimpleAtoi(parts[0], &user.uid) ||
      (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &user.gid))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--user ", Quote(text), ": expected UID[:GID] as numbers"));
  }
  return user;
}

}  // namespace

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

Cli::Cli(Globals globals)
    : globals_(std::move(globals)),
      runtime_(globals_.root, [this](absl::string_view w) { Log("warning", w); }) {}

void Cli::Log(absl::string_view level, absl::string_view message) {
  if (level == "debug" && !globals_.debug) return;
  std::string time = NowRfc3339Nano();
  if (level != "debug") std::cerr << "berth-oci: " << message << "\n";
  if (globals_.log.empty()) return;
  std::string line;
  if (globals_.log_format == "json") {
    line = nlohmann::json{
        {"level", level == "warning" ? "warning" : level},
        {"msg", std::string(message)},
        {"time",
         time}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = absl::StrCat("time=", Quote(time), " level=", level, " msg=", Quote(message));
  }
  line.push_back('\n');
  int fd = ::open(globals_.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

int Cli::Fail(const absl::Status& status) {
  Log("error", status.message());
  return 1;
}

absl::Status Cli::CheckGlobals() {
  if (globals_.systemd_cgroup) {
    return absl::InvalidArgumentError(
        "--systemd-cgroup is not supported: berth-oci manages cgroups through cgroupfs");
  }
  if (globals_.log_format != "text" && globals_.log_format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format ", Quote(globals_.log_format), ": expected text or json"));
  }
  return absl::OkStatus();
}

int Cli::Create(const std::string& id, const CreateOptions& options) {
  if (absl::Status st = CheckGlobals(); !st.ok()) return Fail(st);
  absl::StatusOr<pid_t> pid = runtime_.Create(id, options);
  if (!pid.ok()) return Fail(pid.status());
  Log("debug", absl::StrCat("created ", id, " with init pid ", *pid));
  return 0;
}

int Cli::Start(const std::string& id) {
  if (absl::Status st = runtime_.Start(id); !st.ok()) return Fail(st);
  return 0;
}

int Cli::Run(const std::string& id, const RunFlags& flags) {
  if (absl::Status st = CheckGlobals(); !st.ok()) return Fail(st);
  CreateOptions options = flags.create;
  // A foreground container with a terminal and no console socket gets ours, as with runc.
  std::unique_ptr<ConsoleRelay> relay;
  if (!flags.detach && options.console_socket.empty()) {
    absl::StatusOr<std::string> text = ReadFile(
        absl::StrCat(options.bundle.empty() ? "." : options.bundle, "/config.json"), 16 << 20);
    absl::StatusOr<runtime::Spec> spec =
        text.ok() ? ParseSpec(*text) : absl::StatusOr<runtime::Spec>(text.status());
    if (spec.ok() && spec->process && spec->process->terminal) {
      absl::StatusOr<std::unique_ptr<ConsoleRelay>> listening = ConsoleRelay::Listen(globals_.root);
      if (!listening.ok()) return Fail(listening.status());
      relay = *std::move(listening);
      options.console_socket = relay->path();
    }
  }
  absl::StatusOr<pid_t> pid = runtime_.Create(id, options);
  if (!pid.ok()) return Fail(pid.status());
  if (relay) {
    if (absl::Status st = relay->Accept(); !st.ok()) {
      (void)runtime_.Delete(id, true);
      return Fail(st);
    }
  }
  if (absl::Status st = runtime_.Start(id); !st.ok()) {
    (void)runtime_.Delete(id, true);
    return Fail(st);
  }
  if (flags.detach) return 0;
  absl::StatusOr<int> status = relay ? relay->RelayUntilExit(*pid) : runtime_.WaitInit(*pid, true);
  if (!flags.keep) {
    if (absl::Status st = runtime_.Delete(id, true); !st.ok()) Log("warning", st.message());
  }
  if (!status.ok()) return Fail(status.status());
  return ExitCode(*status);
}

int Cli::State(const std::string& id) {
  absl::StatusOr<ContainerInfo> info = runtime_.State(id);
  if (!info.ok()) return Fail(info.status());
  std::cout << StateJson(info->state, info->status, true) << "\n";
  return 0;
}

int Cli::Kill(const std::string& id, const std::string& signal, bool all) {
  absl::StatusOr<int> sig = ParseSignal(signal);
  if (!sig.ok()) return Fail(sig.status());
  if (absl::Status st = runtime_.Kill(id, *sig, all); !st.ok()) return Fail(st);
  return 0;
}

int Cli::Delete(const std::string& id, bool force) {
  absl::Status st = runtime_.Delete(id, force);
  if (st.ok() || (force && absl::IsNotFound(st))) return 0;
  return Fail(st);
}

int Cli::Exec(const std::string& id, const ExecFlags& flags) {
  absl::StatusOr<Process> process;
  if (!flags.process_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(flags.process_file, 4 << 20);
    if (!text.ok()) return Fail(text.status());
    process = ParseProcess(*text);
    if (!process.ok()) return Fail(Annotate(process.status(), flags.process_file));
  } else {
    // runc's way: the container's own process, with the command and the flags on top.
    absl::StatusOr<runtime::Spec> spec = runtime_.Config(id);
    if (!spec.ok()) return Fail(spec.status());
    if (flags.args.empty()) {
      return Fail(absl::InvalidArgumentError("exec: a command (or --process) is required"));
    }
    process = spec->process.value_or(Process{});
    process->args = flags.args;
    process->terminal = flags.tty;
    process->console_size.reset();
    if (!flags.cwd.empty()) process->cwd = flags.cwd;
    for (const std::string& e : flags.env) process->env.push_back(e);
    if (!flags.user.empty()) {
      absl::StatusOr<User> user = ParseUser(flags.user);
      if (!user.ok()) return Fail(user.status());
      process->user.uid = user->uid;
      process->user.gid = user->gid;
    }
    if (!flags.additional_gids.empty()) process->user.additional_gids = flags.additional_gids;
    for (const std::string& name : flags.caps) {
      absl::StatusOr<int> cap = CapabilityFromName(name);
      if (!cap.ok()) return Fail(cap.status());
      if (!process->capabilities) process->capabilities = Capabilities{};
      for (auto* set : {&process->capabilities->bounding, &process->capabilities->effective,
                        &process->capabilities->permitted}) {
        set->push_back(*cap);
      }
    }
    if (flags.no_new_privs) process->no_new_privileges = true;
  }
  ExecOptions options{.pid_file = flags.pid_file,
                      .console_socket = flags.console_socket,
                      .detach = flags.detach,
                      .preserve_fds = flags.preserve_fds};
  // A foreground exec with a terminal and no console socket gets ours, as with runc.
  std::unique_ptr<ConsoleRelay> relay;
  if (process->terminal && options.console_socket.empty() && !options.detach) {
    absl::StatusOr<std::unique_ptr<ConsoleRelay>> listening = ConsoleRelay::Listen(globals_.root);
    if (!listening.ok()) return Fail(listening.status());
    relay = *std::move(listening);
    options.console_socket = relay->path();
    options.detach = true;  // returns the pid; the relay waits for it
  }
  absl::StatusOr<int> result = runtime_.Exec(id, *process, options);
  if (!result.ok()) return Fail(result.status());
  if (relay) {
    if (absl::Status st = relay->Accept(); !st.ok()) return Fail(st);
    absl::StatusOr<int> status = relay->RelayUntilExit(static_cast<pid_t>(*result));
    if (!status.ok()) return Fail(status.status());
    return ExitCode(*status);
  }
  return flags.detach ? 0 : ExitCode(*result);
}

int Cli::List(const std::string& format, bool quiet) {
  absl::StatusOr<std::vector<ContainerInfo>> all = runtime_.List();
  if (!all.ok()) return Fail(all.status());
  if (quiet) {
    for (const ContainerInfo& c : *all) std::cout << c.state.id << "\n";
    return 0;
  }
  if (format == "json") {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const ContainerInfo& c : *all) {
      out.push_back(nlohmann::ordered_json::parse(StateJson(c.state, c.status, false)));
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("%-12s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
              "OWNER");
  for (const ContainerInfo& c : *all) {
    std::printf("%-12s %-8d %-10s %-40s %-30s %s\n", c.state.id.c_str(),
                c.status == runtime::Status::kStopped ? 0 : c.state.pid,
                std::string(StatusName(c.status)).c_str(), c.state.bundle.c_str(),
                c.state.created.c_str(), c.state.owner.empty() ? "root" : c.state.owner.c_str());
  }
  return 0;
}

int Cli::Ps(const std::string& id, const std::string& format) {
  absl::StatusOr<std::vector<pid_t>> pids = runtime_.Processes(id);
  if (!pids.ok()) return Fail(pids.status());
  if (format == "json") {
    std::cout << nlohmann::json(*pids).dump() << "\n";
    return 0;
  }
  std::printf("%-8s %s\n", "PID", "CMD");
  for (pid_t pid : *pids) {
    absl::StatusOr<std::string> cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"), 4096);
    std::string cmd = cmdline.ok() ? *cmdline : "";
    for (char& c : cmd) {
      if (c == '\0') c = ' ';
    }
    std::printf("%-8d %s\n", pid, cmd.c_str());
  }
  return 0;
}

int Cli::Pause(const std::string& id) {
  if (absl::Status st = runtime_.Pause(id); !st.ok()) return Fail(st);
  return 0;
}

int Cli::Resume(const std::string& id) {
  if (absl::Status st = runtime_.Resume(id); !st.ok()) return Fail(st);
  return 0;
}

int Cli::Spec(const std::string& bundle, bool rootless) {
  std::string path = absl::StrCat(bundle.empty() ? "." : bundle, "/config.json");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    return Fail(absl::AlreadyExistsError(absl::StrCat("File ", path, " exists. Remove it first")));
  }
  std::string json = DefaultSpecJson(rootless, ::getuid(), ::getgid());
  if (absl::Status s = WriteFileAtomic(path, json + "\n", 0644, false); !s.ok()) return Fail(s);
  return 0;
}

int Cli::Features() {
  nlohmann::ordered_json caps = KnownCapabilityNames();
  absl::StatusOr<cgroups::Mode> mode = cgroups::DetectMode();
  nlohmann::ordered_json f = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.1.0"},
      {"hooks",
       {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions",
       {"async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "ratime",
        "rbind",
        "rdev",
        "rdiratime",
        "relatime",
        "remount",
        "rexec",
        "rnoatime",
        "rnodev",
        "rnodiratime",
        "rnoexec",
        "rnorelatime",
        "rnostrictatime",
        "rnosuid",
        "ro",
        "rprivate",
        "rrelatime",
        "rro",
        "rrw",
        "rshared",
        "rslave",
        "rstrictatime",
        "rsuid",
        "runbindable",
        "rw",
        "shared",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "tmpcopyup",
        "unbindable"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
        {"capabilities", caps},
        {"cgroup",
         {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}, {"rdma", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions",
           {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}},
          {"operators",
           {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
          {"archs",
           {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64"}},
          {"supportedFlags",
           {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_TSYNC"}}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}},
        {"intelRdt", {{"enabled", false}}}}},
      {"annotations",
       {{"berth.cgroup-mode", mode.ok() ? std::string(cgroups::ModeName(*mode)) : "unknown"},
        {"berth.version", kVersion}}}};
  std::cout << f.dump(4) << "\n";
  return 0;
}

int Cli::Version() {
  std::printf("berth-oci version %s\ncommit: %s\nspec: 1.1.0\n", kVersion, kGitCommit);
  return 0;
}

}  // namespace berth::runtime::cli

// berth-oci: a runc-compatible OCI runtime CLI over berth's runtime library. Flag parsing only.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "runtime/oci_cli.h"

namespace cli = berth::runtime::cli;

namespace {

int Main(int argc, char** argv) {
  CLI::App app{"berth-oci: run OCI containers (runc-compatible)"};
  app.fallthrough();
  app.require_subcommand(0, 1);
  cli::Globals g;
  bool version = false;
  std::string rootless;
  app.add_flag("-v,--version", version, "print the version");
  app.add_option("--root", g.root, "directory for the containers' state")->capture_default_str();
  app.add_option("--log", g.log, "also log to this file");
  app.add_option("--log-format", g.log_format, "text or json")->capture_default_str();
  app.add_flag("--debug", g.debug, "log debug messages");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup, "use systemd for cgroups (not supported)");
  app.add_option("--rootless", rootless, "accepted for runc compatibility (true|false|auto)");
  app.add_option("--criu", rootless, "accepted for runc compatibility (no checkpointing)");

  std::string id;
  berth::runtime::CreateOptions create;
  bool no_new_keyring = false;
  auto add_create_flags = [&](CLI::App* cmd) {
    cmd->add_option("id", id, "container id")->required();
    cmd->add_option("-b,--bundle", create.bundle, "bundle directory (default: current)");
    cmd->add_option("--pid-file", create.pid_file, "write the init's pid here");
    cmd->add_option("--console-socket", create.console_socket,
                    "unix socket that receives the terminal's master fd");
    cmd->add_flag("--no-pivot", create.no_pivot, "move the root instead of pivot_root");
    cmd->add_flag("--no-new-keyring", no_new_keyring,
                  "accepted: berth-oci never creates a session keyring");
    cmd->add_option("--preserve-fds", create.preserve_fds, "pass fds 3..3+N-1 to the container");
  };
  auto* create_cmd = app.add_subcommand("create", "create a container (it waits for start)");
  add_create_flags(create_cmd);

  cli::RunFlags run_flags;
  auto* run_cmd = app.add_subcommand("run", "create, start and wait for a container");
  add_create_flags(run_cmd);
  run_cmd->add_flag("-d,--detach", run_flags.detach, "do not wait for the container");
  run_cmd->add_flag("--keep", run_flags.keep, "do not delete the container after it exits");

  auto* start_cmd = app.add_subcommand("start", "start a created container");
  start_cmd->add_option("id", id, "container id")->required();
  auto* state_cmd = app.add_subcommand("state", "print a container's state (JSON)");
  state_cmd->add_option("id", id, "container id")->required();

  std::string signal = "SIGTERM";
  bool all = false;
  auto* kill_cmd = app.add_subcommand("kill", "send a signal to a container");
  kill_cmd->add_option("id", id, "container id")->required();
  kill_cmd->add_option("signal", signal, "signal name or number")->capture_default_str();
  kill_cmd->add_flag("-a,--all", all, "signal every process of the container");

  bool force = false;
  auto* delete_cmd = app.add_subcommand("delete", "delete a container");
  delete_cmd->add_option("id", id, "container id")->required();
  delete_cmd->add_flag("-f,--force", force, "kill it first if it is running");

  cli::ExecFlags exec;
  std::vector<std::string> exec_args;
  auto* exec_cmd = app.add_subcommand("exec", "run a process in a running container");
  exec_cmd->add_option("-p,--process", exec.process_file, "process.json to run");
  exec_cmd->add_flag("-t,--tty", exec.tty, "allocate a terminal");
  exec_cmd->add_flag("-d,--detach", exec.detach, "do not wait for the process");
  exec_cmd->add_option("--pid-file", exec.pid_file, "write the process's pid here");
  exec_cmd->add_option("--console-socket", exec.console_socket,
                       "unix socket that receives the terminal's master fd");
  exec_cmd->add_option("--cwd", exec.cwd, "working directory");
  exec_cmd->add_option("-e,--env", exec.env, "add KEY=VALUE to the environment");
  exec_cmd->add_option("-u,--user", exec.user, "UID[:GID]");
  exec_cmd->add_option("-g,--additional-gids", exec.additional_gids, "supplementary groups");
  exec_cmd->add_option("-c,--cap", exec.caps, "add a capability");
  exec_cmd->add_flag("--no-new-privs", exec.no_new_privs, "set no_new_privs");
  exec_cmd->add_option("--preserve-fds", exec.preserve_fds, "pass fds 3..3+N-1");
  // The id and everything after it (the command, options included: "sh -c ...") are left
  // unparsed.
  exec_cmd->prefix_command();
  exec_cmd->fallthrough(false);

  std::string format = "table";
  bool quiet = false;
  auto* list_cmd = app.add_subcommand("list", "list containers");
  list_cmd->alias("ls");
  list_cmd->add_option("-f,--format", format, "table or json")->capture_default_str();
  list_cmd->add_flag("-q,--quiet", quiet, "ids only");
  auto* ps_cmd = app.add_subcommand("ps", "list a container's processes");
  ps_cmd->add_option("id", id, "container id")->required();
  ps_cmd->add_option("-f,--format", format, "table or json")->capture_default_str();
  auto* pause_cmd = app.add_subcommand("pause", "freeze a container");
  pause_cmd->add_option("id", id, "container id")->required();
  auto* resume_cmd = app.add_subcommand("resume", "thaw a container");
  resume_cmd->add_option("id", id, "container id")->required();

  std::string spec_bundle;
  bool spec_rootless = false;
  auto* spec_cmd = app.add_subcommand("spec", "write a default config.json");
  spec_cmd->add_option("-b,--bundle", spec_bundle, "bundle directory (default: current)");
  spec_cmd->add_flag("--rootless", spec_rootless, "for a container run by an unprivileged user");
  auto* features_cmd = app.add_subcommand("features", "print what this runtime supports (JSON)");

  CLI11_PARSE(app, argc, argv);
  if (version) return cli::Cli::Version();
  cli::Cli c(g);
  if (*create_cmd) return c.Create(id, create);
  if (*run_cmd) {
    run_flags.create = create;
    return c.Run(id, run_flags);
  }
  if (*start_cmd) return c.Start(id);
  if (*state_cmd) return c.State(id);
  if (*kill_cmd) return c.Kill(id, signal, all);
  if (*delete_cmd) return c.Delete(id, force);
  if (*exec_cmd) {
    std::vector<std::string> rest = exec_cmd->remaining();
    if (rest.empty()) {
      std::cerr << "berth-oci exec: a container id is required\n";
      return 2;
    }
    exec.args.assign(rest.begin() + 1, rest.end());
    return c.Exec(rest.front(), exec);
  }
  if (*list_cmd) return c.List(format, quiet);
  if (*ps_cmd) return c.Ps(id, format);
  if (*pause_cmd) return c.Pause(id);
  if (*resume_cmd) return c.Resume(id);
  if (*spec_cmd) return c.Spec(spec_bundle, spec_rootless);
  if (*features_cmd) return c.Features();
  std::cout << app.help();
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "berth-oci: internal error: " << e.what() << "\n";
    return 70;
  }
}

// berthctl: the CLI for people on a node; talks CRI to any runtime. Flag parsing only.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "cri/client/commands.h"
#include "cri/client/endpoint.h"

namespace client = berth::cri::client;

namespace {

// For `berthctl [GLOBAL OPTIONS] exec [OPTIONS] CONTAINER-ID [--] COMMAND [ARG...]`: moves
// COMMAND and its arguments (and the "--") to `*cmd` and returns how many of argv's entries are
// left for the flag parser; argc for any other command.
int SplitExecCommand(int argc, char** argv, std::vector<std::string>* cmd) {
  auto is_option = [](const std::string& a) { return a.size() > 1 && a[0] == '-' && a != "--"; };
  int i = 1;
  // Global options before the subcommand; these take a value as the next argument.
  for (; i < argc && is_option(argv[i]); ++i) {
    const std::string a = argv[i];
    if (a == "-r" || a == "--runtime-endpoint" || a == "--config" || a == "-t" ||
        a == "--timeout" || a == "-o" || a == "--output") {
      ++i;
    }
  }
  if (i >= argc || std::string(argv[i]) != "exec") return argc;
  for (++i; i < argc && is_option(argv[i]); ++i) {
    // exec's options with a separate value
    const std::string a = argv[i];
    if (a == "--timeout" || a == "--transport" || a == "--stream-ca") ++i;
  }
  if (i >= argc || std::string(argv[i]) == "--") return argc;  // no id: the parser says so
  int first = i + 1;                                           // after CONTAINER-ID
  if (first < argc && std::string(argv[first]) == "--") ++first;
  for (int j = first; j < argc; ++j) cmd->emplace_back(argv[j]);
  return i + 1;
}

constexpr char kStreamCaHelp[] =
    "https streaming URLs: verify the server's certificate against this CA bundle (default: "
    "not verified, as crictl does)";

int Main(int argc, char** argv) {
  CLI::App app{"berthctl: inspect and debug any CRI runtime (berthd, containerd, CRI-O)"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand: `berthctl info -o json`
  std::string endpoint_flag, timeout_flag = "10s", output_flag = "table";
  std::string crictl_config = client::kDefaultCrictlConfig;
  app.add_option("-r,--runtime-endpoint", endpoint_flag,
                 "CRI endpoint (default: $CONTAINER_RUNTIME_ENDPOINT, then runtime-endpoint in "
                 "--config, then unix:///run/berth/berth.sock)");
  app.add_option("--config", crictl_config, "crictl-style client config file")
      ->capture_default_str();
  app.add_option("-t,--timeout", timeout_flag, "timeout for connecting and for each call")
      ->capture_default_str();
  app.add_option("-o,--output", output_flag, "output format: table, json or yaml")
      ->capture_default_str();

  auto* version = app.add_subcommand("version", "print the runtime's name and version");
  auto* info = app.add_subcommand("info", "print the runtime's status conditions and verbose info");

  client::PullFlags pull_flags;
  std::string pull_timeout_flag = "0s";
  auto* pull = app.add_subcommand("pull", "pull an image (CRI PullImage)");
  pull->add_option("IMAGE", pull_flags.image, "image reference")->required();
  pull->add_option("--creds", pull_flags.creds, "registry credentials USERNAME:PASSWORD");
  pull->add_option("--auth", pull_flags.auth, "registry credentials, base64 of USERNAME:PASSWORD");
  pull->add_option("--pull-timeout", pull_timeout_flag, "bound on the pull (0s: none)")
      ->capture_default_str();

  client::ImagesFlags images_flags;
  auto* images = app.add_subcommand("images", "list images (CRI ListImages)");
  images->alias("image");
  images->add_option("IMAGE", images_flags.image, "only this image");
  images->add_flag("-q,--quiet", images_flags.quiet, "print image IDs only");
  images->add_flag("--digests", images_flags.digests, "show digests");

  std::vector<std::string> inspect_args;
  auto* inspecti =
      app.add_subcommand("inspecti", "print images' status (CRI ImageStatus, verbose)");
  inspecti->add_option("IMAGE", inspect_args, "image IDs or references")->required();

  std::vector<std::string> rmi_args;
  auto* rmi = app.add_subcommand("rmi", "remove images (CRI RemoveImage)");
  rmi->add_option("IMAGE", rmi_args, "image IDs or references")->required();

  auto* imagefsinfo = app.add_subcommand("imagefsinfo", "print the image filesystem's usage");

  // `berthctl image import`: berth only (the admin service). `berthctl image` alone lists.
  client::ImportFlags import_flags;
  std::string import_timeout_flag = "0s";
  auto* import_cmd = images->add_subcommand(
      "import", "import an OCI image layout directory or OCI archive (berthd only)");
  import_cmd->add_option("PATH", import_flags.path, "OCI-LAYOUT-DIR or OCI-ARCHIVE.tar")
      ->required();
  import_cmd->add_option("--tag", import_flags.tags, "tag the image with this reference");
  import_cmd->add_option("--import-timeout", import_timeout_flag, "bound on the import (0s: none)")
      ->capture_default_str();

  // ---- pods and containers (crictl's commands and flags) ----
  client::RunPodFlags runp_flags;
  auto* runp = app.add_subcommand("runp", "run a pod sandbox (CRI RunPodSandbox); prints its id");
  runp->add_option("POD-CONFIG", runp_flags.pod_config,
                   "PodSandboxConfig as JSON (protobuf JSON mapping, as crictl's pod-config.json; "
                   "YAML is not supported)")
      ->required();
  runp->add_option("--runtime", runp_flags.runtime_handler,
                   "runtime handler (default: the "
                   "runtime's default)");

  std::vector<std::string> stopp_ids;
  auto* stopp = app.add_subcommand("stopp", "stop pod sandboxes (CRI StopPodSandbox)");
  stopp->add_option("POD-ID", stopp_ids, "pod ids")->required();

  client::RemoveFlags rmp_flags;
  auto* rmp = app.add_subcommand("rmp", "remove pod sandboxes (CRI RemovePodSandbox)");
  rmp->add_option("POD-ID", rmp_flags.ids, "pod ids");
  rmp->add_flag("-f,--force", rmp_flags.force, "stop the pods first");
  rmp->add_flag("-a,--all", rmp_flags.all, "remove every pod");

  client::PodsFlags pods_flags;
  auto* pods = app.add_subcommand("pods", "list pod sandboxes (CRI ListPodSandbox)");
  pods->add_option("--id", pods_flags.id, "only the pod with this id (or prefix)");
  pods->add_option("-s,--state", pods_flags.state, "only pods in this state: ready or notready");
  pods->add_option("--label", pods_flags.labels, "only pods with this label KEY=VALUE");
  pods->add_option("--name", pods_flags.name, "only pods whose name matches this regexp");
  pods->add_option("--namespace", pods_flags.namespace_,
                   "only pods whose namespace matches this regexp");
  pods->add_flag("-q,--quiet", pods_flags.quiet, "print pod ids only");
  pods->add_flag("--no-trunc", pods_flags.no_trunc, "do not truncate ids");
  pods->add_flag("-l,--latest", pods_flags.latest, "only the newest pod");
  pods->add_option("-n,--last", pods_flags.last, "only the newest N pods");

  std::vector<std::string> inspectp_ids;
  auto* inspectp = app.add_subcommand(
      "inspectp", "print pod sandboxes' status (CRI PodSandboxStatus, verbose) as JSON");
  inspectp->add_option("POD-ID", inspectp_ids, "pod ids")->required();

  client::CreateFlags create_flags;
  auto* create = app.add_subcommand("create",
                                    "create a container in a pod (CRI CreateContainer); prints "
                                    "its id");
  create->add_option("POD-ID", create_flags.pod_id, "the pod's id")->required();
  create
      ->add_option("CONTAINER-CONFIG", create_flags.container_config,
                   "ContainerConfig as JSON (as crictl's container-config.json)")
      ->required();
  create->add_option("POD-CONFIG", create_flags.pod_config, "the pod's PodSandboxConfig as JSON")
      ->required();

  std::vector<std::string> start_ids;
  auto* start = app.add_subcommand("start", "start created containers (CRI StartContainer)");
  start->add_option("CONTAINER-ID", start_ids, "container ids")->required();

  client::StopFlags stop_flags;
  auto* stop = app.add_subcommand("stop", "stop containers (CRI StopContainer)");
  stop->add_option("CONTAINER-ID", stop_flags.ids, "container ids")->required();
  stop->add_option("-t,--timeout", stop_flags.timeout_seconds,
                   "seconds to wait after SIGTERM before SIGKILL")
      ->capture_default_str();

  client::RemoveFlags rm_flags;
  auto* rm = app.add_subcommand("rm", "remove containers (CRI RemoveContainer)");
  rm->add_option("CONTAINER-ID", rm_flags.ids, "container ids");
  rm->add_flag("-f,--force", rm_flags.force, "stop running containers first");
  rm->add_flag("-a,--all", rm_flags.all, "remove every container");

  client::RunFlags run_flags;
  auto* run = app.add_subcommand(
      "run", "run a container in a new pod (runp + create + start); prints the container's id");
  run->add_option("CONTAINER-CONFIG", run_flags.container_config, "ContainerConfig as JSON")
      ->required();
  run->add_option("POD-CONFIG", run_flags.pod_config, "PodSandboxConfig as JSON")->required();
  run->add_option("--runtime", run_flags.runtime_handler, "runtime handler for the pod");

  client::PsFlags ps_flags;
  auto* ps = app.add_subcommand("ps", "list containers (CRI ListContainers)");
  ps->add_flag("-a,--all", ps_flags.all, "all containers (default: running ones)");
  ps->add_option("--id", ps_flags.id, "only the container with this id (or prefix)");
  ps->add_option("-p,--pod", ps_flags.pod, "only containers of this pod");
  ps->add_option("-s,--state", ps_flags.state,
                 "only containers in this state: created, running, exited or unknown");
  ps->add_option("--label", ps_flags.labels, "only containers with this label KEY=VALUE");
  ps->add_option("--name", ps_flags.name, "only containers whose name matches this regexp");
  ps->add_option("--image", ps_flags.image, "only containers of this image (reference or id)");
  ps->add_flag("-q,--quiet", ps_flags.quiet, "print container ids only");
  ps->add_flag("--no-trunc", ps_flags.no_trunc, "do not truncate ids");
  ps->add_flag("-l,--latest", ps_flags.latest, "only the newest container");
  ps->add_option("-n,--last", ps_flags.last, "only the newest N containers");

  std::vector<std::string> inspect_ids;
  auto* inspect = app.add_subcommand(
      "inspect", "print containers' status (CRI ContainerStatus, verbose) as JSON");
  inspect->add_option("CONTAINER-ID", inspect_ids, "container ids")->required();

  client::LogsFlags logs_flags;
  auto* logs = app.add_subcommand(
      "logs", "print a container's logs (reads its CRI log file: run it on the node)");
  logs->add_option("CONTAINER-ID", logs_flags.container, "container id")->required();
  logs->add_flag("-f,--follow", logs_flags.follow,
                 "keep printing new records (across rotations) until the container exits");
  logs->add_option("--tail", logs_flags.tail, "only the last N records (-1: all)")
      ->capture_default_str();
  logs->add_flag("-t,--timestamps", logs_flags.timestamps, "prefix each line with its time");
  logs->add_option("--since", logs_flags.since,
                   "only records newer than a duration (5s, 2m, 3h) or an RFC 3339 time");

  client::ExecFlags exec_flags;
  bool exec_sync = false, exec_interactive = false, exec_tty = false;
  std::string exec_transport = "spdy";
  auto* exec = app.add_subcommand(
      "exec",
      "run a command in a running container (CRI Exec and the streaming server; -s: ExecSync); "
      "exits with its exit code");
  exec->add_option("CONTAINER-ID", exec_flags.container, "container id")->required();
  exec->add_flag("-s,--sync", exec_sync, "run synchronously (CRI ExecSync; output when done)");
  exec->add_option("--timeout", exec_flags.timeout_seconds,
                   "seconds before the command is killed (0: none; implies --sync)")
      ->capture_default_str();
  exec->add_flag("-i,--interactive", exec_interactive, "keep stdin open (send ours to it)");
  exec->add_flag("-t,--tty", exec_tty, "allocate a terminal (ours goes raw; size followed)");
  exec->add_option("--transport", exec_transport, "streaming transport: spdy or websocket")
      ->capture_default_str();
  exec->add_option("--stream-ca", exec_flags.stream_ca, kStreamCaHelp);
  exec->footer(
      "Usage: berthctl exec [-i] [-t] [--transport spdy|websocket] [--stream-ca FILE] [-s] "
      "[--timeout SECONDS] "
      "CONTAINER-ID [--] COMMAND [ARG...]");
  client::AttachFlags attach_flags;
  auto* attach = app.add_subcommand(
      "attach", "attach to a running container's stdio (CRI Attach); ends when its output does");
  attach->add_option("CONTAINER-ID", attach_flags.container, "container id")->required();
  attach->add_flag("-i,--stdin", attach_flags.interactive, "send our stdin to the container's");
  attach->add_flag("-t,--tty", attach_flags.tty, "the container has a terminal (ours goes raw)");
  attach->add_option("--transport", attach_flags.transport, "spdy or websocket")
      ->capture_default_str();
  attach->add_option("--stream-ca", attach_flags.stream_ca, kStreamCaHelp);
  client::PortForwardFlags pf_flags;
  auto* port_forward = app.add_subcommand(
      "port-forward",
      "forward local ports (127.0.0.1) to ports in a pod's network namespace (CRI PortForward)");
  port_forward->add_option("POD-ID", pf_flags.pod, "pod sandbox id")->required();
  port_forward
      ->add_option("PORTS", pf_flags.ports, "LOCAL:REMOTE, :REMOTE (any local port) or PORT")
      ->required();
  port_forward->add_option("--transport", pf_flags.transport, "spdy or websocket")
      ->capture_default_str();
  port_forward->add_option("--stream-ca", pf_flags.stream_ca, kStreamCaHelp);
  // The command of `exec` and its arguments are not berthctl's: `exec ID sh -c 'echo hi'`.
  std::vector<std::string> exec_cmd;
  const int cli_argc = SplitExecCommand(argc, argv, &exec_cmd);
  CLI11_PARSE(app, cli_argc, argv);

  client::GlobalOptions opts;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread exists.
  const char* env = std::getenv("CONTAINER_RUNTIME_ENDPOINT");
  absl::StatusOr<std::string> endpoint =
      client::ResolveEndpoint(endpoint_flag, env != nullptr ? env : "", crictl_config);
  if (!endpoint.ok()) {
    std::cerr << "berthctl: " << endpoint.status().message() << "\n";
    return 2;
  }
  opts.endpoint = *endpoint;
  if (!absl::ParseDuration(timeout_flag, &opts.timeout) || opts.timeout <= absl::ZeroDuration()) {
    std::cerr << "berthctl: --timeout \"" << timeout_flag
              << "\" is not a positive duration (e.g. 5s)\n";
    return 2;
  }
  absl::StatusOr<client::OutputFormat> output = client::ParseOutputFormat(output_flag);
  if (!output.ok()) {
    std::cerr << "berthctl: " << output.status().message() << "\n";
    return 2;
  }
  opts.output = *output;

  auto long_timeout = [](const std::string& flag, absl::Duration* d) {
    if (absl::ParseDuration(flag, d) && *d >= absl::ZeroDuration()) return true;
    std::cerr << "berthctl: \"" << flag << "\" is not a duration (e.g. 5m, 0s for none)\n";
    return false;
  };
  if (*version) return client::CmdVersion(opts, std::cout, std::cerr);
  if (*pull) {
    if (!long_timeout(pull_timeout_flag, &pull_flags.pull_timeout)) return 2;
    pull_flags.terminal = ::isatty(STDERR_FILENO) == 1;
    return client::CmdPull(opts, pull_flags, std::cout, std::cerr);
  }
  if (*import_cmd) {
    if (!long_timeout(import_timeout_flag, &import_flags.timeout)) return 2;
    return client::CmdImportImage(opts, import_flags, std::cout, std::cerr);
  }
  if (*images) return client::CmdImages(opts, images_flags, std::cout, std::cerr);
  if (*inspecti) return client::CmdInspectImages(opts, inspect_args, std::cout, std::cerr);
  if (*rmi) return client::CmdRemoveImages(opts, rmi_args, std::cout, std::cerr);
  if (*imagefsinfo) return client::CmdImageFsInfo(opts, std::cout, std::cerr);
  if (*info) return client::CmdInfo(opts, std::cout, std::cerr);

  auto need_ids = [](const client::RemoveFlags& f, const char* what) {
    if (!f.ids.empty() || f.all) return true;
    std::cerr << "berthctl: " << what << ": give ids or --all\n";
    return false;
  };
  if (*runp) return client::CmdRunPod(opts, runp_flags, std::cout, std::cerr);
  if (*stopp) return client::CmdStopPods(opts, stopp_ids, std::cout, std::cerr);
  if (*rmp) {
    if (!need_ids(rmp_flags, "rmp")) return 2;
    return client::CmdRemovePods(opts, rmp_flags, std::cout, std::cerr);
  }
  if (*pods) return client::CmdPods(opts, pods_flags, std::cout, std::cerr);
  if (*inspectp) return client::CmdInspectPods(opts, inspectp_ids, std::cout, std::cerr);
  if (*create) return client::CmdCreate(opts, create_flags, std::cout, std::cerr);
  if (*start) return client::CmdStart(opts, start_ids, std::cout, std::cerr);
  if (*stop) return client::CmdStop(opts, stop_flags, std::cout, std::cerr);
  if (*rm) {
    if (!need_ids(rm_flags, "rm")) return 2;
    return client::CmdRemove(opts, rm_flags, std::cout, std::cerr);
  }
  if (*run) return client::CmdRun(opts, run_flags, std::cout, std::cerr);
  if (*ps) return client::CmdPs(opts, ps_flags, std::cout, std::cerr);
  if (*inspect) return client::CmdInspect(opts, inspect_ids, std::cout, std::cerr);
  if (*logs) return client::CmdLogs(opts, logs_flags, std::cout, std::cerr);
  if (*attach) return client::CmdAttach(opts, attach_flags, std::cerr);
  if (*port_forward) return client::CmdPortForward(opts, pf_flags, std::cout, std::cerr);
  if (*exec) {
    exec_flags.cmd = exec_cmd;
    if (exec_flags.cmd.empty()) {
      std::cerr << "berthctl: exec: no command (berthctl exec CONTAINER-ID COMMAND [ARG...])\n";
      return 2;
    }
    if (exec_sync || exec_flags.timeout_seconds > 0) {
      if (exec_interactive || exec_tty) {
        std::cerr << "berthctl: exec: -i/-t need the streaming exec, not --sync/--timeout\n";
        return 2;
      }
      return client::CmdExec(opts, exec_flags, std::cout, std::cerr);
    }
    exec_flags.interactive = exec_interactive;
    exec_flags.tty = exec_tty;
    exec_flags.transport = exec_transport;
    return client::CmdExecStream(opts, exec_flags, std::cerr);
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "berthctl: internal error: " << e.what() << "\n";
    return 70;
  }
}

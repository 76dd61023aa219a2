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
  CLI11_PARSE(app, argc, argv);

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

// berthctl: the CLI for people on a node; talks CRI to any runtime. Flag parsing only.
#include <cstdlib>
#include <iostream>
#include <string>

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

  if (*version) return client::CmdVersion(opts, std::cout, std::cerr);
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

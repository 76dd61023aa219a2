// berthd: the berth CRI daemon. Flag parsing only; everything else lives in cri/.
#include <cstdio>
#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "base/log.h"
#include "cri/config.h"
#include "cri/daemon.h"
#include "cri/runtime_service.h"

namespace {

int Main(int argc, char** argv) {
  CLI::App app{"berthd: a Kubernetes CRI container runtime"};
  std::string config_path;
  std::string log_level;
  bool check_config = false;
  bool version = false;
  app.add_option("-c,--config", config_path,
                 "configuration file (default /etc/berth/berth.toml, optional)");
  app.add_option("--log-level", log_level, "override log.level: trace|debug|info|warn|error");
  app.add_flag("--check-config", check_config,
               "validate the configuration, print the effective one as JSON and exit");
  app.add_flag("-v,--version", version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::printf("berthd %s (CRI %s)\n", berth::cri::RuntimeVersion().c_str(),
                berth::cri::kRuntimeApiVersion);
    return 0;
  }

  const bool explicit_config = !config_path.empty();
  if (!explicit_config) config_path = berth::cri::kDefaultConfigPath;
  absl::StatusOr<berth::cri::Config> config = berth::cri::LoadConfig(config_path, explicit_config);
  if (!config.ok()) {
    std::cerr << "berthd: invalid configuration: " << config.status().message() << "\n";
    return 2;
  }
  if (!log_level.empty()) {
    absl::StatusOr<spdlog::level::level_enum> level = berth::log::ParseLevel(log_level);
    if (!level.ok()) {
      std::cerr << "berthd: --log-level: " << level.status().message() << "\n";
      return 2;
    }
    config->log.level = *level;
  }
  if (check_config) {
    std::printf("%s\n", config->ToJson().dump(2).c_str());
    return 0;
  }
  absl::Status st = berth::log::Init(
      {.level = config->log.level, .format = config->log.format, .file = config->log.file});
  if (!st.ok()) {
    std::cerr << "berthd: " << st.message() << "\n";
    return 2;
  }
  return berth::cri::RunDaemon(*config);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "berthd: internal error: " << e.what() << "\n";
    return 70;
  }
}

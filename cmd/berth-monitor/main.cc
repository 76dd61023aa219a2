// berth-monitor: the per-pod monitor (runtime/monitor.h). Started by berthd; flag parsing only.
//   berth-monitor --pod-dir DIR --runtime-root DIR [--pid-holder] [--log-max-line N]
//                 [--ready-fd FD]
//   berth-monitor pause        the pod's pid-namespace holder
//   berth-monitor exec-wait RUNTIME ROOT PID_FILE ID CMD...   ExecSync with an external runtime
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/monitor.h"

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "pause") == 0) berth::runtime::RunPidHolder();
  if (argc >= 2 && std::strcmp(argv[1], "exec-wait") == 0) {
    return berth::runtime::RunExecWait(argc - 1, argv + 1);
  }
  berth::runtime::MonitorOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        const char msg[] = "berth-monitor: a flag is missing its value\n";
        (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--pod-dir") {
      options.pod_dir = value();
    } else if (flag == "--runtime-root") {
      options.runtime_root = value();
    } else if (flag == "--pid-holder") {
      options.pid_namespace_holder = true;
    } else if (flag == "--log-max-line") {
      options.log_max_line = std::strtoul(value().c_str(), nullptr, 10);
    } else if (flag == "--ready-fd") {
      options.ready_fd = std::atoi(value().c_str());
    } else {
      std::string msg = "berth-monitor: unknown flag " + flag + "\n";
      (void)!::write(STDERR_FILENO, msg.data(), msg.size());
      return 2;
    }
  }
  if (options.pod_dir.empty() || options.runtime_root.empty() || options.log_max_line == 0) {
    const char msg[] = "usage: berth-monitor --pod-dir DIR --runtime-root DIR [--pid-holder]\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    return 2;
  }
  // Itself, whether it runs from a file or from berthd's memfd (which has no path).
  options.holder_binary = "/proc/self/exe";
  return berth::runtime::RunMonitor(options);
}

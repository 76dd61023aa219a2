// berthd's lifecycle: state directories, the single-instance lock, the CRI socket, the gRPC
// server, signals.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/lock_file.h"
#include "cri/admin_service.h"
#include "cri/config.h"
#include "cri/image_service.h"
#include "cri/pod_manager.h"
#include "cri/runtime_service.h"
#include "cri/store.h"
#include "cri/streaming_server.h"

namespace berth::cri {

class Daemon {
 public:
  // Creates the state dirs, takes the locks (refusing a second berthd on the same state dirs),
  // replaces a stale socket file and starts serving the CRI on it (mode 0660, root:grpc.gid).
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const Config& config);

  ~Daemon();

  // Stops accepting calls, lets in-flight ones finish for up to `grace`, then cancels them.
  void Shutdown(absl::Duration grace);

  // Blocks until the server has shut down.
  void Wait();

 private:
  explicit Daemon(const Config& config);
  // Gives memory back once berthd has been idle for a while (see IdleTrimLoop).
  void IdleTrimLoop();
  void StopTrimmer();

  Config config_;
  std::vector<LockFile> locks_;
  std::unique_ptr<network::NetworkManager> network_;
  std::unique_ptr<images::ImageStore> images_;
  std::unique_ptr<CriStore> store_;
  std::unique_ptr<PodManager> pods_;
  std::unique_ptr<StreamingServer> streaming_;
  std::unique_ptr<RuntimeService> runtime_service_;
  std::unique_ptr<ImageService> image_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex trim_mu_;
  bool stopping_ ABSL_GUARDED_BY(trim_mu_) = false;
  std::thread trimmer_;
};

// Runs berthd until SIGTERM or SIGINT (exit 0 after a graceful shutdown); SIGHUP reopens the
// log file. Returns the process exit code. Must be called before any other thread exists.
int RunDaemon(const Config& config);

}  // namespace berth::cri

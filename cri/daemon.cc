#include "cri/daemon.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <malloc.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <grpc/grpc.h>
#include <grpc/support/log.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/log.h"
#include "base/resident.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cri/instrumentation.h"

namespace berth::cri {

namespace {

// This process' resident set in KiB (/proc/self/statm), or -1.
int64_t ResidentKib() {
  absl::StatusOr<std::string> statm = ReadFile("/proc/self/statm", 4096);
  if (!statm.ok()) return -1;
  std::vector<absl::string_view> f = absl::StrSplit(*statm, ' ');
  int64_t pages = 0;
  if (f.size() < 2 || !absl::SimpleAtoi(f[1], &pages)) return -1;
  return pages * (::sysconf(_SC_PAGESIZE) / 1024);
}

// gRPC's own log lines go through berth's logger.
void GrpcLogFunction(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = spdlog::level::err;
  if (args->severity == GPR_LOG_SEVERITY_INFO) level = spdlog::level::info;
  log::Log(level, args->message,
           {{"component", "grpc"}, {"source", absl::StrCat(args->file, ":", args->line)}});
}

// The running berthd's own path (its sibling binaries are found next to it).
std::string SelfPath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("/usr/local/bin/berthd");
}

std::string Dirname(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

// A socket file left by a berthd that died is replaced; anything else at that path is not ours
// to delete.
absl::Status RemoveStaleSocket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoError(absl::StrCat("stat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("remove stale socket ", path));
  }
  log::Info("removed stale socket", {{"path", path}});
  return absl::OkStatus();
}

// Tells systemd (Type=notify) that berthd is ready or stopping; a no-op without NOTIFY_SOCKET.
void NotifySystemd(absl::string_view state) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing in berthd calls setenv.
  const char* sock = std::getenv("NOTIFY_SOCKET");
  if (sock == nullptr || sock[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(sock);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, sock, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return;
  socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<sockaddr*>(&addr), alen) < 0) {
    log::Warn("sd_notify failed", {{"error", ErrnoString(errno)}});
  }
}

}  // namespace

Daemon::Daemon(const Config& config) : config_(config) {}

Daemon::~Daemon() {
  StopTrimmer();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const Config& config) {
  std::unique_ptr<Daemon> d(new Daemon(config));
  const std::string socket_path = config.SocketPath();

  RETURN_IF_ERROR(MkdirAll(config.root, 0711));
  RETURN_IF_ERROR(MkdirAll(config.state, 0711));
  RETURN_IF_ERROR(MkdirAll(Dirname(socket_path), 0711));

  // One berthd per set of state dirs: both are locked, so two daemons sharing either one are
  // refused, whatever socket they were told to use.
  for (const std::string& dir : {config.root, config.state}) {
    ASSIGN_OR_RETURN(LockFile lock, LockFile::Acquire(absl::StrCat(dir, "/berthd.lock")));
    d->locks_.push_back(std::move(lock));
  }
  RETURN_IF_ERROR(RemoveStaleSocket(socket_path));

  ASSIGN_OR_RETURN(d->network_, network::NetworkManager::Create({
                                    .conf_dir = config.cni.conf_dir,
                                    .bin_dirs = config.cni.bin_dirs,
                                    .network_name = config.cni.network_name,
                                    .cache_dir = absl::StrCat(config.root, "/cni"),
                                    .plugin_timeout = config.cni.plugin_timeout,
                                }));
  images::ImageStoreOptions io;
  io.root = config.root;
  io.registry.request_timeout = config.images.request_timeout;
  io.registry.progress_timeout = config.images.pull_progress_timeout;
  io.registry.auth_file = config.images.auth_file;
  io.registry.user_agent = absl::StrCat("berth/", RuntimeVersion());
  for (const auto& [host, reg] : config.registries) {
    io.registry.hosts[host] = images::RegistryHost{.host = host,
                                                   .mirrors = reg.mirrors,
                                                   .insecure = reg.insecure,
                                                   .ca_file = reg.ca_file,
                                                   .cert_file = reg.cert_file,
                                                   .key_file = reg.key_file};
  }
  io.pull.max_parallel_layers = config.images.max_concurrent_downloads;
  if (!config.images.platform.empty()) {
    absl::StatusOr<images::Platform> p = images::ParsePlatform(config.images.platform);
    if (!p.ok()) return Annotate(p.status(), "images.platform");
    io.pull.platform = *p;
  }
  ASSIGN_OR_RETURN(d->images_, images::ImageStore::Open(std::move(io)));
  d->image_service_ = std::make_unique<ImageService>(d->images_.get());

  ASSIGN_OR_RETURN(d->store_, CriStore::Open(absl::StrCat(config.root, "/cri.db")));
  PodManagerOptions po;
  po.root = config.root;
  po.state = config.state;
  const std::string self_dir = Dirname(SelfPath());
  po.monitor_binary = config.runtime.monitor_path.empty() ? self_dir + "/berth-monitor"
                                                          : config.runtime.monitor_path;
  po.oci_binary =
      config.runtime.oci_path.empty() ? self_dir + "/berth-oci" : config.runtime.oci_path;
  po.handlers[""] = RuntimeHandler{};
  for (const auto& [name, h] : config.runtime.handlers) {
    po.handlers[name] = RuntimeHandler{.binary = h.path, .root = h.root};
  }
  po.log_max_line = static_cast<size_t>(config.runtime.log_max_line);
  po.shm_size = config.runtime.shm_size;
  ASSIGN_OR_RETURN(d->pods_,
                   PodManager::Create(po, d->store_.get(), d->images_.get(), d->network_.get()));
  if (absl::Status st = d->pods_->Recover(); !st.ok()) {
    log::Warn("recovering pods and containers failed", {{"error", std::string(st.message())}});
  }
  StreamingOptions so;
  so.address = config.streaming.address;
  so.port = static_cast<uint16_t>(config.streaming.port);
  so.tls_cert_file = config.streaming.tls_cert_file;
  so.tls_key_file = config.streaming.tls_key_file;
  so.idle_timeout = config.streaming.idle_timeout;
  so.token_ttl = config.streaming.token_ttl;
  ASSIGN_OR_RETURN(d->streaming_, StreamingServer::Start(so, d->pods_.get()));
  log::Info("streaming server listening", {{"url", d->streaming_->base_url()}});
  d->runtime_service_ = std::make_unique<RuntimeService>(config, d->network_.get(), d->pods_.get(),
                                                         d->streaming_.get());
  d->admin_service_ = std::make_unique<AdminService>(d->images_.get(), config.state);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.grpc.address, grpc::InsecureServerCredentials());
  builder.RegisterService(d->runtime_service_.get());
  builder.RegisterService(d->image_service_.get());
  builder.RegisterService(d->admin_service_.get());  // berth.admin.v1 (not CRI)
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.grpc.max_recv_message_size));
  builder.SetMaxSendMessageSize(static_cast<int>(config.grpc.max_send_message_size));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeLoggingInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));

  // The socket is created by bind() inside BuildAndStart; the umask makes it 0660 from its
  // first moment, so there is no window in which others could connect.
  mode_t old_umask = ::umask(0117);
  d->server_ = builder.BuildAndStart();
  ::umask(old_umask);
  if (!d->server_) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.grpc.address, " (see the grpc log line above)"));
  }
  if (::chown(socket_path.c_str(), 0, config.grpc.gid) != 0) {
    return LastErrnoError(absl::StrCat("chown ", socket_path));
  }
  if (::chmod(socket_path.c_str(), 0660) != 0) {
    return LastErrnoError(absl::StrCat("chmod ", socket_path));
  }
  d->trimmer_ = std::thread([daemon = d.get()] { daemon->IdleTrimLoop(); });
  return d;
}

void Daemon::StopTrimmer() {
  {
    absl::MutexLock lock(&trim_mu_);
    stopping_ = true;
  }
  if (trimmer_.joinable()) trimmer_.join();
}

// Start-up runs much code only once (gRPC's plugin registry, the protobuf descriptors, the
// configuration, recovery), and a burst of calls or streaming sessions leaves freed memory in
// the malloc arenas of the threads that served it. Both are given back once berthd has been
// idle for kIdleTrimAfter (no CRI call in flight or finished, no streaming connection opened,
// served or closed): malloc_trim, and the loaded objects' code and read-only data are unmapped
// (base/resident.h; what runs next comes back from the page cache). Right after start-up this
// happens at once. Under a kubelet, which calls every second or so, it seldom runs again.
void Daemon::IdleTrimLoop() {
  constexpr absl::Duration kIdleTrimAfter = absl::Seconds(10);
  auto activity = [this](bool* busy) {
    bool streaming_busy = false;
    const int64_t stamp = CompletedCalls() + streaming_->Activity(&streaming_busy);
    *busy = streaming_busy || InFlightCalls() > 0;
    return stamp;
  };
  auto trim = [](const char* why) {
    const int64_t before = ResidentKib();
    ::malloc_trim(0);
    const size_t advised = TrimResidentCode();
    log::Debug("idle trim", {{"after", why},
                             {"rss_kib_before", before},
                             {"rss_kib_after", ResidentKib()},
                             {"code_kib_advised", static_cast<int64_t>(advised >> 10)}});
  };
  trim("start-up");
  bool busy = false, trimmed = true;
  int64_t last = activity(&busy);
  absl::Time idle_since = absl::Now();
  absl::MutexLock lock(&trim_mu_);
  while (!trim_mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1))) {
    const int64_t stamp = activity(&busy);
    if (busy || stamp != last) {
      last = stamp;
      idle_since = absl::Now();
      trimmed = false;
    } else if (!trimmed && absl::Now() - idle_since >= kIdleTrimAfter) {
      trim("idle");
      trimmed = true;
    }
  }
}

void Daemon::Shutdown(absl::Duration grace) {
  StopTrimmer();
  if (!server_) return;
  const absl::Time deadline = absl::Now() + grace;
  // Streams that only end when berthd does (GetContainerEvents) are told to end now.
  if (pods_) pods_->Shutdown();
  // Streaming sessions end (their exec'd processes are killed, as when a client goes away).
  if (streaming_) streaming_->Stop();
  // grpc::Server::Shutdown stops accepting calls at once, but then also waits, until the
  // deadline, for idle client connections to go away. So it runs on its own thread while this
  // one waits only for the calls in flight, and then closes whatever connections remain.
  std::thread shutdown([this, deadline] { server_->Shutdown(absl::ToChronoTime(deadline)); });
  while (InFlightCalls() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  const int64_t left = InFlightCalls();
  if (left > 0) {
    log::Warn("cancelling CRI calls still running after the grace period", {{"calls", left}});
  }
  grpc_server_cancel_all_calls(server_->c_server());
  shutdown.join();
}

void Daemon::Wait() {
  if (server_) server_->Wait();
}

int RunDaemon(const Config& config) {
  gpr_set_log_function(GrpcLogFunction);
  // gRPC's own debug output is internal chatter: only shown at trace level.
  gpr_set_log_verbosity(config.log.level <= spdlog::level::trace ? GPR_LOG_SEVERITY_DEBUG
                                                                 : GPR_LOG_SEVERITY_ERROR);
  // Signals are taken synchronously by this thread; every thread started later (gRPC's)
  // inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
    log::Error("cannot block signals");
    return 1;
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  if (sigaction(SIGPIPE, &ignore, nullptr) != 0) {
    log::Error("cannot ignore SIGPIPE");
    return 1;
  }

  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(config);
  if (!daemon.ok()) {
    log::Error("berthd failed to start", {{"error", daemon.status().message()}});
    return 1;
  }
  log::Info("berthd serving", {{"address", config.grpc.address},
                               {"version", RuntimeVersion()},
                               {"config", config.source.empty() ? "(defaults)" : config.source},
                               {"root", config.root},
                               {"state", config.state}});
  NotifySystemd("READY=1");

  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      absl::Status st = log::Reopen();
      if (st.ok()) {
        log::Info("reopened log file on SIGHUP");
      } else {
        log::Error("reopening log file failed", {{"error", st.message()}});
      }
      continue;
    }
    log::Info("shutting down", {{"signal", absl::StrCat("SIG", sigabbrev_np(sig))},
                                {"grace_ms", absl::ToInt64Milliseconds(config.shutdown_timeout)}});
    NotifySystemd("STOPPING=1");
    break;
  }
  (*daemon)->Shutdown(config.shutdown_timeout);
  (*daemon)->Wait();
  const std::string socket_path = config.SocketPath();
  if (::unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
    log::Warn("removing socket failed", {{"path", socket_path}, {"error", ErrnoString(errno)}});
  }
  daemon->reset();
  log::Info("berthd stopped");
  return 0;
}

}  // namespace berth::cri

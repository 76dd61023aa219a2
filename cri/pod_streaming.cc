// PodManager's side of streaming (cri/streaming_server.h): the process of an Exec, and the
// connections of a PortForward.
//
// An exec runs through `berth-monitor exec-wait`, a child of berthd: it runs the handler's
// `exec --detach` (berth-oci or runc, so the process joins every namespace and the cgroup of
// the container and gets its security settings), becomes the parent of the exec'd process as a
// subreaper, and exits with its exit code. Its pidfd tells the session when the process is
// done; SIGTERM to it kills the process (the session ended early). With a TTY the runtime sends
// the pty master to a console socket of ours.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/process.h"
#include "base/status.h"
#include "cri/monitor_client.h"
#include "cri/pod_manager.h"
#include "cri/pod_records.h"
#include "nlohmann/json.hpp"
#include "runtime/console.h"

namespace berth::cri {
namespace {

constexpr absl::Duration kTerminalTimeout = absl::Seconds(30);
constexpr int kDialTimeoutMs = 5000;

// The exec'd process, seen from berthd: exec-wait (our child) and its stdio.
class ExecTarget final : public StreamTarget {
 public:
  ExecTarget(pid_t waiter, std::string pid_file)
      : waiter_(waiter), pid_file_(std::move(pid_file)) {}
  ~ExecTarget() override { Cancel(); }

  std::optional<int> Finish() override {
    if (waiter_ <= 0) return code_;
    int status = 0;
    while (::waitpid(waiter_, &status, 0) < 0 && errno == EINTR) {
    }
    waiter_ = 0;
    ::unlink(pid_file_.c_str());
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return code_;
  }

  void Cancel() override {
    if (waiter_ <= 0) return;
    // exec-wait kills the process (it is its parent: the pid cannot have been reused).
    ::kill(waiter_, SIGTERM);
    int status = 0;
    while (::waitpid(waiter_, &status, 0) < 0 && errno == EINTR) {
    }
    waiter_ = 0;
    ::unlink(pid_file_.c_str());
  }

 private:
  pid_t waiter_;
  std::string pid_file_;
  std::optional<int> code_;
};

// Connects a new TCP socket to localhost:port, made in the network namespace `netns` (empty:
// the host's). A socket stays in the namespace it was created in, so only its creation needs
// the namespace: a short-lived thread enters it (setns applies to the calling thread only).
absl::StatusOr<UniqueFd> DialInNetns(const std::string& netns, int32_t port) {
  absl::StatusOr<UniqueFd> result = absl::InternalError("dial thread did not run");
  std::thread t([&] {
    if (!netns.empty()) {
      UniqueFd ns(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns) {
        result = LastErrnoError(absl::StrCat("open the pod's network namespace ", netns));
        return;
      }
      if (::setns(ns.get(), CLONE_NEWNET) != 0) {
        result = LastErrnoError("enter the pod's network namespace");
        return;
      }
    }
    // localhost over IPv4, then IPv6, as containerd dials it.
    std::string errors;
    for (int family : {AF_INET, AF_INET6}) {
      UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd) {
        result = LastErrnoError("socket");
        return;
      }
      struct sockaddr_storage ss {};
      socklen_t len;
      if (family == AF_INET) {
        auto* sin = reinterpret_cast<struct sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(static_cast<uint16_t>(port));
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *sin;
      } else {
        auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(static_cast<uint16_t>(port));
        sin6->sin6_addr = in6addr_loopback;
        len = sizeof *sin6;
      }
      int rc = ::connect(fd.get(), reinterpret_cast<struct sockaddr*>(&ss), len);
      int err = rc == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        struct pollfd p = {fd.get(), POLLOUT, 0};
        int n;
        do {
          n = ::poll(&p, 1, kDialTimeoutMs);
        } while (n < 0 && errno == EINTR);
        socklen_t elen = sizeof err;
        if (n == 0) {
          err = ETIMEDOUT;
        } else if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
          err = errno;
        }
      }
      if (err == 0) {
        result = std::move(fd);
        return;
      }
      absl::StrAppend(&errors, errors.empty() ? "" : "; ",
                      family == AF_INET ? "127.0.0.1" : "[::1]", ":", port, ": ",
                      std::strerror(err));
    }
    result = absl::UnavailableError(absl::StrCat("dial ", errors));
  });
  t.join();
  return result;
}

// An attach session: the container's stdio as the monitor handed it over. `done` is the
// monitor connection: it closes when the container's output ends; closing it detaches.
class AttachTarget final : public StreamTarget {
 public:
  AttachTarget() { done_takes_stdin_end = true; }
  std::optional<int> Finish() override { return std::nullopt; }
  void Cancel() override {
    in.reset();
    done.reset();
  }
};

}  // namespace

absl::StatusOr<records::LoadedContainer> PodManager::ExecContainer(const v1::ExecRequest& request) {
  if (request.cmd().empty()) return absl::InvalidArgumentError("Exec: cmd is empty");
  if (!request.stdin() && !request.stdout() && !request.stderr()) {
    return absl::InvalidArgumentError("Exec: one of stdin, stdout or stderr must be set");
  }
  if (request.tty() && request.stderr()) {
    return absl::InvalidArgumentError(
        "Exec: tty and stderr cannot both be set (with a terminal, stdout carries both)");
  }
  return RunningContainer(request.container_id());
}

absl::Status PodManager::Validate(const v1::ExecRequest& request) {
  return ExecContainer(request).status();
}

absl::Status PodManager::Validate(const v1::PortForwardRequest& request) {
  for (int32_t port : request.port()) {
    if (port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("PortForward: invalid port ", port));
    }
  }
  ASSIGN_OR_RETURN(records::LoadedPod pod, records::GetPod(store_, request.pod_sandbox_id()));
  if (pod.record.state != records::kPodReady) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", pod.record.id, " is not ready"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<StreamTarget>> PodManager::StartExec(
    const v1::ExecRequest& request) {
  ASSIGN_OR_RETURN(records::LoadedContainer c, ExecContainer(request));
  const std::string& id = c.record.id;
  ASSIGN_OR_RETURN(records::LoadedPod pod, records::GetPod(store_, c.record.pod_id));
  const RuntimeHandler& handler = options_.handlers.at(pod.record.handler);
  std::string binary = handler.binary.empty() ? options_.oci_binary : handler.binary;
  std::string root = handler.binary.empty() ? options_.state + "/runtime" : handler.root;
  ASSIGN_OR_RETURN(std::string nonce, records::RandomId());
  nonce.resize(16);
  std::string pid_file = absl::StrCat(c.record.dir, "/exec-", nonce, ".pid");
  std::string console_path = absl::StrCat(c.record.dir, "/exec-", nonce, ".sock");

  std::vector<std::string> args = {options_.monitor_binary, "exec-wait"};
  UniqueFd console, console_dir;
  if (request.tty()) {
    console.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!console) return LastErrnoError("console socket");
    // A bundle path is often longer than a socket address may be: then the socket is named
    // through our fd of its directory, in a form the runtime (another process) can open too.
    std::string name = console_path;
    if (name.size() >= sizeof(sockaddr_un::sun_path)) {
      console_dir.reset(::open(c.record.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!console_dir) return LastErrnoError("open " + c.record.dir);
      name =
          absl::StrCat("/proc/", ::getpid(), "/fd/", console_dir.get(), "/exec-", nonce, ".sock");
    }
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.c_str(), name.size() + 1);
    if (::bind(console.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(console.get(), 1) != 0) {
      return LastErrnoError(absl::StrCat("listen on ", console_path));
    }
    args.insert(args.end(), {"--console-socket", name});
  }
  absl::Cleanup remove_socket = [&] {
    if (console) ::unlink(console_path.c_str());
  };
  args.insert(args.end(), {binary, root, pid_file, id});
  args.insert(args.end(), request.cmd().begin(), request.cmd().end());

  // stdio of exec-wait (and so of the runtime and, without a TTY, of the process). With a
  // TTY, the runtime's own messages (none when all goes well) go to `err`.
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  auto make = [](int p[2]) { return ::pipe2(p, O_CLOEXEC) == 0; };
  if ((!request.tty() && request.stdin() && !make(in)) || !make(out) || !make(err)) {
    return LastErrnoError("pipe");
  }
  UniqueFd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  ASSIGN_OR_RETURN(pid_t pid, Spawn(args, in_r ? in_r.get() : -1,
                                    request.tty() ? err_w.get() : out_w.get(), err_w.get()));
  auto target = std::make_unique<ExecTarget>(pid, pid_file);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  target->done.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!target->done) return LastErrnoError("pidfd_open");
  if (request.tty()) {
    // The runtime sends the master once the process is set up; if exec-wait exits first, the
    // runtime failed, and what it said is in its output.
    struct pollfd fds[2] = {{console.get(), POLLIN, 0}, {target->done.get(), POLLIN, 0}};
    int n;
    do {
      n = ::poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(kTerminalTimeout)));
    } while (n < 0 && errno == EINTR);
    if (n <= 0 || (fds[0].revents & POLLIN) == 0) {
      std::optional<int> code = target->Finish();
      std::string said;
      char buf[4096];
      for (int fd : {out_r.get(), err_r.get()}) {
        ssize_t r;
        while ((r = ::read(fd, buf, sizeof buf)) > 0 && said.size() < 16384) said.append(buf, r);
      }
      return absl::FailedPreconditionError(
          absl::StrCat("Exec: the runtime did not provide a terminal",
                       n == 0 ? " in time" : absl::StrCat(" (exit code ", code.value_or(-1), ")"),
                       said.empty() ? "" : ": ", said));
    }
    UniqueFd conn(::accept4(console.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) return LastErrnoError("accept on the console socket");
    ASSIGN_OR_RETURN(target->tty, runtime::ReceiveTerminal(conn.get()));
    int dup_in = ::fcntl(target->tty.get(), F_DUPFD_CLOEXEC, 3);
    int dup_out = ::fcntl(target->tty.get(), F_DUPFD_CLOEXEC, 3);
    if (dup_in < 0 || dup_out < 0) return LastErrnoError("dup the terminal");
    target->in.reset(dup_in);
    target->out.reset(dup_out);
    // The runtime's own messages (none when all goes well) come through err.
    target->err = std::move(err_r);
  } else {
    target->in = std::move(in_w);
    target->out = std::move(out_r);
    target->err = std::move(err_r);
  }
  log::Debug("exec started", {{"container", id},
                              {"cmd", absl::StrJoin(request.cmd(), " ")},
                              {"tty", request.tty() ? "true" : "false"}});
  return std::unique_ptr<StreamTarget>(std::move(target));
}

absl::StatusOr<records::LoadedContainer> PodManager::AttachContainer(
    const v1::AttachRequest& request) {
  if (!request.stdin() && !request.stdout() && !request.stderr()) {
    return absl::InvalidArgumentError("Attach: one of stdin, stdout or stderr must be set");
  }
  ASSIGN_OR_RETURN(records::LoadedContainer c, RunningContainer(request.container_id()));
  if (request.stdin() && !c.config.stdin()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Attach: container ", c.record.id, " was not created with stdin"));
  }
  return c;
}

absl::Status PodManager::Validate(const v1::AttachRequest& request) {
  return AttachContainer(request).status();
}

absl::StatusOr<std::unique_ptr<StreamTarget>> PodManager::StartAttach(
    const v1::AttachRequest& request) {
  ASSIGN_OR_RETURN(records::LoadedContainer c, AttachContainer(request));
  const std::string& id = c.record.id;
  ASSIGN_OR_RETURN(records::LoadedPod pod, records::GetPod(store_, c.record.pod_id));
  // The monitor holds the container's stdio: it sends pipes of their own for the output, the
  // stdin (pipe or terminal) and the terminal; the connection is the session (its end
  // detaches; a half-close closes the container's stdin with stdin_once).
  std::vector<UniqueFd> fds;
  UniqueFd conn;
  ASSIGN_OR_RETURN(nlohmann::json reply,
                   CallMonitorWithFds(pod.record.dir,
                                      {{"op", "attach"},
                                       {"id", id},
                                       {"stdin", request.stdin()},
                                       {"stdout", request.stdout()},
                                       {"stderr", request.stderr() && !request.tty()}},
                                      absl::Seconds(10), &fds, &conn));
  auto target = std::make_unique<AttachTarget>();
  // The client's stdin ending is its detach, as with Docker and containerd: the session ends
  // (the container's stdin stays open), except for a container created stdin_once without a
  // terminal, whose stdin is closed then while the session goes on to the end of its output.
  target->detach_at_stdin_end = !(c.config.stdin_once() && !c.config.tty());
  const nlohmann::json names = reply.value("fds", nlohmann::json::array());
  if (!names.is_array() || names.size() != fds.size()) {
    return absl::InternalError(
        absl::StrCat("monitor: attach sent ", fds.size(), " descriptors for ", names.dump()));
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    std::string name = names[i].is_string() ? names[i].get<std::string>() : "";
    UniqueFd* slot = name == "out"   ? &target->out
                     : name == "err" ? &target->err
                     : name == "in"  ? &target->in
                     : name == "tty" ? &target->tty
                                     : nullptr;
    if (slot == nullptr) return absl::InternalError("monitor: attach sent an unknown descriptor");
    *slot = std::move(fds[i]);
  }
  target->done = std::move(conn);
  log::Debug("attached", {{"container", id}});
  return std::unique_ptr<StreamTarget>(std::move(target));
}

absl::StatusOr<UniqueFd> PodManager::DialPort(const std::string& pod_id, int32_t port) {
  ASSIGN_OR_RETURN(records::LoadedPod pod, records::GetPod(store_, pod_id));
  if (pod.record.state != records::kPodReady) {
    return absl::FailedPreconditionError(absl::StrCat("pod sandbox ", pod_id, " is not ready"));
  }
  // A host-network pod has no pin: its localhost is the host's.
  return DialInNetns(pod.record.net_pin, port);
}

}  // namespace berth::cri

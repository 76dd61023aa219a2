#include "runtime/monitor.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/resident.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cgroups/cgroup.h"
#include "nlohmann/json.hpp"
#include "runtime/console.h"
#include "runtime/container.h"
#include "runtime/cri_log.h"
#include "runtime/monitor_proto.h"
#include "runtime/spec.h"

namespace berth::runtime {
namespace {

using json = nlohmann::json;

void Log(absl::string_view message) {
  std::string line = absl::StrCat(NowRfc3339Nano(), " ", message, "\n");
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

json ErrorReply(const absl::Status& st) {
  return {{"ok", false}, {"code", static_cast<int>(st.code())}, {"error", st.message()}};
}

absl::Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return LastErrnoError("make an fd non-blocking");
  }
  return absl::OkStatus();
}

struct Pipe {
  UniqueFd read, write;
};

absl::StatusOr<Pipe> MakePipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return LastErrnoError("pipe");
  return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
}

// Runs an external OCI runtime (runc) with `args`, stdio as given (-1: /dev/null), and waits.
absl::Status RunExternal(const std::string& binary, const std::vector<std::string>& args,
                         const int stdio[3]) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return LastErrnoError("fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) {
      int src = stdio[fd] >= 0 ? stdio[fd] : null;
      if (::dup2(src, fd) < 0) ::_exit(127);
    }
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return LastErrnoError("wait for the OCI runtime");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(binary, " ", args.empty() ? "" : args.front(),
                                          " failed (wait status ", status, ")"));
}

// Runs `fn` in a forked child and returns its result. The runtime library's work (parsing the
// spec, seccomp, clone3 of the init, hooks) touches most of the binary's code and allocates;
// done in a child, none of it stays resident in the monitor, which lives as long as the pod
// and otherwise only moves bytes from pipes to log files. A container's init cloned by the
// child is reparented to the monitor (a child subreaper) when the child exits.
absl::StatusOr<int64_t> InChild(const std::function<absl::StatusOr<int64_t>()>& fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return LastErrnoError("pipe");
  UniqueFd read_end(p[0]), write_end(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) return LastErrnoError("fork");
  if (pid == 0) {
    read_end.reset();
    absl::StatusOr<int64_t> r = fn();
    std::string out =
        r.ok() ? absl::StrCat("0 ", *r)
               : absl::StrCat(static_cast<int>(r.status().code()), " ", r.status().message());
    (void)!::write(write_end.get(), out.data(), out.size());
    ::_exit(0);
  }
  write_end.reset();
  // The child's answer is in the pipe once it has exited. The pipe is not read to EOF: a
  // container's init cloned by the child holds a copy of the write end until it execs.
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (1 << 20)) break;
  }
  absl::StatusOr<std::string> out = text;
  std::pair<std::string, std::string> parts = absl::StrSplit(*out, absl::MaxSplits(' ', 1));
  int code = 0;
  if (out->empty() || !absl::SimpleAtoi(parts.first, &code)) {
    return absl::InternalError(absl::StrCat("the runtime child died (wait status ", status, ")"));
  }
  if (code != 0) {
    if (code < 0 || code > 16) code = static_cast<int>(absl::StatusCode::kInternal);
    return absl::Status(static_cast<absl::StatusCode>(code), parts.second);
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(parts.second, &value)) {
    return absl::InternalError(absl::StrCat("the runtime child answered \"", *out, "\""));
  }
  return value;
}

// A monitor lives as long as its pod, and one runs per pod, so what it keeps resident is paid
// per pod. Its code is a static binary shared by all monitors through the page cache; what
// counts against each one is the pages mapped into it. The idle loop touches little code, so
// fault-around is turned off for it too, and what stays mapped is what that loop uses (see
// base/resident.h).
void TrimMonitorCode() {
  (void)TrimResidentCode({.random_access = true});
}

// An attach session (berthd's end of it): its own pipes for the container's output, which the
// monitor writes besides the log, and the connection whose end detaches it.
struct Attacher {
  int conn = -1;
  UniqueFd out, err;   // write ends; the read ends went to berthd
  bool stdin = false;  // it took the container's stdin
};

struct Container {
  std::string id, dir, bundle;
  std::string runtime;  // external OCI runtime binary; empty: the runtime library
  std::string runtime_root;
  pid_t pid = 0;
  bool tty = false;
  bool stdin = false, stdin_once = false;  // as created (CRI ContainerConfig)
  UniqueFd out, err, in, master;
  std::vector<Attacher> attachers;
  std::unique_ptr<CriLogWriter> log;
  bool exited = false;
  std::vector<int> stop_waiters;  // connections waiting for the exit
  std::optional<absl::Time> kill_deadline;
};

// What an epoll event refers to.
enum class Source : uint32_t { kListen, kSignal, kConn, kStdout, kStderr, kAttach };

class Monitor {
 public:
  explicit Monitor(const MonitorOptions& o) : options_(o), runtime_(o.runtime_root, &Log) {}

  absl::Status Init() {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return LastErrnoError("become a subreaper");
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGHUP, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return LastErrnoError("sigprocmask");
    signal_fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!signal_fd_) return LastErrnoError("signalfd");
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) return LastErrnoError("epoll_create1");

    std::string path = options_.pod_dir + "/monitor.sock";
    struct sockaddr_un addr {};
    UniqueFd dir;
    RETURN_IF_ERROR(UnixAddress(path, &addr, &dir));
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listen_) return LastErrnoError("socket");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return LastErrnoError("unlink " + path);
    mode_t old = ::umask(0077);
    int rc = ::bind(listen_.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0) return LastErrnoError("bind " + path);
    if (::listen(listen_.get(), 64) != 0) return LastErrnoError("listen " + path);
    RETURN_IF_ERROR(Watch(listen_.get(), Source::kListen));
    RETURN_IF_ERROR(Watch(signal_fd_.get(), Source::kSignal));

    if (options_.pid_namespace_holder) RETURN_IF_ERROR(StartHolder());
    // Before the ready line: berthd finds a monitor it lost track of (a crash between the
    // spawn and its record, a ready line that came too late) by this file.
    RETURN_IF_ERROR(WriteFileAtomic(options_.pod_dir + "/monitor.pid",
                                    absl::StrCat(::getpid(), " ", holder_pid_, "\n"), 0644, false));
    return absl::OkStatus();
  }

  int holder_pid() const { return holder_pid_; }

  int Run() {
    while (!done_) {
      int timeout = -1;
      absl::Time now = absl::Now();
      for (const auto& [id, c] : containers_) {
        if (!c.kill_deadline) continue;
        int64_t ms = absl::ToInt64Milliseconds(*c.kill_deadline - now);
        ms = std::max<int64_t>(ms, 0) + 1;
        if (timeout < 0 || ms < timeout) timeout = static_cast<int>(std::min<int64_t>(ms, 60000));
      }
      if (trim_at_) {
        int64_t ms = std::max<int64_t>(absl::ToInt64Milliseconds(*trim_at_ - now), 0) + 1;
        if (timeout < 0 || ms < timeout) timeout = static_cast<int>(ms);
      }
      struct epoll_event events[16];
      int n = ::epoll_wait(epoll_.get(), events, 16, timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        Log(absl::StrCat("epoll_wait: ", std::strerror(errno)));
        return 1;
      }
      for (int i = 0; i < n; ++i) Dispatch(events[i]);
      CheckDeadlines();
      if (trim_at_ && absl::Now() >= *trim_at_) {
        trim_at_.reset();
        TrimMonitorCode();
      }
    }
    return 0;
  }

  // A request or an exit touched code that the idle loop does not need: once things are quiet,
  // the monitor's code pages are unmapped from it again (see TrimResidentCode).
  void ScheduleTrim() { trim_at_ = absl::Now() + absl::Seconds(1); }

 private:
  absl::Status Watch(int fd, Source source) {
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u64 = (static_cast<uint64_t>(source) << 32) | static_cast<uint32_t>(fd);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return LastErrnoError("epoll_ctl");
    return absl::OkStatus();
  }
  void Unwatch(int fd) { (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

  absl::Status StartHolder() {
    struct clone_args args {};
    args.flags = CLONE_NEWPID;
    args.exit_signal = SIGCHLD;
    pid_t pid = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
    if (pid < 0) return LastErrnoError("clone the pid namespace holder");
    if (pid == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      const char* argv[] = {"berth-monitor", "pause", nullptr};
      ::execv(options_.holder_binary.c_str(), const_cast<char* const*>(argv));
      ::_exit(127);
    }
    holder_pid_ = pid;
    return absl::OkStatus();
  }

  void Dispatch(const struct epoll_event& ev) {
    auto source = static_cast<Source>(ev.data.u64 >> 32);
    int fd = static_cast<int>(ev.data.u64 & 0xffffffffu);
    switch (source) {
      case Source::kListen: Accept(); break;
      case Source::kSignal: HandleSignals(); break;
      case Source::kConn: ReadConnection(fd); break;
      case Source::kAttach: ReadAttachConnection(fd, ev.events); break;
      case Source::kStdout:
      case Source::kStderr:
        ReadOutput(fd, source == Source::kStdout ? LogStream::kStdout : LogStream::kStderr);
        break;
    }
  }

  void Accept() {
    for (;;) {
      int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      conns_[fd] = FrameDecoder();
      if (!Watch(fd, Source::kConn).ok()) CloseConn(fd);
    }
  }

  void CloseConn(int fd) {
    Unwatch(fd);
    conns_.erase(fd);
    ::close(fd);
  }

  void Reply(int fd, const json& reply) {
    // Replies are small; the socket is switched to blocking for the write.
    int flags = ::fcntl(fd, F_GETFL);
    (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {5, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    (void)WriteFrame(fd, reply);
    CloseConn(fd);
  }

  void ReadConnection(int fd) {
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      CloseConn(fd);
      return;
    }
    FrameDecoder& decoder = conns_[fd];
    decoder.Feed(absl::string_view(buf, static_cast<size_t>(n)));
    absl::StatusOr<std::optional<json>> message = decoder.Next();
    if (!message.ok()) {
      Reply(fd, ErrorReply(message.status()));
      return;
    }
    if (!message->has_value()) return;
    Unwatch(fd);  // one request per connection
    Handle(fd, **message);
    ScheduleTrim();
  }

  Container* Find(const json& request, absl::Status* error) {
    std::string id = request.value("id", "");
    auto it = containers_.find(id);
    if (it == containers_.end()) {
      *error = absl::NotFoundError(absl::StrCat("container ", id, " is not in this pod"));
      return nullptr;
    }
    return &it->second;
  }

  void Handle(int fd, const json& request) {
    std::string op = request.value("op", "");
    absl::StatusOr<json> reply;
    try {
      if (op == "create") {
        reply = Create(request);
      } else if (op == "state") {
        reply = StateReply();
      } else if (op == "shutdown") {
        done_ = true;
        reply = json::object();
      } else {
        absl::Status error;
        Container* c = Find(request, &error);
        if (c == nullptr) {
          reply = error;
        } else if (op == "start") {
          reply = Start(*c);
        } else if (op == "kill") {
          absl::Status st = Kill(*c, request.value("signal", SIGTERM), request.value("all", false));
          reply = st.ok() ? absl::StatusOr<json>(json::object()) : st;
        } else if (op == "stop") {
          if (Stop(fd, *c, request.value("signal", SIGTERM),
                   request.value("timeout_ms", int64_t{0}))) {
            return;  // the reply comes with the exit
          }
          reply = json{{"exited", true}};
        } else if (op == "delete") {
          reply = Delete(*c);
        } else if (op == "attach") {
          absl::Status st = Attach(fd, *c, request);
          if (st.ok()) return;  // answered, with the descriptors
          reply = st;
        } else if (op == "reopen_log") {
          absl::Status st = c->log->Reopen();
          reply = st.ok() ? absl::StatusOr<json>(json::object()) : st;
        } else {
          reply = absl::InvalidArgumentError(absl::StrCat("unknown request \"", op, "\""));
        }
      }
    } catch (const json::exception& e) {
      reply = absl::InvalidArgumentError(absl::StrCat("malformed request: ", e.what()));
    }
    if (!reply.ok()) {
      Reply(fd, ErrorReply(reply.status()));
      return;
    }
    json r = *std::move(reply);
    r["ok"] = true;
    Reply(fd, r);
  }

  absl::StatusOr<json> Create(const json& request) {
    Container c;
    c.id = request.at("id").get<std::string>();
    c.dir = request.at("dir").get<std::string>();
    c.tty = request.value("tty", false);
    c.stdin = request.value("stdin", false);
    c.stdin_once = request.value("stdin_once", false);
    c.runtime = request.value("runtime", "");
    c.runtime_root = request.value("runtime_root", "");
    if (containers_.count(c.id) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("container ", c.id, " exists in this pod"));
    }
    ASSIGN_OR_RETURN(c.log,
                     CriLogWriter::Open(request.value("log_path", ""), options_.log_max_line));
    c.bundle = request.at("bundle").get<std::string>();
    const std::string& bundle = c.bundle;

    int stdio[3] = {-1, -1, -1};
    Pipe in, out, err;
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null) return LastErrnoError("open /dev/null");
    UniqueFd console_parent, console_child, console_listen;
    std::string console_path, console_arg;
    UniqueFd console_dir;
    if (c.tty) {
      if (c.runtime.empty()) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
          return LastErrnoError("socketpair for the console");
        }
        console_parent.reset(sv[0]);
        console_child.reset(sv[1]);
      } else {
        console_path = c.dir + "/console.sock";
        ASSIGN_OR_RETURN(console_listen, ListenConsole(console_path));
        // The runtime connects by path, and a bundle path is often longer than a unix socket
        // address may be: it is given the socket through our fd of its directory.
        console_arg = console_path;
        if (console_path.size() >= sizeof(sockaddr_un::sun_path)) {
          console_dir.reset(::open(c.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
          if (!console_dir) return LastErrnoError("open " + c.dir);
          console_arg =
              absl::StrCat("/proc/", ::getpid(), "/fd/", console_dir.get(), "/console.sock");
        }
      }
    } else {
      if (request.value("stdin", false)) {
        ASSIGN_OR_RETURN(in, MakePipe());
        stdio[0] = in.read.get();
      } else {
        stdio[0] = null.get();
      }
      ASSIGN_OR_RETURN(out, MakePipe());
      ASSIGN_OR_RETURN(err, MakePipe());
      stdio[1] = out.write.get();
      stdio[2] = err.write.get();
    }

    // Once the runtime has created the container, a failure of any later step deletes it
    // again: nothing of a failed create is left for berthd to find.
    bool created = false;
    absl::Cleanup undo = [&] {
      if (created) (void)DeleteRuntimeState(c);
    };
    if (c.runtime.empty()) {
      CreateOptions options;
      options.bundle = bundle;
      options.stdio[0] = stdio[0];
      options.stdio[1] = stdio[1];
      options.stdio[2] = stdio[2];
      options.console_socket_fd = console_child ? console_child.get() : -1;
      ASSIGN_OR_RETURN(int64_t pid, InChild([&]() -> absl::StatusOr<int64_t> {
                         return runtime_.Create(c.id, options);
                       }));
      c.pid = static_cast<pid_t>(pid);
      created = true;
      if (c.tty) {
        // The init sent it during the create; with our end of its socket closed, a create
        // that sent none reads EOF instead of waiting.
        console_child.reset();
        ASSIGN_OR_RETURN(c.master, ReceiveTerminal(console_parent.get()));
      }
    } else {
      std::string pid_file = c.dir + "/init.pid";
      std::vector<std::string> args = {"create", "--bundle", bundle, "--pid-file", pid_file};
      if (!c.runtime_root.empty()) args.insert(args.begin(), {"--root", c.runtime_root});
      if (c.tty) {
        args.push_back("--console-socket");
        args.push_back(console_arg);
      }
      args.push_back(c.id);
      RETURN_IF_ERROR(RunExternal(c.runtime, args, stdio));
      created = true;
      ASSIGN_OR_RETURN(std::string pid_text, ReadFile(pid_file, 64));
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(pid_text), &c.pid) || c.pid <= 0) {
        return absl::InternalError(absl::StrCat("bad pid file ", pid_file, ": ", pid_text));
      }
      if (c.tty) {
        UniqueFd conn(::accept4(console_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) return LastErrnoError("accept the console connection");
        ASSIGN_OR_RETURN(c.master, ReceiveTerminal(conn.get()));
        (void)::unlink(console_path.c_str());
      }
    }
    // Only the container holds the write ends now: EOF comes when its last writer exits.
    if (c.tty) {
      RETURN_IF_ERROR(SetNonBlocking(c.master.get()));
      c.out.reset(::fcntl(c.master.get(), F_DUPFD_CLOEXEC, 3));
      if (!c.out) return LastErrnoError("dup the terminal");
    } else {
      c.out = std::move(out.read);
      c.err = std::move(err.read);
      c.in = std::move(in.write);
      RETURN_IF_ERROR(SetNonBlocking(c.out.get()));
      RETURN_IF_ERROR(SetNonBlocking(c.err.get()));
    }
    RETURN_IF_ERROR(Watch(c.out.get(), Source::kStdout));
    if (c.err) RETURN_IF_ERROR(Watch(c.err.get(), Source::kStderr));
    streams_[c.out.get()] = c.id;
    if (c.err) streams_[c.err.get()] = c.id;
    pid_t pid = c.pid;
    std::string id = c.id;
    std::move(undo).Cancel();
    containers_.emplace(id, std::move(c));
    return json{{"pid", pid}};
  }

  absl::StatusOr<UniqueFd> ListenConsole(const std::string& path) {
    struct sockaddr_un addr {};
    UniqueFd dir;
    RETURN_IF_ERROR(UnixAddress(path, &addr, &dir));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return LastErrnoError("socket");
    (void)::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), 1) != 0) {
      return LastErrnoError("listen on " + path);
    }
    return fd;
  }

  absl::StatusOr<json> Start(Container& c) {
    if (c.runtime.empty()) {
      RETURN_IF_ERROR(InChild([&]() -> absl::StatusOr<int64_t> {
                        RETURN_IF_ERROR(runtime_.Start(c.id));
                        return 0;
                      }).status());
    } else {
      std::vector<std::string> args = {"start", c.id};
      if (!c.runtime_root.empty()) args.insert(args.begin(), {"--root", c.runtime_root});
      const int none[3] = {-1, -1, -1};
      RETURN_IF_ERROR(RunExternal(c.runtime, args, none));
    }
    return json{{"started_ns", absl::ToUnixNanos(absl::Now())}};
  }

  absl::Status Kill(Container& c, int signal, bool all) {
    if (c.exited && !all) return absl::OkStatus();
    if (c.runtime.empty()) {
      absl::Status st = InChild([&]() -> absl::StatusOr<int64_t> {
                          RETURN_IF_ERROR(runtime_.Kill(c.id, signal, all));
                          return 0;
                        }).status();
      // The init may have exited between our last look and the kill.
      if (!st.ok() && (c.exited || absl::IsFailedPrecondition(st))) return absl::OkStatus();
      return st;
    }
    std::vector<std::string> args = {"kill"};
    if (all) args.push_back("--all");
    args.push_back(c.id);
    args.push_back(absl::StrCat(signal));
    if (!c.runtime_root.empty()) args.insert(args.begin(), {"--root", c.runtime_root});
    const int none[3] = {-1, -1, -1};
    absl::Status st = RunExternal(c.runtime, args, none);
    return c.exited ? absl::OkStatus() : st;
  }

  // True when the reply is deferred until the container exits.
  bool Stop(int fd, Container& c, int signal, int64_t timeout_ms) {
    if (c.exited) return false;
    if (timeout_ms <= 0) {
      (void)Kill(c, SIGKILL, true);
      c.kill_deadline = absl::Now();
    } else {
      absl::Status st = Kill(c, signal, false);
      if (!st.ok()) Log(absl::StrCat("stop ", c.id, ": ", st.message()));
      absl::Time deadline = absl::Now() + absl::Milliseconds(timeout_ms);
      if (!c.kill_deadline || deadline < *c.kill_deadline) c.kill_deadline = deadline;
    }
    c.stop_waiters.push_back(fd);
    return true;
  }

  void CheckDeadlines() {
    absl::Time now = absl::Now();
    for (auto& [id, c] : containers_) {
      if (c.exited || !c.kill_deadline || *c.kill_deadline > now) continue;
      absl::Status st = Kill(c, SIGKILL, true);
      if (!st.ok()) Log(absl::StrCat("kill ", id, ": ", st.message()));
      c.kill_deadline = now + absl::Seconds(5);  // try again if it is still there then
    }
  }

  // Removes the container's runtime state (killing what is left of it). NotFound is fine.
  absl::Status DeleteRuntimeState(const Container& c) {
    if (c.runtime.empty()) {
      absl::Status st = InChild([&]() -> absl::StatusOr<int64_t> {
                          RETURN_IF_ERROR(runtime_.Delete(c.id, true));
                          return 0;
                        }).status();
      if (!st.ok() && !absl::IsNotFound(st)) return st;
      return absl::OkStatus();
    }
    std::vector<std::string> args = {"delete", "--force", c.id};
    if (!c.runtime_root.empty()) args.insert(args.begin(), {"--root", c.runtime_root});
    const int none[3] = {-1, -1, -1};
    return RunExternal(c.runtime, args, none);
  }

  absl::StatusOr<json> Delete(Container& c) {
    RETURN_IF_ERROR(DeleteRuntimeState(c));
    CloseStreams(c);
    for (int waiter : c.stop_waiters) Reply(waiter, json{{"ok", true}, {"exited", true}});
    containers_.erase(c.id);
    return json::object();
  }

  void CloseStreams(Container& c) {
    DetachAll(c);
    for (UniqueFd* fd : {&c.out, &c.err}) {
      if (!*fd) continue;
      Unwatch(fd->get());
      streams_.erase(fd->get());
      fd->reset();
    }
    if (c.log) {
      absl::Time now = absl::Now();
      (void)c.log->EndStream(LogStream::kStdout, now);
      (void)c.log->EndStream(LogStream::kStderr, now);
    }
  }

  // Reads what is there; at EOF the stream ends. Returns false at EOF.
  // Reads at most `max_reads` chunks of what is there (the loop is level-triggered: a
  // container that writes without pause is served again on the next turn, after the other
  // fds and the deadlines); at EOF the stream ends. Returns false at EOF.
  bool Drain(Container& c, int fd, LogStream stream, int max_reads = 4) {
    char buf[16384];
    for (int i = 0; i < max_reads; ++i) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        absl::string_view data(buf, static_cast<size_t>(n));
        Fanout(c, stream, data);
        absl::Status st = c.log->Write(stream, data, absl::Now());
        if (!st.ok() && absl::Now() >= log_error_quiet_until_) {
          Log(absl::StrCat("log of ", c.id, ": ", st.message()));
          log_error_quiet_until_ = absl::Now() + absl::Seconds(10);
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      // EOF, or EIO from a pty whose last slave closed.
      Unwatch(fd);
      streams_.erase(fd);
      (void)c.log->EndStream(stream, absl::Now());
      if (c.out.get() == fd) c.out.reset();
      if (c.err.get() == fd) c.err.reset();
      for (Attacher& a : c.attachers) (stream == LogStream::kStdout ? a.out : a.err).reset();
      if (!c.out && !c.err) DetachAll(c);  // the output has ended: so have the attach sessions
      return false;
    }
    return true;
  }

  // attach: pipes of its own for the output the client wants, and the container's stdin (the
  // stdin pipe, or the terminal) and terminal (for resizes), sent with the reply. The
  // connection stays open: its end detaches the session.
  absl::Status Attach(int fd, Container& c, const json& request) {
    const bool want_in = request.value("stdin", false);
    const bool want_out = request.value("stdout", false);
    const bool want_err = request.value("stderr", false) && !c.tty;
    if (c.exited || (!c.out && !c.err)) {
      return absl::FailedPreconditionError(absl::StrCat("container ", c.id, " is not running"));
    }
    if (want_in && !c.stdin) {
      return absl::FailedPreconditionError(
          absl::StrCat("container ", c.id, " was not created with stdin"));
    }
    if (want_in && !c.tty && !c.in) {
      return absl::FailedPreconditionError(
          absl::StrCat("the stdin of container ", c.id, " was closed (stdin_once)"));
    }
    Attacher a;
    a.conn = fd;
    a.stdin = want_in;
    std::vector<UniqueFd> send;
    json names = json::array();
    for (auto [want, keep, name] :
         {std::tuple{want_out, &a.out, "out"}, std::tuple{want_err, &a.err, "err"}}) {
      if (!want) continue;
      ASSIGN_OR_RETURN(Pipe p, MakePipe());
      RETURN_IF_ERROR(SetNonBlocking(p.write.get()));
      // Room for bursts: a client that falls further behind is detached, not waited for.
      (void)::fcntl(p.write.get(), F_SETPIPE_SZ, 1 << 20);
      *keep = std::move(p.write);
      send.push_back(std::move(p.read));
      names.push_back(name);
    }
    auto dup = [&](int src, const char* name) -> absl::Status {
      UniqueFd d(::fcntl(src, F_DUPFD_CLOEXEC, 3));
      if (!d) return LastErrnoError("dup for attach");
      send.push_back(std::move(d));
      names.push_back(name);
      return absl::OkStatus();
    };
    if (want_in) RETURN_IF_ERROR(dup(c.tty ? c.master.get() : c.in.get(), "in"));
    if (c.tty) RETURN_IF_ERROR(dup(c.master.get(), "tty"));
    std::vector<int> raw;
    for (const UniqueFd& f : send) raw.push_back(f.get());
    int flags = ::fcntl(fd, F_GETFL);
    (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {5, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    absl::Status sent =
        WriteFrameWithFds(fd, json{{"ok", true}, {"fds", names}, {"tty", c.tty}}, raw);
    if (!sent.ok() || !Watch(fd, Source::kAttach).ok()) {
      CloseConn(fd);
      return absl::OkStatus();  // nobody left to answer
    }
    attach_conns_[fd] = c.id;
    c.attachers.push_back(std::move(a));
    return absl::OkStatus();
  }

  // Copies output to the attach sessions. One that cannot take it at once (it fell 1 MiB
  // behind, or went away) is detached: the log and the container never wait for a client.
  void Fanout(Container& c, LogStream stream, absl::string_view data) {
    for (size_t i = 0; i < c.attachers.size();) {
      UniqueFd& pipe = stream == LogStream::kStdout ? c.attachers[i].out : c.attachers[i].err;
      if (pipe) {
        ssize_t n;
        do {
          n = ::write(pipe.get(), data.data(), data.size());
        } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(data.size())) {
          Log(absl::StrCat("attach to ", c.id, ": the client fell behind or left; detached"));
          Detach(c, i);
          continue;
        }
      }
      ++i;
    }
  }

  void Detach(Container& c, size_t index) {
    Attacher& a = c.attachers[index];
    attach_conns_.erase(a.conn);
    CloseConn(a.conn);
    // stdin_once: the container's stdin closes with the first session that used it.
    if (a.stdin && c.stdin_once && !c.tty) c.in.reset();
    c.attachers.erase(c.attachers.begin() + static_cast<std::ptrdiff_t>(index));
  }

  void DetachAll(Container& c) {
    while (!c.attachers.empty()) Detach(c, c.attachers.size() - 1);
  }

  // An attach connection carries nothing after the reply. berthd half-closes it when the
  // client's stdin ends (with stdin_once, the container's stdin closes then), and closes it
  // when the session ends (detach).
  void ReadAttachConnection(int fd, uint32_t events) {
    auto it = attach_conns_.find(fd);
    if (it == attach_conns_.end()) {
      CloseConn(fd);
      return;
    }
    Container& c = containers_.at(it->second);
    size_t index = 0;
    while (index < c.attachers.size() && c.attachers[index].conn != fd) ++index;
    if (index == c.attachers.size()) {
      CloseConn(fd);
      return;
    }
    if ((events & (EPOLLHUP | EPOLLERR)) == 0) {
      char buf[256];
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return;
      if (n == 0) {
        Attacher& a = c.attachers[index];
        if (a.stdin && c.stdin_once && !c.tty) c.in.reset();
        // Only the hang-up is of interest now (reported whatever the event mask).
        struct epoll_event ev {};
        ev.events = 0;
        ev.data.u64 = (static_cast<uint64_t>(Source::kAttach) << 32) | static_cast<uint32_t>(fd);
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
        return;
      }
    }
    Detach(c, index);
  }

  void ReadOutput(int fd, LogStream stream) {
    auto it = streams_.find(fd);
    if (it == streams_.end()) {
      Unwatch(fd);
      return;
    }
    Container& c = containers_.at(it->second);
    Drain(c, fd, stream);
  }

  void HandleSignals() {
    struct signalfd_siginfo info;
    while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
      if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
        // The pod's containers do not depend on the monitor's life, but their output does:
        // only berthd's shutdown request ends the monitor.
        Log(absl::StrCat("ignoring signal ", info.ssi_signo, " from pid ", info.ssi_pid));
      }
    }
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      if (pid == holder_pid_) {
        Log(absl::StrCat("the pid namespace holder ", pid, " exited (status ", status, ")"));
        holder_pid_ = 0;
        continue;
      }
      for (auto& [id, c] : containers_) {
        if (c.pid == pid && !c.exited) {
          Exited(c, status);
          break;
        }
      }
    }
  }

  void Exited(Container& c, int status) {
    c.exited = true;
    c.kill_deadline.reset();
    // Whatever the container wrote before it exited is in the pipes now.
    // (Bounded: background processes of the container may still be writing.)
    if (c.out) Drain(c, c.out.get(), LogStream::kStdout, 64);
    if (c.err) Drain(c, c.err.get(), LogStream::kStderr, 64);
    int exit_code = 0, signal = 0;
    if (WIFEXITED(status)) {
      exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      signal = WTERMSIG(status);
      exit_code = 128 + signal;
    }
    bool oom = OomKilled(c);
    json record = {{"exit_code", exit_code},
                   {"signal", signal},
                   {"finished_ns", absl::ToUnixNanos(absl::Now())},
                   {"oom_killed", oom}};
    absl::Status st = WriteFileAtomic(c.dir + "/exit", record.dump(), 0644, true);
    if (!st.ok()) Log(absl::StrCat("record the exit of ", c.id, ": ", st.message()));
    for (int waiter : c.stop_waiters) Reply(waiter, json{{"ok", true}, {"exited", true}});
    c.stop_waiters.clear();
    ScheduleTrim();
  }

  bool OomKilled(const Container& c) {
    absl::StatusOr<int64_t> oom = InChild([&]() -> absl::StatusOr<int64_t> {
      // The runtime library's state names the cgroup; an external runtime's state is not
      // ours to read, so its cgroup comes from the bundle's config.json.
      std::string path;
      absl::StatusOr<ContainerInfo> info =
          c.runtime.empty() ? runtime_.State(c.id) : absl::NotFoundError("external runtime");
      if (info.ok()) {
        path = info->state.cgroup_path;
      } else {
        ASSIGN_OR_RETURN(std::string text, ReadFile(c.bundle + "/config.json", 16 << 20));
        ASSIGN_OR_RETURN(Spec spec, ParseSpec(text));
        path = spec.linux.cgroups_path;
      }
      ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Manager> manager, cgroups::NewManager());
      ASSIGN_OR_RETURN(std::unique_ptr<cgroups::Cgroup> cg, manager->Load(path));
      ASSIGN_OR_RETURN(cgroups::Stats stats, cg->GetStats());
      return stats.memory.oom_kills > 0 ? 1 : 0;
    });
    return oom.ok() && *oom == 1;
  }

  json StateReply() {
    json list = json::array();
    for (const auto& [id, c] : containers_) {
      list.push_back({{"id", id}, {"pid", c.pid}, {"exited", c.exited}});
    }
    return json{{"pid", ::getpid()}, {"holder_pid", holder_pid_}, {"containers", list}};
  }

  MonitorOptions options_;
  Runtime runtime_;
  UniqueFd epoll_, listen_, signal_fd_;
  std::map<int, FrameDecoder> conns_;
  std::map<std::string, Container> containers_;
  std::map<int, std::string> streams_;       // stdout/stderr fd -> container id
  std::map<int, std::string> attach_conns_;  // attach connection -> container id
  std::optional<absl::Time> trim_at_;
  absl::Time log_error_quiet_until_ = absl::InfinitePast();
  pid_t holder_pid_ = 0;
  bool done_ = false;
};

}  // namespace

int RunMonitor(const MonitorOptions& options) {
  // The ready pipe must reach no child (the pid namespace holder, containers): its reader
  // waits for EOF.
  if (options.ready_fd >= 0) (void)::fcntl(options.ready_fd, F_SETFD, FD_CLOEXEC);
  Monitor monitor(options);
  absl::Status st = monitor.Init();
  if (options.ready_fd >= 0) {
    json ready = st.ok() ? json{{"pid", ::getpid()}, {"holder_pid", monitor.holder_pid()}}
                         : json{{"error", st.message()}};
    std::string line = ready.dump() + "\n";
    (void)!::write(options.ready_fd, line.data(), line.size());
    ::close(options.ready_fd);
  }
  if (!st.ok()) {
    Log(absl::StrCat("berth-monitor: ", st.message()));
    return 1;
  }
  TrimMonitorCode();
  return monitor.Run();
}

int RunExecWait(int argc, char** argv) {
  // argv[0] is "exec-wait"; an optional --console-socket PATH comes first.
  std::string console_socket;
  int at = 1;
  if (argc > 2 && std::strcmp(argv[1], "--console-socket") == 0) {
    console_socket = argv[2];
    at = 3;
  }
  if (argc - at < 5) {
    Log("usage: berth-monitor exec-wait [--console-socket PATH] RUNTIME ROOT PID_FILE ID CMD...");
    return 255;
  }
  const std::string runtime = argv[at], root = argv[at + 1], pid_file = argv[at + 2];
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    Log(absl::StrCat("exec-wait: become a subreaper: ", std::strerror(errno)));
    return 255;
  }
  // SIGTERM, SIGHUP or SIGINT to this process (a streaming session that ended early) kills
  // the exec'd process: it is our child once reparented, so its pid cannot be reused before we
  // reap it. Signals are taken from a signalfd, together with SIGCHLD.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGHUP, SIGINT}) sigaddset(&set, sig);
  sigset_t old;
  ::sigprocmask(SIG_BLOCK, &set, &old);
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sigfd) {
    Log(absl::StrCat("exec-wait: signalfd: ", std::strerror(errno)));
    return 255;
  }
  std::vector<std::string> args = {"--root", root, "exec", "--detach", "--pid-file", pid_file};
  if (!console_socket.empty()) {
    args.insert(args.end(), {"--tty", "--console-socket", console_socket});
  }
  for (int i = at + 3; i < argc; ++i) args.emplace_back(argv[i]);
  std::vector<char*> cargv;
  cargv.push_back(const_cast<char*>(runtime.c_str()));
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t rt = ::fork();
  if (rt < 0) return 255;
  if (rt == 0) {
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    ::execv(runtime.c_str(), cargv.data());
    ::_exit(127);
  }
  bool cancelled = false;
  pid_t pid = 0;  // the exec'd process, once the runtime has exited
  // Children reaped before their pid was known: the exec'd process can exit (and be
  // reparented here as a zombie) before the runtime is reaped.
  std::map<pid_t, int> reaped;
  auto code = [](int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  };
  for (;;) {
    struct signalfd_siginfo si {};
    ssize_t n = ::read(sigfd.get(), &si, sizeof si);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof si)) return 255;
    if (si.ssi_signo != SIGCHLD) {
      cancelled = true;
      if (rt > 0) ::kill(rt, SIGKILL);  // the runtime, if it is still setting up
      if (pid > 0) ::kill(pid, SIGKILL);
      continue;
    }
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (r == rt) {
        rt = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 255;
        absl::StatusOr<std::string> text = ReadFile(pid_file, 64);
        if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid) || pid <= 0) {
          Log(absl::StrCat("exec-wait: no pid in ", pid_file));
          return 255;
        }
        if (auto it = reaped.find(pid); it != reaped.end()) return code(it->second);
        if (cancelled) ::kill(pid, SIGKILL);
        continue;
      }
      if (WIFSTOPPED(status) || WIFCONTINUED(status)) continue;
      if (pid > 0 && r == pid) return code(status);
      if (pid == 0) reaped[r] = status;
    }
  }
}

void RunPidHolder() {
  // pid 1 of the pod's pid namespace: orphans of every container are reparented here and
  // reaped. Signals other than SIGKILL from outside the namespace are ignored by the kernel
  // for a pid 1 without handlers; SIGCHLD gets one so that sigsuspend returns.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  ::sigaction(SIGCHLD, &sa, nullptr);
  sigset_t block, wait_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &block, &wait_mask);
  sigdelset(&wait_mask, SIGCHLD);
  ::prctl(PR_SET_NAME, "berth-pause");
  for (;;) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    ::sigsuspend(&wait_mask);
  }
}

}  // namespace berth::runtime

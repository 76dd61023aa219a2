#include "runtime/console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::runtime {

namespace {

// Writes all of `data`; false when the reader is gone.
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConsoleRelay>> ConsoleRelay::Listen(const std::string& dir) {
  RETURN_IF_ERROR(MkdirAll(dir, 0700));
  std::unique_ptr<ConsoleRelay> relay(new ConsoleRelay());
  relay->path_ = absl::StrCat(dir, "/console-", ::getpid(), ".sock");
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (relay->path_.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", relay->path_));
  }
  std::memcpy(addr.sun_path, relay->path_.c_str(), relay->path_.size());
  relay->listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!relay->listener_) return LastErrnoError("socket for the console");
  ::unlink(relay->path_.c_str());
  if (::bind(relay->listener_.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(relay->listener_.get(), 1) != 0) {
    return LastErrnoError(absl::StrCat("listen on ", relay->path_));
  }
  return relay;
}

absl::StatusOr<UniqueFd> ReceiveTerminal(int socket) {
  char name[4096];
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return LastErrnoError("receive the terminal from the console socket");
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      return UniqueFd(fd);
    }
  }
  return absl::InternalError("the console socket message carried no terminal");
}

ConsoleRelay::~ConsoleRelay() {
  if (restore_) ::tcsetattr(0, TCSANOW, &saved_);
  if (listener_) ::unlink(path_.c_str());
}

absl::Status ConsoleRelay::Accept() {
  UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return LastErrnoError("accept on the console socket");
  ::unlink(path_.c_str());
  listener_.reset();
  ASSIGN_OR_RETURN(master_, ReceiveTerminal(conn.get()));
  return absl::OkStatus();
}

absl::StatusOr<int> ConsoleRelay::RelayUntilExit(pid_t pid) {
  if (::isatty(0) && ::tcgetattr(0, &saved_) == 0) {
    struct termios raw = saved_;
    ::cfmakeraw(&raw);
    if (::tcsetattr(0, TCSANOW, &raw) == 0) restore_ = true;
  }
  struct winsize ws {};
  if (::ioctl(1, TIOCGWINSZ, &ws) == 0 || ::ioctl(0, TIOCGWINSZ, &ws) == 0) {
    (void)::ioctl(master_.get(), TIOCSWINSZ, &ws);
  }
  UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!exited) return LastErrnoError("pidfd_open");
  bool input = true;
  bool output = true;
  char buf[16384];
  while (output) {
    struct pollfd p[3] = {{.fd = master_.get(), .events = POLLIN, .revents = 0},
                          {.fd = exited.get(), .events = POLLIN, .revents = 0},
                          {.fd = input ? 0 : -1, .events = POLLIN, .revents = 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError("poll the terminal");
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(master_.get(), buf, sizeof buf);
      if (n > 0) {
        (void)WriteAll(1, buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        output = false;  // EIO: every holder of the pty's other side is gone
      }
    }
    if (p[2].revents & (POLLIN | POLLHUP)) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n <= 0 || !WriteAll(master_.get(), buf, static_cast<size_t>(n))) input = false;
    }
    if (p[1].revents & POLLIN) {
      // The process is gone: take what it wrote last, then stop.
      ::fcntl(master_.get(), F_SETFL, O_NONBLOCK);
      for (;;) {
        ssize_t n = ::read(master_.get(), buf, sizeof buf);
        if (n <= 0) break;
        (void)WriteAll(1, buf, static_cast<size_t>(n));
      }
      output = false;
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return LastErrnoError("waitpid");
  }
  return status;
}

}  // namespace berth::runtime

#include "runtime/monitor_proto.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/json.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::runtime {
namespace {

constexpr size_t kHeader = 4;
// Messages are flat objects; anything deeper is refused before parsing (see base/json.h).
constexpr int kMaxDepth = 64;
// After a large frame the decoder gives its memory back once it is drained.
constexpr size_t kKeepCapacity = 64 * 1024;

uint32_t DecodeLength(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

absl::Status BadLength(uint32_t len) {
  return absl::InvalidArgumentError(
      absl::StrCat("monitor frame of ", len, " bytes exceeds the limit of ", kMaxFrame));
}

absl::StatusOr<nlohmann::json> ParseMessage(absl::string_view text) {
  if (!JsonNestingWithin(text, kMaxDepth)) {
    return absl::InvalidArgumentError("monitor frame: JSON nested too deeply");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("monitor frame: ", e.what()));
  }
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("monitor frame: invalid JSON ", QuoteForMessage(text)));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("monitor frame: JSON is not an object: ", QuoteForMessage(text)));
  }
  return j;
}

// Milliseconds to pass to poll for `deadline`: -1 forever, 0 when it has passed.
int PollTimeout(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// Waits until `fd` is ready for `events` or `deadline` passes. An error revent (POLLERR,
// POLLHUP) counts as ready: the following read/write reports what happened.
absl::Status WaitFor(int fd, short events, absl::Time deadline) {
  for (;;) {
    struct pollfd p = {fd, events, 0};
    int timeout = PollTimeout(deadline);
    int n = ::poll(&p, 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError("poll monitor socket");
    }
    if (n > 0) return absl::OkStatus();
    if (timeout == 0 || absl::Now() >= deadline) {
      return absl::DeadlineExceededError("timed out waiting for the monitor");
    }
  }
}

absl::Status WriteAll(int fd, absl::string_view data, absl::Time deadline) {
  bool socket = true;
  while (!data.empty()) {
    ssize_t n = socket ? ::send(fd, data.data(), data.size(), MSG_NOSIGNAL)
                       : ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOTSOCK && socket) {
        socket = false;
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        RETURN_IF_ERROR(WaitFor(fd, POLLOUT, deadline));
        continue;
      }
      return LastErrnoError("write monitor socket");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Reads exactly `len` bytes into `out`. Unavailable on EOF.
absl::Status ReadExactly(int fd, char* out, size_t len, absl::Time deadline) {
  size_t got = 0;
  while (got < len) {
    RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline));
    ssize_t n = ::read(fd, out + got, len - got);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return LastErrnoError("read monitor socket");
    }
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("monitor socket closed after ", got, " of ", len, " bytes"));
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeFrame(const nlohmann::json& message) {
  std::string text =
      message.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  uint32_t len = text.size() > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(text.size());
  char header[kHeader] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16),
                          static_cast<char>(len >> 8), static_cast<char>(len)};
  text.insert(0, header, kHeader);
  return text;
}

absl::Status WriteFrame(int fd, const nlohmann::json& message) {
  std::string frame = EncodeFrame(message);
  if (frame.size() - kHeader > kMaxFrame) {
    return absl::InvalidArgumentError(absl::StrCat("monitor message of ", frame.size() - kHeader,
                                                   " bytes exceeds the limit of ", kMaxFrame));
  }
  return WriteAll(fd, frame, absl::InfiniteFuture());
}

absl::StatusOr<nlohmann::json> ReadFrame(int fd, absl::Time deadline) {
  char header[kHeader];
  RETURN_IF_ERROR(ReadExactly(fd, header, kHeader, deadline));
  uint32_t len = DecodeLength(header);
  if (len > kMaxFrame) return BadLength(len);
  std::string text(len, '\0');
  RETURN_IF_ERROR(ReadExactly(fd, text.data(), len, deadline));
  return ParseMessage(text);
}

void FrameDecoder::Feed(absl::string_view bytes) {
  if (!error_.ok() || bytes.empty()) return;
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

absl::StatusOr<std::optional<nlohmann::json>> FrameDecoder::Next() {
  if (!error_.ok()) return error_;
  absl::string_view rest(buffer_);
  rest.remove_prefix(consumed_);
  if (rest.size() < kHeader) return std::nullopt;
  uint32_t len = DecodeLength(rest.data());
  if (len > kMaxFrame) {
    error_ = BadLength(len);
    std::string().swap(buffer_);
    consumed_ = 0;
    return error_;
  }
  if (rest.size() - kHeader < len) return std::nullopt;
  absl::StatusOr<nlohmann::json> message = ParseMessage(rest.substr(kHeader, len));
  if (!message.ok()) {
    error_ = message.status();
    std::string().swap(buffer_);
    consumed_ = 0;
    return error_;
  }
  consumed_ += kHeader + len;
  if (consumed_ == buffer_.size()) {
    consumed_ = 0;
    if (buffer_.capacity() > kKeepCapacity) {
      std::string().swap(buffer_);
    } else {
      buffer_.clear();
    }
  }
  return std::optional<nlohmann::json>(*std::move(message));
}

absl::Status UnixAddress(const std::string& path, struct sockaddr_un* addr, UniqueFd* dir_fd) {
  *addr = {};
  addr->sun_family = AF_UNIX;
  std::string name = path;
  if (path.size() >= sizeof(addr->sun_path)) {
    size_t slash = path.find_last_of('/');
    if (slash == std::string::npos || slash == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unix socket path too long: ", path));
    }
    dir_fd->reset(::open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!*dir_fd) return LastErrnoError("open the directory of " + path);
    name = absl::StrCat("/proc/self/fd/", dir_fd->get(), path.substr(slash));
  }
  if (name.empty() || name.size() >= sizeof(addr->sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("unix socket path too long: ", path));
  }
  std::memcpy(addr->sun_path, name.data(), name.size());
  return absl::OkStatus();
}

namespace {

// Connects to the monitor's socket and sends `request`.
absl::StatusOr<UniqueFd> Send(const std::string& socket_path, const nlohmann::json& request,
                              absl::Time deadline) {
  struct sockaddr_un addr {};
  UniqueFd dir;
  RETURN_IF_ERROR(UnixAddress(socket_path, &addr, &dir));

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return LastErrnoError("socket(AF_UNIX)");
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const struct sockaddr*>(&addr), sizeof(addr)) == 0) {
      break;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {  // the listener's backlog is full: retry until the deadline
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("connect ", socket_path, ": timed out (backlog full)"));
      }
      absl::SleepFor(absl::Milliseconds(5));
      continue;
    }
    return absl::UnavailableError(absl::StrCat("connect ", socket_path, ": ", ErrnoString(err)));
  }

  std::string frame = EncodeFrame(request);
  if (frame.size() - kHeader > kMaxFrame) {
    return absl::InvalidArgumentError(absl::StrCat("monitor request of ", frame.size() - kHeader,
                                                   " bytes exceeds the limit of ", kMaxFrame));
  }
  absl::Status written = WriteAll(fd.get(), frame, deadline);
  if (!written.ok()) return Annotate(written, socket_path);
  return fd;
}

}  // namespace

absl::StatusOr<nlohmann::json> Call(const std::string& socket_path, const nlohmann::json& request,
                                    absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(UniqueFd fd, Send(socket_path, request, deadline));
  absl::StatusOr<nlohmann::json> reply = ReadFrame(fd.get(), deadline);
  if (!reply.ok()) return Annotate(reply.status(), socket_path);
  return reply;
}

absl::Status WriteFrameWithFds(int fd, const nlohmann::json& message,
                               const std::vector<int>& fds) {
  std::string frame = EncodeFrame(message);
  if (frame.size() - kHeader > kMaxFrame) {
    return absl::InvalidArgumentError(absl::StrCat("monitor message of ", frame.size() - kHeader,
                                                   " bytes exceeds the limit of ", kMaxFrame));
  }
  if (fds.size() > kMaxFds) return absl::InvalidArgumentError("too many fds for one message");
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  struct iovec iov = {frame.data(), frame.size()};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return LastErrnoError("send on the monitor socket");
  // The fds went with the first byte; the rest of a long frame follows plainly.
  return WriteAll(fd, absl::string_view(frame).substr(static_cast<size_t>(n)),
                  absl::InfiniteFuture());
}

absl::StatusOr<nlohmann::json> CallWithFds(const std::string& socket_path,
                                           const nlohmann::json& request, absl::Duration timeout,
                                           std::vector<UniqueFd>* fds, UniqueFd* conn) {
  absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(UniqueFd fd, Send(socket_path, request, deadline));
  FrameDecoder decoder;
  for (;;) {
    absl::StatusOr<std::optional<nlohmann::json>> reply = decoder.Next();
    if (!reply.ok()) return Annotate(reply.status(), socket_path);
    if (reply->has_value()) {
      *conn = std::move(fd);
      return **reply;
    }
    RETURN_IF_ERROR(Annotate(WaitFor(fd.get(), POLLIN, deadline), socket_path));
    char buf[4096];
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return LastErrnoError(absl::StrCat("read ", socket_path));
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
        fds->emplace_back(received);
      }
    }
    if (n == 0) {
      return absl::UnavailableError(absl::StrCat(socket_path, ": closed before the reply"));
    }
    decoder.Feed(absl::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace berth::runtime

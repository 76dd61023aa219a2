#include "cri/client/connection.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cri/client/endpoint.h"

namespace berth::cri::client {

namespace {

// Tries a plain connect() first: it tells "no socket", "nobody listening" and "permission
// denied" apart precisely, where gRPC would only report a generic transient failure.
absl::Status ProbeSocket(const std::string& endpoint, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::UnavailableError(absl::StrCat("cannot connect to the runtime at ", endpoint,
                                                 ": socket ", path,
                                                 " does not exist (is the runtime running?)"));
    }
    return ErrnoError(errno,
                      absl::StrCat("cannot connect to the runtime at ", endpoint, ": stat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot connect to the runtime at ", endpoint,
                                                      ": ", path, " is not a unix socket"));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is too long"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return LastErrnoError("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == ECONNREFUSED) {
      return absl::UnavailableError(absl::StrCat("cannot connect to the runtime at ", endpoint,
                                                 ": nothing is listening on ", path,
                                                 " (connection refused)"));
    }
    return ErrnoError(err, absl::StrCat("cannot connect to the runtime at ", endpoint));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Connection> Connection::Open(const std::string& endpoint, absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::string ep, NormalizeEndpoint(endpoint));
  RETURN_IF_ERROR(ProbeSocket(ep, SocketPathOf(ep)));

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  // One try is enough: the probe above showed someone accepts connections.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  auto channel = grpc::CreateCustomChannel(ep, grpc::InsecureChannelCredentials(), args);

  const auto deadline = absl::ToChronoTime(absl::Now() + timeout);
  for (;;) {
    grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) break;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to the runtime at ", ep,
          ": the peer accepted the connection but did not complete a gRPC (HTTP/2) handshake; "
          "is it a CRI runtime?"));
    }
    if (!channel->WaitForStateChange(state, deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat("cannot connect to the runtime at ", ep, ": no gRPC handshake within ",
                       absl::FormatDuration(timeout), "; is it a CRI runtime?"));
    }
  }

  Connection c;
  c.endpoint_ = ep;
  c.timeout_ = timeout;
  c.channel_ = channel;
  c.runtime_ = ::runtime::v1::RuntimeService::NewStub(channel);
  c.image_ = ::runtime::v1::ImageService::NewStub(channel);
  c.admin_ = ::berth::admin::v1::Admin::NewStub(channel);
  return c;
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return ctx;
}

std::unique_ptr<grpc::ClientContext> Connection::NewLongContext(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (timeout > absl::ZeroDuration()) ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

absl::Status Connection::Check(const grpc::Status& status, absl::string_view rpc) const {
  if (status.ok()) return absl::OkStatus();
  const std::string& msg = status.error_message();
  auto code = static_cast<absl::StatusCode>(status.error_code());
  // Every CRI runtime implements Version; Go servers also name an unknown service.
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
      (rpc == "Version" || absl::StrContains(msg, "unknown service runtime.v1."))) {
    return absl::UnimplementedError(
        absl::StrCat("the peer at ", endpoint_, " is not a CRI runtime.v1 server (",
                     msg.empty() ? std::string("UNIMPLEMENTED") : msg, ")"));
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(absl::StrCat(rpc, " at ", endpoint_, ": no answer within ",
                                                    absl::FormatDuration(timeout_)));
  }
  return absl::Status(code, absl::StrCat(rpc, ": ", msg));
}

}  // namespace berth::cri::client

// A connection to any CRI runtime (berthd, containerd, CRI-O) over its unix socket, through the
// generated runtime.v1 stubs only. Failing to reach the runtime is a clear error, never a hang.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include "absl/strings/string_view.h"

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/api/cri.h"

namespace berth::cri::client {

class Connection {
 public:
  // Checks the socket, connects and waits (up to `timeout`) for the gRPC channel to be ready.
  static absl::StatusOr<Connection> Open(const std::string& endpoint, absl::Duration timeout);

  ::runtime::v1::RuntimeService::Stub& runtime() { return *runtime_; }
  ::runtime::v1::ImageService::Stub& image() { return *image_; }
  // berth's own admin service (berthd only; other runtimes answer UNIMPLEMENTED).
  ::berth::admin::v1::Admin::Stub& admin() { return *admin_; }

  // A context whose deadline is the connection's timeout from now.
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // A context for long calls (pulls, imports): `timeout` from now, none when it is zero.
  static std::unique_ptr<grpc::ClientContext> NewLongContext(absl::Duration timeout);

  // Turns a failed call into an absl::Status whose message says what happened in terms of the
  // endpoint: a peer that is not a CRI runtime.v1 server, a timeout, an RPC the runtime lacks.
  absl::Status Check(const grpc::Status& status, absl::string_view rpc) const;

  const std::string& endpoint() const { return endpoint_; }

 private:
  Connection() = default;
  std::string endpoint_;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<::runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<::runtime::v1::ImageService::Stub> image_;
  std::unique_ptr<::berth::admin::v1::Admin::Stub> admin_;
};

}  // namespace berth::cri::client

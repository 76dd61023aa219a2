// absl::Status -> grpc::Status, done once at the CRI edge.
#pragma once

#include <grpcpp/support/status.h>
#include "absl/strings/string_view.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace berth::cri {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// The answer of every RPC whose issue has not landed yet: never a fake success.
inline grpc::Status NotImplemented(absl::string_view rpc) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat(rpc, " is not implemented by berth yet"));
}

}  // namespace berth::cri

// Defines Service::Name for a unary RPC that answers UNIMPLEMENTED naming itself.
#define BERTH_UNIMPLEMENTED_RPC(Service, Name)                               \
  grpc::Status Service::Name(grpc::ServerContext*, const v1::Name##Request*, \
                             v1::Name##Response*) {                          \
    return NotImplemented(#Name);                                            \
  }

// The same for a server-streaming RPC.
#define BERTH_UNIMPLEMENTED_STREAM_RPC(Service, Name)                        \
  grpc::Status Service::Name(grpc::ServerContext*, const v1::Name##Request*, \
                             grpc::ServerWriter<v1::Name##Response>*) {      \
    return NotImplemented(#Name);                                            \
  }

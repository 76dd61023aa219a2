// Logging for every CRI call, kept out of the handlers (as containerd's instrumented service
// does): one debug line per RPC with its method, gRPC status and duration.
#pragma once

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace berth::cri {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeLoggingInterceptorFactory();

}  // namespace berth::cri

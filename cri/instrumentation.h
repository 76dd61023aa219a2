// Logging for every CRI call, kept out of the handlers (as containerd's instrumented service
// does): one debug line per RPC with its method, gRPC status and duration.
#pragma once

#include <cstdint>
#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace berth::cri {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeLoggingInterceptorFactory();

// CRI calls that have started and not yet finished, counted by the interceptor above; the
// graceful shutdown waits for this to reach zero.
int64_t InFlightCalls();

// CRI calls that have finished since start.
int64_t CompletedCalls();

}  // namespace berth::cri

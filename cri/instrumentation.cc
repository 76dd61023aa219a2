#include "cri/instrumentation.h"

#include <atomic>
#include <chrono>
#include <string>

#include "base/log.h"

namespace berth::cri {

namespace {

std::atomic<int64_t> g_in_flight{0};
std::atomic<int64_t> g_completed{0};

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK: return "OK";
    case grpc::CANCELLED: return "Canceled";
    case grpc::UNKNOWN: return "Unknown";
    case grpc::INVALID_ARGUMENT: return "InvalidArgument";
    case grpc::DEADLINE_EXCEEDED: return "DeadlineExceeded";
    case grpc::NOT_FOUND: return "NotFound";
    case grpc::ALREADY_EXISTS: return "AlreadyExists";
    case grpc::PERMISSION_DENIED: return "PermissionDenied";
    case grpc::RESOURCE_EXHAUSTED: return "ResourceExhausted";
    case grpc::FAILED_PRECONDITION: return "FailedPrecondition";
    case grpc::ABORTED: return "Aborted";
    case grpc::OUT_OF_RANGE: return "OutOfRange";
    case grpc::UNIMPLEMENTED: return "Unimplemented";
    case grpc::INTERNAL: return "Internal";
    case grpc::UNAVAILABLE: return "Unavailable";
    case grpc::DATA_LOSS: return "DataLoss";
    case grpc::UNAUTHENTICATED: return "Unauthenticated";
    default: return "Unknown";
  }
}

class LoggingInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit LoggingInterceptor(const char* method)
      : method_(method != nullptr ? method : "?"), start_(std::chrono::steady_clock::now()) {
    g_in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  ~LoggingInterceptor() override {
    g_completed.fetch_add(1, std::memory_order_relaxed);
    g_in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
              .count();
      bool failed = status.error_code() == grpc::INTERNAL || status.error_code() == grpc::UNKNOWN ||
                    status.error_code() == grpc::DATA_LOSS;
      auto level = failed ? spdlog::level::warn : spdlog::level::debug;
      if (log::Enabled(level)) {
        if (status.ok()) {
          log::Log(level, "rpc", {{"method", method_}, {"code", "OK"}, {"duration_ms", ms}});
        } else {
          log::Log(level, "rpc",
                   {{"method", method_},
                    {"code", CodeName(status.error_code())},
                    {"error", status.error_message()},
                    {"duration_ms", ms}});
        }
      }
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  std::chrono::steady_clock::time_point start_;
};

class LoggingInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new LoggingInterceptor(info->method());
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeLoggingInterceptorFactory() {
  return std::make_unique<LoggingInterceptorFactory>();
}

int64_t InFlightCalls() {
  return g_in_flight.load(std::memory_order_relaxed);
}

int64_t CompletedCalls() {
  return g_completed.load(std::memory_order_relaxed);
}

}  // namespace berth::cri

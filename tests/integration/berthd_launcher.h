// Starts the real berthd binary on private dirs and socket, for integration tests.
#pragma once

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cri/api/cri.h"
#include "gtest/gtest.h"
#include "tests/integration/process.h"

namespace berth::testing {

class Berthd {
 public:
  // Writes a config with everything under `dir` and `extra` appended.
  explicit Berthd(const TempDir& dir, const std::string& extra = "",
                  const std::string& shutdown_timeout = "3s")
      : dir_(dir),
        socket_(dir / "run/berth.sock"),
        config_(dir / "berth.toml"),
        log_(dir / "berthd.out") {
    ::mkdir((dir / "net.d").c_str(), 0755);
    WriteFileOrDie(config_,
                   absl::StrCat("root = \"", dir / "root", "\"\n", "state = \"", dir / "state",
                                "\"\n", "shutdown_timeout = \"", shutdown_timeout, "\"\n",
                                "[grpc]\naddress = \"unix://", socket_, "\"\n",
                                "[cni]\nconf_dir = \"", dir / "net.d", "\"\n", extra));
  }

  // `log_file`: where berthd logs, when the config sends its log to a file.
  void Start(const std::string& log_file = "") {
    auto logged = [&] { return log_file.empty() ? log() : ReadFileOrEmpty(log_file); };
    WriteFileOrDie(log_, "");  // a fresh log per start: readiness is read from it
    child_.Start({BERTHD_PATH, "--config", config_, "--log-level", "debug"}, log_);
    // Ready once it says so (a stale socket file may exist before that).
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (logged().find("berthd serving") == std::string::npos && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_NE(logged().find("berthd serving"), std::string::npos) << log();
    ASSERT_TRUE(WaitForSocket(socket_, absl::Seconds(1))) << log();
  }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel("unix://" + socket_, grpc::InsecureChannelCredentials());
  }

  const std::string& socket() const { return socket_; }
  const std::string& config() const { return config_; }
  std::string log() const { return ReadFileOrEmpty(log_); }
  Child& child() { return child_; }

 private:
  const TempDir& dir_;
  std::string socket_, config_, log_;
  Child child_;
};

inline std::unique_ptr<grpc::ClientContext> LongCtx(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

inline std::unique_ptr<grpc::ClientContext> Ctx() {
  return LongCtx(10);
}

// Stops and removes every pod berthd lists (whatever a failed test left), expecting each
// removal to succeed; nothing when `rt` is null or the listing fails.
inline void RemoveEveryPod(::runtime::v1::RuntimeService::Stub* rt) {
  namespace v1 = ::runtime::v1;
  v1::ListPodSandboxRequest lreq;
  v1::ListPodSandboxResponse lresp;
  if (rt == nullptr || !rt->ListPodSandbox(Ctx().get(), lreq, &lresp).ok()) return;
  for (const v1::PodSandbox& p : lresp.items()) {
    v1::StopPodSandboxRequest s;
    s.set_pod_sandbox_id(p.id());
    v1::StopPodSandboxResponse sr;
    (void)rt->StopPodSandbox(LongCtx(60).get(), s, &sr);
    v1::RemovePodSandboxRequest r;
    r.set_pod_sandbox_id(p.id());
    v1::RemovePodSandboxResponse rr;
    EXPECT_TRUE(rt->RemovePodSandbox(LongCtx(60).get(), r, &rr).ok());
  }
}

}  // namespace berth::testing

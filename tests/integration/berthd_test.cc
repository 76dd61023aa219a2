// berthd for real: the binary started on a private socket and state dirs, called through the
// generated CRI client and through berthctl.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <google/protobuf/descriptor.h>
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cri/api/cri.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/berthd_launcher.h"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

TEST(Berthd, VersionAndStatusThroughGeneratedClient) {
  TempDir dir;
  Berthd d(dir);
  d.Start();
  auto stub = v1::RuntimeService::NewStub(d.Channel());

  v1::VersionRequest vreq;
  vreq.set_version("v1");
  v1::VersionResponse vresp;
  grpc::Status st = stub->Version(Ctx().get(), vreq, &vresp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(vresp.version(), "0.1.0");
  EXPECT_EQ(vresp.runtime_name(), "berth");
  EXPECT_EQ(vresp.runtime_version().rfind("0.1.0", 0), 0u);
  EXPECT_EQ(vresp.runtime_api_version(), "v1");

  v1::StatusRequest sreq;
  sreq.set_verbose(true);
  v1::StatusResponse sresp;
  ASSERT_TRUE(stub->Status(Ctx().get(), sreq, &sresp).ok());
  ASSERT_EQ(sresp.status().conditions_size(), 2);
  EXPECT_EQ(sresp.status().conditions(0).type(), "RuntimeReady");
  EXPECT_TRUE(sresp.status().conditions(0).status());
  const v1::RuntimeCondition& net = sresp.status().conditions(1);
  EXPECT_EQ(net.type(), "NetworkReady");
  EXPECT_FALSE(net.status());
  EXPECT_EQ(net.reason(), "NetworkPluginNotReady");
  EXPECT_NE(net.message().find(dir / "net.d"), std::string::npos) << net.message();
  nlohmann::json rt = nlohmann::json::parse(sresp.info().at("runtime"));
  EXPECT_EQ(rt["pid"], d.child().pid());
  EXPECT_TRUE(rt["cgroup_mode"] == "unified" || rt["cgroup_mode"] == "hybrid" ||
              rt["cgroup_mode"] == "legacy")
      << rt.dump();

  // A real CNI config whose plugin Debian installed: NetworkReady turns true, no restart.
  // (Debian's plugins live in /usr/lib/cni, one of the default bin_dirs.)
  WriteFileOrDie(dir / "net.d/10-lo.conflist",
                 R"({"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]})");
  // The conf dir is watched (inotify): the change shows within moments.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  do {
    sresp.Clear();
    ASSERT_TRUE(stub->Status(Ctx().get(), sreq, &sresp).ok());
  } while (!sresp.status().conditions(1).status() && absl::Now() < deadline &&
           (absl::SleepFor(absl::Milliseconds(10)), true));
  EXPECT_TRUE(sresp.status().conditions(1).status()) << sresp.status().conditions(1).message();

  // One debug line per RPC, with its duration.
  std::string log = d.log();
  EXPECT_NE(log.find("rpc method=/runtime.v1.RuntimeService/Version code=OK duration_ms="),
            std::string::npos)
      << log;
}

TEST(Berthd, SocketIsRootOwned0660) {
  TempDir dir;
  Berthd d(dir);
  d.Start();
  struct stat st;
  ASSERT_EQ(::stat(d.socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
}

// Calls `path` with an empty message (every field at its default); nullopt when the call
// never completed.
std::optional<grpc::Status> CallWithEmptyRequest(grpc::GenericStub& stub, grpc::CompletionQueue& cq,
                                                 const std::string& path) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  auto call = stub.PrepareUnaryCall(&ctx, path, request, &cq);
  call->StartCall();
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  if (!cq.Next(&tag, &ok)) return std::nullopt;
  return status;
}

TEST(Berthd, EveryOtherRpcIsUnimplementedAndSaysWhich) {
  TempDir dir;
  Berthd d(dir);
  d.Start();
  grpc::GenericStub stub(d.Channel());
  grpc::CompletionQueue cq;
  int checked = 0;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const char* name : {"runtime.v1.RuntimeService", "runtime.v1.ImageService"}) {
    const google::protobuf::ServiceDescriptor* svc = pool->FindServiceByName(name);
    ASSERT_NE(svc, nullptr) << name;
    for (int i = 0; i < svc->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = svc->method(i);
      // What berth implements so far; everything else must say it is not implemented.
      static const std::set<std::string> kImplemented = {"Version",
                                                         "Status",
                                                         "UpdateRuntimeConfig",
                                                         "RuntimeConfig",
                                                         "PullImage",
                                                         "ListImages",
                                                         "ImageStatus",
                                                         "RemoveImage",
                                                         "ImageFsInfo",
                                                         "RunPodSandbox",
                                                         "StopPodSandbox",
                                                         "RemovePodSandbox",
                                                         "PodSandboxStatus",
                                                         "ListPodSandbox",
                                                         "CreateContainer",
                                                         "StartContainer",
                                                         "StopContainer",
                                                         "RemoveContainer",
                                                         "ListContainers",
                                                         "ContainerStatus",
                                                         "UpdateContainerResources",
                                                         "ReopenContainerLog",
                                                         "ExecSync",
                                                         "Exec",
                                                         "Attach",
                                                         "PortForward",
                                                         "ContainerStats",
                                                         "ListContainerStats",
                                                         "PodSandboxStats",
                                                         "ListPodSandboxStats",
                                                         "GetContainerEvents"};
      if (kImplemented.count(m->name())) {
        continue;
      }
      std::string path = absl::StrCat("/", svc->full_name(), "/", m->name());
      std::optional<grpc::Status> answered = CallWithEmptyRequest(stub, cq, path);
      ASSERT_TRUE(answered.has_value()) << path;
      const grpc::Status& status = *answered;
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << path;
      EXPECT_NE(status.error_message().find(m->name()), std::string::npos)
          << path << ": " << status.error_message();
      ++checked;
    }
  }
  EXPECT_GE(checked, 10);
  cq.Shutdown();
}

// A request with every field at its default (no ids, no config) is refused with a clear
// error by every implemented RPC that changes something, and berthd keeps serving.
TEST(Berthd, EmptyRequestsAreRefusedAndBerthdKeepsServing) {
  TempDir dir;
  Berthd d(dir);
  d.Start();
  grpc::GenericStub stub(d.Channel());
  grpc::CompletionQueue cq;
  for (const char* name :
       {"RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
        "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "ContainerStatus",
        "UpdateContainerResources", "ReopenContainerLog", "ExecSync", "Exec", "Attach",
        "PortForward", "ContainerStats",
        "PodSandboxStats", "ListPodSandbox", "ListContainers", "ListContainerStats",
        "ListPodSandboxStats"}) {
    std::string path = absl::StrCat("/runtime.v1.RuntimeService/", name);
    std::optional<grpc::Status> answered = CallWithEmptyRequest(stub, cq, path);
    ASSERT_TRUE(answered.has_value()) << path;
    const grpc::Status& status = *answered;
    const std::string n = name;
    if (absl::StartsWith(n, "List")) {
      EXPECT_TRUE(status.ok()) << path << ": " << status.error_message();
    } else if (n == "StopPodSandbox" || n == "RemovePodSandbox" || n == "RemoveContainer") {
      // Removing or stopping what is not there is not an error in the CRI; an empty id is.
      EXPECT_NE(status.error_code(), grpc::StatusCode::INTERNAL) << path;
    } else {
      EXPECT_FALSE(status.ok()) << path;
      EXPECT_NE(status.error_code(), grpc::StatusCode::INTERNAL)
          << path << ": " << status.error_message();
      EXPECT_NE(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << path;
    }
  }
  cq.Shutdown();
  // Still serving.
  auto rt = ::runtime::v1::RuntimeService::NewStub(d.Channel());
  ::runtime::v1::VersionRequest vreq;
  ::runtime::v1::VersionResponse vresp;
  EXPECT_TRUE(rt->Version(Ctx().get(), vreq, &vresp).ok());
}

// The streaming server over TLS (streaming.tls_cert_file/key_file): https, and a URL whose
// token berthd never issued gets 404 and nothing else.
TEST(Berthd, StreamingServerServesHttpsAndRefusesUnknownTokens) {
  TempDir dir;
  CommandResult gen = RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                  "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout",
                                  dir / "stream.key", "-out", dir / "stream.crt"},
                                 absl::Seconds(60));
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  Berthd d(dir, absl::StrCat("[streaming]\ntls_cert_file = \"", dir / "stream.crt",
                             "\"\ntls_key_file = \"", dir / "stream.key", "\"\n"));
  d.Start();
  std::string log = d.log();
  size_t at = log.find("url=https://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  std::string base = log.substr(at + 4, log.find_first_of(" \n", at) - at - 4);
  CommandResult r = RunCommand({"/usr/bin/curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                base + "/exec/AAAAAAAAAAAAAAAAAAAAAA"},
                               absl::Seconds(20));
  EXPECT_EQ(r.out, "404") << r.err;
  // Plain http to the TLS port is not served.
  std::string plain = base;
  plain.replace(0, 5, "http");
  r = RunCommand({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", plain + "/exec/x"},
                 absl::Seconds(20));
  EXPECT_NE(r.out, "404");
}

TEST(Berthd, SecondInstanceOnSameStateDirsIsRefused) {
  TempDir dir;
  Berthd first(dir);
  first.Start();
  // Same state dirs, another socket: refused by the lock, and the first keeps serving.
  std::string other = dir / "other.toml";
  std::string text = ReadFileOrEmpty(first.config());
  size_t at = text.find(first.socket());
  text.replace(at, first.socket().size(), dir / "run/other.sock");
  WriteFileOrDie(other, text);
  CommandResult r = RunCommand({BERTHD_PATH, "--config", other}, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("holds the lock"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(absl::StrCat("pid ", first.child().pid())), std::string::npos) << r.err;
  struct stat st;
  EXPECT_NE(::stat((dir / "run/other.sock").c_str(), &st), 0);

  // Same config (and socket): also refused, and the live socket is not removed.
  r = RunCommand({BERTHD_PATH, "--config", first.config()}, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 1);
  auto stub = v1::RuntimeService::NewStub(first.Channel());
  v1::VersionResponse vresp;
  EXPECT_TRUE(stub->Version(Ctx().get(), v1::VersionRequest(), &vresp).ok());
}

TEST(Berthd, StaleSocketIsReplaced) {
  TempDir dir;
  Berthd d(dir);
  ::mkdir((dir / "run").c_str(), 0711);
  // A socket file left behind by a process that died: bound, never unlinked.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, d.socket().c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  d.Start();
  auto stub = v1::RuntimeService::NewStub(d.Channel());
  v1::VersionResponse vresp;
  EXPECT_TRUE(stub->Version(Ctx().get(), v1::VersionRequest(), &vresp).ok());
  EXPECT_NE(d.log().find("removed stale socket"), std::string::npos);
}

TEST(Berthd, SomethingElseAtTheSocketPathIsNotDeleted) {
  TempDir dir;
  Berthd d(dir);
  ::mkdir((dir / "run").c_str(), 0711);
  WriteFileOrDie(d.socket(), "precious");
  CommandResult r = RunCommand({BERTHD_PATH, "--config", d.config()}, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not a socket"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileOrEmpty(d.socket()), "precious");
}

TEST(Berthd, SigtermExitsZeroAndRemovesSocket) {
  TempDir dir;
  Berthd d(dir);
  d.Start();
  absl::Time start = absl::Now();
  int status = d.child().Stop(SIGTERM, absl::Seconds(10));
  ASSERT_NE(status, -1) << "berthd did not exit on SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));  // nothing in flight: no grace wait
  struct stat st;
  EXPECT_NE(::stat(d.socket().c_str(), &st), 0);
  EXPECT_NE(d.log().find("berthd stopped"), std::string::npos);
  // The locks went with the process: a new berthd starts on the same dirs.
  Berthd again(dir);
  again.Start();
  EXPECT_EQ(again.child().Stop(SIGINT, absl::Seconds(10)), 0);
}

TEST(Berthd, SighupReopensLogFile) {
  TempDir dir;
  std::string logfile = dir / "berthd.log";
  Berthd d(dir, absl::StrCat("[log]\nfile = \"", logfile, "\"\nformat = \"json\"\n"));
  d.Start(logfile);
  auto stub = v1::RuntimeService::NewStub(d.Channel());
  v1::VersionResponse vresp;
  ASSERT_TRUE(stub->Version(Ctx().get(), v1::VersionRequest(), &vresp).ok());
  ASSERT_EQ(::rename(logfile.c_str(), (logfile + ".1").c_str()), 0);
  ASSERT_EQ(::kill(d.child().pid(), SIGHUP), 0);
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (ReadFileOrEmpty(logfile).empty() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(stub->Version(Ctx().get(), v1::VersionRequest(), &vresp).ok());
  EXPECT_EQ(d.child().Stop(SIGTERM, absl::Seconds(10)), 0);

  std::string rotated = ReadFileOrEmpty(logfile + ".1");
  std::string fresh = ReadFileOrEmpty(logfile);
  EXPECT_NE(rotated.find("berthd serving"), std::string::npos);
  EXPECT_EQ(fresh.find("berthd serving"), std::string::npos);
  EXPECT_NE(fresh.find("reopened log file"), std::string::npos) << fresh;
  EXPECT_NE(fresh.find("RuntimeService/Version"), std::string::npos) << fresh;
  // Every line of the new file is one JSON object.
  size_t pos = 0;
  int lines = 0;
  while (pos < fresh.size()) {
    size_t nl = fresh.find('\n', pos);
    std::string line = fresh.substr(pos, nl - pos);
    EXPECT_FALSE(nlohmann::json::parse(line, nullptr, false).is_discarded()) << line;
    ++lines;
    pos = nl == std::string::npos ? fresh.size() : nl + 1;
  }
  EXPECT_GE(lines, 3);
}

TEST(Berthd, BadConfigStopsStartWithFileKeyAndReason) {
  TempDir dir;
  std::string cfg = dir / "bad.toml";
  WriteFileOrDie(cfg, "root = \"/x\"\n[grpc]\nadress = \"unix:///tmp/x.sock\"\n");
  CommandResult r = RunCommand({BERTHD_PATH, "--config", cfg}, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(cfg + ":3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("grpc.adress"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown key"), std::string::npos) << r.err;
  struct stat st;
  EXPECT_NE(::stat("/x", &st), 0);  // nothing was created

  r = RunCommand({BERTHD_PATH, "--config", dir / "missing.toml"}, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.toml"), std::string::npos) << r.err;
}

// ---- berthctl against berthd -----------------------------------------------------------

TEST(Berthctl, VersionAndInfoAgainstBerthd) {
  TempDir dir;
  Berthd d(dir);
  d.Start();
  std::string ep = "unix://" + d.socket();
  CommandResult r = RunCommand({BERTHCTL_PATH, "-r", ep, "version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Version:  0.1.0\nRuntimeName:  berth\nRuntimeVersion:  0.1.0"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("RuntimeApiVersion:  v1\n"), std::string::npos);

  r = RunCommand({BERTHCTL_PATH, "version", "-o", "json"}, absl::Seconds(30),
                 {"CONTAINER_RUNTIME_ENDPOINT=" + ep});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json v = nlohmann::json::parse(r.out);
  EXPECT_EQ(v["runtimeName"], "berth");
  EXPECT_EQ(v["runtimeApiVersion"], "v1");

  // The endpoint from a crictl.yaml, as crictl would read it.
  WriteFileOrDie(dir / "crictl.yaml", "runtime-endpoint: " + ep + "\ntimeout: 5\n");
  r = RunCommand({BERTHCTL_PATH, "--config", dir / "crictl.yaml", "info", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["status"]["conditions"][0]["type"], "RuntimeReady");
  EXPECT_EQ(info["status"]["conditions"][1]["status"], false);
  EXPECT_EQ(info["runtime"]["name"], "berth");
  EXPECT_EQ(info["config"]["grpc"]["address"], ep);

  r = RunCommand({BERTHCTL_PATH, "-r", ep, "info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("NetworkReady   false    NetworkPluginNotReady"), std::string::npos)
      << r.out;

  r = RunCommand({BERTHCTL_PATH, "-r", ep, "-o", "yaml", "info"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("status:\n  conditions:\n  - "), std::string::npos) << r.out;
}

TEST(Berthctl, MissingSocketFailsFastAndClearly) {
  TempDir dir;
  CommandResult r = RunCommand({BERTHCTL_PATH, "-r", "unix://" + (dir / "none.sock"), "version"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, absl::Seconds(5));
}

TEST(Berthctl, RefusedSocketFailsFastAndClearly) {
  TempDir dir;
  std::string path = dir / "dead.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // bound, never listening: connect() is refused
  CommandResult r = RunCommand({BERTHCTL_PATH, "-r", "unix://" + path, "version"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("connection refused"), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, absl::Seconds(5));
}

TEST(Berthctl, SilentPeerTimesOutInsteadOfHanging) {
  TempDir dir;
  std::string path = dir / "silent.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);  // accepts (in the backlog), never speaks
  CommandResult r = RunCommand(
      {BERTHCTL_PATH, "-r", "unix://" + path, "--timeout", "2s", "version"}, absl::Seconds(20));
  ::close(fd);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("is it a CRI runtime?"), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, absl::Seconds(6));
}

TEST(Berthctl, NonGrpcPeerIsReported) {
  TempDir dir;
  std::string path = dir / "http1.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  // An HTTP/1.1 server: answers anything with a 400 and closes.
  std::thread server([fd] {
    for (int i = 0; i < 20; ++i) {
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      (void)!::send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
      ::close(c);
    }
  });
  CommandResult r = RunCommand(
      {BERTHCTL_PATH, "-r", "unix://" + path, "--timeout", "3s", "version"}, absl::Seconds(20));
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  server.join();
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("is it a CRI runtime?"), std::string::npos) << r.err;
  EXPECT_LT(r.elapsed, absl::Seconds(8));
}

TEST(Berthctl, GrpcServerWithoutRuntimeServiceIsReported) {
  TempDir dir;
  std::string path = dir / "grpc.sock";
  // A gRPC server without runtime.v1.RuntimeService (here: only an image service, as a
  // separate image endpoint would be). gRPC answers its unknown methods UNIMPLEMENTED.
  v1::ImageService::Service image_only;
  grpc::ServerBuilder builder;
  builder.RegisterService(&image_only);
  builder.AddListeningPort("unix://" + path, grpc::InsecureServerCredentials());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server);
  CommandResult r = RunCommand({BERTHCTL_PATH, "-r", "unix://" + path, "version"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("is not a CRI runtime.v1 server"), std::string::npos) << r.err;
  server->Shutdown(std::chrono::system_clock::now());
}

}  // namespace
}  // namespace berth::testing

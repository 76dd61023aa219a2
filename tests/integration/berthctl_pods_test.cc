// berthctl's pod and container commands (runp, create, start, pods, ps, inspect, inspectp, logs,
// exec, stop, rm, stopp, rmp, run) against the real berthd, berth-monitor and the runtime library,
// with Debian's CNI bridge plugin and the busybox fixture image imported from its OCI layout.
// Like pod_test.cc, the whole test runs in a private network and mount namespace of its own (see
// main); every pod's cgroup is under berth-test-pods/berthctl-<pid>-*, which the test removes.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cri/api/cri.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/berthd_launcher.h"
#include "tests/integration/pod_env.h"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

constexpr char kCgroupParent[] = "berth-test-pods";
const std::string kBusybox = "localhost/berth-test/busybox:1";

// This process's pod cgroups ("berthctl-<pid>-...") under the test parent, in any hierarchy.
std::string CgroupPrefix() {
  return absl::StrCat("berthctl-", ::getpid(), "-");
}

std::vector<std::string> TestCgroups() {
  std::vector<std::string> found;
  for (std::string& d : ListCgroupsUnder(kCgroupParent)) {
    if (absl::StrContains(d, absl::StrCat("/", CgroupPrefix()))) found.push_back(std::move(d));
  }
  return found;
}

std::string Trim(const std::string& s) {
  return std::string(absl::StripAsciiWhitespace(s));
}

class BerthctlPodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir((dir_ / "net.d").c_str(), 0755);
    WriteBridgeConflist(dir_ / "net.d/10-test.conflist", "berthctl-pods-test", "berthctl0",
                        "10.199.8.0/24", dir_ / "ipam");
    // Records of at most 256 bytes: longer lines become partial (P) records.
    d_ = std::make_unique<Berthd>(dir_, "[runtime]\nlog_max_line = 256\n");
    d_->Start();
    rt_ = v1::RuntimeService::NewStub(d_->Channel());
    CommandResult r = Ctl({"image", "import", BERTH_FIXTURE_IMAGES "/busybox", "--tag", kBusybox},
                          absl::Seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  void TearDown() override {
    // Whatever a failed test left: removed through the CRI, then checked gone.
    RemoveEveryPod(rt_.get());
    ExpectHostClean();
    if (d_) d_->child().Stop(SIGTERM, absl::Seconds(10));
    // Leftovers of this process first (a failed test; children before their parents), then
    // the shared parent if it is empty.
    std::vector<std::string> left = TestCgroups();
    for (auto d = left.rbegin(); d != left.rend(); ++d) ::rmdir(d->c_str());
    RemoveCgroupParents({kCgroupParent});
  }

  // No pod dir, container dir, mount, cgroup, address lease or monitor is left.
  void ExpectHostClean() { ExpectNoPodLeftovers(dir_, TestCgroups()); }

  CommandResult Ctl(const std::vector<std::string>& args,
                    absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> argv = {BERTHCTL_PATH, "--runtime-endpoint", "unix://" + d_->socket(),
                                     "--timeout", "60s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, timeout);
  }

  // Runs berthctl, expects success and returns its stdout without surrounding whitespace.
  std::string CtlOk(const std::vector<std::string>& args) {
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ": " << r.out << r.err << "\n"
                              << d_->log();
    return Trim(r.out);
  }

  nlohmann::json CtlJson(const std::vector<std::string>& args) {
    std::string out = CtlOk(args);
    nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }

  // crictl's pod-config.json shape: the proto's field names and lowerCamelCase mixed, plus a
  // field this runtime does not know.
  std::string PodConfigFile(const std::string& name) {
    ++counter_;
    std::string path = dir_ / absl::StrCat(name, counter_, "-pod.json");
    WriteFileOrDie(path, absl::StrCat(R"({
      "metadata": {"name": ")",
                                      name, R"(", "namespace": "berthctl-ns", "uid": "uid-)", name,
                                      "-", counter_, R"(", "attempt": 1},
      "hostname": ")",
                                      name, R"(",
      "log_directory": ")",
                                      dir_ / absl::StrCat("logs/", name, counter_), R"(",
      "labels": {"app": ")",
                                      name, R"("},
      "linux": {"cgroupParent": ")",
                                      kCgroupParent, "/", CgroupPrefix(), name, counter_, R"("},
      "someFutureField": {"x": 1}
    })"));
    return path;
  }

  std::string ContainerConfigFile(const std::string& name, const std::vector<std::string>& cmd) {
    nlohmann::json c = {{"metadata", {{"name", name}}},
                        {"image", {{"image", kBusybox}}},
                        {"command", cmd},
                        {"log_path", name + ".log"}};
    std::string path = dir_ / absl::StrCat(name, ++counter_, "-ctr.json");
    WriteFileOrDie(path, c.dump(2));
    return path;
  }

  std::string State(const std::string& id) {
    nlohmann::json j = CtlJson({"inspect", id});
    return j.value("/status/state"_json_pointer, std::string());
  }

  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return done();
  }

  TempDir dir_;
  std::unique_ptr<Berthd> d_;
  std::unique_ptr<v1::RuntimeService::Stub> rt_;
  int counter_ = 0;
};

TEST_F(BerthctlPodsTest, PodAndContainerLifecycle) {
  const std::string pod_json = PodConfigFile("p1");
  const std::string pod = CtlOk({"runp", pod_json});
  ASSERT_FALSE(pod.empty());
  ASSERT_EQ(pod.find('\n'), std::string::npos) << pod;

  const std::string ctr_json =
      ContainerConfigFile("c1", {"sh", "-c", "echo hello; echo err >&2; sleep 1000"});
  const std::string id = CtlOk({"create", pod, ctr_json, pod_json});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(State(id), "CONTAINER_CREATED");
  EXPECT_EQ(CtlOk({"start", id}), id);
  EXPECT_EQ(State(id), "CONTAINER_RUNNING");

  // pods: the crictl table, -q, filters, json.
  std::string table = CtlOk({"pods"});
  std::vector<std::string> lines = absl::StrSplit(table, '\n');
  ASSERT_EQ(lines.size(), 2u) << table;
  EXPECT_TRUE(std::regex_match(
      lines[0], std::regex("POD ID +CREATED +STATE +NAME +NAMESPACE +ATTEMPT +RUNTIME")))
      << lines[0];
  EXPECT_TRUE(std::regex_match(
      lines[1], std::regex(pod.substr(0, 13) +
                           " +(Less than a second|[0-9]+ seconds?) ago +Ready +p1 +berthctl-ns +1 "
                           "+\\(default\\)")))
      << lines[1];
  EXPECT_EQ(CtlOk({"pods", "-q"}), pod);
  EXPECT_NE(CtlOk({"pods", "--no-trunc"}).find(pod), std::string::npos);
  EXPECT_EQ(CtlOk({"pods", "-q", "--name", "^p"}), pod);
  EXPECT_EQ(CtlOk({"pods", "-q", "--name", "nomatch"}), "");
  EXPECT_EQ(CtlOk({"pods", "-q", "--namespace", "berthctl-ns"}), pod);
  EXPECT_EQ(CtlOk({"pods", "-q", "--state", "notready"}), "");
  EXPECT_EQ(CtlOk({"pods", "-q", "--state", "ready", "--label", "app=p1"}), pod);
  EXPECT_EQ(CtlOk({"pods", "-q", "--label", "app=other"}), "");
  EXPECT_EQ(CtlOk({"pods", "-q", "--id", pod.substr(0, 6)}), pod);
  EXPECT_EQ(CtlOk({"pods", "-q", "--latest"}), pod);
  nlohmann::json pj = CtlJson({"pods", "-o", "json"});
  ASSERT_EQ(pj["items"].size(), 1u) << pj.dump();
  EXPECT_EQ(pj["items"][0]["id"], pod);
  EXPECT_EQ(pj["items"][0]["state"], "SANDBOX_READY");
  EXPECT_NE(CtlOk({"pods", "-o", "yaml"}).find("state: SANDBOX_READY"), std::string::npos);

  // inspectp: status and the verbose info, embedded as JSON.
  nlohmann::json ip = CtlJson({"inspectp", pod.substr(0, 12)});
  EXPECT_EQ(ip["status"]["id"], pod);
  EXPECT_EQ(ip["status"]["state"], "SANDBOX_READY");
  EXPECT_TRUE(absl::StartsWith(ip["status"]["network"]["ip"].get<std::string>(), "10.199.8."))
      << ip.dump();
  ASSERT_TRUE(ip.contains("info")) << ip.dump();
  EXPECT_TRUE(ip["info"].is_object()) << ip.dump();

  // ps: running containers by default, -a for all, -q ids.
  table = CtlOk({"ps"});
  lines = absl::StrSplit(table, '\n');
  ASSERT_EQ(lines.size(), 2u) << table;
  EXPECT_TRUE(std::regex_match(
      lines[0], std::regex("CONTAINER +IMAGE +CREATED +STATE +NAME +ATTEMPT +POD ID")))
      << lines[0];
  EXPECT_TRUE(std::regex_match(
      lines[1], std::regex(id.substr(0, 13) + " +\\S+ +(Less than a second|[0-9]+ seconds?) ago " +
                           "+Running +c1 +0 +" + pod.substr(0, 13))))
      << lines[1];
  EXPECT_EQ(CtlOk({"ps", "-a", "-q"}), id);
  EXPECT_EQ(CtlOk({"ps", "-q", "--pod", pod}), id);
  EXPECT_EQ(CtlOk({"ps", "-q", "--name", "c1"}), id);
  EXPECT_EQ(CtlOk({"ps", "-q", "--name", "c2"}), "");
  EXPECT_EQ(CtlOk({"ps", "-q", "--state", "exited"}), "");
  EXPECT_EQ(CtlOk({"ps", "-q", "--image", kBusybox}), id);
  EXPECT_EQ(CtlOk({"ps", "-q", "-l"}), id);
  nlohmann::json cj = CtlJson({"ps", "-o", "json"});
  ASSERT_EQ(cj["containers"].size(), 1u) << cj.dump();
  EXPECT_EQ(cj["containers"][0]["id"], id);
  EXPECT_EQ(cj["containers"][0]["podSandboxId"], pod);

  nlohmann::json ic = CtlJson({"inspect", id});
  EXPECT_EQ(ic["status"]["state"], "CONTAINER_RUNNING");
  EXPECT_EQ(ic["status"]["metadata"]["name"], "c1");
  EXPECT_TRUE(ic["info"].is_object()) << ic.dump();

  // logs: stdout records to stdout, stderr records to stderr.
  CommandResult logs;
  EXPECT_TRUE(WaitFor([&] {
    logs = Ctl({"logs", id});
    return logs.out == "hello\n" && logs.err == "err\n";
  })) << logs.out
      << logs.err;
  EXPECT_EQ(logs.exit_code, 0);
  logs = Ctl({"logs", "-t", id});
  EXPECT_TRUE(std::regex_match(
      logs.out, std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\\.[0-9]+)?Z hello\n")))
      << logs.out;
  EXPECT_TRUE(std::regex_match(
      logs.err, std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\\.[0-9]+)?Z err\n")))
      << logs.err;
  logs = Ctl({"logs", "--tail", "0", id});
  EXPECT_EQ(logs.out + logs.err, "");
  logs = Ctl({"logs", "--since", "1h", id});
  EXPECT_EQ(logs.out, "hello\n");
  logs = Ctl({"logs", "--since", "2000-01-01T00:00:00Z", id});
  EXPECT_EQ(logs.out, "hello\n");

  // exec: the command's own flags are not berthctl's; its exit code is berthctl's.
  CommandResult ex = Ctl({"exec", id, "echo", "hi"});
  EXPECT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(ex.out, "hi\n");
  ex = Ctl({"exec", "-s", id, "sh", "-c", "echo out; echo oops >&2; exit 3"});
  EXPECT_EQ(ex.exit_code, 3) << ex.err;
  EXPECT_EQ(ex.out, "out\n");
  EXPECT_EQ(ex.err, "oops\n");
  ex = Ctl({"exec", id, "--", "ls", "-d", "/etc"});
  EXPECT_EQ(ex.exit_code, 0) << ex.err;
  EXPECT_EQ(ex.out, "/etc\n");
  ex = Ctl({"exec", "-it", id, "sh"});
  EXPECT_EQ(ex.exit_code, 2);
  EXPECT_NE(ex.err.find("not supported"), std::string::npos) << ex.err;

  // rm refuses a running container; stop, then rm.
  CommandResult rm = Ctl({"rm", id});
  EXPECT_EQ(rm.exit_code, 1);
  EXPECT_NE(rm.err.find("is running"), std::string::npos) << rm.err;
  absl::Time start = absl::Now();
  EXPECT_EQ(CtlOk({"stop", "-t", "2", id}), id);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(State(id), "CONTAINER_EXITED");
  EXPECT_EQ(CtlOk({"ps", "-q"}), "");
  EXPECT_EQ(CtlOk({"ps", "-q", "--state", "exited"}), id);
  EXPECT_NE(CtlOk({"ps", "-a"}).find("Exited"), std::string::npos);
  EXPECT_EQ(CtlOk({"rm", id}), id);
  EXPECT_EQ(CtlOk({"ps", "-a", "-q"}), "");
  CommandResult gone = Ctl({"inspect", id});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_TRUE(absl::StartsWith(gone.err, "berthctl: ")) << gone.err;

  EXPECT_EQ(CtlOk({"stopp", pod}), "Stopped sandbox " + pod);
  EXPECT_EQ(CtlOk({"pods", "-q", "--state", "notready"}), pod);
  EXPECT_NE(CtlOk({"pods"}).find("NotReady"), std::string::npos);
  EXPECT_EQ(CtlOk({"rmp", pod}), "Removed sandbox " + pod);
  EXPECT_EQ(CtlOk({"pods", "-q"}), "");
  ExpectHostClean();
}

TEST_F(BerthctlPodsTest, RunThenForceRemove) {
  const std::string pod_json = PodConfigFile("runner");
  const std::string ctr_json = ContainerConfigFile("sleeper", {"sleep", "1000"});
  const std::string id = CtlOk({"run", ctr_json, pod_json});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(CtlOk({"ps", "-q"}), id);
  EXPECT_EQ(State(id), "CONTAINER_RUNNING");
  const std::string pod = CtlOk({"pods", "-q"});
  ASSERT_FALSE(pod.empty());

  // A second container in the same pod, removed running with -f.
  const std::string other =
      CtlOk({"create", pod, ContainerConfigFile("b", {"sleep", "1000"}), pod_json});
  EXPECT_EQ(CtlOk({"start", other}), other);
  EXPECT_EQ(CtlOk({"ps", "-q", "--last", "1"}), other);
  EXPECT_EQ(CtlOk({"rm", "-f", other}), other);
  EXPECT_EQ(CtlOk({"ps", "-a", "-q"}), id);

  // rmp -f: stopped and removed, containers and all.
  EXPECT_EQ(CtlOk({"rmp", "-f", pod}), "Removed sandbox " + pod);
  EXPECT_EQ(CtlOk({"pods", "-q"}), "");
  EXPECT_EQ(CtlOk({"ps", "-a", "-q"}), "");
  ExpectHostClean();
}

TEST_F(BerthctlPodsTest, LogsFollowUntilTheContainerExits) {
  const std::string pod_json = PodConfigFile("follow");
  const std::string pod = CtlOk({"runp", pod_json});
  const std::string id =
      CtlOk({"create", pod,
             ContainerConfigFile(
                 "lines", {"sh", "-c", "echo one; sleep 1; echo two >&2; sleep 1; echo three"}),
             pod_json});
  EXPECT_EQ(CtlOk({"start", id}), id);
  CommandResult f = Ctl({"logs", "-f", id}, absl::Seconds(30));
  EXPECT_FALSE(f.timed_out);
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.out, "one\nthree\n");
  EXPECT_EQ(f.err, "two\n");
  EXPECT_GE(f.elapsed, absl::Milliseconds(1500)) << "followed the file while the container ran";
  EXPECT_EQ(State(id), "CONTAINER_EXITED");

  // An exited container: -f prints everything and returns at once.
  f = Ctl({"logs", "-f", "-t", "--tail", "1", id}, absl::Seconds(30));
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_TRUE(absl::EndsWith(f.out, "Z three\n")) << f.out;
  EXPECT_EQ(f.err, "");
  EXPECT_LT(f.elapsed, absl::Seconds(5));

  // A 600-byte line is stored as P(256) P(256) F(88) records and printed as one line again,
  // with one timestamp; a last line without a newline is an F record of its own.
  const std::string long_id =
      CtlOk({"create", pod,
             ContainerConfigFile("long", {"sh", "-c", "printf '%0600d\\n' 0; printf 'no newline'"}),
             pod_json});
  EXPECT_EQ(CtlOk({"start", long_id}), long_id);
  f = Ctl({"logs", "-f", long_id}, absl::Seconds(30));
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.out, std::string(600, '0') + "\nno newline\n");
  f = Ctl({"logs", "-t", long_id});
  EXPECT_TRUE(std::regex_match(f.out, std::regex("[0-9T:.-]+Z 0{600}\n[0-9T:.-]+Z no newline\n")))
      << f.out;
  EXPECT_EQ(CtlOk({"rmp", "-f", pod}), "Removed sandbox " + pod);
}

TEST_F(BerthctlPodsTest, LogsFollowAcrossRotation) {
  const std::string pod_json = PodConfigFile("rotate");
  const std::string pod = CtlOk({"runp", pod_json});
  const std::string id = CtlOk(
      {"create", pod,
       ContainerConfigFile(
           "ticker", {"sh", "-c", "for i in 1 2 3 4 5 6 7 8; do echo line$i; sleep 0.4; done"}),
       pod_json});
  EXPECT_EQ(CtlOk({"start", id}), id);
  CommandResult f;
  std::thread follower([&] { f = Ctl({"logs", "-f", id}, absl::Seconds(30)); });
  // As kubelet rotates: rename the file, then ask the runtime to reopen it.
  absl::SleepFor(absl::Milliseconds(1300));
  const std::string log = dir_ / absl::StrCat("logs/rotate", 1, "/ticker.log");
  ASSERT_EQ(::rename(log.c_str(), (log + ".1").c_str()), 0) << log;
  v1::ReopenContainerLogRequest req;
  req.set_container_id(id);
  v1::ReopenContainerLogResponse resp;
  grpc::Status st = rt_->ReopenContainerLog(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  follower.join();
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.out, "line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n");
  // Both files hold part of it.
  EXPECT_NE(ReadFileOrEmpty(log + ".1").find("line1"), std::string::npos);
  EXPECT_NE(ReadFileOrEmpty(log).find("line8"), std::string::npos);
  EXPECT_EQ(CtlOk({"rmp", "-f", pod}), "Removed sandbox " + pod);
}

TEST_F(BerthctlPodsTest, BadConfigsAndIds) {
  WriteFileOrDie(dir_ / "pod.yaml", "metadata:\n  name: y\n");
  CommandResult r = Ctl({"runp", dir_ / "pod.yaml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not YAML"), std::string::npos) << r.err;
  r = Ctl({"runp", dir_ / "missing.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.json"), std::string::npos) << r.err;
  r = Ctl({"inspectp", "nosuchpod"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, "berthctl: ")) << r.err;
  r = Ctl({"logs", "nosuchcontainer"});
  EXPECT_EQ(r.exit_code, 1);
  r = Ctl({"exec", "nosuchcontainer", "true"});
  EXPECT_EQ(r.exit_code, 1);
  r = Ctl({"pods", "--state", "sleepy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ready or notready"), std::string::npos) << r.err;
  EXPECT_EQ(CtlOk({"pods", "-q"}), "");
}

}  // namespace
}  // namespace berth::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!berth::testing::EnterPrivateNetworkAndMountNamespace()) return 1;
  return RUN_ALL_TESTS();
}

// berthctl's pod and container commands (runp, create, start, pods, ps, inspect, inspectp, logs,
// exec, stop, rm, stopp, rmp, run) against the real berthd, berth-monitor and the runtime library,
// with Debian's CNI bridge plugin and the busybox fixture image imported from its OCI layout.
// Like pod_test.cc, the whole test runs in a private network and mount namespace of its own (see
// main); every pod's cgroup is under berth-test-pods/berthctl-<pid>-*, which the test removes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cri/api/cri.h"
#include "cri/client/stream_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/berthd_launcher.h"
#include "tests/integration/pod_env.h"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;
namespace client = ::berth::cri::client;

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

// Polls `done` every 50 ms until it holds or `timeout` passes; its last answer.
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

// A container command: busybox httpd on 127.0.0.1:8080 (the pod's localhost) serving `page`.
std::vector<std::string> WebServer(const std::string& page) {
  return {"sh", "-c",
          absl::StrCat("mkdir -p /www && echo ", page,
                       " > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www")};
}

std::string HttpGet(int port);

// `berthctl port-forward` (runtime at `endpoint`, plus `flags`) from a free local port to 8080
// in `pod`, where WebServer(page) runs, and from another to 9, where nothing listens: the page
// comes back, the closed port's error is reported, and the forwarder keeps serving.
void ExpectPortForwardServes(const std::string& endpoint, const std::string& pod,
                             const std::vector<std::string>& flags, const std::string& page,
                             const std::string& log) {
  const int local = FreeLoopbackPort(), closed = FreeLoopbackPort();
  std::vector<std::string> argv = {BERTHCTL_PATH, "--runtime-endpoint", endpoint, "port-forward"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {pod, absl::StrCat(local, ":8080"), absl::StrCat(closed, ":9")});
  Child pf;
  pf.Start(argv, log);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains(ReadFileOrEmpty(log),
                                 absl::StrCat("Forwarding from 127.0.0.1:", closed, " -> 9"));
      },
      absl::Seconds(20)))
      << ReadFileOrEmpty(log);
  std::string got;
  // httpd may still be starting: the first connections can see nothing listening.
  EXPECT_TRUE(WaitUntil(
      [&] {
        got = HttpGet(local);
        return absl::StrContains(got, page);
      },
      absl::Seconds(20)))
      << got << ReadFileOrEmpty(log);
  EXPECT_TRUE(absl::StartsWith(got, "HTTP/1.")) << got;
  EXPECT_EQ(HttpGet(closed), "");
  EXPECT_TRUE(
      WaitUntil([&] { return absl::StrContains(ReadFileOrEmpty(log), "error forwarding port 9"); },
                absl::Seconds(20)))
      << ReadFileOrEmpty(log);
  EXPECT_NE(HttpGet(local).find(page), std::string::npos);  // still serving
  pf.Stop(SIGTERM, absl::Seconds(10));
}

class BerthctlPodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir((dir_ / "net.d").c_str(), 0755);
    WriteBridgeConflist(dir_ / "net.d/10-test.conflist", "berthctl-pods-test", "berthctl0",
                        "10.199.8.0/24", dir_ / "ipam");
    // Records of at most 256 bytes: longer lines become partial (P) records.
    // Streaming URLs expire after 2 s here, and silent sessions end after 5 s (the tests of
    // both wait that long).
    d_ = std::make_unique<Berthd>(
        dir_, absl::StrCat("[runtime]\nlog_max_line = 256\n[streaming]\ntoken_ttl = \"2s\"\n"
                           "idle_timeout = \"5s\"\n",
                           ExtraStreamingConfig()));
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

  // More [streaming] keys for berthd (a subclass' TLS set-up); called before berthd starts.
  virtual std::string ExtraStreamingConfig() { return ""; }

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
  std::string PodConfigFile(const std::string& name, bool host_network = false) {
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
    if (host_network) {
      nlohmann::json j = nlohmann::json::parse(ReadFileOrEmpty(path));
      j["linux"]["security_context"]["namespace_options"]["network"] = 2;  // NODE
      WriteFileOrDie(path, j.dump());
    }
    return path;
  }

  std::string ContainerConfigFile(const std::string& name, const std::vector<std::string>& cmd,
                                  const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json c = {{"metadata", {{"name", name}}},
                        {"image", {{"image", kBusybox}}},
                        {"command", cmd},
                        {"log_path", name + ".log"}};
    c.update(extra);
    std::string path = dir_ / absl::StrCat(name, ++counter_, "-ctr.json");
    WriteFileOrDie(path, c.dump(2));
    return path;
  }

  std::string State(const std::string& id) {
    nlohmann::json j = CtlJson({"inspect", id});
    return j.value("/status/state"_json_pointer, std::string());
  }

  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
    return WaitUntil(done, timeout);
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
  // The streaming exec (CRI Exec and berthd's streaming server), over both transports.
  for (const std::string transport : {"spdy", "websocket"}) {
    SCOPED_TRACE(transport);
    ex = Ctl({"exec", "--transport", transport, id, "sh", "-c", "echo out; echo oops >&2; exit 3"});
    EXPECT_EQ(ex.exit_code, 3) << ex.err;
    EXPECT_EQ(ex.out, "out\n");
    EXPECT_EQ(ex.err, "oops\n");
    // stdin: what berthctl reads reaches the process, and its end closes the process' stdin.
    std::string piped = absl::StrCat(
        "printf 'a\\nb\\n' | ", BERTHCTL_PATH, " --runtime-endpoint unix://", d_->socket(),
        " exec -i --transport ", transport, " ", id, " sh -c 'cat; echo done'");
    ex = RunCommand({"/bin/sh", "-c", piped}, absl::Seconds(60));
    EXPECT_EQ(ex.exit_code, 0) << ex.err;
    EXPECT_EQ(ex.out, "a\nb\ndone\n");
    // A terminal: output comes through the pty (CRLF), stderr with it.
    ex = Ctl({"exec", "-t", "--transport", transport, id, "sh", "-c", "tty; echo err >&2; exit 4"});
    EXPECT_EQ(ex.exit_code, 4) << ex.err;
    EXPECT_TRUE(absl::StartsWith(ex.out, "/dev/pts/")) << ex.out;
    EXPECT_NE(ex.out.find("err\r\n"), std::string::npos) << ex.out;
    // Output larger than every buffer on the way arrives whole.
    ex = Ctl({"exec", "--transport", transport, id, "sh", "-c",
              "head -c 4000000 /dev/zero | tr '\\0' x"});
    EXPECT_EQ(ex.exit_code, 0) << ex.err;
    EXPECT_EQ(ex.out.size(), 4000000u);
    EXPECT_EQ(ex.out.find_first_not_of('x'), std::string::npos);
  }
  ex = Ctl({"exec", "-it", "-s", id, "sh"});
  EXPECT_EQ(ex.exit_code, 2);

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

// berthctl with stdin piped in: `printf INPUT | berthctl ARGS...`.
CommandResult PipedCtl(const std::string& socket, const std::string& input,
                       const std::vector<std::string>& args) {
  std::string line =
      absl::StrCat("printf '", input, "' | ", BERTHCTL_PATH, " --runtime-endpoint unix://", socket);
  for (const std::string& a : args) absl::StrAppend(&line, " '", a, "'");
  return RunCommand({"/bin/sh", "-c", line}, absl::Seconds(60));
}

// Sends an HTTP/1.0 GET to 127.0.0.1:port and returns all that comes back.
std::string HttpGet(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) == 0) {
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    if (::write(fd, req, sizeof req - 1) == static_cast<ssize_t>(sizeof req - 1)) {
      struct timeval tv = {20, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

TEST_F(BerthctlPodsTest, AttachAndPortForward) {
  const std::string pod_json = PodConfigFile("p4");
  const std::string pod = CtlOk({"runp", pod_json});
  ASSERT_FALSE(pod.empty());

  // attach -i to a container created with stdin and stdin_once: what we send reaches it, and
  // the end of our stdin closes its stdin (it says bye and exits; the session ends with it).
  const std::string once = CtlOk(
      {"create", pod,
       ContainerConfigFile("once", {"sh", "-c", "while read l; do echo got $l; done; echo bye"},
                           {{"stdin", true}, {"stdin_once", true}}),
       pod_json});
  CtlOk({"start", once});
  CommandResult r = PipedCtl(d_->socket(), "a\\nb\\n", {"attach", "-i", once});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "got a\ngot b\nbye\n");
  EXPECT_TRUE(WaitFor([&] { return State(once) == "CONTAINER_EXITED"; }));
  EXPECT_EQ(CtlOk({"logs", once}), "got a\ngot b\nbye");  // the log has it all too

  // Over WebSocket, a container created with stdin but not stdin_once: a client whose stdin
  // ends has detached (as with Docker and containerd), and the container's stdin stays open
  // for the next; a session without stdin lasts as long as the container's output. A watcher
  // and two feeders of the same `read` loop in turn.
  const std::string keep = CtlOk(
      {"create", pod,
       ContainerConfigFile("keep", {"sh", "-c", "read a; echo first $a; read b; echo second $b"},
                           {{"stdin", true}}),
       pod_json});
  CtlOk({"start", keep});
  const std::string ctl = absl::StrCat(BERTHCTL_PATH, " --runtime-endpoint unix://", d_->socket(),
                                       " attach --transport websocket ");
  Child watcher;
  watcher.Start({"/bin/sh", "-c", ctl + keep}, dir_ / "attach-watch.log");
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(d_->log(), "attached container=" + keep); }))
      << d_->log();
  r = PipedCtl(d_->socket(), "x\\n", {"attach", "-i", "--transport", "websocket", keep});
  EXPECT_EQ(r.exit_code, 0) << r.err;  // detached when its stdin ended
  ASSERT_TRUE(WaitFor([&] { return ReadFileOrEmpty(dir_ / "attach-watch.log") == "first x\n"; }))
      << ReadFileOrEmpty(dir_ / "attach-watch.log");
  EXPECT_EQ(State(keep), "CONTAINER_RUNNING");  // its stdin is still open
  r = PipedCtl(d_->socket(), "y\\n", {"attach", "-i", "--transport", "websocket", keep});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The watcher saw both lines, and ended with the output.
  EXPECT_EQ(watcher.Wait(absl::Seconds(20)), 0);
  EXPECT_EQ(ReadFileOrEmpty(dir_ / "attach-watch.log"), "first x\nsecond y\n");
  EXPECT_TRUE(WaitFor([&] { return State(keep) == "CONTAINER_EXITED"; }));
  // Attaching to a container that has exited is refused.
  r = PipedCtl(d_->socket(), "z\\n", {"attach", "-i", once});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not running"), std::string::npos) << r.err;

  // port-forward to a web server on localhost in the pod's network namespace, and to a port
  // where nothing listens (the error comes back, the forwarder keeps serving).
  const std::string web =
      CtlOk({"create", pod, ContainerConfigFile("web", WebServer("hello-from-pod")), pod_json});
  CtlOk({"start", web});
  r = PipedCtl(d_->socket(), "z\\n", {"attach", "-i", web});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not created with stdin"), std::string::npos) << r.err;
  for (const std::string transport : {"spdy", "websocket"}) {
    SCOPED_TRACE(transport);
    ExpectPortForwardServes("unix://" + d_->socket(), pod, {"--transport", transport},
                            "hello-from-pod", dir_ / ("pf-" + transport + ".log"));
  }

  CtlOk({"stopp", pod});
  CtlOk({"rmp", pod});
  ExpectHostClean();
}

// A self-signed certificate for 127.0.0.1 (as an IP subjectAltName, which is what a client
// checks for an address), its key at PREFIX.key; returns false after a test failure.
bool MakeCertificate(const std::string& prefix) {
  CommandResult gen =
      RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                  "/CN=berth streaming test", "-addext", "subjectAltName=IP:127.0.0.1", "-days",
                  "1", "-keyout", prefix + ".key", "-out", prefix + ".crt"},
                 absl::Seconds(60));
  EXPECT_EQ(gen.exit_code, 0) << gen.err;
  return gen.exit_code == 0;
}

// berthd's streaming server with TLS (streaming.tls_cert_file / tls_key_file).
class BerthctlTlsStreamingTest : public BerthctlPodsTest {
 protected:
  std::string ExtraStreamingConfig() override {
    if (!MakeCertificate(dir_ / "stream") || !MakeCertificate(dir_ / "other")) return "";
    return absl::StrCat("tls_cert_file = \"", dir_ / "stream.crt", "\"\ntls_key_file = \"",
                        dir_ / "stream.key", "\"\n");
  }
};

// berthctl over https: exec over both transports and port-forward, with the server's
// certificate verified against its CA (and against none, as crictl does); a certificate from
// another CA is refused before anything runs.
TEST_F(BerthctlTlsStreamingTest, ExecAndPortForwardOverHttps) {
  const std::string pod_json = PodConfigFile("tls");
  const std::string pod = CtlOk({"runp", pod_json});
  ASSERT_FALSE(pod.empty());
  const std::string web =
      CtlOk({"create", pod, ContainerConfigFile("web", WebServer("hello-over-tls")), pod_json});
  CtlOk({"start", web});
  const std::string ca = dir_ / "stream.crt";
  for (const std::string transport : {"spdy", "websocket"}) {
    SCOPED_TRACE(transport);
    CommandResult r = Ctl({"exec", "--transport", transport, "--stream-ca", ca, web, "sh", "-c",
                           "echo out; echo err >&2; exit 6"});
    EXPECT_EQ(r.exit_code, 6) << r.err << d_->log();
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
    r = PipedCtl(
        d_->socket(), "a\\nb\\n",
        {"exec", "-i", "--transport", transport, "--stream-ca", ca, web, "head", "-n", "2"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "a\nb\n");
    r = Ctl({"exec", "--transport", transport, web, "echo", "unverified"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "unverified\n");
    r = Ctl({"exec", "--transport", transport, "--stream-ca", dir_ / "other.crt", web, "touch",
             "/ran"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("TLS handshake with 127.0.0.1"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
  }
  EXPECT_EQ(Ctl({"exec", web, "test", "-e", "/ran"}).exit_code, 1);  // refused before it ran

  ExpectPortForwardServes("unix://" + d_->socket(), pod, {"--stream-ca", ca}, "hello-over-tls",
                          dir_ / "pf-tls.log");

  CtlOk({"stopp", pod});
  CtlOk({"rmp", pod});
  ExpectHostClean();
}

// A streaming URL split into host, port and path.
struct StreamUrl {
  std::string host, path;
  int port = 0;
};
StreamUrl SplitUrl(const std::string& url) {
  StreamUrl u;
  absl::string_view rest = url;
  EXPECT_TRUE(absl::ConsumePrefix(&rest, "http://")) << url;
  size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  u.path = std::string(rest.substr(slash));
  size_t colon = hostport.rfind(':');
  u.host = std::string(hostport.substr(0, colon));
  EXPECT_TRUE(absl::SimpleAtoi(hostport.substr(colon + 1), &u.port)) << url;
  return u;
}

// A raw TCP connection to the streaming server: what a broken or hostile client sends.
class RawClient {
 public:
  explicit RawClient(const StreamUrl& u) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(u.port));
    ::inet_pton(AF_INET, u.host.c_str(), &addr.sin_addr);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0);
    struct timeval tv = {10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { ::close(fd_); }
  void Send(absl::string_view data) {
    EXPECT_EQ(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(data.size()));
  }
  // Reads until `stop` is in what came, or the peer closes (then closed() is true).
  std::string ReadUntil(absl::string_view stop) {
    char buf[4096];
    while (!absl::StrContains(got_, stop)) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = n == 0;
        break;
      }
      got_.append(buf, static_cast<size_t>(n));
    }
    return got_;
  }
  // True once the server closed the connection (read to EOF; false on a 10 s timeout).
  bool WaitClosed() {
    ReadUntil(std::string(1, '\0') + "never");
    return closed_;
  }

 private:
  int fd_ = -1;
  std::string got_;
  bool closed_ = false;
};

// The URL of a CRI Exec of `cmd` in container `id` (stdout, and stderr without a tty).
std::string ExecUrl(v1::RuntimeService::Stub* rt, const std::string& id,
                    const std::vector<std::string>& cmd, bool tty, bool stdin = false) {
  v1::ExecRequest req;
  req.set_stdin(stdin);
  req.set_container_id(id);
  for (const std::string& c : cmd) req.add_cmd(c);
  req.set_stdout(true);
  req.set_stderr(!tty);
  req.set_tty(tty);
  v1::ExecResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = rt->Exec(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp.url();
}

// What `stty size` prints in a tty exec in container `id` whose client terminal is 33 rows by
// 77 columns (a pty of the test's); "33 77\r\n" when the size got through. With `stdin`, the
// pty is the session's stdin too (kubectl's `exec -it`; it has no -t without -i).
std::string TerminalSizeSeen(v1::RuntimeService::Stub* rt, const std::string& id,
                             client::Transport transport, bool stdin = false) {
  int master = -1, slave = -1;
  struct winsize ws {};
  ws.ws_row = 33;
  ws.ws_col = 77;
  if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) return "openpty failed";
  // The client sends its size as soon as the streams are up, while the process may already
  // run (as with the kubelet and containerd, the CRI request carries no size): the command
  // asks again until the size is there (busybox's stty says "0 0" is no size, but exits 0).
  // (Through sh: busybox sh runs applets the image does not link; each try in a shell of its
  // own, as a failed in-process stty leaves busybox ash's stdin unusable for the next.)
  client::RemoteCommandOptions o;
  o.url = ExecUrl(rt, id,
                  {"sh", "-c",
                   "for i in $(seq 50); do s=$(sh -c 'stty size' 2>/dev/null); "
                   "case $s in [1-9]*) echo $s; exit 0;; esac; sleep 0.1; done; exit 1"},
                  true, stdin);
  o.transport = transport;
  o.stdin = stdin;
  o.tty = true;
  o.stderr = false;
  o.in_fd = slave;
  std::string out;
  o.output = [&out](uint8_t, absl::string_view data) { out.append(data.data(), data.size()); };
  absl::StatusOr<int> code = client::RunRemoteCommand(o);
  ::close(master);
  ::close(slave);
  if (!code.ok()) return absl::StrCat("session failed: ", code.status().ToString());
  if (*code != 0) return absl::StrCat("exit code ", *code, ": ", out);
  return out;
}

TEST_F(BerthctlPodsTest, StreamingProtocolEdges) {
  const std::string pod_json = PodConfigFile("p5");
  const std::string pod = CtlOk({"runp", pod_json});
  ASSERT_FALSE(pod.empty());
  const std::string id =
      CtlOk({"create", pod, ContainerConfigFile("s", {"sleep", "1000"}), pod_json});
  CtlOk({"start", id});
  auto exec_url = [&](const std::vector<std::string>& cmd, bool tty) {
    return ExecUrl(rt_.get(), id, cmd, tty);
  };
  auto run = [&](const std::string& url, client::Transport transport, bool tty, int in_fd,
                 std::string* out) {
    client::RemoteCommandOptions o;
    o.url = url;
    o.transport = transport;
    o.tty = tty;
    o.stderr = !tty;
    o.in_fd = in_fd;
    o.output = [out](uint8_t, absl::string_view data) { out->append(data.data(), data.size()); };
    return client::RunRemoteCommand(o);
  };

  // Tokens: unknown, used, for another kind, expired: 404 and nothing else.
  const std::string url = exec_url({"echo", "once"}, false);
  StreamUrl u = SplitUrl(url);
  {
    RawClient c(u);
    c.Send(absl::StrCat("GET /exec/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(absl::StartsWith(c.ReadUntil("\r\n\r\n"), "HTTP/1.1 404")) << url;
  }
  std::string out;
  absl::StatusOr<int> code = run(url, client::Transport::kSpdy, false, 0, &out);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(out, "once\n");
  code = run(url, client::Transport::kSpdy, false, 0, &out);
  ASSERT_FALSE(code.ok());
  EXPECT_NE(code.status().message().find("404"), std::string::npos) << code.status();
  {
    StreamUrl other = SplitUrl(exec_url({"true"}, false));
    other.path.replace(0, std::string("/exec").size(), "/attach");
    RawClient c(other);
    c.Send(absl::StrCat("GET ", other.path, " HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(absl::StartsWith(c.ReadUntil("\r\n\r\n"), "HTTP/1.1 404")) << other.path;
  }
  const std::string late = exec_url({"true"}, false);
  absl::SleepFor(absl::Milliseconds(2500));
  code = run(late, client::Transport::kWebSocket, false, 0, &out);
  EXPECT_FALSE(code.ok());

  for (client::Transport transport : {client::Transport::kSpdy, client::Transport::kWebSocket}) {
    SCOPED_TRACE(transport == client::Transport::kSpdy ? "spdy" : "websocket");
    // A terminal's size follows the client's: `stty size` inside sees ours.
    EXPECT_EQ(TerminalSizeSeen(rt_.get(), id, transport), "33 77\r\n");
    // 100 MB of output arrive whole.
    uint64_t bytes = 0;
    bool only_x = true;
    client::RemoteCommandOptions o;
    o.url = exec_url({"sh", "-c", "head -c 100000000 /dev/zero | tr '\\0' x"}, false);
    o.transport = transport;
    o.output = [&](uint8_t channel, absl::string_view data) {
      if (channel != 1) return;
      bytes += data.size();
      only_x = only_x && data.find_first_not_of('x') == absl::string_view::npos;
    };
    code = client::RunRemoteCommand(o);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0);
    EXPECT_EQ(bytes, 100000000u);
    EXPECT_TRUE(only_x);
  }

  // A session with no traffic either way for idle_timeout is closed (and its process killed).
  {
    absl::Time start = absl::Now();
    out.clear();
    code = run(exec_url({"sleep", "4322"}, false), client::Transport::kSpdy, false, 0, &out);
    EXPECT_FALSE(code.ok());
    EXPECT_GE(absl::Now() - start, absl::Seconds(4));
    EXPECT_LT(absl::Now() - start, absl::Seconds(30));
    EXPECT_TRUE(WaitFor([&] {
      return Trim(CtlOk({"exec", "-s", id, "sh", "-c", "ps | grep -c '[s]leep 4322' || true"})) ==
             "0";
    }));
  }

  // A client that vanishes mid-stream: the process it started is killed.
  Child gone;
  const std::string gone_log = dir_ / "exec-gone.log";
  gone.Start({BERTHCTL_PATH, "--runtime-endpoint", "unix://" + d_->socket(), "exec", id, "sh", "-c",
              "echo started; exec sleep 4321"},
             gone_log);
  ASSERT_TRUE(WaitFor([&] { return ReadFileOrEmpty(gone_log) == "started\n"; }))
      << ReadFileOrEmpty(gone_log);
  auto sleepers = [&] {
    return Trim(CtlOk({"exec", "-s", id, "sh", "-c", "ps | grep -c '[s]leep 4321' || true"}));
  };
  EXPECT_EQ(sleepers(), "1");
  gone.Stop(SIGKILL, absl::Seconds(5));
  EXPECT_TRUE(WaitFor([&] { return sleepers() == "0"; })) << sleepers();

  // Malformed frames end their session with an error; berthd serves on.
  {
    StreamUrl su = SplitUrl(exec_url({"sleep", "1"}, false));
    RawClient c(su);
    c.Send(absl::StrCat("POST ", su.path,
                        " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"));
    EXPECT_TRUE(absl::StartsWith(c.ReadUntil("\r\n\r\n"), "HTTP/1.1 101"));
    // A control frame of SPDY version 2: not ours.
    c.Send(std::string("\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", 12));
    EXPECT_TRUE(c.WaitClosed());
  }
  {
    StreamUrl su = SplitUrl(exec_url({"sleep", "1"}, false));
    RawClient c(su);
    c.Send(
        absl::StrCat("GET ", su.path,
                     " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"));
    EXPECT_TRUE(absl::StartsWith(c.ReadUntil("\r\n\r\n"), "HTTP/1.1 101"));
    // An unmasked client frame with a reserved opcode.
    c.Send(std::string("\x83\x01\x00", 3));
    EXPECT_TRUE(c.WaitClosed());
  }
  out.clear();
  code = run(exec_url({"echo", "still"}, false), client::Transport::kSpdy, false, 0, &out);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(out, "still\n");

  // port-forward from a host-network pod reaches the host's localhost (here: the test's own
  // network namespace), where this test listens.
  const std::string host_json = PodConfigFile("hostnet", /*host_network=*/true);
  const std::string host_pod = CtlOk({"runp", host_json});
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<struct sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<struct sockaddr*>(&addr), &len), 0);
  std::thread server([listener] {
    int c = ::accept(listener, nullptr, nullptr);
    if (c < 0) return;
    const char pong[] = "pong\n";
    (void)!::write(c, pong, sizeof pong - 1);
    ::close(c);
  });
  const int local = FreeLoopbackPort();
  Child pf;
  const std::string pf_log = dir_ / "pf-host.log";
  pf.Start({BERTHCTL_PATH, "--runtime-endpoint", "unix://" + d_->socket(), "port-forward", host_pod,
            absl::StrCat(local, ":", ntohs(addr.sin_port))},
           pf_log);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFileOrEmpty(pf_log), "Forwarding"); }))
      << ReadFileOrEmpty(pf_log);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to {};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(local));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(c, reinterpret_cast<struct sockaddr*>(&to), sizeof to), 0);
  std::string got;
  char buf[64];
  ssize_t n;
  struct timeval tv = {20, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while ((n = ::read(c, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(c);
  server.join();
  ::close(listener);
  EXPECT_EQ(got, "pong\n");
  pf.Stop(SIGTERM, absl::Seconds(10));

  for (const std::string& p : {pod, host_pod}) {
    CtlOk({"stopp", p});
    CtlOk({"rmp", p});
  }
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

// The same berthctl streaming commands against containerd's CRI (Debian's 1.6, with runc and
// the same CNI bridge), so berthctl is checked against a streaming server that is not ours:
// exec (both transports, stdin, exit codes, a terminal's size), attach with stdin_once, and
// port-forward (both transports, a closed port). containerd runs privately (its own root, state,
// sockets) with a pause image made from the busybox fixture (its sandboxes need one) and the
// images imported from the fixture layouts (nothing is pulled).
class BerthctlAgainstContainerdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    ASSERT_EQ(::stat("/usr/bin/containerd", &st), 0)
        << "containerd is a test dependency (packaging/deps.sh installs it)";
    ::mkdir((dir_ / "net.d").c_str(), 0755);
    WriteBridgeConflist(dir_ / "net.d/10-test.conflist", "berthctl-ctd-test", "berthctl1",
                        "10.199.10.0/24", dir_ / "ipam");
    sock_ = dir_ / "containerd.sock";
    WriteFileOrDie(dir_ / "config.toml", absl::StrCat(R"(version = 2
root = ")",
                                                      dir_ / "root", R"("
state = ")",
                                                      dir_ / "state", R"("
[grpc]
  address = ")",
                                                      sock_, R"("
[ttrpc]
  address = ")",
                                                      sock_, R"(.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = ")",
                                                      dir_ / "opt", R"("
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/berth-test/pause:latest"
  restrict_oom_score_adj = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ")",
                                                      dir_ / "net.d", R"("
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = ")",
                                                      dir_ / "runc", R"("
)"));
    containerd_.Start({"/usr/bin/containerd", "--config", dir_ / "config.toml"},
                      dir_ / "containerd.log");
    ASSERT_TRUE(WaitForSocket(sock_, absl::Seconds(30)))
        << ReadFileOrEmpty(dir_ / "containerd.log");
    rt_ = v1::RuntimeService::NewStub(
        grpc::CreateChannel("unix://" + sock_, grpc::InsecureChannelCredentials()));
    // The pause image: busybox with `sleep infinity` as its process. Both layouts go in as
    // OCI archives (ctr names them from the layout's "latest" tag).
    CommandResult r = RunCommand(
        {"/bin/sh", "-c",
         absl::StrCat("set -e; cp -a ", BERTH_FIXTURE_IMAGES, "/busybox ", dir_ / "pause", "; ",
                      "umoci config --image ", dir_ / "pause", ":latest --clear=config.cmd ",
                      "--config.entrypoint /bin/sleep --config.entrypoint infinity; ", "tar -C ",
                      dir_ / "pause", " -cf ", dir_ / "pause.tar", " .; ", "tar -C ",
                      BERTH_FIXTURE_IMAGES, "/busybox -cf ", dir_ / "busybox.tar", " .; ",
                      "for i in pause busybox; do ctr --address ", sock_,
                      " -n k8s.io images import --base-name localhost/berth-test/$i ", dir_.path(),
                      "/$i.tar; done")},
        absl::Seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << ReadFileOrEmpty(dir_ / "containerd.log");
  }

  void TearDown() override {
    RemoveEveryPod(rt_.get());
    // containerd-shim ends with its pod; containerd itself is ours to stop.
    containerd_.Stop(SIGTERM, absl::Seconds(20));
    EXPECT_TRUE(WaitFor([&] {
      return RunCommand({"/usr/bin/pgrep", "-f", "containerd-shim.*" + sock_}).out.empty();
    })) << "containerd-shim left";
    std::vector<std::string> left = TestCgroups();
    for (auto d = left.rbegin(); d != left.rend(); ++d) ::rmdir(d->c_str());
    EXPECT_TRUE(TestCgroups().empty()) << "cgroups left: " << TestCgroups().front();
    RemoveCgroupParents({kCgroupParent});
    std::string mounts = ReadFileOrEmpty("/proc/self/mountinfo");
    EXPECT_EQ(mounts.find(dir_.path() + "/"), std::string::npos) << "mounts left:\n" << mounts;
  }

  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(20)) {
    return WaitUntil(done, timeout);
  }

  // berthctl against containerd; with `input`, that is its stdin (printf escapes).
  CommandResult Ctl(const std::vector<std::string>& args, const std::string& input = "") {
    std::string line = absl::StrCat("printf '", input, "' | ", BERTHCTL_PATH,
                                    " --runtime-endpoint unix://", sock_, " --timeout 60s");
    for (const std::string& a : args) absl::StrAppend(&line, " '", a, "'");
    return RunCommand({"/bin/sh", "-c", line}, absl::Seconds(60));
  }
  std::string CtlOk(const std::vector<std::string>& args) {
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ": " << r.out << r.err;
    return Trim(r.out);
  }
  std::string File(const std::string& name, const nlohmann::json& j) {
    WriteFileOrDie(dir_ / name, j.dump());
    return dir_ / name;
  }
  std::string Container(const std::string& pod, const std::string& pod_json,
                        const std::string& name, const std::vector<std::string>& cmd,
                        const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json c = {{"metadata", {{"name", name}}},
                        {"image", {{"image", "localhost/berth-test/busybox:latest"}}},
                        {"command", cmd},
                        {"log_path", name + ".log"}};
    c.update(extra);
    const std::string id = CtlOk({"create", pod, File(name + ".json", c), pod_json});
    CtlOk({"start", id});
    return id;
  }

  TempDir dir_;
  std::string sock_;
  Child containerd_;
  std::unique_ptr<v1::RuntimeService::Stub> rt_;
};

TEST_F(BerthctlAgainstContainerdTest, ExecAttachAndPortForward) {
  const std::string pod_json = File(
      "pod.json",
      {{"metadata", {{"name", "ctd"}, {"namespace", "berthctl-ns"}, {"uid", "ctd-1"}}},
       {"log_directory", dir_ / "logs"},
       {"linux", {{"cgroup_parent", absl::StrCat(kCgroupParent, "/", CgroupPrefix(), "ctd")}}}});
  const std::string pod = CtlOk({"runp", pod_json});
  ASSERT_FALSE(pod.empty());
  const std::string sleeper = Container(pod, pod_json, "sleeper", {"sleep", "1000"});

  for (const std::string transport : {"spdy", "websocket"}) {
    SCOPED_TRACE(transport);
    CommandResult r = Ctl(
        {"exec", "--transport", transport, sleeper, "sh", "-c", "echo out; echo err >&2; exit 3"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
    const client::Transport t =
        transport == "spdy" ? client::Transport::kSpdy : client::Transport::kWebSocket;
    // (As kubectl does it, with stdin: containerd 1.6 loses a WebSocket terminal's output
    // when the session has no stdin.)
    EXPECT_EQ(TerminalSizeSeen(rt_.get(), sleeper, t, /*stdin=*/true), "33 77\r\n");
  }
  // stdin: its end reaches `cat` over SPDY. containerd 1.6 speaks WebSocket only up to
  // v4.channel.k8s.io, which cannot carry it: berthctl says so, and a command that stops
  // reading by itself is what works there.
  CommandResult r = Ctl({"exec", "-i", sleeper, "cat"}, "a\\nb\\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "a\nb\n");
  r = Ctl({"exec", "-i", "--transport", "websocket", sleeper, "head", "-n", "2"}, "a\\nb\\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "a\nb\n");
  EXPECT_NE(r.err.find("v4.channel.k8s.io, which cannot close the remote stdin"), std::string::npos)
      << r.err;

  // attach: stdin_once over SPDY (the end of our stdin ends the container's), and a
  // container's own stdio over WebSocket.
  const std::string once =
      Container(pod, pod_json, "once", {"sh", "-c", "while read l; do echo got $l; done; echo bye"},
                {{"stdin", true}, {"stdin_once", true}});
  r = Ctl({"attach", "-i", once}, "a\\nb\\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "got a\ngot b\nbye\n");
  // Over WebSocket (v4 with containerd 1.6: our stdin's end cannot be told, so the session
  // stays attached): what we send reaches the container, and its answer comes back.
  const std::string reader =
      Container(pod, pod_json, "reader", {"sh", "-c", "while read l; do echo got $l; done"},
                {{"stdin", true}});
  Child attach;
  attach.Start({"/bin/sh", "-c",
                absl::StrCat("printf 'x\\n' | ", BERTHCTL_PATH, " --runtime-endpoint unix://",
                             sock_, " attach -i --transport websocket ", reader)},
               dir_ / "attach-ws.log");
  EXPECT_TRUE(WaitFor([&] {
    return absl::StrContains(ReadFileOrEmpty(dir_ / "attach-ws.log"), "got x\n");
  })) << ReadFileOrEmpty(dir_ / "attach-ws.log");
  attach.Stop(SIGTERM, absl::Seconds(10));

  // port-forward to httpd on the pod's localhost, and to a closed port.
  Container(pod, pod_json, "web", WebServer("hello-from-containerd"));
  for (const std::string transport : {"spdy", "websocket"}) {
    SCOPED_TRACE(transport);
    ExpectPortForwardServes("unix://" + sock_, pod, {"--transport", transport},
                            "hello-from-containerd", dir_ / ("pf-" + transport + ".log"));
  }

  CtlOk({"stopp", pod});
  CtlOk({"rmp", pod});
}

}  // namespace
}  // namespace berth::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!berth::testing::EnterPrivateNetworkAndMountNamespace()) return 1;
  return RUN_ALL_TESTS();
}

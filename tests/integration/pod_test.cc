// Pods and containers end to end: the real berthd, berth-monitor, the runtime library (and
// runc for the "runc" handler), Debian's CNI plugins and the fixture images (imported from
// their OCI layouts). The whole test runs in a private network and mount namespace of its own
// (see main): the bridge, the pod addresses and every mount stay in there, and every pod's
// cgroup is under berth-test-pods/, which the test removes.
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cri/api/cri.h"
#include "gtest/gtest.h"
#include "tests/integration/berthd_launcher.h"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

constexpr char kCgroupParent[] = "berth-test-pods";
const std::string kBusybox = "localhost/berth-test/busybox:1";
const std::string kLayers = "localhost/berth-test/layers:1";

std::unique_ptr<grpc::ClientContext> LongCtx(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

// The cgroup dirs named `name` under the test parent, in any hierarchy.
std::vector<std::string> TestCgroups() {
  std::vector<std::string> found;
  for (const std::string& root :
       {std::string("/sys/fs/cgroup"), std::string("/sys/fs/cgroup/memory"),
        std::string("/sys/fs/cgroup/cpu,cpuacct"), std::string("/sys/fs/cgroup/pids")}) {
    std::string dir = absl::StrCat(root, "/", kCgroupParent);
    CommandResult r = RunCommand({"/usr/bin/find", dir, "-mindepth", "1", "-type", "d"});
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
      found.emplace_back(line);
    }
  }
  return found;
}

class PodTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ::mkdir((dir_ / "net.d").c_str(), 0755);
    WriteFileOrDie(dir_ / "net.d/10-test.conflist", absl::StrCat(R"({
      "cniVersion": "1.0.0", "name": "berth-pod-test",
      "plugins": [
        {"type": "bridge", "bridge": "berthpod0", "isGateway": true, "ipMasq": false,
         "ipam": {"type": "host-local", "dataDir": ")",
                                                                 dir_ / "ipam", R"(",
                  "ranges": [[{"subnet": "10.199.7.0/24"}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": true}}]})"));
    d_ = std::make_unique<Berthd>(dir_, absl::StrCat("[runtime]\nlog_max_line = 256\n"));
    d_->Start();
    rt_ = v1::RuntimeService::NewStub(d_->Channel());
    img_ = v1::ImageService::NewStub(d_->Channel());
    Import("busybox", kBusybox);
    Import("layers", kLayers);
  }

  void TearDown() override {
    // Whatever a failed test left: removed through the CRI, then checked gone.
    v1::ListPodSandboxRequest lreq;
    v1::ListPodSandboxResponse lresp;
    if (rt_ && rt_->ListPodSandbox(Ctx().get(), lreq, &lresp).ok()) {
      for (const v1::PodSandbox& p : lresp.items()) {
        v1::StopPodSandboxRequest s;
        s.set_pod_sandbox_id(p.id());
        v1::StopPodSandboxResponse sr;
        (void)rt_->StopPodSandbox(LongCtx(60).get(), s, &sr);
        v1::RemovePodSandboxRequest r;
        r.set_pod_sandbox_id(p.id());
        v1::RemovePodSandboxResponse rr;
        EXPECT_TRUE(rt_->RemovePodSandbox(LongCtx(60).get(), r, &rr).ok());
      }
    }
    ExpectHostClean();
    if (d_) d_->child().Stop(SIGTERM, absl::Seconds(10));
    for (const std::string& root :
         {std::string("/sys/fs/cgroup"), std::string("/sys/fs/cgroup/memory"),
          std::string("/sys/fs/cgroup/cpu,cpuacct"), std::string("/sys/fs/cgroup/pids"),
          std::string("/sys/fs/cgroup/cpuset"), std::string("/sys/fs/cgroup/blkio"),
          std::string("/sys/fs/cgroup/devices"), std::string("/sys/fs/cgroup/freezer"),
          std::string("/sys/fs/cgroup/hugetlb"), std::string("/sys/fs/cgroup/net_cls,net_prio"),
          std::string("/sys/fs/cgroup/perf_event"), std::string("/sys/fs/cgroup/systemd"),
          std::string("/sys/fs/cgroup/unified"), std::string("/sys/fs/cgroup/misc"),
          std::string("/sys/fs/cgroup/rdma")}) {
      ::rmdir(absl::StrCat(root, "/", kCgroupParent).c_str());
    }
  }

  // No pod dir, namespace pin, container dir, monitor, cgroup or address lease is left.
  void ExpectHostClean() {
    CommandResult pods = RunCommand({"/usr/bin/find", dir_ / "state/pods", "-mindepth", "1"});
    EXPECT_EQ(pods.out, "") << "pod dirs left";
    CommandResult ctrs = RunCommand({"/usr/bin/find", dir_ / "root/containers", "-mindepth", "1"});
    EXPECT_EQ(ctrs.out, "") << "container dirs left";
    std::string mounts = ReadFileOrEmpty("/proc/self/mountinfo");
    EXPECT_EQ(mounts.find(dir_.path()), std::string::npos) << "mounts left:\n" << mounts;
    EXPECT_TRUE(TestCgroups().empty()) << "cgroups left: " << TestCgroups().front();
    CommandResult leases =
        RunCommand({"/usr/bin/find", dir_ / "ipam", "-type", "f", "-name", "10.*"});
    EXPECT_EQ(leases.out, "") << "address leases left";
    CommandResult monitors = RunCommand({"/usr/bin/pgrep", "-f", "berth-monitor --pod-dir " + dir_.path()});
    EXPECT_EQ(monitors.out, "") << "monitors left";
  }

  void Import(const std::string& layout, const std::string& tag) {
    CommandResult r = RunCommand({BERTHCTL_PATH, "--runtime-endpoint", "unix://" + d_->socket(),
                                  "image", "import", absl::StrCat(BERTH_FIXTURE_IMAGES "/", layout),
                                  "--tag", tag},
                                 absl::Seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  v1::PodSandboxConfig PodConfig(const std::string& name) {
    v1::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("default");
    c.mutable_metadata()->set_uid(absl::StrCat("uid-", name, "-", ++counter_));
    c.set_hostname(name);
    c.set_log_directory(dir_ / absl::StrCat("logs/", name, counter_));
    c.mutable_linux()->set_cgroup_parent(absl::StrCat(kCgroupParent, "/pod-", name, counter_));
    (*c.mutable_labels())["app"] = name;
    return c;
  }

  std::string RunPod(const v1::PodSandboxConfig& config) {
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    req.set_runtime_handler(GetParam());
    v1::RunPodSandboxResponse resp;
    grpc::Status st = rt_->RunPodSandbox(LongCtx(60).get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message() << d_->log();
    return resp.pod_sandbox_id();
  }

  v1::ContainerConfig CtrConfig(const std::string& name, const std::vector<std::string>& cmd,
                                const std::string& image = "") {
    v1::ContainerConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_image()->set_image(image.empty() ? kBusybox : image);
    for (const std::string& a : cmd) c.add_command(a);
    c.set_log_path(name + ".log");
    return c;
  }

  grpc::Status Create(const std::string& pod, const v1::PodSandboxConfig& pc,
                      const v1::ContainerConfig& cc, std::string* id) {
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_config() = cc;
    *req.mutable_sandbox_config() = pc;
    v1::CreateContainerResponse resp;
    grpc::Status st = rt_->CreateContainer(LongCtx(60).get(), req, &resp);
    *id = resp.container_id();
    return st;
  }

  std::string CreateAndStart(const std::string& pod, const v1::PodSandboxConfig& pc,
                             const v1::ContainerConfig& cc) {
    std::string id;
    grpc::Status st = Create(pod, pc, cc, &id);
    EXPECT_TRUE(st.ok()) << st.error_message() << d_->log();
    v1::StartContainerRequest sreq;
    sreq.set_container_id(id);
    v1::StartContainerResponse sresp;
    st = rt_->StartContainer(LongCtx(60).get(), sreq, &sresp);
    EXPECT_TRUE(st.ok()) << st.error_message() << d_->log();
    return id;
  }

  v1::ContainerStatus Status(const std::string& id) {
    v1::ContainerStatusRequest req;
    req.set_container_id(id);
    v1::ContainerStatusResponse resp;
    grpc::Status st = rt_->ContainerStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  v1::ContainerStatus WaitExited(const std::string& id, absl::Duration timeout = absl::Seconds(20)) {
    absl::Time deadline = absl::Now() + timeout;
    v1::ContainerStatus s;
    do {
      s = Status(id);
      if (s.state() == v1::CONTAINER_EXITED) return s;
      absl::SleepFor(absl::Milliseconds(20));
    } while (absl::Now() < deadline);
    ADD_FAILURE() << "container " << id << " did not exit";
    return s;
  }

  v1::ExecSyncResponse Exec(const std::string& id, const std::vector<std::string>& cmd,
                            grpc::Status* status = nullptr, int64_t timeout = 0) {
    v1::ExecSyncRequest req;
    req.set_container_id(id);
    for (const std::string& a : cmd) req.add_cmd(a);
    req.set_timeout(timeout);
    v1::ExecSyncResponse resp;
    grpc::Status st = rt_->ExecSync(LongCtx(60).get(), req, &resp);
    if (status != nullptr) {
      *status = st;
    } else {
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    return resp;
  }

  grpc::Status StopCtr(const std::string& id, int64_t timeout) {
    v1::StopContainerRequest req;
    req.set_container_id(id);
    req.set_timeout(timeout);
    v1::StopContainerResponse resp;
    return rt_->StopContainer(LongCtx(120).get(), req, &resp);
  }

  void RemovePod(const std::string& id) {
    v1::StopPodSandboxRequest s;
    s.set_pod_sandbox_id(id);
    v1::StopPodSandboxResponse sr;
    grpc::Status st = rt_->StopPodSandbox(LongCtx(60).get(), s, &sr);
    EXPECT_TRUE(st.ok()) << st.error_message();
    v1::RemovePodSandboxRequest r;
    r.set_pod_sandbox_id(id);
    v1::RemovePodSandboxResponse rr;
    st = rt_->RemovePodSandbox(LongCtx(60).get(), r, &rr);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }

  // The CRI log records of a file, without their timestamps: "stdout F text".
  std::vector<std::string> LogRecords(const std::string& path) {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(ReadFileOrEmpty(path), '\n', absl::SkipEmpty())) {
      size_t sp = line.find(' ');
      out.emplace_back(sp == absl::string_view::npos ? line : line.substr(sp + 1));
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Berthd> d_;
  std::unique_ptr<v1::RuntimeService::Stub> rt_;
  std::unique_ptr<v1::ImageService::Stub> img_;
  int counter_ = 0;
};

TEST_P(PodTest, OnePodOneContainerLifecycleAndLogs) {
  v1::PodSandboxConfig pc = PodConfig("one");
  std::string pod = RunPod(pc);
  ASSERT_FALSE(pod.empty());

  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(pod);
  sreq.set_verbose(true);
  v1::PodSandboxStatusResponse sresp;
  ASSERT_TRUE(rt_->PodSandboxStatus(Ctx().get(), sreq, &sresp).ok());
  EXPECT_EQ(sresp.status().state(), v1::SANDBOX_READY);
  EXPECT_TRUE(absl::StartsWith(sresp.status().network().ip(), "10.199.7.")) << sresp.DebugString();
  EXPECT_EQ(sresp.status().labels().at("app"), "one");
  EXPECT_EQ(sresp.status().runtime_handler(), GetParam());

  v1::ContainerConfig cc = CtrConfig(
      "c1", {"sh", "-c", "echo hello; echo oops >&2; hostname; cat /etc/hostname; exit 3"});
  std::string id = CreateAndStart(pod, pc, cc);
  v1::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.exit_code(), 3);
  EXPECT_EQ(s.reason(), "Error");
  EXPECT_GT(s.started_at(), 0);
  EXPECT_GE(s.finished_at(), s.started_at());
  EXPECT_EQ(s.image().image(), kBusybox);
  EXPECT_TRUE(absl::StartsWith(s.image_id(), "sha256:"));
  std::string log_path = pc.log_directory() + "/c1.log";
  EXPECT_EQ(s.log_path(), log_path);
  std::vector<std::string> records = LogRecords(log_path);
  std::vector<std::string> want = {"stdout F hello", "stderr F oops", "stdout F one",
                                   "stdout F one"};
  std::sort(records.begin(), records.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(records, want) << ReadFileOrEmpty(log_path);
  // Timestamps: RFC 3339 with nanoseconds.
  std::string first = ReadFileOrEmpty(log_path).substr(0, 31);
  ASSERT_EQ(first.size(), 31u);
  EXPECT_EQ(first[10], 'T');
  EXPECT_EQ(first[29], 'Z');
  EXPECT_EQ(first[30], ' ');

  v1::ListContainersRequest lreq;
  v1::ListContainersResponse lresp;
  ASSERT_TRUE(rt_->ListContainers(Ctx().get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.containers_size(), 1);
  EXPECT_EQ(lresp.containers(0).id(), id);
  EXPECT_EQ(lresp.containers(0).state(), v1::CONTAINER_EXITED);

  v1::RemoveContainerRequest rreq;
  rreq.set_container_id(id);
  v1::RemoveContainerResponse rresp;
  ASSERT_TRUE(rt_->RemoveContainer(Ctx().get(), rreq, &rresp).ok());
  ASSERT_TRUE(rt_->RemoveContainer(Ctx().get(), rreq, &rresp).ok()) << "idempotent";
  RemovePod(pod);
  RemovePod(pod);  // idempotent
}

TEST_P(PodTest, ExecSyncOutputExitCodeAndTimeout) {
  v1::PodSandboxConfig pc = PodConfig("exec");
  std::string pod = RunPod(pc);
  std::string id = CreateAndStart(pod, pc, CtrConfig("sleeper", {"sleep", "1000"}));
  v1::ExecSyncResponse r = Exec(id, {"sh", "-c", "echo out; echo err >&2; exit 5"});
  EXPECT_EQ(r.stdout(), "out\n");
  EXPECT_EQ(r.stderr(), "err\n");
  EXPECT_EQ(r.exit_code(), 5);
  r = Exec(id, {"cat", "/etc/hostname"});
  EXPECT_EQ(r.stdout(), "exec\n");
  EXPECT_EQ(r.exit_code(), 0);

  grpc::Status st;
  absl::Time start = absl::Now();
  Exec(id, {"sleep", "30"}, &st, 1);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  // The timed-out process is gone: only the container's sleep 1000 is left.
  r = Exec(id, {"sh", "-c", "ps -o args | grep -c '^sleep 30' || true"});
  EXPECT_EQ(r.stdout(), "0\n") << r.stdout();

  ASSERT_TRUE(StopCtr(id, 0).ok());
  v1::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.exit_code(), 137);
  RemovePod(pod);
}

TEST_P(PodTest, StopHonoursGraceThenKills) {
  v1::PodSandboxConfig pc = PodConfig("stop");
  std::string pod = RunPod(pc);
  std::string polite = CreateAndStart(pod, pc, CtrConfig("polite", {"sleep", "1000"}));
  std::string stubborn = CreateAndStart(
      pod, pc, CtrConfig("stubborn", {"sh", "-c", "trap 'echo got TERM' TERM; while :; do sleep 0.1; done"}));
  absl::SleepFor(absl::Milliseconds(300));  // the trap is set
  absl::Time start = absl::Now();
  ASSERT_TRUE(StopCtr(polite, 10).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(WaitExited(polite).exit_code(), 128 + SIGTERM);

  start = absl::Now();
  ASSERT_TRUE(StopCtr(stubborn, 2).ok());
  absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Seconds(2));
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ(WaitExited(stubborn).exit_code(), 128 + SIGKILL);
  EXPECT_NE(ReadFileOrEmpty(pc.log_directory() + "/stubborn.log").find("stdout F got TERM"),
            std::string::npos);
  RemovePod(pod);
}

TEST_P(PodTest, ImageEntrypointEnvWorkdirAndUser) {
  v1::PodSandboxConfig pc = PodConfig("image");
  std::string pod = RunPod(pc);
  // The layers image: Entrypoint [/bin/echo entry], Cmd [cmd-arg1 cmd-arg2], User 1000:1000.
  std::string a = CreateAndStart(pod, pc, CtrConfig("defaults", {}, kLayers));
  EXPECT_EQ(WaitExited(a).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/defaults.log"),
            std::vector<std::string>{"stdout F entry cmd-arg1 cmd-arg2"});

  v1::ContainerConfig cc =
      CtrConfig("custom", {"sh", "-c", "echo $BERTH_VAR1 $BERTH_VAR2 $FOO; pwd; id -u; id -g"},
                kLayers);
  auto* env = cc.add_envs();
  env->set_key("FOO");
  env->set_value("bar");
  env = cc.add_envs();
  env->set_key("BERTH_VAR1");
  env->set_value("over");
  std::string b = CreateAndStart(pod, pc, cc);
  EXPECT_EQ(WaitExited(b).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/custom.log"),
            (std::vector<std::string>{"stdout F over a=b c bar", "stdout F /work",
                                      "stdout F 1000", "stdout F 1000"}));

  v1::ContainerConfig root = CtrConfig("root", {"sh", "-c", "id -u; pwd"}, kLayers);
  root.mutable_linux()->mutable_security_context()->mutable_run_as_user()->set_value(0);
  root.set_working_dir("/tmp");
  std::string c = CreateAndStart(pod, pc, root);
  EXPECT_EQ(WaitExited(c).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/root.log"),
            (std::vector<std::string>{"stdout F 0", "stdout F /tmp"}));
  RemovePod(pod);
}

TEST_P(PodTest, LongLinesAreSplitIntoPartialRecords) {
  v1::PodSandboxConfig pc = PodConfig("long");
  std::string pod = RunPod(pc);
  // log_max_line is 256 in this test's berth.toml: 600 bytes are P(256) P(256) F(88).
  std::string id = CreateAndStart(
      pod, pc,
      CtrConfig("long", {"sh", "-c", "printf '%0600d\\n' 0; printf 'no newline at the end'"}));
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  std::vector<std::string> r = LogRecords(pc.log_directory() + "/long.log");
  ASSERT_EQ(r.size(), 4u) << ReadFileOrEmpty(pc.log_directory() + "/long.log");
  EXPECT_EQ(r[0], "stdout P " + std::string(256, '0'));
  EXPECT_EQ(r[1], "stdout P " + std::string(256, '0'));
  EXPECT_EQ(r[2], "stdout F " + std::string(88, '0'));
  EXPECT_EQ(r[3], "stdout F no newline at the end");
  RemovePod(pod);
}

TEST_P(PodTest, SharedPidNamespace) {
  v1::PodSandboxConfig pc = PodConfig("pidns");
  pc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string pod = RunPod(pc);
  v1::ContainerConfig a = CtrConfig("a", {"sleep", "1001"});
  a.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string ida = CreateAndStart(pod, pc, a);
  v1::ContainerConfig b = CtrConfig("b", {"sleep", "1002"});
  b.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(v1::POD);
  std::string idb = CreateAndStart(pod, pc, b);
  v1::ExecSyncResponse r = Exec(idb, {"ps", "-o", "pid,args"});
  EXPECT_NE(r.stdout().find("sleep 1001"), std::string::npos) << r.stdout();
  EXPECT_NE(r.stdout().find("sleep 1002"), std::string::npos) << r.stdout();
  // pid 1 is the pod's holder, not a container.
  EXPECT_EQ(r.stdout().find("sleep 1001\n"), r.stdout().find("sleep 1001\n"));
  RemovePod(pod);
}

TEST_P(PodTest, HostNetworkPod) {
  v1::PodSandboxConfig pc = PodConfig("hostnet");
  pc.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      v1::NODE);
  std::string pod = RunPod(pc);
  v1::PodSandboxStatusRequest sreq;
  sreq.set_pod_sandbox_id(pod);
  v1::PodSandboxStatusResponse sresp;
  ASSERT_TRUE(rt_->PodSandboxStatus(Ctx().get(), sreq, &sresp).ok());
  EXPECT_EQ(sresp.status().network().ip(), "");
  std::string id = CreateAndStart(pod, pc, CtrConfig("c", {"sleep", "1000"}));
  // The test's own network namespace: the CNI bridge of the other pods is visible there.
  struct stat mine, theirs;
  ASSERT_EQ(::stat("/proc/self/ns/net", &mine), 0);
  v1::ExecSyncResponse r = Exec(id, {"readlink", "/proc/self/ns/net"});
  EXPECT_EQ(r.stdout(), absl::StrCat("net:[", mine.st_ino, "]\n"));
  (void)theirs;
  RemovePod(pod);
}

TEST_P(PodTest, ReadOnlyRootfsCapabilitiesAndSeccomp) {
  v1::PodSandboxConfig pc = PodConfig("sec");
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc = CtrConfig(
      "c", {"sh", "-c",
            "touch /x 2>/dev/null && echo writable || echo readonly; grep -E '^(CapEff|Seccomp):' "
            "/proc/self/status"});
  auto* sc = cc.mutable_linux()->mutable_security_context();
  sc->set_readonly_rootfs(true);
  sc->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  sc->mutable_capabilities()->add_drop_capabilities("ALL");
  sc->mutable_capabilities()->add_add_capabilities("NET_ADMIN");
  std::string id = CreateAndStart(pod, pc, cc);
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  std::vector<std::string> r = LogRecords(pc.log_directory() + "/c.log");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], "stdout F readonly");
  EXPECT_EQ(r[1], "stdout F CapEff:\t0000000000001000");  // CAP_NET_ADMIN is bit 12
  EXPECT_EQ(r[2], "stdout F Seccomp:\t2");
  RemovePod(pod);
}

TEST_P(PodTest, OomKilledWithASmallMemoryLimit) {
  v1::PodSandboxConfig pc = PodConfig("oom");
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc = CtrConfig("hog", {"sh", "-c", "tail /dev/zero"});
  cc.mutable_linux()->mutable_resources()->set_memory_limit_in_bytes(16 << 20);
  cc.mutable_linux()->mutable_resources()->set_memory_swap_limit_in_bytes(16 << 20);
  std::string id = CreateAndStart(pod, pc, cc);
  v1::ContainerStatus s = WaitExited(id, absl::Seconds(60));
  EXPECT_EQ(s.reason(), "OOMKilled");
  EXPECT_EQ(s.exit_code(), 137);
  RemovePod(pod);
}

TEST_P(PodTest, RestartKeepsContainersRunningAndRecordsExits) {
  v1::PodSandboxConfig pc = PodConfig("restart");
  std::string pod = RunPod(pc);
  std::string runner = CreateAndStart(pod, pc, CtrConfig("runner", {"sleep", "1000"}));
  std::string quitter = CreateAndStart(
      pod, pc, CtrConfig("quitter", {"sh", "-c", "echo before; sleep 2; echo after; exit 7"}));
  ASSERT_EQ(::kill(d_->child().pid(), SIGKILL), 0);
  d_->child().Wait(absl::Seconds(5));
  absl::SleepFor(absl::Seconds(3));  // the quitter exits while berthd is down
  d_->Start();
  rt_ = v1::RuntimeService::NewStub(d_->Channel());
  EXPECT_EQ(Status(runner).state(), v1::CONTAINER_RUNNING);
  v1::ContainerStatus q = Status(quitter);
  EXPECT_EQ(q.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(q.exit_code(), 7);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/quitter.log"),
            (std::vector<std::string>{"stdout F before", "stdout F after"}));
  EXPECT_EQ(Exec(runner, {"echo", "still here"}).stdout(), "still here\n");
  v1::ListPodSandboxRequest lreq;
  v1::ListPodSandboxResponse lresp;
  ASSERT_TRUE(rt_->ListPodSandbox(Ctx().get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.items_size(), 1);
  EXPECT_EQ(lresp.items(0).state(), v1::SANDBOX_READY);
  RemovePod(pod);
}

TEST_P(PodTest, FailedSandboxLeavesNothing) {
  // A pod whose CNI config names a plugin that does not exist: RunPodSandbox fails and
  // undoes the namespaces, cgroup and pod dir.
  WriteFileOrDie(dir_ / "net.d/10-test.conflist", R"({
    "cniVersion": "1.0.0", "name": "berth-pod-test",
    "plugins": [{"type": "no-such-plugin"}]})");
  absl::SleepFor(absl::Milliseconds(300));  // the conf dir watch picks it up
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = PodConfig("broken");
  req.set_runtime_handler(GetParam());
  v1::RunPodSandboxResponse resp;
  grpc::Status st = rt_->RunPodSandbox(LongCtx(60).get(), req, &resp);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("RunPodSandbox"), std::string::npos) << st.error_message();
  v1::ListPodSandboxRequest lreq;
  v1::ListPodSandboxResponse lresp;
  ASSERT_TRUE(rt_->ListPodSandbox(Ctx().get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.items_size(), 0);
  ExpectHostClean();
}

TEST_P(PodTest, TwentyPodsInParallel) {
  std::vector<std::thread> threads;
  std::vector<std::string> pods(20), ctrs(20);
  std::vector<v1::PodSandboxConfig> configs;
  for (int i = 0; i < 20; ++i) configs.push_back(PodConfig(absl::StrCat("par", i)));
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      pods[i] = RunPod(configs[i]);
      if (!pods[i].empty()) {
        ctrs[i] = CreateAndStart(pods[i], configs[i], CtrConfig("c", {"sleep", "1000"}));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 20; ++i) {
    ASSERT_FALSE(ctrs[i].empty());
    EXPECT_EQ(Status(ctrs[i]).state(), v1::CONTAINER_RUNNING);
  }
  threads.clear();
  for (int i = 0; i < 20; ++i) threads.emplace_back([&, i] { RemovePod(pods[i]); });
  for (std::thread& t : threads) t.join();
}

INSTANTIATE_TEST_SUITE_P(Handlers, PodTest, ::testing::Values("", "runc"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param.empty() ? std::string("berth") : info.param;
                         });

}  // namespace
}  // namespace berth::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    std::perror("unshare(CLONE_NEWNET|CLONE_NEWNS) (this test needs root)");
    return 1;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("make / private");
    return 1;
  }
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr {};
  std::strcpy(ifr.ifr_name, "lo");
  ::ioctl(s, SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
    std::perror("bring lo up");
    return 1;
  }
  ::close(s);
  return RUN_ALL_TESTS();
}

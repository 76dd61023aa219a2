// Pods and containers end to end: the real berthd, berth-monitor, the runtime library (and
// runc for the "runc" handler), Debian's CNI plugins and the fixture images (imported from
// their OCI layouts). The whole test runs in a private network and mount namespace of its own
// (see main): the bridge, the pod addresses and every mount stay in there, and every pod's
// cgroup is under berth-test-pods/, which the test removes.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cri/api/cri.h"
#include "gtest/gtest.h"
#include "tests/integration/berthd_launcher.h"
#include "tests/integration/pod_env.h"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

// Every pod's cgroup is under berth-test-pods/<this process>/ (other test binaries use
// berth-test-pods/ at the same time).
const std::string kCgroupTop = "berth-test-pods";
const std::string kCgroupParent = absl::StrCat(kCgroupTop, "/pod-test-", ::getpid());
const std::string kBusybox = "localhost/berth-test/busybox:1";
const std::string kLayers = "localhost/berth-test/layers:1";

// The cgroup dirs under the test parent, in any hierarchy.
std::vector<std::string> TestCgroups() {
  return ListCgroupsUnder(kCgroupParent);
}

class PodTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ::mkdir((dir_ / "net.d").c_str(), 0755);
    WriteBridgeConflist(dir_ / "net.d/10-test.conflist", "berth-pod-test", "berthpod0",
                        "10.199.7.0/24", dir_ / "ipam");
    // A test-only plugin dir first: `slow` (below) is a CNI plugin that hangs on ADD.
    ::mkdir((dir_ / "cnibin").c_str(), 0755);
    WriteFileOrDie(dir_ / "cnibin/berth-test-slow", R"(#!/bin/sh
case "$CNI_COMMAND" in
  VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
  ADD) sleep 30; exit 1 ;;
  *) exit 0 ;;
esac
)");
    ::chmod((dir_ / "cnibin/berth-test-slow").c_str(), 0755);
    d_ = std::make_unique<Berthd>(
        dir_,
        absl::StrCat("bin_dirs = [\"", dir_ / "cnibin",
                     "\", \"/opt/cni/bin\", \"/usr/lib/cni\"]\n[runtime]\nlog_max_line = 256\n"));
    d_->Start();
    rt_ = v1::RuntimeService::NewStub(d_->Channel());
    img_ = v1::ImageService::NewStub(d_->Channel());
    Import("busybox", kBusybox);
  }

  void TearDown() override {
    // Whatever a failed test left: removed through the CRI, then checked gone.
    RemoveEveryPod(rt_.get());
    ExpectHostClean();
    if (d_) d_->child().Stop(SIGTERM, absl::Seconds(10));
    // The test's parents, in every hierarchy the host has (their pods' cgroups are gone).
    RemoveCgroupParents({kCgroupParent, kCgroupTop});
  }

  // No pod dir, namespace pin, container dir, monitor, cgroup or address lease is left.
  void ExpectHostClean() { ExpectNoPodLeftovers(dir_, TestCgroups()); }

  void Import(const std::string& layout, const std::string& tag) {
    CommandResult r =
        RunCommand({BERTHCTL_PATH, "--runtime-endpoint", "unix://" + d_->socket(), "image",
                    "import", absl::StrCat(BERTH_FIXTURE_IMAGES "/", layout), "--tag", tag},
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

  v1::ContainerStatus WaitExited(const std::string& id,
                                 absl::Duration timeout = absl::Seconds(20)) {
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
  // berthd created the pod's cgroup parent and the test's parent above it (they did not
  // exist): they went with the pod, in every hierarchy.
  CommandResult parents =
      RunCommand({"/bin/sh", "-c",
                  absl::StrCat("ls -d /sys/fs/cgroup/", kCgroupParent, " /sys/fs/cgroup/*/",
                               kCgroupParent, " 2>/dev/null; true")});
  EXPECT_EQ(parents.out, "") << "cgroup parents left";
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
      pod, pc,
      CtrConfig("stubborn",
                {"sh", "-c", "trap 'echo got TERM' TERM; while :; do sleep 0.1; done"}));
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
  // Imported only where it is used: its xattr layer needs a filesystem with user xattrs
  // (the cgroup v2 guest's /tmp has none).
  Import("layers", kLayers);
  v1::PodSandboxConfig pc = PodConfig("image");
  std::string pod = RunPod(pc);
  // The layers image: Entrypoint [/bin/echo entry], Cmd [cmd-arg1 cmd-arg2], User 1000:1000.
  std::string a = CreateAndStart(pod, pc, CtrConfig("defaults", {}, kLayers));
  EXPECT_EQ(WaitExited(a).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/defaults.log"),
            std::vector<std::string>{"stdout F entry cmd-arg1 cmd-arg2"});

  v1::ContainerConfig cc = CtrConfig(
      "custom", {"sh", "-c", "echo $BERTH_VAR1 $BERTH_VAR2 $FOO; pwd; id -u; id -g"}, kLayers);
  auto* env = cc.add_envs();
  env->set_key("FOO");
  env->set_value("bar");
  env = cc.add_envs();
  env->set_key("BERTH_VAR1");
  env->set_value("over");
  std::string b = CreateAndStart(pod, pc, cc);
  EXPECT_EQ(WaitExited(b).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/custom.log"),
            (std::vector<std::string>{"stdout F over a=b c bar", "stdout F /work", "stdout F 1000",
                                      "stdout F 1000"}));

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

// Image VOLUMEs: the layers image declares /work (a 1000:1000 0755 dir with a README) and
// /no-such-dir (not in the image). Each container gets its own copy of the image's content,
// with its owners, modes and times, in a directory of its own mounted there.
TEST_P(PodTest, ImageVolumesStartWithTheImageContent) {
  Import("layers", kLayers);
  v1::PodSandboxConfig pc = PodConfig("volumes");
  std::string pod = RunPod(pc);
  std::string a =
      CreateAndStart(pod, pc,
                     CtrConfig("vol",
                               {"sh", "-c",
                                "stat -c '%u:%g %a' /work /work/README; cat /work/README; "
                                "ls -A /no-such-dir | wc -l; grep -c ' /work ' /proc/self/mounts; "
                                "echo written > /work/new && cat /work/new"},
                               kLayers));
  EXPECT_EQ(WaitExited(a).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/vol.log"),
            (std::vector<std::string>{"stdout F 1000:1000 755", "stdout F 1000:1000 644",
                                      "stdout F the working directory of the layers image",
                                      "stdout F 0", "stdout F 1", "stdout F written"}));
  // Another container of the image starts from the image's content, not the first one's.
  std::string b = CreateAndStart(pod, pc, CtrConfig("vol2", {"ls", "-A", "/work"}, kLayers));
  EXPECT_EQ(WaitExited(b).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/vol2.log"),
            std::vector<std::string>{"stdout F README"});
  RemovePod(pod);
}

// A privileged container gets every device node of the host's /dev (as containerd's do),
// found as runc's HostDevices finds them (but /dev/console and /dev/ptmx, which stay the
// container's own: its console, and the symlink to its devpts); an unprivileged one gets only
// the standard ones.
TEST_P(PodTest, PrivilegedContainerGetsTheHostDevices) {
  const std::string find_devices =
      "find /dev \\( -path /dev/pts -o -path /dev/shm -o -path /dev/fd -o -path /dev/mqueue "
      "\\) -prune -o \\( -type c -o -type b \\) -print | grep -v '^/dev/\\(console\\|ptmx\\)$' | sort";
  CommandResult host = RunCommand({"/bin/sh", "-c", find_devices});
  ASSERT_EQ(host.exit_code, 0) << host.err;
  std::vector<std::string> host_devices = absl::StrSplit(host.out, '\n', absl::SkipEmpty());
  ASSERT_FALSE(host_devices.empty());

  v1::PodSandboxConfig pc = PodConfig("privileged");
  pc.mutable_linux()->mutable_security_context()->set_privileged(true);
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc = CtrConfig("priv", {"sh", "-c", find_devices});
  cc.mutable_linux()->mutable_security_context()->set_privileged(true);
  std::string id = CreateAndStart(pod, pc, cc);
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  std::set<std::string> seen;
  for (const std::string& r : LogRecords(pc.log_directory() + "/priv.log")) {
    seen.insert(std::string(absl::StripPrefix(r, "stdout F ")));
  }
  for (const std::string& d : host_devices) EXPECT_EQ(seen.count(d), 1u) << d << " missing";

  v1::ContainerConfig plain = CtrConfig("plain", {"sh", "-c", "test -e /dev/kmsg"});
  std::string other = CreateAndStart(pod, pc, plain);
  EXPECT_EQ(WaitExited(other).exit_code(), 1);  // the host's /dev/kmsg is not there
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

// ---- UpdateContainerResources --------------------------------------------------------------

// A cgroup file of `cgroup` (relative to the hierarchy roots) in the controller's hierarchy
// (v1) or the unified one (v2), trimmed.
std::string CgroupFile(const std::string& controller, const std::string& cgroup,
                       const std::string& file) {
  struct stat st;
  bool v2 = ::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  std::string path = v2 ? absl::StrCat("/sys/fs/cgroup/", cgroup, "/", file)
                        : absl::StrCat("/sys/fs/cgroup/", controller, "/", cgroup, "/", file);
  std::string text = ReadFileOrEmpty(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool CgroupV2() {
  struct stat st;
  return ::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
}

TEST_P(PodTest, UpdateContainerResourcesAppliesToTheLiveCgroup) {
  v1::PodSandboxConfig pc = PodConfig("update");
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc = CtrConfig("c", {"sleep", "1000"});
  cc.mutable_linux()->mutable_resources()->set_cpu_shares(512);
  std::string id = CreateAndStart(pod, pc, cc);
  const std::string cgroup = pc.linux().cgroup_parent() + "/" + id;

  v1::UpdateContainerResourcesRequest req;
  req.set_container_id(id);
  req.mutable_linux()->set_memory_limit_in_bytes(64 << 20);
  req.mutable_linux()->set_cpu_period(100000);
  req.mutable_linux()->set_cpu_quota(50000);
  v1::UpdateContainerResourcesResponse resp;
  grpc::Status st = rt_->UpdateContainerResources(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message() << d_->log();

  if (CgroupV2()) {
    EXPECT_EQ(CgroupFile("memory", cgroup, "memory.max"), "67108864");
    EXPECT_EQ(CgroupFile("cpu", cgroup, "cpu.max"), "50000 100000");
  } else {
    EXPECT_EQ(CgroupFile("memory", cgroup, "memory.limit_in_bytes"), "67108864");
    EXPECT_EQ(CgroupFile("cpu", cgroup, "cpu.cfs_quota_us"), "50000");
    EXPECT_EQ(CgroupFile("cpu", cgroup, "cpu.cfs_period_us"), "100000");
    EXPECT_EQ(CgroupFile("cpu", cgroup, "cpu.shares"), "512");  // kept from the create
  }
  // The container itself is in that cgroup (its limit is what it sees). On cgroup v2 it has a
  // cgroup namespace of its own, rooted there (as under containerd).
  v1::ExecSyncResponse self = Exec(id, {"cat", "/proc/self/cgroup"});
  if (CgroupV2()) {
    EXPECT_EQ(self.stdout(), "0::/\n");
  } else {
    EXPECT_NE(self.stdout().find(id), std::string::npos) << self.stdout();
  }

  v1::ContainerStatus s = Status(id);
  EXPECT_EQ(s.resources().linux().memory_limit_in_bytes(), 64 << 20);
  EXPECT_EQ(s.resources().linux().cpu_quota(), 50000);
  EXPECT_EQ(s.resources().linux().cpu_period(), 100000);
  EXPECT_EQ(s.resources().linux().cpu_shares(), 512);

  // A second update changes only what it names.
  v1::UpdateContainerResourcesRequest more;
  more.set_container_id(id);
  more.mutable_linux()->set_memory_limit_in_bytes(96 << 20);
  ASSERT_TRUE(rt_->UpdateContainerResources(Ctx().get(), more, &resp).ok());
  EXPECT_EQ(CgroupFile("memory", cgroup, CgroupV2() ? "memory.max" : "memory.limit_in_bytes"),
            "100663296");
  s = Status(id);
  EXPECT_EQ(s.resources().linux().memory_limit_in_bytes(), 96 << 20);
  EXPECT_EQ(s.resources().linux().cpu_quota(), 50000);

  // Invalid values are refused before anything is written.
  v1::UpdateContainerResourcesRequest bad = req;
  bad.mutable_linux()->set_cpu_period(10);
  st = rt_->UpdateContainerResources(Ctx().get(), bad, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("cpu_period"), std::string::npos) << st.error_message();
  bad = req;
  bad.mutable_linux()->set_memory_limit_in_bytes(-5);
  EXPECT_EQ(rt_->UpdateContainerResources(Ctx().get(), bad, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  if (!CgroupV2()) {
    bad = req;
    (*bad.mutable_linux()->mutable_unified())["memory.high"] = "1000000";
    EXPECT_EQ(rt_->UpdateContainerResources(Ctx().get(), bad, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(Status(id).resources().linux().memory_limit_in_bytes(), 96 << 20);

  bad = req;
  bad.set_container_id("0123456789abcdef-no-such-container");
  EXPECT_EQ(rt_->UpdateContainerResources(Ctx().get(), bad, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);

  ASSERT_TRUE(StopCtr(id, 0).ok());
  st = rt_->UpdateContainerResources(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  RemovePod(pod);
}

// ---- Stats ---------------------------------------------------------------------------------

TEST_P(PodTest, ContainerAndPodSandboxStats) {
  v1::PodSandboxConfig pc = PodConfig("stats");
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc =
      CtrConfig("dd", {"sh", "-c", "dd if=/dev/zero of=/big bs=1M count=8; sleep 1000"});
  (*cc.mutable_labels())["which"] = "dd";
  std::string id = CreateAndStart(pod, pc, cc);

  v1::PodSandboxConfig pc2 = PodConfig("stats2");
  std::string pod2 = RunPod(pc2);
  std::string created;  // created, never started
  ASSERT_TRUE(Create(pod2, pc2, CtrConfig("idle", {"sleep", "1000"}), &created).ok());

  // The writable layer grows to the 8 MiB dd writes.
  v1::ContainerStatsRequest creq;
  creq.set_container_id(id);
  v1::ContainerStatsResponse cresp;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    grpc::Status st = rt_->ContainerStats(Ctx().get(), creq, &cresp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    if (cresp.stats().writable_layer().used_bytes().value() >= (8u << 20)) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  const v1::ContainerStats& cs = cresp.stats();
  EXPECT_GE(cs.writable_layer().used_bytes().value(), 8u << 20) << cs.DebugString();
  EXPECT_GE(cs.writable_layer().inodes_used().value(), 2u);
  EXPECT_TRUE(absl::EndsWith(cs.writable_layer().fs_id().mountpoint(), id + "/upper"))
      << cs.writable_layer().fs_id().mountpoint();
  EXPECT_GT(cs.writable_layer().timestamp(), 0);
  EXPECT_EQ(cs.attributes().id(), id);
  EXPECT_EQ(cs.attributes().metadata().name(), "dd");
  EXPECT_EQ(cs.attributes().labels().at("which"), "dd");
  EXPECT_GT(cs.cpu().timestamp(), 0);
  EXPECT_GT(cs.cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_TRUE(cs.cpu().has_usage_nano_cores());
  EXPECT_GT(cs.memory().working_set_bytes().value(), 0u);
  EXPECT_GT(cs.memory().usage_bytes().value(), 0u);
  EXPECT_TRUE(cs.memory().has_page_faults());
  EXPECT_FALSE(cs.memory().has_available_bytes()) << "no memory limit";

  // Lists: everything (the created container too), by pod, by label, by id.
  v1::ListContainerStatsRequest lreq;
  v1::ListContainerStatsResponse lresp;
  ASSERT_TRUE(rt_->ListContainerStats(Ctx().get(), lreq, &lresp).ok());
  std::vector<std::string> ids;
  for (const v1::ContainerStats& s : lresp.stats()) ids.push_back(s.attributes().id());
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> want = {id, created};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);
  lreq.mutable_filter()->set_pod_sandbox_id(pod);
  lresp.Clear();
  ASSERT_TRUE(rt_->ListContainerStats(Ctx().get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.stats_size(), 1);
  EXPECT_EQ(lresp.stats(0).attributes().id(), id);
  lreq.Clear();
  (*lreq.mutable_filter()->mutable_label_selector())["which"] = "dd";
  lresp.Clear();
  ASSERT_TRUE(rt_->ListContainerStats(Ctx().get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.stats_size(), 1);
  EXPECT_EQ(lresp.stats(0).attributes().id(), id);
  lreq.Clear();
  lreq.mutable_filter()->set_id(created);
  lresp.Clear();
  ASSERT_TRUE(rt_->ListContainerStats(Ctx().get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.stats_size(), 1);
  EXPECT_EQ(lresp.stats(0).attributes().metadata().name(), "idle");

  // Pod stats: traffic to the bridge shows on eth0.
  v1::ExecSyncResponse ping = Exec(id, {"ping", "-c1", "-W1", "10.199.7.1"});
  EXPECT_EQ(ping.exit_code(), 0) << ping.stdout() << ping.stderr();
  v1::PodSandboxStatsRequest preq;
  preq.set_pod_sandbox_id(pod);
  v1::PodSandboxStatsResponse presp;
  grpc::Status st = rt_->PodSandboxStats(Ctx().get(), preq, &presp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const v1::PodSandboxStats& ps = presp.stats();
  EXPECT_EQ(ps.attributes().id(), pod);
  EXPECT_EQ(ps.attributes().metadata().name(), "stats");
  EXPECT_EQ(ps.attributes().labels().at("app"), "stats");
  const v1::LinuxPodSandboxStats& pl = ps.linux();
  EXPECT_GT(pl.cpu().usage_core_nano_seconds().value(), 0u);
  EXPECT_GT(pl.memory().working_set_bytes().value(), 0u);
  EXPECT_GE(pl.process().process_count().value(), 1u);
  EXPECT_GT(pl.network().timestamp(), 0);
  EXPECT_EQ(pl.network().default_interface().name(), "eth0") << pl.network().DebugString();
  EXPECT_GT(pl.network().default_interface().rx_bytes().value(), 0u);
  EXPECT_GT(pl.network().default_interface().tx_bytes().value(), 0u);
  EXPECT_TRUE(pl.network().default_interface().has_rx_errors());
  bool lo = false;
  for (const v1::NetworkInterfaceUsage& i : pl.network().interfaces()) lo |= i.name() == "lo";
  EXPECT_TRUE(lo) << pl.network().DebugString();
  ASSERT_EQ(pl.containers_size(), 1);
  EXPECT_EQ(pl.containers(0).attributes().id(), id);

  v1::ListPodSandboxStatsRequest lpreq;
  v1::ListPodSandboxStatsResponse lpresp;
  ASSERT_TRUE(rt_->ListPodSandboxStats(Ctx().get(), lpreq, &lpresp).ok());
  EXPECT_EQ(lpresp.stats_size(), 2);
  (*lpreq.mutable_filter()->mutable_label_selector())["app"] = "stats2";
  lpresp.Clear();
  ASSERT_TRUE(rt_->ListPodSandboxStats(Ctx().get(), lpreq, &lpresp).ok());
  ASSERT_EQ(lpresp.stats_size(), 1);
  EXPECT_EQ(lpresp.stats(0).attributes().id(), pod2);
  ASSERT_EQ(lpresp.stats(0).linux().containers_size(), 1);
  EXPECT_EQ(lpresp.stats(0).linux().containers(0).attributes().id(), created);
  lpreq.Clear();
  lpreq.mutable_filter()->set_id(pod);
  lpresp.Clear();
  ASSERT_TRUE(rt_->ListPodSandboxStats(Ctx().get(), lpreq, &lpresp).ok());
  ASSERT_EQ(lpresp.stats_size(), 1);
  EXPECT_EQ(lpresp.stats(0).attributes().id(), pod);

  creq.set_container_id("no-such-container");
  EXPECT_EQ(rt_->ContainerStats(Ctx().get(), creq, &cresp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  preq.set_pod_sandbox_id("no-such-pod");
  EXPECT_EQ(rt_->PodSandboxStats(Ctx().get(), preq, &presp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  RemovePod(pod);
  RemovePod(pod2);
}

// ---- GetContainerEvents --------------------------------------------------------------------

TEST_P(PodTest, ContainerEventsFollowTheLifecycle) {
  v1::PodSandboxConfig pc = PodConfig("events");
  std::string pod = RunPod(pc);

  grpc::ClientContext ectx;
  v1::GetEventsRequest ereq;
  std::unique_ptr<grpc::ClientReader<v1::ContainerEventResponse>> reader =
      rt_->GetContainerEvents(&ectx, ereq);
  reader->WaitForInitialMetadata();  // subscribed
  std::mutex mu;
  std::vector<v1::ContainerEventResponse> events;
  std::thread t([&] {
    v1::ContainerEventResponse e;
    while (reader->Read(&e)) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
    }
  });

  std::string id = CreateAndStart(pod, pc, CtrConfig("c", {"sleep", "1000"}));
  ASSERT_TRUE(StopCtr(id, 0).ok());
  v1::RemoveContainerRequest rreq;
  rreq.set_container_id(id);
  v1::RemoveContainerResponse rresp;
  ASSERT_TRUE(rt_->RemoveContainer(Ctx().get(), rreq, &rresp).ok());

  std::vector<v1::ContainerEventResponse> mine;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      mine.clear();
      for (const v1::ContainerEventResponse& e : events) {
        if (e.container_id() == id) mine.push_back(e);
      }
    }
    if (mine.size() >= 4) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::SleepFor(absl::Milliseconds(200));  // nothing more comes
  {
    std::lock_guard<std::mutex> lock(mu);
    mine.clear();
    for (const v1::ContainerEventResponse& e : events) {
      if (e.container_id() == id) mine.push_back(e);
    }
  }
  std::vector<v1::ContainerEventType> types;
  for (const v1::ContainerEventResponse& e : mine) types.push_back(e.container_event_type());
  EXPECT_EQ(types, (std::vector<v1::ContainerEventType>{
                       v1::CONTAINER_CREATED_EVENT, v1::CONTAINER_STARTED_EVENT,
                       v1::CONTAINER_STOPPED_EVENT, v1::CONTAINER_DELETED_EVENT}));
  std::vector<v1::ContainerState> states;
  for (const v1::ContainerEventResponse& e : mine) {
    EXPECT_GT(e.created_at(), 0);
    EXPECT_EQ(e.pod_sandbox_status().id(), pod);
    EXPECT_EQ(e.pod_sandbox_status().state(), v1::SANDBOX_READY);
    EXPECT_EQ(e.pod_sandbox_status().metadata().name(), "events");
    EXPECT_GE(e.containers_statuses_size(), 1);
    if (e.containers_statuses_size() == 0) continue;
    EXPECT_EQ(e.containers_statuses(0).id(), id);
    states.push_back(e.containers_statuses(0).state());
  }
  EXPECT_EQ(states, (std::vector<v1::ContainerState>{v1::CONTAINER_CREATED, v1::CONTAINER_RUNNING,
                                                     v1::CONTAINER_EXITED, v1::CONTAINER_EXITED}));
  if (mine.size() >= 3) {
    EXPECT_EQ(mine[2].containers_statuses(0).exit_code(), 137);
  }

  // A container that exits by itself: STOPPED when berthd first sees the exit.
  std::string quick = CreateAndStart(pod, pc, CtrConfig("quick", {"true"}));
  WaitExited(quick);
  absl::SleepFor(absl::Milliseconds(200));
  (void)Status(quick);
  {
    std::lock_guard<std::mutex> lock(mu);
    int stopped = 0;
    for (const v1::ContainerEventResponse& e : events) {
      if (e.container_id() == quick && e.container_event_type() == v1::CONTAINER_STOPPED_EVENT) {
        ++stopped;
      }
    }
    EXPECT_EQ(stopped, 1);
  }

  ectx.TryCancel();
  t.join();
  (void)reader->Finish();
  RemovePod(pod);

  // An open stream does not keep berthd from shutting down.
  grpc::ClientContext ectx2;
  std::unique_ptr<grpc::ClientReader<v1::ContainerEventResponse>> reader2 =
      rt_->GetContainerEvents(&ectx2, ereq);
  reader2->WaitForInitialMetadata();
  absl::Time start = absl::Now();
  int wait_status = d_->child().Stop(SIGTERM, absl::Seconds(15));
  EXPECT_NE(wait_status, -1) << "berthd did not exit";
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  v1::ContainerEventResponse e;
  EXPECT_FALSE(reader2->Read(&e));
  (void)reader2->Finish();
  d_->Start();
  rt_ = v1::RuntimeService::NewStub(d_->Channel());
}

// ---- Status --------------------------------------------------------------------------------

TEST_P(PodTest, StatusListsHandlersAndCountsPods) {
  auto status = [&](bool verbose) {
    v1::StatusRequest req;
    req.set_verbose(verbose);
    v1::StatusResponse resp;
    grpc::Status st = rt_->Status(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  };
  v1::StatusResponse resp = status(true);
  std::vector<std::string> names;
  for (const v1::RuntimeHandler& h : resp.runtime_handlers()) {
    names.push_back(h.name());
    EXPECT_FALSE(h.features().user_namespaces());
    // The native runtime makes read-only mounts recursive (mount_setattr, this kernel has
    // it); runc's support is not probed.
    EXPECT_EQ(h.features().recursive_read_only_mounts(), h.name().empty()) << h.name();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"", "runc"}));
  EXPECT_EQ(resp.info().at("pods"), "0");
  v1::PodSandboxConfig pc = PodConfig("counted");
  std::string pod = RunPod(pc);
  EXPECT_EQ(status(true).info().at("pods"), "1");
  EXPECT_FALSE(status(false).info().contains("pods"));
  RemovePod(pod);
  EXPECT_EQ(status(true).info().at("pods"), "0");
}

// ---- StopPodSandbox and sysctls ------------------------------------------------------------

TEST_P(PodTest, StopPodSandboxIsIdempotentAndSurvivesARestart) {
  v1::PodSandboxConfig pa = PodConfig("stopa");
  std::string a = RunPod(pa);
  std::string a1 = CreateAndStart(a, pa, CtrConfig("run", {"sleep", "1000"}));
  std::string a2;
  ASSERT_TRUE(Create(a, pa, CtrConfig("created", {"sleep", "1000"}), &a2).ok());
  v1::PodSandboxConfig pb = PodConfig("stopb");
  std::string b = RunPod(pb);
  std::string b1 = CreateAndStart(b, pb, CtrConfig("run", {"sleep", "1000"}));

  auto stop = [&](const std::string& pod) {
    v1::StopPodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    v1::StopPodSandboxResponse resp;
    return rt_->StopPodSandbox(LongCtx(60).get(), req, &resp);
  };
  auto pod_state = [&](const std::string& pod) {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(pod);
    v1::PodSandboxStatusResponse resp;
    EXPECT_TRUE(rt_->PodSandboxStatus(Ctx().get(), req, &resp).ok());
    return resp.status().state();
  };

  // Pod a: stopped twice, then again after berthd was killed and restarted.
  absl::Time start = absl::Now();
  grpc::Status st = stop(a);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << "every container is killed at once";
  st = stop(a);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(pod_state(a), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(Status(a1).state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(Status(a1).exit_code(), 137);
  EXPECT_EQ(Status(a2).state(), v1::CONTAINER_EXITED);

  ASSERT_EQ(::kill(d_->child().pid(), SIGKILL), 0);
  d_->child().Wait(absl::Seconds(5));
  d_->Start();
  rt_ = v1::RuntimeService::NewStub(d_->Channel());
  st = stop(a);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(pod_state(a), v1::SANDBOX_NOTREADY);
  // Pod b, running when berthd restarted, is stopped by the new berthd.
  EXPECT_EQ(pod_state(b), v1::SANDBOX_READY);
  st = stop(b);
  ASSERT_TRUE(st.ok()) << st.error_message();
  st = stop(b);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(pod_state(b), v1::SANDBOX_NOTREADY);
  EXPECT_EQ(Status(b1).state(), v1::CONTAINER_EXITED);
  // A stopped pod takes no new containers.
  std::string none;
  EXPECT_EQ(Create(b, pb, CtrConfig("late", {"true"}), &none).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  RemovePod(a);
  RemovePod(b);
}

TEST_P(PodTest, PodSysctlsReachTheContainers) {
  v1::PodSandboxConfig pc = PodConfig("sysctl");
  (*pc.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "80";
  (*pc.mutable_linux()->mutable_sysctls())["kernel.shm_rmid_forced"] = "1";
  std::string pod = RunPod(pc);
  ASSERT_FALSE(pod.empty());
  std::string id =
      CreateAndStart(pod, pc,
                     CtrConfig("c", {"cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                                     "/proc/sys/kernel/shm_rmid_forced"}));
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/c.log"),
            (std::vector<std::string>{"stdout F 80", "stdout F 1"}));
  // Only the pod's namespaces changed.
  EXPECT_NE(ReadFileOrEmpty("/proc/sys/kernel/shm_rmid_forced"), "1\n");
  RemovePod(pod);
}

TEST_P(PodTest, NodeWideSysctlsAreRefusedAndLeaveNothing) {
  std::vector<std::map<std::string, std::string>> refused = {
      {{"kernel.hostname_nonsense", "1"}},
      {{"vm.swappiness", "10"}},
      {{"net.ipv4.ip_forward", "1"}, {"fs.file-max", "100"}},
  };
  for (const auto& sysctls : refused) {
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = PodConfig("badsysctl");
    for (const auto& [k, v] : sysctls)
      (*req.mutable_config()->mutable_linux()->mutable_sysctls())[k] = v;
    req.set_runtime_handler(GetParam());
    v1::RunPodSandboxResponse resp;
    grpc::Status st = rt_->RunPodSandbox(LongCtx(60).get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("sysctl"), std::string::npos) << st.error_message();
  }
  // A network sysctl for a pod on the host's network would change the node.
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = PodConfig("hostsysctl");
  req.mutable_config()
      ->mutable_linux()
      ->mutable_security_context()
      ->mutable_namespace_options()
      ->set_network(v1::NODE);
  (*req.mutable_config()
        ->mutable_linux()
        ->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "80";
  req.set_runtime_handler(GetParam());
  v1::RunPodSandboxResponse resp;
  EXPECT_EQ(rt_->RunPodSandbox(LongCtx(60).get(), req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::ListPodSandboxRequest lreq;
  v1::ListPodSandboxResponse lresp;
  ASSERT_TRUE(rt_->ListPodSandbox(Ctx().get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.items_size(), 0);
  ExpectHostClean();
}

// ---- Mounts and the image's stop signal ----------------------------------------------------

TEST_P(PodTest, HostPathMountsReadOnlyAndReadWrite) {
  v1::PodSandboxConfig pc = PodConfig("mounts");
  std::string pod = RunPod(pc);

  // A host path that does not exist: a clear error, and nothing is left of the container.
  v1::ContainerConfig missing = CtrConfig("missing", {"true"});
  v1::Mount* m = missing.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(dir_ / "no-such-dir");
  std::string id;
  grpc::Status st = Create(pod, pc, missing, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find(dir_ / "no-such-dir"), std::string::npos) << st.error_message();
  v1::ListContainersRequest lreq;
  v1::ListContainersResponse lresp;
  ASSERT_TRUE(rt_->ListContainers(Ctx().get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.containers_size(), 0);
  EXPECT_EQ(RunCommand({"/usr/bin/find", dir_ / "root/containers", "-mindepth", "1"}).out, "");
  EXPECT_EQ(RunCommand({"/usr/bin/find", dir_ / "state/pods", "-path", "*/containers/*"}).out, "");

  ASSERT_EQ(::mkdir((dir_ / "host-ro").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir_ / "host-rw").c_str(), 0755), 0);
  WriteFileOrDie(dir_ / "host-ro/hello", "from the host\n");
  v1::ContainerConfig cc = CtrConfig(
      "c", {"sh", "-c",
            "cat /ro/hello; touch /ro/x 2>/dev/null && echo ro-writable || echo ro-readonly; "
            "echo written > /rw/out && echo rw-ok"});
  m = cc.add_mounts();
  m->set_container_path("/ro");
  m->set_host_path(dir_ / "host-ro");
  m->set_readonly(true);
  m = cc.add_mounts();
  m->set_container_path("/rw");
  m->set_host_path(dir_ / "host-rw");
  id = CreateAndStart(pod, pc, cc);
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/c.log"),
            (std::vector<std::string>{"stdout F from the host", "stdout F ro-readonly",
                                      "stdout F rw-ok"}));
  EXPECT_EQ(ReadFileOrEmpty(dir_ / "host-rw/out"), "written\n");
  struct stat st_x;
  EXPECT_NE(::stat((dir_ / "host-ro/x").c_str(), &st_x), 0);
  v1::ContainerStatus s = Status(id);
  ASSERT_EQ(s.mounts_size(), 2);
  EXPECT_TRUE(s.mounts(0).readonly());
  RemovePod(pod);
}

TEST_P(PodTest, RecursiveReadOnlyMountCoversSubmounts) {
  // Status says both handlers' runtimes can (the native one on a kernel with mount_setattr).
  ASSERT_EQ(::mkdir((dir_ / "rro").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir_ / "rro/sub").c_str(), 0755), 0);
  ASSERT_EQ(::mount("tmpfs", (dir_ / "rro/sub").c_str(), "tmpfs", 0, "size=1m"), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{dir_ / "rro/sub"};
  v1::PodSandboxConfig pc = PodConfig("rro");
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc =
      CtrConfig("c", {"sh", "-c",
                      "touch /rro/top 2>/dev/null && echo top-writable || echo top-readonly; "
                      "touch /rro/sub/x 2>/dev/null && echo sub-writable || echo sub-readonly"});
  v1::Mount* m = cc.add_mounts();
  m->set_container_path("/rro");
  m->set_host_path(dir_ / "rro");
  m->set_readonly(true);
  m->set_recursive_read_only(true);
  std::string id = CreateAndStart(pod, pc, cc);
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  EXPECT_EQ(LogRecords(pc.log_directory() + "/c.log"),
            (std::vector<std::string>{"stdout F top-readonly", "stdout F sub-readonly"}));
  RemovePod(pod);
}

TEST_P(PodTest, StopContainerUsesTheImageStopSignal) {
  Import("layers", kLayers);
  v1::PodSandboxConfig pc = PodConfig("stopsig");
  std::string pod = RunPod(pc);
  // The layers image says STOPSIGNAL SIGUSR1.
  std::string id = CreateAndStart(
      pod, pc,
      CtrConfig("c", {"sh", "-c", "trap 'echo usr1; exit 0' USR1; while :; do sleep 0.1; done"},
                kLayers));
  absl::SleepFor(absl::Milliseconds(300));  // the trap is set
  absl::Time start = absl::Now();
  ASSERT_TRUE(StopCtr(id, 10).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  v1::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.reason(), "Completed");
  EXPECT_EQ(LogRecords(pc.log_directory() + "/c.log"), std::vector<std::string>{"stdout F usr1"});
  RemovePod(pod);
}

TEST_P(PodTest, ADeadMonitorDoesNotWedgeThePod) {
  // The monitor is killed (OOM killer, an operator): its containers can still be stopped and
  // the pod removed, with nothing left behind.
  v1::PodSandboxConfig pc = PodConfig("orphan");
  std::string pod = RunPod(pc);
  std::string id = CreateAndStart(pod, pc, CtrConfig("c", {"sleep", "1000"}));
  CommandResult m = RunCommand({"/usr/bin/pgrep", "-f", "berth-monitor --pod-dir " + dir_.path()});
  ASSERT_FALSE(m.out.empty());
  for (absl::string_view pid : absl::StrSplit(m.out, '\n', absl::SkipEmpty())) {
    int p = 0;
    ASSERT_TRUE(absl::SimpleAtoi(pid, &p));
    ::kill(p, SIGKILL);
  }
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(StopCtr(id, 5).ok());
  v1::ContainerStatus s = WaitExited(id);
  EXPECT_EQ(s.exit_code(), 137);
  RemovePod(pod);
}

TEST_P(PodTest, LogPathMustStayInThePodLogDirectory) {
  v1::PodSandboxConfig pc = PodConfig("logpath");
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc = CtrConfig("c", {"true"});
  cc.set_log_path("../../escape.log");
  std::string id;
  grpc::Status st = Create(pod, pc, cc, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  cc.set_log_path("/etc/escape.log");
  st = Create(pod, pc, cc, &id);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  RemovePod(pod);
}

TEST_P(PodTest, ExecSyncReturnsWhenTheCommandExitsEvenIfAChildKeepsItsOutputOpen) {
  v1::PodSandboxConfig pc = PodConfig("bgexec");
  std::string pod = RunPod(pc);
  std::string id = CreateAndStart(pod, pc, CtrConfig("c", {"sleep", "1000"}));
  absl::Time start = absl::Now();
  v1::ExecSyncResponse r = Exec(id, {"sh", "-c", "sleep 30 & echo done"});
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(r.stdout(), "done\n");
  EXPECT_EQ(r.exit_code(), 0);
  RemovePod(pod);
}

TEST_P(PodTest, TtyContainerOutputGoesToTheLog) {
  v1::PodSandboxConfig pc = PodConfig("tty");
  std::string pod = RunPod(pc);
  v1::ContainerConfig cc = CtrConfig("c", {"sh", "-c", "tty; echo on a terminal"});
  cc.set_tty(true);
  std::string id = CreateAndStart(pod, pc, cc);
  EXPECT_EQ(WaitExited(id).exit_code(), 0);
  std::string log = ReadFileOrEmpty(pc.log_directory() + "/c.log");
  EXPECT_NE(log.find("stdout F /dev/"), std::string::npos) << log;
  EXPECT_NE(log.find("stdout F on a terminal"), std::string::npos) << log;
  EXPECT_EQ(log.find("not a tty"), std::string::npos) << log;
  RemovePod(pod);
}

TEST_P(PodTest, KilledDuringRunPodSandboxIsUndoneAtStart) {
  // CNI ADD hangs in the last plugin (after bridge and host-local leased an address); berthd is
  // killed meanwhile. The next berthd finds the half-created pod and undoes all of it: CNI DEL
  // from the cached result, pins, cgroup, monitor, pod dir, record.
  const std::string good = ReadFileOrEmpty(dir_ / "net.d/10-test.conflist");
  std::string slow = good;
  slow.replace(slow.rfind("]}"), 2, R"(, {"type": "berth-test-slow"}]})");
  WriteFileOrDie(dir_ / "net.d/10-test.conflist", slow);
  absl::SleepFor(absl::Milliseconds(500));  // the conf dir watch picks it up
  v1::PodSandboxConfig pc = PodConfig("killed");
  std::thread run([&] {
    v1::RunPodSandboxRequest req;
    *req.mutable_config() = pc;
    req.set_runtime_handler(GetParam());
    v1::RunPodSandboxResponse resp;
    grpc::Status st = rt_->RunPodSandbox(LongCtx(60).get(), req, &resp);
    EXPECT_FALSE(st.ok());
  });
  // Wait until the slow plugin runs: the bridge has leased an address by then.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (RunCommand({"/usr/bin/pgrep", "-f", dir_ / "cnibin/berth-test-slow"}).out.empty() &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_FALSE(RunCommand({"/usr/bin/pgrep", "-f", dir_ / "cnibin/berth-test-slow"}).out.empty());
  CommandResult leased =
      RunCommand({"/usr/bin/find", dir_ / "ipam", "-type", "f", "-name", "10.*"});
  EXPECT_NE(leased.out, "") << "the bridge plugin should have leased an address";
  ASSERT_EQ(::kill(d_->child().pid(), SIGKILL), 0);
  d_->child().Wait(absl::Seconds(5));
  run.join();
  RunCommand({"/usr/bin/pkill", "-KILL", "-f", dir_ / "cnibin/berth-test-slow"});
  WriteFileOrDie(dir_ / "net.d/10-test.conflist", good);

  d_->Start();
  rt_ = v1::RuntimeService::NewStub(d_->Channel());
  v1::ListPodSandboxRequest lreq;
  v1::ListPodSandboxResponse lresp;
  ASSERT_TRUE(rt_->ListPodSandbox(Ctx().get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.items_size(), 0);
  ExpectHostClean();
  EXPECT_NE(d_->log().find("undid a half-created pod"), std::string::npos) << d_->log();
}

INSTANTIATE_TEST_SUITE_P(Handlers, PodTest, ::testing::Values("", "runc"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param.empty() ? std::string("berth") : info.param;
                         });

}  // namespace
}  // namespace berth::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!berth::testing::EnterPrivateNetworkAndMountNamespace()) return 1;
  return RUN_ALL_TESTS();
}

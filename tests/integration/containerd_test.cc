// berthctl speaks only CRI: the same binary must work unchanged against containerd's CRI; and
// berth-oci must work as containerd's runc binary.
// containerd (Debian's) runs here privately: its own root, state and socket.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

// Starts a private containerd in `dir` (its own root, state, socket and an empty CNI conf dir)
// and returns its socket path, or "" after a test failure.
std::string StartContainerd(const TempDir& dir, Child& containerd) {
  struct stat st;
  EXPECT_EQ(::stat("/usr/bin/containerd", &st), 0)
      << "containerd is a test dependency (packaging/deps.sh installs it)";
  ::mkdir((dir / "net.d").c_str(), 0755);
  std::string sock = dir / "containerd.sock";
  WriteFileOrDie(
      dir / "config.toml",
      absl::StrCat("version = 2\n", "root = \"", dir / "root", "\"\n", "state = \"", dir / "state",
                   "\"\n", "[grpc]\n  address = \"", sock, "\"\n", "[ttrpc]\n  address = \"", sock,
                   ".ttrpc\"\n", "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"",
                   dir / "opt", "\"\n", "[plugins.\"io.containerd.grpc.v1.cri\"]\n",
                   "  restrict_oom_score_adj = true\n  disable_apparmor = true\n",
                   "  tolerate_missing_hugetlb_controller = true\n",
                   "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n",
                   "    bin_dir = \"/usr/lib/cni\"\n    conf_dir = \"", dir / "net.d", "\"\n"));
  containerd.Start({"/usr/bin/containerd", "--config", dir / "config.toml"},
                   dir / "containerd.log");
  if (!WaitForSocket(sock, absl::Seconds(30))) {
    ADD_FAILURE() << ReadFileOrEmpty(dir / "containerd.log");
    return "";
  }
  return sock;
}

TEST(BerthctlAgainstContainerd, VersionAndInfo) {
  TempDir dir;
  Child containerd;
  std::string sock = StartContainerd(dir, containerd);
  ASSERT_FALSE(sock.empty());

  // The CRI plugin may answer a moment after the socket appears.
  CommandResult r;
  for (int i = 0; i < 50; ++i) {
    r = RunCommand({BERTHCTL_PATH, "-r", "unix://" + sock, "version"});
    if (r.exit_code == 0) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(r.exit_code, 0) << r.err << ReadFileOrEmpty(dir / "containerd.log");
  EXPECT_NE(r.out.find("RuntimeName:  containerd\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("RuntimeApiVersion:  v1\n"), std::string::npos) << r.out;

  r = RunCommand({BERTHCTL_PATH, "-r", "unix://" + sock, "info", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json info = nlohmann::json::parse(r.out);
  ASSERT_TRUE(info["status"]["conditions"].is_array()) << r.out;
  EXPECT_EQ(info["status"]["conditions"][0]["type"], "RuntimeReady");
  EXPECT_EQ(info["status"]["conditions"][1]["type"], "NetworkReady");
  EXPECT_EQ(info["status"]["conditions"][1]["status"], false);  // empty conf dir
  EXPECT_TRUE(info.contains("config")) << r.out;                // containerd's verbose info, parsed

  EXPECT_EQ(containerd.Stop(SIGTERM, absl::Seconds(20)) != -1, true);
}

// berth-oci is runc-compatible enough to be containerd's runc binary: the runc v2 shim drives
// create (with --pid-file, --log, --log-format json), start, exec --process --detach, kill and
// delete through it.
TEST(ContainerdWithBerthOci, CtrRunsContainersThroughIt) {
  RunCommand({"/bin/sh", "-c",
              absl::StrCat(BERTH_SOURCE_DIR, "/tests/fixtures/build-images.sh ",
                           BERTH_FIXTURE_IMAGES, " >/dev/null 2>&1")});
  TempDir dir;
  Child containerd;
  std::string sock = StartContainerd(dir, containerd);
  ASSERT_FALSE(sock.empty());
  // A containerd namespace of the test's own: berth-oci's root and the cgroup parent are named
  // after it, so the test can remove exactly what it made.
  const std::string ns = absl::StrCat("berth-test-", ::getpid());
  CommandResult r = RunCommand({"/bin/tar", "-C", std::string(BERTH_FIXTURE_IMAGES) + "/busybox",
                                "-cf", dir / "busybox.tar", "."});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "images", "import", "--index-name",
                  "berth.test/busybox:latest", dir / "busybox.tar"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = absl::StrCat("berth-oci-ctr-", ::getpid());

  // Foreground: output and exit code come back through the shim.
  r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "run", "--runc-binary", BERTH_OCI_PATH,
                  "--rm", "berth.test/busybox:latest", id, "sh", "-c",
                  "echo hello from $(cat /proc/1/cmdline); exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.out << r.err << ReadFileOrEmpty(dir / "containerd.log");
  EXPECT_EQ(r.out, "hello from sh-cecho hello from $(cat /proc/1/cmdline); exit 7\n");

  // Detached, then exec, kill and delete.
  r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "run", "--runc-binary", BERTH_OCI_PATH,
                  "-d", "berth.test/busybox:latest", id, "sleep", "100"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << ReadFileOrEmpty(dir / "containerd.log");
  r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "task", "exec", "--exec-id", "e1", id, "sh",
                  "-c", "cat /proc/1/cmdline; echo; exit 4"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(r.out, std::string("sleep\0"
                               "100\0"
                               "\n",
                               11));
  r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "task", "kill", "-s", "SIGKILL", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 100; ++i) {
    r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "task", "ls"});
    if (r.out.find("STOPPED") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "task", "delete", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand({"/usr/bin/ctr", "-a", sock, "-n", ns, "containers", "delete", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Nothing of the container is left in berth-oci's state or the cgroup tree; then the
  // namespace's own parents go.
  EXPECT_NE(containerd.Stop(SIGTERM, absl::Seconds(20)), -1);
  struct stat st;
  EXPECT_NE(::stat(absl::StrCat("/run/containerd/runc/", ns, "/", id).c_str(), &st), 0);
  ::rmdir(absl::StrCat("/run/containerd/runc/", ns).c_str());
  std::vector<std::string> parents = {absl::StrCat("/sys/fs/cgroup/", ns)};  // v2
  for (const char* h : {"blkio", "cpu", "cpuacct", "cpu,cpuacct", "cpuset", "devices", "freezer",
                        "hugetlb", "memory", "net_cls", "net_prio", "perf_event", "pids", "systemd",
                        "unified", "misc", "rdma"}) {
    parents.push_back(absl::StrCat("/sys/fs/cgroup/", h, "/", ns));
  }
  for (const std::string& parent : parents) {
    EXPECT_NE(::stat((parent + "/" + id).c_str(), &st), 0) << parent;
    ::rmdir(parent.c_str());  // empty by now; fails harmlessly where it never existed
    EXPECT_NE(::stat(parent.c_str(), &st), 0) << parent << " left behind";
  }
}

}  // namespace
}  // namespace berth::testing

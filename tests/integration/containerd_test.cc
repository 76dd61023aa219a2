// berthctl speaks only CRI: the same binary must work unchanged against containerd's CRI.
// containerd (Debian's) runs here privately: its own root, state and socket.
#include <signal.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

TEST(BerthctlAgainstContainerd, VersionAndInfo) {
  struct stat st;
  ASSERT_EQ(::stat("/usr/bin/containerd", &st), 0)
      << "containerd is a test dependency (packaging/deps.sh installs it)";
  TempDir dir;
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
  Child containerd;
  containerd.Start({"/usr/bin/containerd", "--config", dir / "config.toml"},
                   dir / "containerd.log");
  ASSERT_TRUE(WaitForSocket(sock, absl::Seconds(30))) << ReadFileOrEmpty(dir / "containerd.log");

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

}  // namespace
}  // namespace berth::testing

// The non-cgroup parts of stats: /proc/net/dev parsing and the writable layer's usage.
#include "cri/stats_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::cri {
namespace {

TEST(StatsUtilTest, ParsesProcNetDev) {
  const char* text =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
      "drop fifo colls carrier compressed\n"
      "    lo:     140       2    0    0    0     0          0         0      140       2    0 "
      "   0    0     0       0          0\n"
      "  eth0:    9876      40    3    0    0     0          0         0     5432      30    7 "
      "   0    0     0       0          0\n"
      "broken: 1 2 3\n";
  std::vector<InterfaceCounters> ifs = ParseNetDev(text);
  ASSERT_EQ(ifs.size(), 2u);
  EXPECT_EQ(ifs[0].name, "lo");
  EXPECT_EQ(ifs[0].rx_bytes, 140u);
  EXPECT_EQ(ifs[1].name, "eth0");
  EXPECT_EQ(ifs[1].rx_bytes, 9876u);
  EXPECT_EQ(ifs[1].rx_errors, 3u);
  EXPECT_EQ(ifs[1].tx_bytes, 5432u);
  EXPECT_EQ(ifs[1].tx_errors, 7u);
}

TEST(StatsUtilTest, WalksATreeCountingHardLinksOnceAndNotFollowingSymlinks) {
  char tmpl[] = "/tmp/berth-du-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(MkdirAll(dir + "/a/b").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/a/b/big", std::string(1 << 20, 'x')).ok());
  ASSERT_EQ(::link((dir + "/a/b/big").c_str(), (dir + "/a/hard").c_str()), 0);
  ASSERT_EQ(::symlink("/usr", (dir + "/a/usr").c_str()), 0);
  absl::StatusOr<DiskUsage> du = WalkDiskUsage(dir);
  ASSERT_TRUE(du.ok()) << du.status();
  // dir, a, a/b, big (= hard), the symlink.
  EXPECT_EQ(du->inodes, 5u);
  EXPECT_GE(du->bytes, 1u << 20);
  EXPECT_LT(du->bytes, 2u << 20) << "the hard link is counted once, /usr not at all";
  absl::StatusOr<DiskUsage> shallow = WalkDiskUsage(dir, 0);
  ASSERT_TRUE(shallow.ok());
  EXPECT_EQ(shallow->inodes, 2u);  // dir and a
  EXPECT_EQ(WalkDiskUsage(dir + "/missing").status().code(), absl::StatusCode::kNotFound);
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace berth::cri

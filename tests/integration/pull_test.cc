// Pulling whole images (images/puller, images/snapshots) from the fixture registry (the CTest
// fixture `registry`) and from extra docker-registry instances over its storage (own logs, so
// that requests can be counted) or over a corrupted copy of it. Root (chown, mknod, overlay).
#include "images/puller.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/digest.h"
#include "gtest/gtest.h"
#include "images/content_store.h"
#include "images/manifest.h"
#include "images/reference.h"
#include "images/registry.h"
#include "images/snapshots.h"
#include "nlohmann/json.hpp"
#include "tests/integration/process.h"

namespace berth::images {
namespace {

using berth::testing::Child;
using berth::testing::CommandResult;
using berth::testing::ReadFileOrEmpty;
using berth::testing::RunCommand;
using berth::testing::TempDir;
using berth::testing::WriteFileOrDie;

std::string Sh(const std::string& cmd) {
  CommandResult r = RunCommand({"/bin/sh", "-c", cmd}, absl::Seconds(120));
  EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
  return r.out;
}

Reference Ref(const std::string& text) {
  auto r = ParseReference(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Reference{};
}

// A docker-registry of our own over `storage`, with its own log (access lines count requests).
class ExtraRegistry {
 public:
  explicit ExtraRegistry(const std::string& storage) {
    port_ = berth::testing::FreeLoopbackPort();
    WriteFileOrDie(
        dir_ / "config.yml",
        absl::StrCat("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                     "    rootdirectory: ",
                     storage, "\n  maintenance:\n    uploadpurging:\n      enabled: false\n",
                     "http:\n  secret: berth-test-not-a-secret\n  addr: 127.0.0.1:", port_,
                     "\nhealth:\n  storagedriver:\n    enabled: false\n"));
    child_.Start({"/usr/bin/docker-registry", "serve", dir_ / "config.yml"}, dir_ / "log");
    for (int i = 0; i < 300; ++i) {
      CommandResult r =
          RunCommand({"/usr/bin/curl", "--noproxy", "*", "-s", "-o", "/dev/null", "-w",
                      "%{http_code}", "--max-time", "5", absl::StrCat("http://", host(), "/v2/")});
      if (r.out == "200") {
        ready_ = true;
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  ~ExtraRegistry() { child_.Stop(SIGTERM, absl::Seconds(10)); }
  bool ready() const { return ready_; }
  // Waits (up to 2 s) until the access log has not grown for 100 ms.
  void WaitForQuietLog() const {
    absl::Time deadline = absl::Now() + absl::Seconds(2);
    size_t last = ReadFileOrEmpty(dir_ / "log").size();
    for (int quiet = 0; quiet < 2 && absl::Now() < deadline;) {
      absl::SleepFor(absl::Milliseconds(50));
      size_t now = ReadFileOrEmpty(dir_ / "log").size();
      quiet = now == last ? quiet + 1 : 0;
      last = now;
    }
  }
  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  // GET requests of a blob in the access log. The registry writes a line after the response
  // went out, so the log is first given a moment to stop growing.
  int BlobGets(const std::string& repo, const Digest& d) const {
    WaitForQuietLog();
    std::string needle = absl::StrCat("\"GET /v2/", repo, "/blobs/", d.ToString(), " HTTP");
    std::string log = ReadFileOrEmpty(dir_ / "log");
    int n = 0;
    for (size_t pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) {
      ++n;
    }
    return n;
  }

 private:
  TempDir dir_;
  Child child_;
  int port_ = 0;
  bool ready_ = false;
};

// A fresh content store + snapshot store + puller on a temp root.
struct Stores {
  explicit Stores(RegistryClient* client, int parallel = 4) {
    auto c = ContentStore::Open(root / "content");
    EXPECT_TRUE(c.ok()) << c.status();
    content = std::move(*c);
    auto s = SnapshotStore::Open(root.path());
    EXPECT_TRUE(s.ok()) << s.status();
    snapshots = std::move(*s);
    PullOptions o;
    o.max_parallel_layers = parallel;
    puller = std::make_unique<Puller>(client, content.get(), snapshots.get(), o);
  }
  // Entries left in snapshots/tmp and content/ingest.
  std::string Leftovers() const {
    return Sh(absl::StrCat("find '", root.path(), "/snapshots/tmp' '", root.path(),
                           "/content/ingest' -mindepth 1"));
  }
  TempDir root;
  std::unique_ptr<ContentStore> content;
  std::unique_ptr<SnapshotStore> snapshots;
  std::unique_ptr<Puller> puller;
};

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = berth::testing::ReadEnvFile(BERTH_REGISTRY_ENV);
    digests_ = berth::testing::ReadEnvFile(BERTH_DIGESTS_ENV);
    host_ = env["BERTH_TEST_REGISTRY"];
    ASSERT_FALSE(host_.empty()) << BERTH_REGISTRY_ENV << " has no BERTH_TEST_REGISTRY";
    client_ = std::make_unique<RegistryClient>(RegistryOptions{});
  }

  void CheckPulled(const PulledImage& img, Stores& st, size_t layers) {
    ASSERT_EQ(img.layer_digests.size(), layers);
    EXPECT_EQ(img.diff_ids, img.config.diff_ids);
    EXPECT_EQ(img.chain_ids, ChainIds(img.config.diff_ids));
    EXPECT_EQ(img.config_digest, Digest::Of(img.config_json));
    EXPECT_TRUE(st.content->Has(img.manifest_digest));
    EXPECT_TRUE(st.content->Has(img.config_digest));
    for (size_t i = 0; i < layers; ++i) {
      EXPECT_TRUE(st.content->Has(img.layer_digests[i])) << i;
      EXPECT_TRUE(st.snapshots->Has(img.chain_ids[i])) << i;
      EXPECT_EQ(st.snapshots->Path(img.chain_ids[i]),
                absl::StrCat(st.root.path(), "/snapshots/sha256/", img.chain_ids[i].hex()));
    }
    EXPECT_EQ(st.Leftovers(), "");
  }

  std::map<std::string, std::string> digests_;
  std::string host_;
  std::unique_ptr<RegistryClient> client_;
};

TEST_F(PullTest, BusyboxAndProgress) {
  Stores st(client_.get());
  std::mutex mu;
  std::map<std::string, std::vector<PullProgress::State>> states;
  auto img =
      st.puller->Pull(Ref(host_ + "/berth-test/busybox:latest"), {}, [&](const PullProgress& p) {
        std::lock_guard<std::mutex> l(mu);
        auto& v = states[p.digest.ToString()];
        if (v.empty() || v.back() != p.state) v.push_back(p.state);
      });
  ASSERT_TRUE(img.ok()) << img.status();
  CheckPulled(*img, st, 1);
  EXPECT_EQ(img->manifest_digest.ToString(), digests_["DIGEST_busybox"]);
  EXPECT_EQ(img->config.labels["io.berth.test.image"], "busybox");
  std::string snap = st.snapshots->Path(img->chain_ids[0]);
  struct stat s;
  ASSERT_EQ(::lstat((snap + "/bin/busybox").c_str(), &s), 0);
  EXPECT_TRUE(S_ISREG(s.st_mode));
  ASSERT_EQ(states.size(), 1u);
  std::vector<PullProgress::State> want = {
      PullProgress::State::kWaiting, PullProgress::State::kDownloading,
      PullProgress::State::kUnpacking, PullProgress::State::kDone};
  EXPECT_EQ(states.begin()->second, want);

  auto usage = st.snapshots->Usage();
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_GT(usage->bytes, 1 << 20);  // busybox-static alone is > 1 MiB
  EXPECT_GT(usage->inodes, 70);

  // Remove is idempotent and leaves nothing; pulling again re-creates the snapshot from the blob.
  ASSERT_TRUE(st.snapshots->Remove(img->chain_ids[0]).ok());
  EXPECT_FALSE(st.snapshots->Has(img->chain_ids[0]));
  EXPECT_TRUE(st.snapshots->Remove(img->chain_ids[0]).ok());
  EXPECT_EQ(st.Leftovers(), "");
  auto again = st.puller->Pull(Ref(host_ + "/berth-test/busybox:latest"), {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(st.snapshots->Has(img->chain_ids[0]));

  // CleanTmp removes leftovers of a crash.
  Sh(absl::StrCat("mkdir -p '", st.root.path(), "/snapshots/tmp/x-crash/a/b' && ln -s / '",
                  st.root.path(), "/snapshots/tmp/x-crash/a/root' && touch '", st.root.path(),
                  "/snapshots/tmp/x-crash/a/b/f'"));
  ASSERT_TRUE(st.snapshots->CleanTmp().ok());
  EXPECT_EQ(st.Leftovers(), "");
  EXPECT_EQ(::access("/etc/passwd", F_OK), 0);
}

TEST_F(PullTest, LayersSnapshotsStackedAsOverlayGiveTheExpectedTree) {
  Stores st(client_.get());
  auto img = st.puller->Pull(Ref(host_ + "/berth-test/layers:latest"), {});
  ASSERT_TRUE(img.ok()) << img.status();
  CheckPulled(*img, st, 4);
  EXPECT_EQ(img->config.user, "1000:1000");
  TempDir tmp;
  std::string merged = tmp / "merged";
  ASSERT_EQ(::mkdir(merged.c_str(), 0755), 0);
  std::string lower;
  for (size_t i = 4; i-- > 0;) {
    absl::StrAppend(&lower, lower.empty() ? "" : ":", st.snapshots->Path(img->chain_ids[i]));
  }
  CommandResult m =
      RunCommand({"/bin/mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + lower, merged});
  if (m.exit_code != 0) GTEST_SKIP() << "overlay mount failed: " << m.err;
  std::string tree =
      Sh(absl::StrCat(BERTH_SOURCE_DIR, "/tests/fixtures/tree.sh -x bin/busybox '", merged, "'"));
  CommandResult u = RunCommand({"/bin/umount", merged});
  EXPECT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(tree, ReadFileOrEmpty(absl::StrCat(BERTH_SOURCE_DIR, "/tests/fixtures/layers.tree")));
}

TEST_F(PullTest, PullingAgainAndByDigestFetchesNoBlob) {
  ExtraRegistry reg(BERTH_REGISTRY_STORAGE);
  ASSERT_TRUE(reg.ready());
  Stores st(client_.get());
  auto first = st.puller->Pull(Ref(reg.host() + "/berth-test/layers:latest"), {});
  ASSERT_TRUE(first.ok()) << first.status();
  for (const Digest& d : first->layer_digests) {
    EXPECT_EQ(reg.BlobGets("berth-test/layers", d), 1) << d.ToString();
  }
  EXPECT_EQ(reg.BlobGets("berth-test/layers", first->config_digest), 1);
  std::string blobs_before = Sh(absl::StrCat("cd '", st.root.path(), "/content' && ls -lR"));

  absl::Time t0 = absl::Now();
  auto second = st.puller->Pull(Ref(reg.host() + "/berth-test/layers:latest"), {});
  ASSERT_TRUE(second.ok()) << second.status();
  auto by_digest =
      st.puller->Pull(Ref(reg.host() + "/berth-test/layers@" + digests_["DIGEST_layers"]), {});
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  EXPECT_EQ(by_digest->manifest_digest.ToString(), digests_["DIGEST_layers"]);
  EXPECT_EQ(by_digest->chain_ids, first->chain_ids);
  EXPECT_EQ(second->config_digest, first->config_digest);
  for (const Digest& d : first->layer_digests) {
    EXPECT_EQ(reg.BlobGets("berth-test/layers", d), 1) << d.ToString();
  }
  EXPECT_EQ(reg.BlobGets("berth-test/layers", first->config_digest), 1);
  EXPECT_EQ(Sh(absl::StrCat("cd '", st.root.path(), "/content' && ls -lR")), blobs_before);
}

TEST_F(PullTest, ColdPullRateOfLarge) {
  Stores st(client_.get());
  absl::Time t0 = absl::Now();
  auto img = st.puller->Pull(Ref(host_ + "/berth-test/large:latest"), {});
  absl::Duration took = absl::Now() - t0;
  ASSERT_TRUE(img.ok()) << img.status();
  CheckPulled(*img, st, 7);
  double mb = static_cast<double>(img->size) / 1e6;
  std::printf("[ pull rate ] large: %.1f MB in %.2f s = %.1f MB/s (cold store, 4 layers at once)\n",
              mb, absl::ToDoubleSeconds(took), mb / absl::ToDoubleSeconds(took));
}

TEST_F(PullTest, ConcurrentPullsOfLargeFetchEachBlobOnce) {
  ExtraRegistry reg(BERTH_REGISTRY_STORAGE);
  ASSERT_TRUE(reg.ready());
  Stores st(client_.get());
  const Reference ref = Ref(reg.host() + "/berth-test/large:latest");
  std::vector<absl::StatusOr<PulledImage>> results(4, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = st.puller->Pull(ref, {}); });
  }
  for (auto& t : threads) t.join();
  for (auto& r : results) ASSERT_TRUE(r.ok()) << r.status();
  CheckPulled(*results[0], st, 7);
  for (auto& r : results) EXPECT_EQ(r->chain_ids, results[0]->chain_ids);
  for (const Digest& d : results[0]->layer_digests) {
    EXPECT_EQ(reg.BlobGets("berth-test/large", d), 1) << d.ToString();
  }
  EXPECT_EQ(reg.BlobGets("berth-test/large", results[0]->config_digest), 1);
}

TEST_F(PullTest, CorruptedBlobFailsWithDataLossAndLeavesNothing) {
  TempDir copy;
  Sh(absl::StrCat("cp -a '", BERTH_REGISTRY_STORAGE, "' '", copy / "storage", "'"));
  const std::string blobs = copy / "storage/docker/registry/v2/blobs/sha256/";
  auto blob_path = [&](const std::string& digest) {
    std::string hex = digest.substr(7);
    return absl::StrCat(blobs, hex.substr(0, 2), "/", hex, "/data");
  };
  auto manifest = nlohmann::json::parse(ReadFileOrEmpty(blob_path(digests_["DIGEST_layers"])));
  // Corrupt layer 3 of `layers` (its own blob: busybox's layer 1 stays intact).
  const std::string layer = manifest["layers"][2]["digest"];
  const std::string path = blob_path(layer);
  {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    struct stat s;
    ASSERT_EQ(::fstat(fd, &s), 0);
    char c;
    ASSERT_EQ(::pread(fd, &c, 1, s.st_size / 2), 1);
    c = static_cast<char>(c ^ 0xff);
    ASSERT_EQ(::pwrite(fd, &c, 1, s.st_size / 2), 1);
    ::close(fd);
  }
  ASSERT_NE(Sh(absl::StrCat("sha256sum '", path, "' | cut -c1-64")), layer.substr(7) + "\n");

  ExtraRegistry reg(copy / "storage");
  ASSERT_TRUE(reg.ready());
  Stores st(client_.get(), 1);  // one at a time: the layers before it complete
  auto img = st.puller->Pull(Ref(reg.host() + "/berth-test/layers:latest"), {});
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), absl::StatusCode::kDataLoss) << img.status();
  EXPECT_NE(img.status().message().find(layer), std::string::npos) << img.status();
  std::printf("[ corrupt ] %s\n", img.status().ToString().c_str());
  auto d = Digest::Parse(layer);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(st.content->Has(*d));
  EXPECT_EQ(st.Leftovers(), "");
  // No snapshot beyond the two layers before it.
  EXPECT_EQ(Sh(absl::StrCat("ls '", st.root.path(), "/snapshots/sha256' | wc -l")), "2\n");
}

}  // namespace
}  // namespace berth::images

// The CRI ImageService of the real berthd, pulling from the fixture registry (127.0.0.1).
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cri/api/cri.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/berthd_launcher.h"
#include "tests/integration/process.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

class ImageServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = ReadEnvFile(BERTH_REGISTRY_ENV)["BERTH_TEST_REGISTRY"];
    digests_ = ReadEnvFile(BERTH_DIGESTS_ENV);
    ASSERT_FALSE(registry_.empty()) << "the registry fixture is not running";
    d_ = std::make_unique<Berthd>(dir_);
    d_->Start();
    stub_ = v1::ImageService::NewStub(d_->Channel());
  }
  std::string Ref(const std::string& name) { return absl::StrCat(registry_, "/berth-test/", name); }

  grpc::Status Pull(const std::string& image, std::string* ref = nullptr) {
    v1::PullImageRequest req;
    req.mutable_image()->set_image(image);
    v1::PullImageResponse resp;
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    grpc::Status st = stub_->PullImage(ctx.get(), req, &resp);
    if (ref) *ref = resp.image_ref();
    return st;
  }
  v1::ImageStatusResponse Status(const std::string& image, bool verbose = false) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    req.set_verbose(verbose);
    v1::ImageStatusResponse resp;
    grpc::Status st = stub_->ImageStatus(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
  grpc::Status Remove(const std::string& image) {
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image);
    v1::RemoveImageResponse resp;
    return stub_->RemoveImage(Ctx().get(), req, &resp);
  }

  TempDir dir_;
  std::unique_ptr<Berthd> d_;
  std::unique_ptr<v1::ImageService::Stub> stub_;
  std::string registry_;
  std::map<std::string, std::string> digests_;
};

TEST_F(ImageServiceTest, PullStatusListRemove) {
  std::string id;
  grpc::Status st = Pull(Ref("layers"), &id);
  ASSERT_TRUE(st.ok()) << st.error_message() << d_->log();
  EXPECT_EQ(id.rfind("sha256:", 0), 0u) << id;

  v1::ImageStatusResponse s = Status(Ref("layers"), /*verbose=*/true);
  ASSERT_TRUE(s.has_image());
  EXPECT_EQ(s.image().id(), id);
  ASSERT_EQ(s.image().repo_tags_size(), 1);
  EXPECT_EQ(s.image().repo_tags(0), Ref("layers") + ":latest");
  ASSERT_EQ(s.image().repo_digests_size(), 1);
  EXPECT_EQ(s.image().repo_digests(0), Ref("layers") + "@" + digests_["DIGEST_layers"]);
  EXPECT_GT(s.image().size(), 0u);
  EXPECT_EQ(s.image().uid().value(), 1000);  // USER 1000:1000
  nlohmann::json info = nlohmann::json::parse(s.info().at("info"));
  EXPECT_EQ(info["imageSpec"]["config"]["User"], "1000:1000");
  EXPECT_EQ(info["chainIDs"].size(), 4u);

  // The same image by ID, short ID and digest reference.
  EXPECT_EQ(Status(id).image().id(), id);
  EXPECT_EQ(Status(id.substr(7, 12)).image().id(), id);
  EXPECT_EQ(Status(Ref("layers") + "@" + digests_["DIGEST_layers"]).image().id(), id);
  EXPECT_FALSE(Status(Ref("nothing")).has_image());  // absent: empty answer, no error

  // busybox under two tags: removing one keeps the image.
  std::string bb;
  ASSERT_TRUE(Pull(Ref("busybox"), &bb).ok());
  ASSERT_TRUE(Pull(Ref("busybox:v1")).ok());
  v1::ImageStatusResponse b = Status(Ref("busybox"));
  EXPECT_EQ(b.image().repo_tags_size(), 2);
  EXPECT_EQ(b.image().uid().value(), 0);

  v1::ListImagesRequest lreq;
  v1::ListImagesResponse lresp;
  ASSERT_TRUE(stub_->ListImages(Ctx().get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.images_size(), 2);
  lreq.mutable_filter()->mutable_image()->set_image(Ref("busybox:v1"));
  lresp.Clear();
  ASSERT_TRUE(stub_->ListImages(Ctx().get(), lreq, &lresp).ok());
  ASSERT_EQ(lresp.images_size(), 1);
  EXPECT_EQ(lresp.images(0).id(), bb);

  ASSERT_TRUE(Remove(Ref("busybox:v1")).ok());
  EXPECT_TRUE(Status(Ref("busybox")).has_image());
  EXPECT_FALSE(Status(Ref("busybox:v1")).has_image());
  ASSERT_TRUE(Remove(Ref("busybox")).ok());
  EXPECT_FALSE(Status(bb).has_image());
  EXPECT_TRUE(Remove(Ref("busybox")).ok());  // idempotent

  v1::ImageFsInfoRequest freq;
  v1::ImageFsInfoResponse fresp;
  ASSERT_TRUE(stub_->ImageFsInfo(Ctx().get(), freq, &fresp).ok());
  ASSERT_EQ(fresp.image_filesystems_size(), 1);
  EXPECT_GT(fresp.image_filesystems(0).used_bytes().value(), 0u);
  EXPECT_GT(fresp.image_filesystems(0).inodes_used().value(), 0u);
  EXPECT_EQ(fresp.image_filesystems(0).fs_id().mountpoint(), dir_ / "root/snapshots");

  ASSERT_TRUE(Remove(id).ok());
  lreq.Clear();
  lresp.Clear();
  ASSERT_TRUE(stub_->ListImages(Ctx().get(), lreq, &lresp).ok());
  EXPECT_EQ(lresp.images_size(), 0);
}

TEST_F(ImageServiceTest, ErrorsAreClear) {
  grpc::Status st = Pull(Ref("no-such-image"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  st = Pull("Not A Reference");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
}

TEST_F(ImageServiceTest, KillDuringPullLeavesNothingCorruptAndThePullRepeats) {
  // Start pulling the large image, kill berthd hard in the middle, start it again.
  std::thread puller([&] { (void)Pull(Ref("large")); });
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(::kill(d_->child().pid(), SIGKILL), 0);
  puller.join();
  (void)d_->child().Wait(absl::Seconds(5));
  d_ = std::make_unique<Berthd>(dir_);
  d_->Start();
  stub_ = v1::ImageService::NewStub(d_->Channel());
  std::string id;
  grpc::Status st = Pull(Ref("large"), &id);
  ASSERT_TRUE(st.ok()) << st.error_message() << d_->log();
  EXPECT_TRUE(Status(Ref("large")).has_image());
  // No temporary extraction or download is left behind.
  CommandResult tmp = RunCommand({"/usr/bin/find", dir_ / "root/snapshots/tmp", "-mindepth", "1"});
  EXPECT_EQ(tmp.out, "");
  // Every snapshot on disk belongs to the image (7 layers): none left unrecorded by the kill.
  CommandResult snaps = RunCommand(
      {"/usr/bin/find", dir_ / "root/snapshots/sha256", "-mindepth", "1", "-maxdepth", "1"});
  EXPECT_EQ(std::count(snaps.out.begin(), snaps.out.end(), '\n'), 7) << snaps.out;
}

// SIGTERM while a pull is in flight: the pull finishes (within shutdown_timeout), then berthd
// exits 0. With a shutdown_timeout shorter than the pull, the pull is cancelled instead and
// berthd still exits promptly.
TEST_F(ImageServiceTest, SigtermLetsInFlightCallsFinishWithinTheGrace) {
  std::string id;
  grpc::Status st;
  std::thread puller([&] { st = Pull(Ref("large"), &id); });
  absl::SleepFor(absl::Milliseconds(100));  // the pull is running
  ASSERT_EQ(::kill(d_->child().pid(), SIGTERM), 0);
  puller.join();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(id.rfind("sha256:", 0), 0u);
  int status = d_->child().Wait(absl::Seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  // Again with a 50 ms grace, on a cold store: the pull is cut off, berthd exits 0 quickly.
  TempDir dir2;
  Berthd short_grace(dir2, "", "50ms");
  short_grace.Start();
  stub_ = v1::ImageService::NewStub(short_grace.Channel());
  std::thread puller2([&] { st = Pull(Ref("large"), &id); });
  absl::SleepFor(absl::Milliseconds(100));
  absl::Time sent = absl::Now();
  ASSERT_EQ(::kill(short_grace.child().pid(), SIGTERM), 0);
  puller2.join();
  status = short_grace.child().Wait(absl::Seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(st.ok());  // cancelled, not completed
  EXPECT_LT(absl::Now() - sent, absl::Seconds(5));
  EXPECT_NE(short_grace.log().find("cancelling CRI calls still running"), std::string::npos)
      << short_grace.log();
}

}  // namespace
}  // namespace berth::testing

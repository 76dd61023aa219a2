// berthctl's image commands against the real berthd (the fixture registry, the fixture OCI
// layouts), and berth's admin service (PullWithProgress, ImportImage).
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

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
namespace admin = ::berth::admin::v1;

const std::string kBusyboxLayout = std::string(BERTH_FIXTURE_IMAGES) + "/busybox";

class ImageCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = ReadEnvFile(BERTH_REGISTRY_ENV)["BERTH_TEST_REGISTRY"];
    ASSERT_FALSE(registry_.empty()) << "the registry fixture is not running";
    d_ = std::make_unique<Berthd>(dir_);
    d_->Start();
    ep_ = "unix://" + d_->socket();
  }
  std::string Ref(const std::string& name) { return absl::StrCat(registry_, "/berth-test/", name); }
  CommandResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {BERTHCTL_PATH, "-r", ep_});
    return RunCommand(args, absl::Seconds(120));
  }
  // Lines of `find DIR -mindepth 1 -maxdepth 1` (empty when DIR is missing).
  std::string Entries(const std::string& d) {
    return RunCommand({"/usr/bin/find", d, "-mindepth", "1", "-maxdepth", "1"}).out;
  }
  // Nothing of any image is left: no record, no blob, no snapshot, no temporaries.
  void ExpectEmptyStore() {
    CommandResult r = Ctl({"images", "-q"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(Entries(dir_ / "root/content/blobs/sha256"), "");
    EXPECT_EQ(Entries(dir_ / "root/content/ingest"), "");
    EXPECT_EQ(Entries(dir_ / "root/snapshots/sha256"), "");
    EXPECT_EQ(Entries(dir_ / "root/snapshots/tmp"), "");
    EXPECT_EQ(Entries(dir_ / "state/import"), "");
  }

  TempDir dir_;
  std::unique_ptr<Berthd> d_;
  std::string ep_, registry_;
};

TEST_F(ImageCommandsTest, PullImagesInspectRemoveFsInfo) {
  CommandResult r = Ctl({"pull", Ref("layers")});
  ASSERT_EQ(r.exit_code, 0) << r.err << d_->log();
  ASSERT_TRUE(absl::StartsWith(r.out, "Image is up to date for sha256:")) << r.out;
  const std::string id = r.out.substr(std::string("Image is up to date for ").size(), 71);
  // Not a terminal: one plain line per layer as it finishes (4 layers).
  size_t lines = 0;
  for (size_t p = 0; (p = r.err.find("layer sha256:", p)) != std::string::npos; ++p) ++lines;
  EXPECT_EQ(lines, 4u) << r.err;
  EXPECT_NE(r.err.find(" done "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("\x1b["), std::string::npos) << "no terminal escapes off a terminal";

  ASSERT_EQ(Ctl({"pull", Ref("busybox")}).exit_code, 0);
  ASSERT_EQ(Ctl({"pull", Ref("busybox:v1")}).exit_code, 0);

  r = Ctl({"images", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list["images"].size(), 2u) << r.out;

  // The table: one row per tag, crictl's columns.
  r = Ctl({"images"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "IMAGE")) << r.out;
  EXPECT_NE(r.out.find("TAG"), std::string::npos);
  EXPECT_NE(r.out.find("IMAGE ID"), std::string::npos);
  EXPECT_NE(r.out.find("SIZE"), std::string::npos);
  EXPECT_NE(r.out.find(Ref("busybox") + "   latest"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(Ref("busybox") + "   v1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(id.substr(7, 13) + "   "), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 4) << r.out;
  r = Ctl({"images", "--digests", Ref("layers")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("DIGEST"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  r = Ctl({"images", "-q"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  EXPECT_NE(r.out.find(id + "\n"), std::string::npos) << r.out;

  r = Ctl({"inspecti", Ref("layers"), "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["status"]["id"], id);
  EXPECT_EQ(doc["info"]["chainIDs"].size(), 4u) << r.out;
  EXPECT_EQ(doc["info"]["imageSpec"]["config"]["User"], "1000:1000");
  r = Ctl({"inspecti", Ref("nothing-here")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;

  r = Ctl({"imagefsinfo", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json fs = nlohmann::json::parse(r.out);
  EXPECT_EQ(fs["imageFilesystems"][0]["fsId"]["mountpoint"], dir_ / "root/snapshots") << r.out;
  EXPECT_NE(fs["imageFilesystems"][0]["usedBytes"]["value"], "0") << r.out;
  r = Ctl({"imagefsinfo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(dir_ / "root/snapshots"), std::string::npos) << r.out;

  // rmi: the image with all its tags, as crictl; an absent one is reported, the rest removed.
  r = Ctl({"rmi", Ref("busybox:v1"), Ref("nothing-here"), id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("Deleted: " + Ref("busybox") + ":latest\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Deleted: " + Ref("busybox") + ":v1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Deleted: " + Ref("layers") + ":latest\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("image \"" + Ref("nothing-here") + "\" not found"), std::string::npos)
      << r.err;
  ExpectEmptyStore();
}

TEST_F(ImageCommandsTest, PullOfAMissingImageFailsClearly) {
  CommandResult r = Ctl({"pull", Ref("no-such-image")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("berthctl: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no-such-image"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(ImageCommandsTest, PullWithProgressSendsLayerEventsThenTheImageRef) {
  auto stub = admin::Admin::NewStub(d_->Channel());
  admin::PullWithProgressRequest req;
  req.mutable_pull()->mutable_image()->set_image(Ref("layers"));
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  auto reader = stub->PullWithProgress(ctx.get(), req);
  std::vector<admin::PullProgressEvent> events;
  admin::PullProgressEvent e;
  while (reader->Read(&e)) events.push_back(e);
  grpc::Status st = reader->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(events.size(), 5u);
  EXPECT_TRUE(absl::StartsWith(events.back().image_ref(), "sha256:"));
  std::map<std::string, std::string> last_state;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_TRUE(absl::StartsWith(events[i].layer_digest(), "sha256:"));
    EXPECT_EQ(events[i].image_ref(), "");
    last_state[events[i].layer_digest()] = events[i].state();
  }
  EXPECT_EQ(last_state.size(), 4u);
  for (const auto& [digest, state] : last_state) EXPECT_EQ(state, "done") << digest;

  // Pulled again: every layer is cached.
  auto ctx2 = std::make_unique<grpc::ClientContext>();
  auto again = stub->PullWithProgress(ctx2.get(), req);
  std::map<std::string, std::string> states;
  while (again->Read(&e)) {
    if (!e.layer_digest().empty()) states[e.layer_digest()] = e.state();
  }
  ASSERT_TRUE(again->Finish().ok());
  for (const auto& [digest, state] : states) EXPECT_EQ(state, "cached") << digest;

  // A missing image: the stream ends with the error.
  req.mutable_pull()->mutable_image()->set_image(Ref("no-such-image"));
  auto ctx3 = std::make_unique<grpc::ClientContext>();
  auto failed = stub->PullWithProgress(ctx3.get(), req);
  while (failed->Read(&e)) {
  }
  EXPECT_EQ(failed->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ImageCommandsTest, ImportLayoutDirWithTag) {
  CommandResult r = Ctl({"image", "import", kBusyboxLayout, "--tag", "localhost/imported:1"});
  ASSERT_EQ(r.exit_code, 0) << r.err << d_->log();
  EXPECT_NE(r.out.find("Imported sha256:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Tagged: localhost/imported:1"), std::string::npos) << r.out;

  auto stub = v1::ImageService::NewStub(d_->Channel());
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image("localhost/imported:1");
  req.set_verbose(true);
  v1::ImageStatusResponse resp;
  ASSERT_TRUE(stub->ImageStatus(Ctx().get(), req, &resp).ok());
  ASSERT_TRUE(resp.has_image());
  EXPECT_EQ(resp.image().repo_tags(0), "localhost/imported:1");
  nlohmann::json info = nlohmann::json::parse(resp.info().at("info"));
  ASSERT_EQ(info["chainIDs"].size(), 1u);
  std::string chain = info["chainIDs"][0];
  struct stat st;
  EXPECT_EQ(::stat((dir_ / "root/snapshots/sha256/" + chain.substr(7)).c_str(), &st), 0) << chain;
  EXPECT_EQ(
      ::stat((dir_ / "root/snapshots/sha256/" + chain.substr(7) + "/bin/busybox").c_str(), &st), 0);
  EXPECT_EQ(Entries(dir_ / "state/import"), "");  // the spool file is gone

  // The same image as an OCI archive file, no tag: the layout names only "latest" (not a full
  // reference), so it keeps its earlier name and gains none.
  std::string tar = dir_ / "busybox.tar";
  ASSERT_EQ(RunCommand({"/bin/tar", "-C", kBusyboxLayout, "-cf", tar, "."}).exit_code, 0);
  r = Ctl({"image", "import", tar, "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["imageRef"], resp.image().id());
  EXPECT_EQ(j["tags"], nlohmann::json::array({"localhost/imported:1"}));
}

TEST_F(ImageCommandsTest, ImportUntaggedThenFullRefAnnotation) {
  std::string tar = dir_ / "busybox.tar";
  ASSERT_EQ(RunCommand({"/bin/tar", "-C", kBusyboxLayout, "-cf", tar, "."}).exit_code, 0);
  CommandResult r = Ctl({"image", "import", tar});
  ASSERT_EQ(r.exit_code, 0) << r.err << d_->log();
  r = Ctl({"images"});
  EXPECT_NE(r.out.find("<none>   <none>"), std::string::npos) << r.out;

  // A layout whose ref.name annotation is a full reference is tagged with it.
  std::string copy = dir_ / "layout";
  ASSERT_EQ(RunCommand({"/bin/cp", "-a", kBusyboxLayout, copy}).exit_code, 0);
  std::string index = ReadFileOrEmpty(copy + "/index.json");
  nlohmann::json ij = nlohmann::json::parse(index);
  ij["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "example.com/bb:2";
  WriteFileOrDie(copy + "/index.json", ij.dump());
  r = Ctl({"image", "import", copy});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Tagged: example.com/bb:2"), std::string::npos) << r.out;
}

TEST_F(ImageCommandsTest, BrokenArchivesFailClearlyAndLeaveNothing) {
  // Truncated in the middle of the layer blob.
  std::string tar = dir_ / "busybox.tar";
  ASSERT_EQ(RunCommand({"/bin/tar", "-C", kBusyboxLayout, "-cf", tar, "."}).exit_code, 0);
  struct stat st;
  ASSERT_EQ(::stat(tar.c_str(), &st), 0);
  ASSERT_EQ(::truncate(tar.c_str(), st.st_size / 2), 0);
  CommandResult r = Ctl({"image", "import", tar, "--tag", "localhost/broken:1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("importing the OCI archive"), std::string::npos) << r.err;
  EXPECT_TRUE(r.err.find("damaged") != std::string::npos ||
              r.err.find("has no") != std::string::npos)
      << r.err;
  ExpectEmptyStore();

  // A layer blob whose content does not match its digest.
  std::string copy = dir_ / "layout";
  ASSERT_EQ(RunCommand({"/bin/cp", "-a", kBusyboxLayout, copy}).exit_code, 0);
  nlohmann::json index = nlohmann::json::parse(ReadFileOrEmpty(copy + "/index.json"));
  std::string mdigest = index["manifests"][0]["digest"];
  nlohmann::json manifest =
      nlohmann::json::parse(ReadFileOrEmpty(copy + "/blobs/sha256/" + mdigest.substr(7)));
  std::string layer = manifest["layers"][0]["digest"];
  std::string blob = copy + "/blobs/sha256/" + layer.substr(7);
  std::string data = ReadFileOrEmpty(blob);
  ASSERT_GT(data.size(), 1000u);
  data[data.size() / 2] ^= 0x5a;
  ::chmod(blob.c_str(), 0644);
  WriteFileOrDie(blob, data);
  r = Ctl({"image", "import", copy, "--tag", "localhost/broken:2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(layer), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("digest"), std::string::npos) << r.err;
  ExpectEmptyStore();

  // Not an archive at all.
  WriteFileOrDie(dir_ / "junk.tar", std::string(4096, 'x'));
  r = Ctl({"image", "import", dir_ / "junk.tar"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("OCI archive"), std::string::npos) << r.err;
  ExpectEmptyStore();
}

// A CRI runtime that is not berthd: an image service whose PullImage works, no admin service.
class FakePull final : public v1::ImageService::Service {
  grpc::Status PullImage(grpc::ServerContext*, const v1::PullImageRequest* req,
                         v1::PullImageResponse* resp) override {
    resp->set_image_ref("sha256:" + std::string(64, 'a'));
    last_auth_user = req->auth().username();
    return grpc::Status::OK;
  }

 public:
  std::string last_auth_user;
};

TEST(BerthctlImages, OtherRuntimesPullWithoutProgressAndCannotImport) {
  TempDir dir;
  std::string path = dir / "grpc.sock";
  FakePull fake;
  grpc::ServerBuilder builder;
  builder.RegisterService(&fake);
  builder.AddListeningPort("unix://" + path, grpc::InsecureServerCredentials());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server);
  CommandResult r = RunCommand(
      {BERTHCTL_PATH, "-r", "unix://" + path, "pull", "busybox", "--creds", "me:secret"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Image is up to date for sha256:" + std::string(64, 'a') + "\n");
  EXPECT_EQ(r.err, "");  // not a terminal: no spinner
  EXPECT_EQ(fake.last_auth_user, "me");

  r = RunCommand({BERTHCTL_PATH, "-r", "unix://" + path, "image", "import", kBusyboxLayout});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the runtime at unix://" + path +
                       " has no berth admin service (import is berth-only)"),
            std::string::npos)
      << r.err;
  server->Shutdown(std::chrono::system_clock::now());
}

}  // namespace
}  // namespace berth::testing

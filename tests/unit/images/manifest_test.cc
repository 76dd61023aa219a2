#include "images/manifest.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::images {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The `layers` test image as tests/fixtures/build-images.sh writes it (index.json of the OCI
// layout, the manifest and the config blob, byte for byte): the digests tie them together, so
// the test checks the index names the manifest and the manifest the config.
constexpr char kLayoutIndex[] =
    R"json({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:4cc3387055c3108c86d1ad62aa47d716a22adbf87d91c130fc52aff195a9d9a1","size":868,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]})json";

constexpr char kOciManifest[] =
    R"json({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0c710e309810e789514c3bf63eccf959b674e49b9644d09120151e770ea39419","size":1126},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:9d122c4b9d58a95c1f1744f81705c4a95cde3078c2674202fc356b2152ef268b","size":1029133},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:f5a1cc3c4b37f7b77f60b004cd402d0cf4eba741e8d2aad3eb78290e3bd89428","size":800},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:81b21008f941fc68d7b69b2c1bdeeac7decc111219296ef9c95a65733d3b6f83","size":967},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:0e1f2bcc6649b922c2ac12aa51a76bcd99816ae76c8728cf69e372a619639975","size":228}]})json";

constexpr char kOciConfig[] =
    R"json({"created":"2023-11-14T22:13:20Z","architecture":"amd64","os":"linux","config":{"User":"1000:1000","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","BERTH_VAR1=one","BERTH_VAR2=a=b c"],"Entrypoint":["/bin/echo","entry"],"Cmd":["cmd-arg1","cmd-arg2"],"WorkingDir":"/work","StopSignal":"SIGUSR1","Labels":{"io.berth.test.image":"layers","io.berth.test.label":"hello world"}},"rootfs":{"type":"layers","diff_ids":["sha256:be31d7e3c970f1689b6555d36b6f5c46db06a95f2b674208391e3dfd04af106e","sha256:38ec3d4534cf079e97e8be84a92241f7d7fd7f00f9c68ca72e369154d5b9a16a","sha256:20b00b30197728813beb9c9d5dcd0c79023ef076fbc4c6826f535a820e4725ee","sha256:f06474b22ea5dca92888839c88376f4493ca641cb7a22d963731df28597cac6d"]},"history":[{"created":"2023-11-14T22:13:20Z","created_by":"berth build-images.sh: busybox-static base"},{"created":"2023-11-14T22:13:20Z","created_by":"berth build-images.sh: layers lower (layer 2)"},{"created":"2023-11-14T22:13:20Z","created_by":"berth build-images.sh: layers upper (layer 3)"},{"created":"2023-11-14T22:13:20Z","created_by":"berth build-images.sh: layers top (layer 4)"}]})json";

// The `busybox` fixture converted by `skopeo copy --format v2s2` (as registry.sh pushes
// berth-test/busybox-docker): a real Docker schema 2 manifest and its config.
constexpr char kDockerManifest[] =
    R"json({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":432,"digest":"sha256:17e25de01040503ea40a95758215d05e770e0e7ceb5a2a033476c3043bc04fcc"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1029133,"digest":"sha256:9d122c4b9d58a95c1f1744f81705c4a95cde3078c2674202fc356b2152ef268b"}]})json";

constexpr char kDockerConfig[] =
    R"json({"created":"2023-11-14T22:13:20Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"Labels":{"io.berth.test.image":"busybox"}},"rootfs":{"type":"layers","diff_ids":["sha256:be31d7e3c970f1689b6555d36b6f5c46db06a95f2b674208391e3dfd04af106e"]},"history":[{"created":"2023-11-14T22:13:20Z","created_by":"berth build-images.sh: busybox-static base"}]})json";

// Hand-written, shaped like Docker Hub's busybox manifest list (digests made up).
constexpr char kDockerList[] = R"({
  "manifests": [
    {"digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "amd64", "os": "linux"}, "size": 528},
    {"digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v5"}, "size": 527},
    {"digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}, "size": 527},
    {"digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}, "size": 527},
    {"digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}, "size": 527},
    {"digest": "sha256:6666666666666666666666666666666666666666666666666666666666666666",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "386", "os": "linux"}, "size": 527},
    {"digest": "sha256:7777777777777777777777777777777777777777777777777777777777777777",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "ppc64le", "os": "linux"}, "size": 528},
    {"digest": "sha256:8888888888888888888888888888888888888888888888888888888888888888",
     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5122",
                  "os.features": ["win32k"]}, "size": 1125}
  ],
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "schemaVersion": 2
})";

// A schema 1 manifest (signed), as old registries still serve them.
constexpr char kSchema1[] = R"({
   "schemaVersion": 1,
   "name": "library/hello-world",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [
      {"blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}
   ],
   "history": [{"v1Compatibility": "{\"id\":\"x\"}"}],
   "signatures": [{"header": {"alg": "ES256"}, "signature": "xx", "protected": "yy"}]
})";

const char kD1[] = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

// An OCI index entry for `platform` ("" for none) with a digest made from `n`.
json Entry(const std::string& os, const std::string& arch, const std::string& variant, int n,
           const std::string& media_type = kMediaTypeOciManifest) {
  json e = {{"mediaType", media_type},
            {"digest", Digest::Of(std::to_string(n)).ToString()},
            {"size", 100 + n}};
  if (!os.empty()) {
    e["platform"] = {{"os", os}, {"architecture", arch}};
    if (!variant.empty()) e["platform"]["variant"] = variant;
  }
  return e;
}

std::string IndexOf(const std::vector<json>& entries) {
  return json{{"schemaVersion", 2}, {"mediaType", kMediaTypeOciIndex}, {"manifests", entries}}
      .dump();
}

Digest D(int n) {
  return Digest::Of(std::to_string(n));
}

// ---- real documents -----------------------------------------------------------------------

TEST(ManifestTest, OciLayoutOfTheLayersFixture) {
  absl::StatusOr<ManifestType> type = ClassifyManifest("", kLayoutIndex);
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(type->kind, MediaKind::kIndex);
  EXPECT_EQ(type->media_type, kMediaTypeOciIndex);  // from the shape: index.json has none

  absl::StatusOr<Index> index = ParseIndex(kLayoutIndex);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->media_type, "");
  ASSERT_EQ(index->manifests.size(), 1u);
  const Descriptor& entry = index->manifests[0];
  EXPECT_EQ(entry.media_type, kMediaTypeOciManifest);
  EXPECT_EQ(entry.size, static_cast<int64_t>(std::string(kOciManifest).size()));
  EXPECT_EQ(entry.digest, Digest::Of(kOciManifest));
  EXPECT_EQ(entry.annotations.at("org.opencontainers.image.ref.name"), "latest");
  EXPECT_FALSE(entry.platform.has_value());

  // The layout's only entry has no platform: it is still chosen, for any platform.
  for (const char* p : {"linux/amd64", "linux/arm64"}) {
    absl::StatusOr<Descriptor> chosen = SelectPlatform(*index, *ParsePlatform(p));
    ASSERT_TRUE(chosen.ok()) << chosen.status();
    EXPECT_EQ(chosen->digest, entry.digest);
  }

  type = ClassifyManifest(kMediaTypeOciManifest, kOciManifest);
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(type->kind, MediaKind::kManifest);
  EXPECT_EQ(type->media_type, kMediaTypeOciManifest);

  absl::StatusOr<Manifest> manifest = ParseManifest(kOciManifest);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(manifest->config.media_type, kMediaTypeOciConfig);
  EXPECT_EQ(manifest->config.digest, Digest::Of(kOciConfig));
  EXPECT_EQ(manifest->config.size, static_cast<int64_t>(std::string(kOciConfig).size()));
  ASSERT_EQ(manifest->layers.size(), 4u);
  for (const Descriptor& layer : manifest->layers) {
    EXPECT_EQ(*LayerCompression(layer.media_type), Compression::kGzip);
    EXPECT_THAT(layer.urls, IsEmpty());
  }
  EXPECT_EQ(manifest->layers[0].size, 1029133);
  EXPECT_EQ(manifest->layers[3].digest.ToString(),
            "sha256:0e1f2bcc6649b922c2ac12aa51a76bcd99816ae76c8728cf69e372a619639975");
  EXPECT_THAT(manifest->annotations, IsEmpty());
  EXPECT_FALSE(manifest->subject.has_value());

  absl::StatusOr<ImageConfig> config = ParseImageConfig(kOciConfig);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, "amd64");
  EXPECT_EQ(config->os, "linux");
  EXPECT_EQ(config->created, "2023-11-14T22:13:20Z");
  EXPECT_EQ(config->user, "1000:1000");
  EXPECT_THAT(config->env,
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "BERTH_VAR1=one", "BERTH_VAR2=a=b c"));
  EXPECT_THAT(config->entrypoint, ElementsAre("/bin/echo", "entry"));
  EXPECT_THAT(config->cmd, ElementsAre("cmd-arg1", "cmd-arg2"));
  EXPECT_EQ(config->working_dir, "/work");
  EXPECT_EQ(config->stop_signal, "SIGUSR1");
  EXPECT_EQ(config->labels.at("io.berth.test.label"), "hello world");
  EXPECT_EQ(config->labels.size(), 2u);
  ASSERT_EQ(config->diff_ids.size(), 4u);
  EXPECT_EQ(config->diff_ids[1].ToString(),
            "sha256:38ec3d4534cf079e97e8be84a92241f7d7fd7f00f9c68ca72e369154d5b9a16a");
  ASSERT_EQ(config->history.size(), 4u);
  EXPECT_EQ(config->history[3].created_by, "berth build-images.sh: layers top (layer 4)");
  EXPECT_FALSE(config->history[3].empty_layer);
  EXPECT_EQ(config->raw, json::parse(kOciConfig));
  EXPECT_TRUE(CheckConfigMatchesManifest(*manifest, *config).ok());

  // Chain IDs of the fixture's layers, computed with sha256sum:
  //   printf '%s %s' <diff_id 0> <diff_id 1> | sha256sum
  //   printf '%s %s' <chain id 1> <diff_id 2> | sha256sum
  std::vector<Digest> chain = ChainIds(config->diff_ids);
  ASSERT_EQ(chain.size(), 4u);
  EXPECT_EQ(chain[0], config->diff_ids[0]);
  EXPECT_EQ(chain[1].ToString(),
            "sha256:0682f28e1cabc9232f581389ace06e47dee698308de1d3e81ce53fc193f7874d");
  EXPECT_EQ(chain[2].ToString(),
            "sha256:cad18a58cbc6340b3115ab9d5109452c1185f0020eea0a4c47a5b77e382157ac");
}

TEST(ManifestTest, DockerSchema2FromSkopeo) {
  absl::StatusOr<ManifestType> type = ClassifyManifest(
      "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", kDockerManifest);
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(type->kind, MediaKind::kManifest);
  EXPECT_EQ(type->media_type, kMediaTypeDockerManifest);

  absl::StatusOr<Manifest> manifest = ParseManifest(kDockerManifest);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->config.media_type, kMediaTypeDockerConfig);
  EXPECT_EQ(manifest->config.digest, Digest::Of(kDockerConfig));
  ASSERT_EQ(manifest->layers.size(), 1u);
  EXPECT_EQ(manifest->layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");

  absl::StatusOr<ImageConfig> config = ParseImageConfig(kDockerConfig);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->cmd, ElementsAre("sh"));
  EXPECT_THAT(config->entrypoint, IsEmpty());
  EXPECT_EQ(config->user, "");
  EXPECT_TRUE(CheckConfigMatchesManifest(*manifest, *config).ok());
  EXPECT_THAT(ChainIds(config->diff_ids), ElementsAre(config->diff_ids[0]));

  // The OCI manifest's config has 4 diff_ids, this manifest 1 layer.
  absl::Status mismatch = CheckConfigMatchesManifest(*manifest, *ParseImageConfig(kOciConfig));
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.message(), HasSubstr("lists 1 layers but the image config has 4 diff_ids"));
}

TEST(ManifestTest, DockerManifestListPlatforms) {
  absl::StatusOr<ManifestType> type = ClassifyManifest(kMediaTypeDockerManifestList, kDockerList);
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(type->kind, MediaKind::kIndex);

  absl::StatusOr<Index> index = ParseIndex(kDockerList);
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->media_type, kMediaTypeDockerManifestList);
  ASSERT_EQ(index->manifests.size(), 8u);
  const Platform& windows = *index->manifests[7].platform;
  EXPECT_EQ(windows.os, "windows");
  EXPECT_EQ(windows.os_version, "10.0.17763.5122");
  EXPECT_THAT(windows.os_features, ElementsAre("win32k"));

  struct Want {
    const char* platform;
    char digit;  // of the digest chosen
  };
  for (const Want& w : std::vector<Want>{{"linux/amd64", '1'},
                                         {"linux/x86_64", '1'},
                                         {"linux/amd64/v3", '1'},
                                         {"linux/arm64", '5'},
                                         {"linux/arm64/v8", '5'},
                                         {"linux/aarch64", '5'},
                                         {"linux/arm64/v9", '5'},
                                         {"linux/arm", '4'},
                                         {"linux/arm/v7", '4'},
                                         {"linux/armhf", '4'},
                                         {"linux/arm/v6", '3'},
                                         {"linux/armel", '3'},
                                         {"linux/arm/v5", '2'},
                                         {"linux/386", '6'},
                                         {"linux/i386", '6'},
                                         {"linux/ppc64le", '7'},
                                         {"windows/amd64", '8'}}) {
    SCOPED_TRACE(w.platform);
    absl::StatusOr<Platform> want = ParsePlatform(w.platform);
    ASSERT_TRUE(want.ok()) << want.status();
    absl::StatusOr<Descriptor> d = SelectPlatform(*index, *want);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->digest.hex()[0], w.digit);
  }

  absl::StatusOr<Descriptor> none = SelectPlatform(*index, *ParsePlatform("linux/riscv64"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(),
              HasSubstr("no manifest for linux/riscv64 in the image index; it offers "
                        "linux/amd64, linux/arm/v5, linux/arm/v6, linux/arm/v7, linux/arm64/v8, "
                        "linux/386, linux/ppc64le, windows/amd64"));
  // arm v7 hardware cannot run arm64, nor amd64 v1 a v2 image.
  Index only_v8;
  only_v8.manifests = {index->manifests[4]};
  EXPECT_FALSE(SelectPlatform(only_v8, *ParsePlatform("linux/arm/v7")).ok());
}

TEST(ManifestTest, SelectPlatformRanksVariants) {
  // amd64: the closest variant not above the wanted one, first in index order among equals.
  absl::StatusOr<Index> index =
      ParseIndex(IndexOf({Entry("linux", "amd64", "v4", 1), Entry("linux", "amd64", "", 2),
                          Entry("linux", "amd64", "v2", 3), Entry("linux", "amd64", "v3", 4),
                          Entry("linux", "amd64", "v3", 5), Entry("linux", "amd64", "v1", 6)}));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(SelectPlatform(*index, *ParsePlatform("linux/amd64"))->digest, D(2));
  EXPECT_EQ(SelectPlatform(*index, *ParsePlatform("linux/amd64/v2"))->digest, D(3));
  EXPECT_EQ(SelectPlatform(*index, *ParsePlatform("linux/amd64/v3"))->digest, D(4));
  EXPECT_EQ(SelectPlatform(*index, *ParsePlatform("linux/amd64/v4"))->digest, D(1));

  index = ParseIndex(IndexOf({Entry("linux", "amd64", "v2", 1)}));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(SelectPlatform(*index, Platform{}).status().code(), absl::StatusCode::kNotFound);

  // Attestations and artifacts never match; an entry without a platform only as a last resort.
  index = ParseIndex(IndexOf({Entry("", "", "", 1), Entry("unknown", "unknown", "", 2),
                              Entry("linux", "amd64", "", 3, "application/vnd.example+json"),
                              Entry("linux", "amd64", "", 4)}));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(SelectPlatform(*index, Platform{})->digest, D(4));
  EXPECT_EQ(SelectPlatform(*index, *ParsePlatform("linux/s390x"))->digest, D(1));

  // A nested index is a candidate too (the caller descends into it).
  index = ParseIndex(IndexOf({Entry("linux", "arm64", "", 1, kMediaTypeOciIndex)}));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(SelectPlatform(*index, *ParsePlatform("linux/arm64"))->media_type, kMediaTypeOciIndex);

  index = ParseIndex(IndexOf({}));
  ASSERT_TRUE(index.ok());
  EXPECT_THAT(SelectPlatform(*index, Platform{}).status().message(),
              HasSubstr("lists no manifests"));
}

TEST(ManifestTest, Platforms) {
  EXPECT_EQ(ParsePlatform("linux/arm64/v8")->String(), "linux/arm64");
  EXPECT_EQ(ParsePlatform("linux/aarch64")->String(), "linux/arm64");
  EXPECT_EQ(ParsePlatform("Linux/X86_64")->String(), "linux/amd64");
  EXPECT_EQ(ParsePlatform("linux/amd64/v1")->String(), "linux/amd64");
  EXPECT_EQ(ParsePlatform("linux/amd64/v3")->String(), "linux/amd64/v3");
  EXPECT_EQ(ParsePlatform("linux/armhf")->String(), "linux/arm/v7");
  EXPECT_EQ(ParsePlatform("linux/armel")->String(), "linux/arm/v6");
  EXPECT_EQ(ParsePlatform("linux/arm")->String(), "linux/arm/v7");
  EXPECT_EQ(ParsePlatform("linux/arm/6")->String(), "linux/arm/v6");
  EXPECT_EQ(ParsePlatform("linux/arm64/9")->String(), "linux/arm64/v9");
  EXPECT_EQ(ParsePlatform("arm64")->String(), "linux/arm64");
  EXPECT_EQ(ParsePlatform("windows")->os, "windows");
  EXPECT_EQ(ParsePlatform("windows")->architecture, HostPlatform().architecture);
  for (const char* bad : {"", "/", "linux/", "linux//v7", "linux/amd64/v1/x", "linux/amd 64",
                          "linux/amd64\n", "linux/\xc3\xa9"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<Platform> p = ParsePlatform(bad);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr("invalid platform"));
  }
  Platform host = HostPlatform();
  EXPECT_EQ(host.os, "linux");
  EXPECT_FALSE(host.architecture.empty());
  EXPECT_EQ(NormalizePlatform(host), host);
#if defined(__x86_64__)
  EXPECT_EQ(host.String(), "linux/amd64");
#elif defined(__aarch64__)
  EXPECT_EQ(host.String(), "linux/arm64");
#endif
  EXPECT_EQ(Platform{}.String(), "linux/amd64");
}

TEST(ManifestTest, LayerMediaTypes) {
  struct L {
    const char* type;
    Compression compression;
    bool foreign;
  };
  for (const L& l : std::vector<L>{
           {"application/vnd.oci.image.layer.v1.tar", Compression::kNone, false},
           {"application/vnd.oci.image.layer.v1.tar+gzip", Compression::kGzip, false},
           {"application/vnd.oci.image.layer.v1.tar+zstd", Compression::kZstd, false},
           {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::kGzip,
            true},
           {"application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::kGzip, false},
           {"application/vnd.docker.image.rootfs.diff.tar", Compression::kNone, false},
           {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression::kGzip,
            true}}) {
    SCOPED_TRACE(l.type);
    ASSERT_TRUE(LayerCompression(l.type).ok());
    EXPECT_EQ(*LayerCompression(l.type), l.compression);
    EXPECT_EQ(IsForeignLayer(l.type), l.foreign);
    EXPECT_EQ(MediaKindOf(l.type), MediaKind::kLayer);
  }
  absl::StatusOr<Compression> bad = LayerCompression("application/vnd.oci.image.layer.v1.tar+xz");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("\"application/vnd.oci.image.layer.v1.tar+xz\""));
  EXPECT_EQ(MediaKindOf(kMediaTypeDockerConfig), MediaKind::kConfig);
  EXPECT_EQ(MediaKindOf(kMediaTypeDockerSchema1), MediaKind::kUnknown);
  EXPECT_EQ(MediaKindOf("application/json"), MediaKind::kUnknown);
}

TEST(ManifestTest, ForeignLayersKeepTheirUrls) {
  json m = json::parse(kDockerManifest);
  m["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
  m["layers"][0]["urls"] = {"https://mcr.microsoft.com/v2/windows/blobs/sha256:1"};
  m["layers"][0]["annotations"] = {{"a", "b"}};
  m["layers"][0]["data"] = "aGVsbG8=";
  m["layers"][0]["artifactType"] = "application/vnd.example.thing";
  m["annotations"] = {{"org.opencontainers.image.created", "2023-11-14T22:13:20Z"}};
  m["subject"] = {{"mediaType", kMediaTypeOciManifest}, {"digest", kD1}, {"size", 1}};
  absl::StatusOr<Manifest> manifest = ParseManifest(m.dump());
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_THAT(manifest->layers[0].urls,
              ElementsAre("https://mcr.microsoft.com/v2/windows/blobs/sha256:1"));
  EXPECT_EQ(manifest->layers[0].annotations.at("a"), "b");
  EXPECT_EQ(manifest->layers[0].artifact_type, "application/vnd.example.thing");
  EXPECT_EQ(manifest->annotations.size(), 1u);
  ASSERT_TRUE(manifest->subject.has_value());
  EXPECT_EQ(manifest->subject->digest.ToString(), kD1);
}

// ---- classification ---------------------------------------------------------------------------

TEST(ClassifyManifestTest, HeaderThenBodyThenShape) {
  json manifest_no_type = json::parse(kOciManifest);
  manifest_no_type.erase("mediaType");
  json list_no_type = json::parse(kDockerList);
  list_no_type.erase("mediaType");

  struct C {
    std::string header;
    std::string body;
    MediaKind kind;
    std::string media_type;
  };
  for (const C& c : std::vector<C>{
           {"", kOciManifest, MediaKind::kManifest, kMediaTypeOciManifest},
           {"application/json", kDockerManifest, MediaKind::kManifest, kMediaTypeDockerManifest},
           {"text/plain; charset=utf-8", kDockerList, MediaKind::kIndex,
            kMediaTypeDockerManifestList},
           {"application/octet-stream", manifest_no_type.dump(), MediaKind::kManifest,
            kMediaTypeOciManifest},
           {"text/html", list_no_type.dump(), MediaKind::kIndex, kMediaTypeOciIndex},
           {kMediaTypeDockerManifestList, list_no_type.dump(), MediaKind::kIndex,
            kMediaTypeDockerManifestList},
           {kMediaTypeDockerManifest, manifest_no_type.dump(), MediaKind::kManifest,
            kMediaTypeDockerManifest},
           {" Application/VND.oci.image.manifest.v1+JSON ", kOciManifest, MediaKind::kManifest,
            kMediaTypeOciManifest},
       }) {
    SCOPED_TRACE(c.header + " " + c.body.substr(0, 80));
    absl::StatusOr<ManifestType> t = ClassifyManifest(c.header, c.body);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->kind, c.kind);
    EXPECT_EQ(t->media_type, c.media_type);
  }
}

TEST(ClassifyManifestTest, Refusals) {
  json manifest_no_type = json::parse(kOciManifest);
  manifest_no_type.erase("mediaType");
  json artifact = json::parse(kOciManifest);
  artifact["mediaType"] = "application/vnd.oci.artifact.manifest.v1+json";
  json both = json::parse(kOciManifest);
  both["manifests"] = json::array();

  struct C {
    std::string header;
    std::string body;
    std::string message;
  };
  for (
      const C& c : std::vector<C>{
          {kMediaTypeDockerSchema1Signed, kSchema1, "schema 1 manifests are not supported"},
          {kMediaTypeDockerSchema1, kSchema1, "re-push the image"},
          {"", kSchema1, "schema 1 manifests are not supported"},
          {"application/json",
           R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"})",
           "schema 1"},
          {kMediaTypeOciIndex, kOciManifest,
           "Content-Type \"application/vnd.oci.image.index.v1+json\" and the body's mediaType "
           "\"application/vnd.oci.image.manifest.v1+json\" disagree"},
          {kMediaTypeDockerManifest, kOciManifest, "disagree"},
          {kMediaTypeOciIndex, manifest_no_type.dump(),
           "is an image index but the body has the shape of an image manifest"},
          {"", artifact.dump(),
           "unsupported manifest media type \"application/vnd.oci.artifact.manifest.v1+json\""},
          {"application/vnd.oci.artifact.manifest.v1+json", kOciManifest,
           "unsupported manifest media type \"application/vnd.oci.artifact.manifest.v1+json\""},
          {kMediaTypeOciConfig, kOciConfig, "is an image config, not a manifest"},
          {"", kOciConfig, "cannot tell what it is"},
          {"", both.dump(), "has both"},
          {"", "<html>502 Bad Gateway</html>", "not valid JSON"},
          {"", "[]", "expected a JSON object, got array"},
          {"", "", "not valid JSON"},
          {"", R"({"mediaType": 7, "manifests": []})", "mediaType: expected a string, got number"},
          {"", std::string(kMaxManifestSize + 1, ' '), "more than the 4194304 allowed"},
          {"", std::string(10000, '[') + std::string(10000, ']'), "nested deeper than 64"},
      }) {
    SCOPED_TRACE(c.header + " " + c.body.substr(0, 80));
    absl::StatusOr<ManifestType> t = ClassifyManifest(c.header, c.body);
    ASSERT_FALSE(t.ok()) << t->media_type;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(), HasSubstr(c.message));
  }
}

// ---- hostile documents ------------------------------------------------------------------------

struct Hostile {
  std::string name;
  std::string body;
  std::string message;
};

// `kOciManifest` with `path` (a JSON pointer) set to `value`.
std::string ManifestWith(const std::string& pointer, const json& value) {
  json m = json::parse(kOciManifest);
  m[json::json_pointer(pointer)] = value;
  return m.dump();
}

std::string ManifestWithout(const std::string& pointer) {
  json m = json::parse(kOciManifest);
  json::json_pointer p(pointer);
  m[p.parent_pointer()].erase(p.back());
  return m.dump();
}

TEST(ParseManifestTest, RefusesHostileManifests) {
  json many_layers = json::parse(kOciManifest);
  for (int i = 0; i < 1001; ++i) many_layers["layers"].push_back(many_layers["layers"][0]);
  std::string deep = ManifestWith("/annotations", json::object());
  deep.insert(deep.find("\"annotations\":") + 14,
              std::string(100, '[') + std::string(100, ']') + ",\"z\":");

  for (const Hostile& h : std::vector<Hostile>{
           {"schema 1", kSchema1, "schema 1 manifests are not supported"},
           {"an index", kDockerList,
            "mediaType: \"application/vnd.docker.distribution.manifest."
            "list.v2+json\" is an image index, not an image manifest"},
           {"schemaVersion 3", ManifestWith("/schemaVersion", 3), "schemaVersion: 3 is not 2"},
           {"schemaVersion string", ManifestWith("/schemaVersion", "2"),
            "schemaVersion: expected an integer, got string"},
           {"no config", ManifestWithout("/config"), "config: missing"},
           {"config array", ManifestWith("/config", json::array()),
            "config: expected an object, got array"},
           {"no layers", ManifestWithout("/layers"), "layers: missing"},
           {"layers object", ManifestWith("/layers", json::object()),
            "layers: expected an array, got object"},
           {"layer string", ManifestWith("/layers/1", "sha256:abc"),
            "layers[1]: expected an object, got string"},
           {"negative size", ManifestWith("/layers/2/size", -1), "layers[2].size: -1 is negative"},
           {"float size", ManifestWith("/layers/0/size", 1.5),
            "layers[0].size: expected an integer, got number"},
           {"string size", ManifestWith("/layers/0/size", "800"),
            "layers[0].size: expected an integer, got string"},
           {"huge size", ManifestWith("/layers/0/size", 9223372036854775808ull),
            "layers[0].size: 9223372036854775808 is too large"},
           {"no size", ManifestWithout("/layers/0/size"), "layers[0].size: missing"},
           {"no digest", ManifestWithout("/config/digest"), "config.digest: missing"},
           {"bad digest", ManifestWith("/layers/3/digest", "sha256:xyz"),
            "layers[3].digest: invalid digest \"sha256:xyz\""},
           {"uppercase digest",
            ManifestWith("/layers/0/digest",
                         "sha256:9D122C4B9D58A95C1F1744F81705C4A95CDE3078C267"
                         "4202FC356B2152EF268B"),
            "64 lowercase hex digits"},
           {"digest number", ManifestWith("/config/digest", 5),
            "config.digest: expected a digest string, got number"},
           {"no media type", ManifestWithout("/layers/0/mediaType"),
            "layers[0].mediaType: missing"},
           {"media type garbage", ManifestWith("/layers/0/mediaType", "not a type"),
            "\"not a type\" is not a media type"},
           {"unknown layer type", ManifestWith("/layers/0/mediaType", "application/x-tar"),
            "layers[0].mediaType: unsupported layer media type \"application/x-tar\""},
           {"artifact config",
            ManifestWith("/config/mediaType", "application/vnd.cncf.helm.config.v1+json"),
            "config.mediaType: \"application/vnd.cncf.helm.config.v1+json\" is not an image "
            "config type"},
           {"layer as config",
            ManifestWith("/config/mediaType", "application/vnd.oci.image.layer.v1.tar"),
            "is not an image config type"},
           {"urls not strings", ManifestWith("/layers/0/urls", {1, 2}),
            "layers[0].urls[0]: expected a string, got number"},
           {"annotation value", ManifestWith("/annotations", {{"k", 5}}),
            "annotations[\"k\"]: expected a string, got number"},
           {"annotations array", ManifestWith("/annotations", {1}),
            "annotations: expected an object, got array"},
           {"data number", ManifestWith("/layers/0/data", 5),
            "layers[0].data: expected a base64 string, got number"},
           {"platform string", ManifestWith("/config/platform", "linux/amd64"),
            "config.platform: expected an object, got string"},
           {"platform without os", ManifestWith("/config/platform", {{"architecture", "amd64"}}),
            "config.platform.os: missing"},
           {"subject bad", ManifestWith("/subject", {{"mediaType", kMediaTypeOciManifest}}),
            "subject.digest: missing"},
           {"1001 layers", many_layers.dump(), "layers: 1005 entries, more than the 1000 allowed"},
           {"deep", deep, "nested deeper than 64 levels"},
           {"too big", ManifestWith("/annotations", {{"k", std::string(kMaxManifestSize, 'x')}}),
            "more than the 4194304 allowed"},
           {"not utf-8", ManifestWith("/annotations", json::object()).replace(1, 0, "\"\xff\":1,"),
            "not valid JSON"},
       }) {
    SCOPED_TRACE(h.name);
    absl::StatusOr<Manifest> m = ParseManifest(h.body);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(m.status().message(), HasSubstr(h.message));
    EXPECT_THAT(m.status().message(), HasSubstr("image manifest"));
  }
}

TEST(ParseManifestTest, NullMeansAbsent) {
  absl::StatusOr<Manifest> m = ParseManifest(ManifestWith("/annotations", nullptr));
  ASSERT_TRUE(m.ok()) << m.status();
  m = ParseManifest(ManifestWith("/layers/0/urls", nullptr));
  ASSERT_TRUE(m.ok()) << m.status();
  m = ParseManifest(ManifestWith("/mediaType", nullptr));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, "");
  m = ParseManifest(ManifestWith("/layers", json::array()));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->layers, IsEmpty());
  // An unknown digest algorithm keeps Digest::Parse's code.
  m = ParseManifest(ManifestWith("/layers/0/digest", "blake3:0123456789abcdef0123456789abcdef"));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(m.status().message(), HasSubstr("layers[0].digest"));
}

TEST(ParseIndexTest, RefusesHostileIndexes) {
  json big = json::parse(IndexOf({}));
  json entry = Entry("linux", "amd64", "", 1);
  for (int i = 0; i < 10001; ++i) big["manifests"].push_back(entry);
  ASSERT_LT(big.dump().size(), kMaxManifestSize);

  for (
      const Hostile& h : std::vector<Hostile>{
          {"a manifest", kOciManifest, "is an image manifest, not an image index"},
          {"schema 1", kSchema1, "schema 1"},
          {"no manifests", R"({"schemaVersion":2})", "manifests: missing"},
          {"manifests object", R"({"manifests":{}})", "manifests: expected an array, got object"},
          {"entry null", R"({"manifests":[null]})", "manifests[0]: expected an object, got null"},
          {"platform arch type",
           R"({"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
               std::string(kD1) + R"(","size":1,"platform":{"os":"linux","architecture":64}}]})",
           "manifests[0].platform.architecture: expected a string, got number"},
          {"os.features type",
           R"({"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
               std::string(kD1) +
               R"(","size":1,"platform":{"os":"linux","architecture":"amd64","os.features":"x"}}]})",
           "manifests[0].platform.os.features: expected an array, got string"},
          {"control character in platform", IndexOf({Entry("linux\n", "amd64", "", 1)}),
           "manifests[0].platform.os: \"linux\\n\" contains a control character"},
          {"10001 entries", big.dump(), "manifests: 10001 entries, more than the 10000 allowed"},
          {"deep", "{\"manifests\":" + std::string(65, '[') + std::string(65, ']') + "}",
           "nested deeper than 64 levels"},
      }) {
    SCOPED_TRACE(h.name);
    absl::StatusOr<Index> index = ParseIndex(h.body);
    ASSERT_FALSE(index.ok());
    EXPECT_THAT(index.status().message(), HasSubstr(h.message));
    EXPECT_THAT(index.status().message(), HasSubstr("image index"));
  }
  big["manifests"].erase(0);
  EXPECT_TRUE(ParseIndex(big.dump()).ok());
  // Entries of any media type are kept (SelectPlatform skips them).
  absl::StatusOr<Index> index =
      ParseIndex(IndexOf({Entry("linux", "amd64", "", 1, "application/vnd.example+json")}));
  ASSERT_TRUE(index.ok()) << index.status();
}

// `kOciConfig` with `pointer` set to `value`.
std::string ConfigWith(const std::string& pointer, const json& value) {
  json c = json::parse(kOciConfig);
  c[json::json_pointer(pointer)] = value;
  return c.dump();
}

TEST(ParseImageConfigTest, Fields) {
  json c = json::parse(kOciConfig);
  c["config"]["ExposedPorts"] = {{"80/tcp", json::object()}, {"53/udp", nullptr}};
  c["config"]["Volumes"] = {{"/data", json::object()}};
  c["config"]["Entrypoint"] = "/bin/sh -c";  // Docker's strslice: a string is one element
  c["config"]["Cmd"] = nullptr;
  c["config"]["Labels"]["empty"] = nullptr;
  c["config"]["Healthcheck"] = {{"Test", {"CMD", "true"}}};  // not ours, ignored
  c["variant"] = "v8";
  c["os.version"] = "6.1";
  c["os.features"] = {"x"};
  c["history"].push_back({{"created_by", "ENV X=1"}, {"empty_layer", true}});
  absl::StatusOr<ImageConfig> config = ParseImageConfig(c.dump());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->exposed_ports, ElementsAre("53/udp", "80/tcp"));
  EXPECT_THAT(config->volumes, ElementsAre("/data"));
  EXPECT_THAT(config->entrypoint, ElementsAre("/bin/sh -c"));
  EXPECT_THAT(config->cmd, IsEmpty());
  EXPECT_EQ(config->labels.at("empty"), "");
  EXPECT_EQ(config->variant, "v8");
  EXPECT_EQ(config->os_version, "6.1");
  EXPECT_THAT(config->os_features, ElementsAre("x"));
  ASSERT_EQ(config->history.size(), 5u);
  EXPECT_TRUE(config->history[4].empty_layer);
  EXPECT_EQ(config->raw["config"]["Healthcheck"]["Test"][0], "CMD");

  // A minimal config: only rootfs.
  config = ParseImageConfig(R"({"rootfs":{"type":"layers","diff_ids":[]}})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->diff_ids, IsEmpty());
  EXPECT_THAT(ChainIds(config->diff_ids), IsEmpty());
}

TEST(ParseImageConfigTest, RefusesHostileConfigs) {
  json many = json::array();
  for (int i = 0; i < 1001; ++i) many.push_back(kD1);
  json c = json::parse(kOciConfig);
  c.erase("rootfs");
  std::string no_rootfs = c.dump();

  for (const Hostile& h : std::vector<Hostile>{
           {"no rootfs", no_rootfs, "rootfs: missing"},
           {"rootfs type", ConfigWith("/rootfs/type", "tar"),
            "rootfs.type: \"tar\" is not \"layers\""},
           {"rootfs type missing", R"({"rootfs":{"diff_ids":[]}})", "rootfs.type: missing"},
           {"no diff_ids", R"({"rootfs":{"type":"layers"}})", "rootfs.diff_ids: missing"},
           {"bad diff_id", ConfigWith("/rootfs/diff_ids/2", "sha256:12"),
            "rootfs.diff_ids[2]: invalid digest \"sha256:12\""},
           {"diff_id number", ConfigWith("/rootfs/diff_ids/0", 1),
            "rootfs.diff_ids[0]: expected a digest string, got number"},
           {"1001 diff_ids", ConfigWith("/rootfs/diff_ids", many),
            "rootfs.diff_ids: 1001 entries, more than the 1000 allowed"},
           {"env string", ConfigWith("/config/Env", "A=1"),
            "config.Env: expected an array, got string"},
           {"env number", ConfigWith("/config/Env/1", 1),
            "config.Env[1]: expected a string, got number"},
           {"nul in cmd", ConfigWith("/config/Cmd/0", std::string("a\0b", 3)),
            "config.Cmd[0]: \"a\\u0000b\" contains a NUL character"},
           {"entrypoint object", ConfigWith("/config/Entrypoint", json::object()),
            "config.Entrypoint: expected an array of strings, got object"},
           {"user number", ConfigWith("/config/User", 1000),
            "config.User: expected a string, got number"},
           {"newline in workdir", ConfigWith("/config/WorkingDir", "/a\nb"),
            "config.WorkingDir: \"/a\\nb\" contains a control character"},
           {"labels array", ConfigWith("/config/Labels", {"a"}),
            "config.Labels: expected an object, got array"},
           {"label number", ConfigWith("/config/Labels/x", 1),
            "config.Labels[\"x\"]: expected a string, got number"},
           {"ports array", ConfigWith("/config/ExposedPorts", {"80/tcp"}),
            "config.ExposedPorts: expected an object, got array"},
           {"port value", ConfigWith("/config/ExposedPorts", {{"80/tcp", 1}}),
            "config.ExposedPorts[\"80/tcp\"]: expected an object, got number"},
           {"config string", ConfigWith("/config", "x"), "config: expected an object, got string"},
           {"history object", ConfigWith("/history", json::object()),
            "history: expected an array, got object"},
           {"history entry", ConfigWith("/history/0", 1),
            "history[0]: expected an object, got number"},
           {"empty_layer string", ConfigWith("/history/0/empty_layer", "true"),
            "history[0].empty_layer: expected a boolean, got string"},
           {"architecture number", ConfigWith("/architecture", 64),
            "architecture: expected a string, got number"},
           {"not an object", "\"config\"", "expected a JSON object, got string"},
           {"deep",
            ConfigWith("/x", json::object())
                .replace(1, 0, "\"y\":" + std::string(70, '[') + std::string(70, ']') + ","),
            "nested deeper than 64 levels"},
           {"too big", ConfigWith("/x", std::string(kMaxConfigSize, 'x')),
            "more than the 8388608 allowed"},
       }) {
    SCOPED_TRACE(h.name);
    absl::StatusOr<ImageConfig> config = ParseImageConfig(h.body);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(config.status().message(), HasSubstr(h.message));
    EXPECT_THAT(config.status().message(), HasSubstr("image config"));
  }
  // A config of 5 MiB (big labels) is fine: the limit is 8 MiB, not the manifests' 4.
  EXPECT_TRUE(ParseImageConfig(ConfigWith("/config/Labels/big", std::string(5 << 20, 'x'))).ok());
}

TEST(ChainIdsTest, TwoLayersByHand) {
  // a = sha256:aaa...a, b = sha256:bbb...b (64 hex digits each);
  //   printf 'sha256:%s sha256:%s' $(printf 'a%.0s' $(seq 64)) $(printf 'b%.0s' $(seq 64)) |
  //   sha256sum
  Digest a = *Digest::Parse("sha256:" + std::string(64, 'a'));
  Digest b = *Digest::Parse("sha256:" + std::string(64, 'b'));
  std::vector<Digest> chain = ChainIds({a, b});
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], a);
  EXPECT_EQ(chain[1].ToString(),
            "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c");
}

}  // namespace
}  // namespace berth::images

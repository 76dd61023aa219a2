#include "cri/config.h"

#include <string>

#include "gtest/gtest.h"

namespace berth::cri {
namespace {

TEST(Config, DefaultsWithoutFile) {
  absl::StatusOr<Config> c = LoadConfig("/nonexistent/berth.toml", /*required=*/false);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/var/lib/berth");
  EXPECT_EQ(c->state, "/run/berth");
  EXPECT_EQ(c->grpc.address, "unix:///run/berth/berth.sock");
  EXPECT_EQ(c->SocketPath(), "/run/berth/berth.sock");
  EXPECT_EQ(c->cni.conf_dir, "/etc/cni/net.d");
  EXPECT_EQ(c->shutdown_timeout, absl::Seconds(10));
  EXPECT_TRUE(c->source.empty());
}

TEST(Config, ExplicitMissingFileIsAnError) {
  EXPECT_FALSE(LoadConfig("/nonexistent/berth.toml", /*required=*/true).ok());
}

TEST(Config, ParsesEveryKey) {
  absl::StatusOr<Config> c = ParseConfig(R"(
root = "/srv/berth"
state = "/run/b2"
shutdown_timeout = "2500ms"
[grpc]
address = "unix:///tmp/b.sock"
gid = 1000
max_recv_message_size = 8388608
max_send_message_size = 4194304
[log]
level = "debug"
format = "json"
file = "/var/log/berthd.log"
[cni]
conf_dir = "/etc/cni/other"
bin_dirs = ["/opt/x"]
network_name = "pods"
plugin_timeout = "90s"
[streaming]
address = "0.0.0.0"
port = 10010
tls_cert_file = "/etc/berth/stream.crt"
tls_key_file = "/etc/berth/stream.key"
idle_timeout = "30m"
token_ttl = "10s"
[images]
max_concurrent_downloads = 8
pull_progress_timeout = "30s"
platform = "linux/arm64"
[registries."127.0.0.1:5000"]
insecure = true
mirrors = ["http://127.0.0.1:5001"]
)",
                                         "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/srv/berth");
  EXPECT_EQ(c->state, "/run/b2");
  EXPECT_EQ(c->shutdown_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(c->grpc.address, "unix:///tmp/b.sock");
  EXPECT_EQ(c->grpc.gid, 1000u);
  EXPECT_EQ(c->grpc.max_recv_message_size, 8388608);
  EXPECT_EQ(c->grpc.max_send_message_size, 4194304);
  EXPECT_EQ(c->log.level, spdlog::level::debug);
  EXPECT_EQ(c->log.format, log::Format::kJson);
  EXPECT_EQ(c->log.file, "/var/log/berthd.log");
  EXPECT_EQ(c->cni.conf_dir, "/etc/cni/other");
  EXPECT_EQ(c->cni.bin_dirs, std::vector<std::string>{"/opt/x"});
  EXPECT_EQ(c->cni.network_name, "pods");
  EXPECT_EQ(c->cni.plugin_timeout, absl::Seconds(90));
  EXPECT_EQ(c->streaming.address, "0.0.0.0");
  EXPECT_EQ(c->streaming.port, 10010);
  EXPECT_EQ(c->streaming.tls_cert_file, "/etc/berth/stream.crt");
  EXPECT_EQ(c->streaming.tls_key_file, "/etc/berth/stream.key");
  EXPECT_EQ(c->streaming.idle_timeout, absl::Minutes(30));
  EXPECT_EQ(c->streaming.token_ttl, absl::Seconds(10));
  EXPECT_EQ(c->images.max_concurrent_downloads, 8);
  EXPECT_EQ(c->images.pull_progress_timeout, absl::Seconds(30));
  EXPECT_EQ(c->images.platform, "linux/arm64");
  ASSERT_EQ(c->registries.count("127.0.0.1:5000"), 1u);
  EXPECT_TRUE(c->registries["127.0.0.1:5000"].insecure);
  EXPECT_EQ(c->registries["127.0.0.1:5000"].mirrors,
            std::vector<std::string>{"http://127.0.0.1:5001"});
  EXPECT_EQ(c->source, "t.toml");
}

struct BadCase {
  const char* toml;
  const char* expect;  // a substring of the error
};

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, NameFileKeyAndReason) {
  absl::StatusOr<Config> c = ParseConfig(GetParam().toml, "/etc/berth/berth.toml");
  ASSERT_FALSE(c.ok()) << GetParam().toml;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  std::string msg(c.status().message());
  EXPECT_NE(msg.find("/etc/berth/berth.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find(GetParam().expect), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrors,
    ::testing::Values(
        BadCase{"roots = \"/x\"", "key \"roots\": unknown key"},
        BadCase{"[grpc]\nadress = \"unix:///x\"", "key \"grpc.adress\": unknown key"},
        BadCase{"[grpc]\naddress = \"tcp://1.2.3.4:1\"", "must be unix:///absolute/path"},
        BadCase{"[grpc]\naddress = \"unix://relative\"", "must be unix:///absolute/path"},
        BadCase{"[grpc]\ngid = -1", "key \"grpc.gid\": -1 is out of range"},
        BadCase{"[grpc]\nmax_recv_message_size = \"big\"", "must be an integer"},
        BadCase{"root = \"relative\"", "key \"root\": \"relative\" is not an absolute path"},
        BadCase{"root = 5", "key \"root\": must be a string"},
        BadCase{"shutdown_timeout = \"soon\"", "key \"shutdown_timeout\""},
        BadCase{"shutdown_timeout = \"-1s\"", "not a positive duration"},
        BadCase{"[log]\nlevel = \"loud\"", "key \"log.level\": unknown log level"},
        BadCase{"[log]\nformat = \"xml\"", "key \"log.format\""},
        BadCase{"[log]\nfile = \"berthd.log\"", "key \"log.file\""},
        BadCase{"[cni]\nbin_dirs = []", "key \"cni.bin_dirs\": must not be empty"},
        BadCase{"[streaming]\nport = 70000", "out of range"},
        BadCase{"[streaming]\ntls_cert_file = \"/c.pem\"", "go together"},
        BadCase{"[streaming]\ntoken_ttl = \"0s\"", "not a positive duration"},
        BadCase{"[cni]\nbin_dirs = [\"rel\"]", "absolute path"},
        BadCase{"cni = 3", "key \"cni\": must be a table"},
        BadCase{"[cgroup]\nsystemd_cgroup = true", "systemd cgroup driver is not supported"},
        BadCase{"[images]\nmax_concurrent_downloads = 0", "out of range"},
        BadCase{"[registries.\"r:5000\"]\nmirrors = [\"ftp://x\"]", "http:// or https://"},
        BadCase{"[registries.\"r:5000\"]\ninsecur = true", "unknown key"},
        BadCase{"[cgroup]\nsystemd_cgroup = \"yes\"", "must be true or false"},
        BadCase{"[log\nlevel = 1", "/etc/berth/berth.toml:1"}));

TEST(Config, ErrorCarriesLineNumber) {
  absl::StatusOr<Config> c = ParseConfig("root = \"/a\"\n\n[log]\nlevel = \"nope\"\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("f.toml:4"), std::string::npos) << c.status();
}

TEST(Config, PackagedDefaultFileMatchesBuiltInDefaults) {
  // packaging/berth.toml documents every key with its default value.
  absl::StatusOr<Config> file = LoadConfig(BERTH_SOURCE_DIR "/packaging/berth.toml", true);
  ASSERT_TRUE(file.ok()) << file.status();
  nlohmann::json a = file->ToJson();
  nlohmann::json b = Config{}.ToJson();
  a.erase("config_file");
  b.erase("config_file");
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace berth::cri

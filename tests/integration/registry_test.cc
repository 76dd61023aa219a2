// The OCI distribution client against the fixture registry (tests/fixtures, the CTest fixture
// `registry`), extra docker-registry instances started here (an empty mirror, a mirror over
// the fixture's storage, htpasswd auth) and small fake registries served by this test over
// plain sockets (bearer tokens, dropped connections, 5xx, stalls, redirects).
#include "images/registry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/digest.h"
#include "gtest/gtest.h"
#include "images/manifest.h"
#include "images/reference.h"
#include "tests/integration/process.h"

namespace berth::images {
namespace {

using berth::testing::Child;
using berth::testing::RunCommand;
using berth::testing::TempDir;
using berth::testing::WriteFileOrDie;

// bcrypt of "berth-pass" (docker-registry's htpasswd accepts only bcrypt).
constexpr char kHtpasswd[] =
    "berth-user:$2b$05$JOY8IJclQhj0mPFAhvkM0OkTbktTOLPo2ceF2siaLfO8OWa2J7wK2\n";

std::string HttpCode(const std::string& url, const std::vector<std::string>& curl_args = {}) {
  std::vector<std::string> argv = {
      "/usr/bin/curl", "--noproxy",  "*", "-s", "-o", "/dev/null", "-w",
      "%{http_code}",  "--max-time", "5"};
  argv.insert(argv.end(), curl_args.begin(), curl_args.end());
  argv.push_back(url);
  return RunCommand(argv).out;
}

Reference Ref(const std::string& text) {
  auto r = ParseReference(text);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Reference{};
}

// How an ExtraRegistry serves https: its certificate and key, the CAs of client certificates
// it requires (none: no client certificates), and how curl reaches it while it starts.
struct RegistryTls {
  std::string cert_file, key_file, client_ca_file;
  std::vector<std::string> curl_args;  // "--cacert", ca.crt, [--cert, --key]
};

// A docker-registry of our own: `storage` (may be the fixture's, read-only use), optional
// htpasswd auth, optional https.
class ExtraRegistry {
 public:
  ExtraRegistry(const std::string& storage, bool htpasswd, const RegistryTls* tls = nullptr) {
    port_ = berth::testing::FreeLoopbackPort();
    std::string auth;
    if (htpasswd) {
      WriteFileOrDie(dir_ / "htpasswd", kHtpasswd);
      auth =
          absl::StrCat("auth:\n  htpasswd:\n    realm: berth\n    path: ", dir_ / "htpasswd", "\n");
    }
    std::string tls_yaml;
    if (tls != nullptr) {
      tls_yaml = absl::StrCat("  tls:\n    certificate: ", tls->cert_file,
                              "\n    key: ", tls->key_file, "\n");
      if (!tls->client_ca_file.empty()) {
        absl::StrAppend(&tls_yaml, "    clientcas:\n      - ", tls->client_ca_file, "\n");
      }
    }
    WriteFileOrDie(
        dir_ / "config.yml",
        absl::StrCat("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                     "    rootdirectory: ",
                     storage.empty() ? dir_ / "storage" : storage,
                     "\n  maintenance:\n    uploadpurging:\n      enabled: false\n",
                     "http:\n  secret: berth-test-not-a-secret\n  addr: 127.0.0.1:", port_, "\n",
                     tls_yaml, auth, "health:\n  storagedriver:\n    enabled: false\n"));
    child_.Start({"/usr/bin/docker-registry", "serve", dir_ / "config.yml"}, dir_ / "log");
    for (int i = 0; i < 300; ++i) {
      std::string code =
          HttpCode(absl::StrCat(tls != nullptr ? "https://" : "http://", host(), "/v2/"),
                   tls != nullptr ? tls->curl_args : std::vector<std::string>{});
      if (code == "200" || code == "401") {
        ready_ = true;
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  ~ExtraRegistry() { child_.Stop(SIGTERM, absl::Seconds(10)); }
  bool ready() const { return ready_; }
  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  std::string log() const { return berth::testing::ReadFileOrEmpty(dir_ / "log"); }

 private:
  TempDir dir_;
  Child child_;
  int port_ = 0;
  bool ready_ = false;
};

// ---- a fake HTTP server: one request per connection --------------------------------------

struct FakeRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string Header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

struct FakeResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  size_t send_bytes = std::string::npos;  // then close (a dropped connection) ...
  bool stall = false;                     // ... or stall until the server stops
};

class FakeServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;
  explicit FakeServer(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  std::vector<FakeRequest> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Serve(c);
      ::close(c);
    }
  }
  void Serve(int c) {
    std::string in;
    char buf[4096];
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (in.find("\r\n\r\n") == std::string::npos && absl::Now() < deadline && !stop_) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      ssize_t n = ::read(c, buf, sizeof(buf));
      if (n <= 0) return;
      in.append(buf, n);
    }
    FakeRequest req;
    std::vector<std::string> lines = absl::StrSplit(in.substr(0, in.find("\r\n\r\n")), "\r\n");
    if (lines.empty()) return;
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() < 2) return;
    req.method = first[0];
    req.target = first[1];
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      req.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      requests_.push_back(req);
    }
    FakeResponse r = handler_(req);
    std::string out = absl::StrCat("HTTP/1.1 ", r.status, " X\r\nContent-Length: ", r.body.size(),
                                   "\r\nConnection: close\r\n");
    for (const auto& [k, v] : r.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
    absl::StrAppend(&out, "\r\n");
    out += r.body.substr(0, r.send_bytes);
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += n;
    }
    while (r.stall && !stop_) absl::SleepFor(absl::Milliseconds(20));
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<FakeRequest> requests_;
};

// ---- the fixture registry ------------------------------------------------------------------

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = berth::testing::ReadEnvFile(BERTH_REGISTRY_ENV);
    digests_ = berth::testing::ReadEnvFile(BERTH_DIGESTS_ENV);
    host_ = env["BERTH_TEST_REGISTRY"];
    ASSERT_FALSE(host_.empty()) << BERTH_REGISTRY_ENV << " has no BERTH_TEST_REGISTRY";
    ASSERT_FALSE(digests_["DIGEST_busybox"].empty());
    options_.hosts[host_] = RegistryHost{host_, {}, true};
    options_.request_timeout = absl::Seconds(10);
  }

  // The busybox image's manifest, parsed.
  Manifest BusyboxManifest(RegistryClient& client) {
    auto m = client.FetchManifest(Ref(host_ + "/berth-test/busybox:latest"), {});
    EXPECT_TRUE(m.ok()) << m.status();
    auto parsed = ParseManifest(m.ok() ? m->body : "");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : Manifest{};
  }

  std::string host_;
  std::map<std::string, std::string> digests_;
  RegistryOptions options_;
};

TEST_F(RegistryTest, OciManifestByTagAndDigest) {
  RegistryClient client(options_);
  auto want = Digest::Parse(digests_["DIGEST_busybox"]);
  ASSERT_TRUE(want.ok());
  auto m = client.FetchManifest(Ref(host_ + "/berth-test/busybox:latest"), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, *want);
  EXPECT_EQ(Digest::Of(m->body), *want);
  EXPECT_EQ(m->kind, MediaKind::kManifest);
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->endpoint, "http://" + host_);

  auto by_digest = client.FetchManifest(Ref(host_ + "/berth-test/busybox@" + want->ToString()), {});
  ASSERT_TRUE(by_digest.ok()) << by_digest.status();
  EXPECT_EQ(by_digest->body, m->body);
  auto by_digest2 = client.FetchManifestByDigest(Ref(host_ + "/berth-test/busybox:v1"), *want, {});
  ASSERT_TRUE(by_digest2.ok()) << by_digest2.status();
  EXPECT_EQ(by_digest2->digest, *want);
}

TEST_F(RegistryTest, DockerSchema2Manifest) {
  RegistryClient client(options_);
  auto want = Digest::Parse(digests_["DIGEST_busybox_docker"]);
  ASSERT_TRUE(want.ok());
  auto m = client.FetchManifest(Ref(host_ + "/berth-test/busybox-docker:latest"), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, *want);
  EXPECT_EQ(m->kind, MediaKind::kManifest);
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
  auto d = client.FetchManifestByDigest(Ref(host_ + "/berth-test/busybox-docker"), *want, {});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->body, m->body);
}

TEST_F(RegistryTest, UnknownTagIsNotFound) {
  RegistryClient client(options_);
  auto m = client.FetchManifest(Ref(host_ + "/berth-test/busybox:no-such-tag"), {});
  ASSERT_EQ(m.status().code(), absl::StatusCode::kNotFound) << m.status();
  EXPECT_TRUE(absl::StrContains(m.status().message(), "berth-test/busybox:no-such-tag"))
      << m.status();
  EXPECT_TRUE(absl::StrContains(m.status().message(), "not found in " + host_)) << m.status();
  auto r = client.FetchManifest(Ref(host_ + "/berth-test/no-such-repo:latest"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(RegistryTest, BlobStreamedAndResumed) {
  RegistryClient client(options_);
  Manifest manifest = BusyboxManifest(client);
  ASSERT_EQ(manifest.layers.size(), 1u);
  const Descriptor& layer = manifest.layers[0];
  Reference repo = Ref(host_ + "/berth-test/busybox");

  Hasher whole;
  int resets = 0;
  absl::Status st = client.FetchBlob(
      repo, layer.digest, 0,
      [&](const char* p, size_t n) {
        whole.Update(p, n);
        return absl::OkStatus();
      },
      [&] { ++resets; }, {});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(whole.Finish(), layer.digest);
  EXPECT_EQ(static_cast<int64_t>(whole.bytes()), layer.size);
  EXPECT_EQ(resets, 0);

  // Half, stopped by the sink; then the rest from the offset.
  std::string data;
  int64_t half = layer.size / 2;
  st = client.FetchBlob(
      repo, layer.digest, 0,
      [&](const char* p, size_t n) {
        size_t take = std::min<size_t>(n, half - data.size());
        data.append(p, take);
        if (static_cast<int64_t>(data.size()) >= half) return absl::CancelledError("enough");
        return absl::OkStatus();
      },
      [&] { ++resets; }, {});
  ASSERT_EQ(st.code(), absl::StatusCode::kCancelled) << st;  // the sink's error, not retried
  ASSERT_EQ(static_cast<int64_t>(data.size()), half);
  st = client.FetchBlob(
      repo, layer.digest, half,
      [&](const char* p, size_t n) {
        data.append(p, n);
        return absl::OkStatus();
      },
      [&] {
        ++resets;
        data.clear();
      },
      {});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(resets, 0);  // docker-registry honours Range
  EXPECT_EQ(static_cast<int64_t>(data.size()), layer.size);
  EXPECT_EQ(Digest::Of(data), layer.digest);

  // The config blob too (small).
  std::string config;
  st = client.FetchBlob(repo, manifest.config.digest, 0,
                        [&](const char* p, size_t n) {
                          config.append(p, n);
                          return absl::OkStatus();
                        },
                        nullptr, {});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Digest::Of(config), manifest.config.digest);

  // A blob that is not there.
  st = client.FetchBlob(repo, Digest::Of("no such blob"), 0,
                        [](const char*, size_t) { return absl::OkStatus(); }, nullptr, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
}

TEST_F(RegistryTest, EmptyMirrorFallsBackToTheHost) {
  ExtraRegistry mirror("", false);
  ASSERT_TRUE(mirror.ready()) << mirror.log();
  // A mirror nobody listens on, then the empty one, then the host.
  options_.hosts[host_].mirrors = {
      absl::StrCat("http://127.0.0.1:", berth::testing::FreeLoopbackPort()),
      "http://" + mirror.host()};
  RegistryClient client(options_);
  absl::Time start = absl::Now();
  auto m = client.FetchManifest(Ref(host_ + "/berth-test/busybox:latest"), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->endpoint, "http://" + host_);
  EXPECT_EQ(m->digest.ToString(), digests_["DIGEST_busybox"]);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // no backoff for a definitive answer
  Manifest manifest = BusyboxManifest(client);
  ASSERT_FALSE(manifest.layers.empty());
  Hasher h;
  absl::Status st =
      client.FetchBlob(Ref(host_ + "/berth-test/busybox"), manifest.layers[0].digest, 0,
                       [&](const char* p, size_t n) {
                         h.Update(p, n);
                         return absl::OkStatus();
                       },
                       nullptr, {});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(h.Finish(), manifest.layers[0].digest);
  // Not found anywhere: the host's NotFound.
  auto missing = client.FetchManifest(Ref(host_ + "/berth-test/busybox:nope"), {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "not found in " + host_))
      << missing.status();
}

TEST_F(RegistryTest, MirrorServesWhenTheHostIsDown) {
  ExtraRegistry mirror(BERTH_REGISTRY_STORAGE, false);
  ASSERT_TRUE(mirror.ready()) << mirror.log();
  std::string down = absl::StrCat("127.0.0.1:", berth::testing::FreeLoopbackPort());
  options_.hosts[down] = RegistryHost{down, {"http://" + mirror.host()}, true};
  options_.max_attempts = 2;
  RegistryClient client(options_);
  auto m = client.FetchManifest(Ref(down + "/berth-test/busybox:latest"), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->endpoint, "http://" + mirror.host());
  EXPECT_EQ(m->digest.ToString(), digests_["DIGEST_busybox"]);
}

TEST_F(RegistryTest, HostDownIsUnavailable) {
  std::string down = absl::StrCat("127.0.0.1:", berth::testing::FreeLoopbackPort());
  options_.max_attempts = 2;
  RegistryClient client(options_);
  auto m = client.FetchManifest(Ref(down + "/berth-test/busybox:latest"), {});
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable) << m.status();
  EXPECT_TRUE(absl::StrContains(m.status().message(), down)) << m.status();
}

TEST_F(RegistryTest, BasicAuthWithHtpasswd) {
  ExtraRegistry reg(BERTH_REGISTRY_STORAGE, true);
  ASSERT_TRUE(reg.ready()) << reg.log();
  RegistryClient client(options_);  // 127.0.0.1: plain http without a host entry
  Reference ref = Ref(reg.host() + "/berth-test/busybox:latest");

  Credentials right{"berth-user", "berth-pass", "", ""};
  auto m = client.FetchManifest(ref, right);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest.ToString(), digests_["DIGEST_busybox"]);

  auto wrong = client.FetchManifest(ref, Credentials{"berth-user", "wrong-secret-42", "", ""});
  ASSERT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated) << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), reg.host())) << wrong.status();
  EXPECT_FALSE(absl::StrContains(wrong.status().message(), "wrong-secret-42")) << wrong.status();
  EXPECT_FALSE(
      absl::StrContains(wrong.status().message(), absl::Base64Escape("berth-user:wrong-secret-42")))
      << wrong.status();

  auto none = client.FetchManifest(ref, {});
  ASSERT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated) << none.status();
  EXPECT_TRUE(absl::StrContains(none.status().message(), "none were given")) << none.status();

  // The CRI's "auth" field, and docker's config.json.
  auto decoded =
      CredentialsFromAuthConfig("", "", absl::Base64Escape("berth-user:berth-pass"), "", "");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(client.FetchManifest(ref, *decoded).ok());
  EXPECT_EQ(CredentialsFromAuthConfig("", "", "%%%", "", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  TempDir dir;
  WriteFileOrDie(dir / "config.json",
                 absl::StrCat(R"({"auths": {")", reg.host(), R"(": {"auth": ")",
                              absl::Base64Escape("berth-user:berth-pass"), R"("}}})"));
  RegistryOptions with_file = options_;
  with_file.auth_file = dir / "config.json";
  RegistryClient file_client(with_file);
  auto via_file = file_client.FetchManifest(ref, {});
  EXPECT_TRUE(via_file.ok()) << via_file.status();

  // Blobs with the same credentials.
  auto parsed = ParseManifest(m->body);
  ASSERT_TRUE(parsed.ok());
  Hasher h;
  absl::Status st = client.FetchBlob(
      ref, parsed->config.digest, 0,
      [&](const char* p, size_t n) {
        h.Update(p, n);
        return absl::OkStatus();
      },
      nullptr, right);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(h.Finish(), parsed->config.digest);
}

// ---- TLS: docker-registry over https with certificates made here -------------------------

// A CA, a server certificate for IP:127.0.0.1 signed by it, and a second CA (of clients) with a
// client certificate, made with the openssl CLI. Also a client certificate of the server CA,
// which a registry trusting only the client CA must refuse.
class TestPki {
 public:
  TestPki() {
    Run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", dir_ / "ca.key", "-out", ca(), "-days", "2", "-subj", "/CN=berth test CA"});
    Run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", dir_ / "client-ca.key", "-out", client_ca(), "-days", "2", "-subj",
         "/CN=berth test client CA"});
    WriteFileOrDie(dir_ / "server.ext",
                   "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=CA:FALSE\n");
    WriteFileOrDie(dir_ / "client.ext", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
    Issue("server", "/CN=127.0.0.1", "ca", "server.ext", "1001");
    Issue("client", "/CN=berth test client", "client-ca", "client.ext", "2001");
    Issue("stranger", "/CN=berth test stranger", "ca", "client.ext", "1002");
  }
  const std::string& error() const { return error_; }
  std::string ca() const { return dir_ / "ca.crt"; }
  std::string client_ca() const { return dir_ / "client-ca.crt"; }
  std::string crt(const std::string& name) const { return dir_ / (name + ".crt"); }
  std::string key(const std::string& name) const { return dir_ / (name + ".key"); }
  // How the registry serves: the server certificate, client certificates when asked for.
  RegistryTls Serving(bool require_client_certs) const {
    RegistryTls t{crt("server"), key("server"), "", {"--cacert", ca()}};
    if (require_client_certs) {
      t.client_ca_file = client_ca();
      t.curl_args.insert(t.curl_args.end(), {"--cert", crt("client"), "--key", key("client")});
    }
    return t;
  }

 private:
  void Run(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    auto r = RunCommand(args, absl::Seconds(30));
    if (r.exit_code != 0 && error_.empty()) {
      error_ = absl::StrCat(absl::StrJoin(args, " "), " failed: ", r.err);
    }
  }
  void Issue(const std::string& name, const std::string& subject, const std::string& ca,
             const std::string& ext, const std::string& serial) {
    Run({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         key(name), "-out", dir_ / (name + ".csr"), "-subj", subject});
    Run({"x509", "-req", "-in", dir_ / (name + ".csr"), "-CA", dir_ / (ca + ".crt"), "-CAkey",
         dir_ / (ca + ".key"), "-set_serial", serial, "-days", "2", "-extfile", dir_ / ext, "-out",
         crt(name)});
  }

  TempDir dir_;
  std::string error_;
};

// Lines of a registry log about failed TLS handshakes (Go's http server logs each one).
int HandshakeErrors(const std::string& log) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "TLS handshake error")) ++n;
  }
  return n;
}

class RegistryTlsTest : public RegistryTest {
 protected:
  // The busybox manifest and its layer over `client`; the manifest's endpoint must be `want`.
  void PullsBusybox(RegistryClient& client, const std::string& host, const std::string& want) {
    auto m = client.FetchManifest(Ref(host + "/berth-test/busybox:latest"), {});
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->endpoint, want);
    EXPECT_EQ(m->digest.ToString(), digests_["DIGEST_busybox"]);
    auto parsed = ParseManifest(m->body);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_FALSE(parsed->layers.empty());
    const Descriptor& layer = parsed->layers[0];
    Hasher h;
    absl::Status st = client.FetchBlob(Ref(host + "/berth-test/busybox"), layer.digest, 0,
                                       [&](const char* p, size_t n) {
                                         h.Update(p, n);
                                         return absl::OkStatus();
                                       },
                                       nullptr, {});
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(static_cast<int64_t>(h.bytes()), layer.size);
    EXPECT_EQ(h.Finish(), layer.digest);
  }

  // A pull from `host` with `cfg` that must fail at once as a TLS problem naming the host.
  void FailsAsTls(const RegistryHost& cfg, const std::string& host, const std::string& detail,
                  absl::Duration within = absl::Seconds(1)) {
    options_.hosts[host] = cfg;
    RegistryClient client(options_);
    absl::Time start = absl::Now();
    auto m = client.FetchManifest(Ref(host + "/berth-test/busybox:latest"), {});
    absl::Duration took = absl::Now() - start;
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable) << m.status();
    EXPECT_TRUE(absl::StrContains(m.status().message(), host)) << m.status();
    EXPECT_TRUE(absl::StrContains(m.status().message(), "TLS")) << m.status();
    EXPECT_TRUE(absl::StrContains(m.status().message(), detail)) << m.status();
    EXPECT_LT(took, within) << m.status();  // no retries with backoff (or only a few)
    absl::Status st =
        client.FetchBlob(Ref(host + "/berth-test/busybox"), Digest::Of("x"), 0,
                         [](const char*, size_t) { return absl::OkStatus(); }, nullptr, {});
    EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
    EXPECT_TRUE(absl::StrContains(st.message(), "TLS")) << st;
  }
};

TEST_F(RegistryTlsTest, HttpsWithThePrivateCa) {
  TestPki pki;
  ASSERT_EQ(pki.error(), "");
  RegistryTls tls = pki.Serving(false);
  ExtraRegistry reg(BERTH_REGISTRY_STORAGE, false, &tls);
  ASSERT_TRUE(reg.ready()) << reg.log();

  RegistryHost cfg{reg.host(), {}, false};
  cfg.ca_file = pki.ca();
  options_.hosts[reg.host()] = cfg;
  RegistryClient client(options_);
  PullsBusybox(client, reg.host(), "https://" + reg.host());
  EXPECT_EQ(HandshakeErrors(reg.log()), 0) << reg.log();
}

TEST_F(RegistryTlsTest, UntrustedCertificateFailsAtOnce) {
  TestPki pki;
  ASSERT_EQ(pki.error(), "");
  RegistryTls tls = pki.Serving(false);
  ExtraRegistry reg(BERTH_REGISTRY_STORAGE, false, &tls);
  ASSERT_TRUE(reg.ready()) << reg.log();
  int before = HandshakeErrors(reg.log());

  // No CA: the system's CAs do not know ours.
  FailsAsTls(RegistryHost{reg.host(), {}, false}, reg.host(), "certificate");
  // Exactly one handshake per request (manifest, blob): no retry storm. The registry logs a
  // failed handshake from its own goroutine, a moment after the client gave up: wait for the
  // two lines, then make sure no third one follows.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (HandshakeErrors(reg.log()) - before < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(HandshakeErrors(reg.log()) - before, 2) << reg.log();

  // Another CA.
  RegistryHost other{reg.host(), {}, false};
  other.ca_file = pki.client_ca();
  FailsAsTls(other, reg.host(), "certificate");
  // A CA file that is not there.
  RegistryHost missing{reg.host(), {}, false};
  missing.ca_file = pki.ca() + ".missing";
  FailsAsTls(missing, reg.host(), ".missing");
  // The right CA, the wrong name: the certificate is for IP:127.0.0.1 only.
  std::string by_name = absl::StrCat("localhost:", reg.host().substr(reg.host().rfind(':') + 1));
  RegistryHost named{by_name, {}, false};
  named.ca_file = pki.ca();
  FailsAsTls(named, by_name, "localhost");
}

TEST_F(RegistryTlsTest, ClientCertificates) {
  TestPki pki;
  ASSERT_EQ(pki.error(), "");
  RegistryTls tls = pki.Serving(true);
  ExtraRegistry reg(BERTH_REGISTRY_STORAGE, false, &tls);
  ASSERT_TRUE(reg.ready()) << reg.log();

  RegistryHost with{reg.host(), {}, false};
  with.ca_file = pki.ca();
  with.cert_file = pki.crt("client");
  with.key_file = pki.key("client");
  options_.hosts[reg.host()] = with;
  {
    RegistryClient client(options_);
    PullsBusybox(client, reg.host(), "https://" + reg.host());
  }

  // Without a client certificate; with one the registry does not trust.
  RegistryHost without{reg.host(), {}, false};
  without.ca_file = pki.ca();
  // With TLS 1.3 the server refuses the certificate after the client finished its handshake:
  // the client sees the alert (not retried) or, when its request crossed the server's close, a
  // reset (retried: it might be transient). Either way a TLS error naming the cause, soon.
  FailsAsTls(without, reg.host(), "requires a client certificate", absl::Seconds(5));
  RegistryHost stranger = with;
  stranger.cert_file = pki.crt("stranger");
  stranger.key_file = pki.key("stranger");
  FailsAsTls(stranger, reg.host(), "refused the client certificate", absl::Seconds(5));
  // A key that does not belong to the certificate; a certificate file that is not there.
  RegistryHost mismatched = with;
  mismatched.key_file = pki.key("stranger");
  FailsAsTls(mismatched, reg.host(), "");
  RegistryHost missing = with;
  missing.cert_file = pki.crt("client") + ".missing";
  FailsAsTls(missing, reg.host(), "");
}

// insecure = true is plain http (registry.h), as for containerd's plain-http hosts, not https
// without verification: against an https-only registry it fails with Go's "Client sent an
// HTTP request to an HTTPS server" (HTTP 400), at once.
TEST_F(RegistryTlsTest, InsecureIsPlainHttp) {
  TestPki pki;
  ASSERT_EQ(pki.error(), "");
  RegistryTls tls = pki.Serving(false);
  ExtraRegistry reg(BERTH_REGISTRY_STORAGE, false, &tls);
  ASSERT_TRUE(reg.ready()) << reg.log();

  RegistryHost insecure{reg.host(), {}, true};
  insecure.ca_file = pki.ca();  // unused: no TLS at all
  options_.hosts[reg.host()] = insecure;
  RegistryClient client(options_);
  absl::Time start = absl::Now();
  auto m = client.FetchManifest(Ref(reg.host() + "/berth-test/busybox:latest"), {});
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::StrContains(m.status().message(), "http://" + reg.host())) << m.status();
  EXPECT_TRUE(absl::StrContains(m.status().message(), "HTTP 400")) << m.status();
  EXPECT_TRUE(absl::StrContains(m.status().message(), "https")) << m.status();

  // Loopback hosts without a configuration are plain http too.
  options_.hosts.erase(reg.host());
  RegistryClient unconfigured(options_);
  auto u = unconfigured.FetchManifest(Ref(reg.host() + "/berth-test/busybox:latest"), {});
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(absl::StrContains(u.status().message(), "http://" + reg.host())) << u.status();

  // The same registry over https with the CA, for contrast.
  RegistryHost secure{reg.host(), {}, false};
  secure.ca_file = pki.ca();
  options_.hosts[reg.host()] = secure;
  RegistryClient client2(options_);
  PullsBusybox(client2, reg.host(), "https://" + reg.host());
}

// ---- fake registries ---------------------------------------------------------------------

constexpr char kIndex[] =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
    R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,)"
    R"("digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000",)"
    R"("platform":{"os":"linux","architecture":"amd64"}}]})";

TEST(FakeRegistry, BearerTokenFlow) {
  std::atomic<int> token_requests{0};
  std::string port_holder;
  FakeServer server([&](const FakeRequest& req) {
    FakeResponse r;
    if (absl::StartsWith(req.target, "/token?")) {
      ++token_requests;
      if (req.Header("authorization") != "Basic " + absl::Base64Escape("alice:s3cret-pw")) {
        r.status = 401;
        return r;
      }
      EXPECT_TRUE(absl::StrContains(req.target, "service=x")) << req.target;
      EXPECT_TRUE(absl::StrContains(req.target, "scope=repository%3Aa%3Apull")) << req.target;
      r.body = R"({"token":"tok-123-secret","expires_in":300})";
      return r;
    }
    if (req.Header("authorization") != "Bearer tok-123-secret") {
      r.status = 401;
      r.headers.push_back(
          {"WWW-Authenticate",
           absl::StrCat(R"(Bearer realm="http://)", port_holder,
                        R"(/token",service="x",scope="repository:a:pull",error="invalid_token")")});
      r.body = R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";
      return r;
    }
    r.headers.push_back({"Content-Type", "application/vnd.oci.image.index.v1+json"});
    r.headers.push_back({"Docker-Content-Digest", Digest::Of(kIndex).ToString()});
    r.body = kIndex;
    return r;
  });
  port_holder = server.host();
  RegistryOptions options;
  RegistryClient client(options);
  Reference ref = Ref(server.host() + "/a:latest");

  auto m = client.FetchManifest(ref, Credentials{"alice", "s3cret-pw", "", ""});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->kind, MediaKind::kIndex);
  EXPECT_EQ(m->media_type, kMediaTypeOciIndex);
  EXPECT_EQ(m->digest, Digest::Of(kIndex));
  EXPECT_EQ(token_requests.load(), 1);
  // The token is cached: the next request goes straight with it.
  size_t before = server.requests().size();
  ASSERT_TRUE(client.FetchManifest(ref, Credentials{"alice", "s3cret-pw", "", ""}).ok());
  EXPECT_EQ(token_requests.load(), 1);
  EXPECT_EQ(server.requests().size(), before + 1);

  // Other credentials do not get alice's token; wrong ones fail without showing secrets.
  auto bad = client.FetchManifest(ref, Credentials{"alice", "not-the-pw", "", ""});
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated) << bad.status();
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "rejected the credentials"))
      << bad.status();
  for (const char* secret : {"not-the-pw", "s3cret-pw", "tok-123-secret"}) {
    EXPECT_FALSE(absl::StrContains(bad.status().message(), secret)) << bad.status();
  }
  auto anon = client.FetchManifest(ref, {});
  EXPECT_EQ(anon.status().code(), absl::StatusCode::kUnauthenticated) << anon.status();

  // A registry token is sent as is.
  RegistryClient fresh(options);
  auto direct = fresh.FetchManifest(ref, Credentials{"", "", "", "tok-123-secret"});
  ASSERT_TRUE(direct.ok()) << direct.status();
  auto rejected = fresh.FetchManifest(ref, Credentials{"", "", "", "other-token-xyz"});
  ASSERT_EQ(rejected.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(absl::StrContains(rejected.status().message(), "other-token-xyz"));
}

TEST(FakeRegistry, ManifestDigestChecks) {
  FakeServer server([&](const FakeRequest& req) {
    FakeResponse r;
    r.headers.push_back({"Content-Type", "application/vnd.oci.image.index.v1+json"});
    r.body = kIndex;
    if (absl::StrContains(req.target, "/bad-header/")) {
      r.headers.push_back({"Docker-Content-Digest", Digest::Of("other").ToString()});
    }
    return r;
  });
  RegistryClient client(RegistryOptions{});
  auto ok = client.FetchManifest(Ref(server.host() + "/good:latest"), {});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->digest, Digest::Of(kIndex));  // no header: the body's sha256
  auto bad = client.FetchManifest(Ref(server.host() + "/bad-header:latest"), {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  auto wrong = client.FetchManifest(
      Ref(server.host() + "/good@" + Digest::Of("something else").ToString()), {});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss) << wrong.status();
}

std::string RandomBlob(size_t n) {
  std::string s(n, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

int64_t RangeStart(const FakeRequest& req) {
  std::string r = req.Header("range");
  int64_t start = 0;
  if (absl::StartsWith(r, "bytes=")) start = std::stoll(r.substr(6));
  return start;
}

TEST(FakeRegistry, DroppedConnectionResumesWithRange) {
  const std::string blob = RandomBlob(1 << 20);
  std::atomic<int> calls{0};
  FakeServer server([&](const FakeRequest& req) {
    FakeResponse r;
    int64_t start = RangeStart(req);
    if (calls++ == 0) {
      r.body = blob;
      r.send_bytes = 300000;  // then the connection drops
      return r;
    }
    r.status = 206;
    r.headers.push_back(
        {"Content-Range", absl::StrCat("bytes ", start, "-", blob.size() - 1, "/", blob.size())});
    r.body = blob.substr(start);
    return r;
  });
  RegistryClient client(RegistryOptions{});
  Hasher h;
  int resets = 0;
  absl::Status st = client.FetchBlob(
      Ref(server.host() + "/a"), Digest::Of(blob), 0,
      [&](const char* p, size_t n) {
        h.Update(p, n);
        return absl::OkStatus();
      },
      [&] { ++resets; }, {});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(h.Finish(), Digest::Of(blob));
  EXPECT_EQ(resets, 0);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].Header("range"), "");
  EXPECT_EQ(reqs[1].Header("range"), "bytes=300000-");
}

TEST(FakeRegistry, RangeIgnoredResets) {
  const std::string blob = RandomBlob(200000);
  FakeServer server([&](const FakeRequest&) {
    FakeResponse r;
    r.body = blob;  // always the whole blob, 200
    return r;
  });
  RegistryClient client(RegistryOptions{});
  std::string got = blob.substr(0, 1000);  // what an earlier attempt stored
  int resets = 0;
  absl::Status st = client.FetchBlob(
      Ref(server.host() + "/a"), Digest::Of(blob), 1000,
      [&](const char* p, size_t n) {
        got.append(p, n);
        return absl::OkStatus();
      },
      [&] {
        ++resets;
        got.clear();
      },
      {});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(Digest::Of(got), Digest::Of(blob));
}

TEST(FakeRegistry, ServerErrorsAreRetried) {
  std::atomic<int> calls{0};
  FakeServer server([&](const FakeRequest&) {
    FakeResponse r;
    if (calls++ < 2) {
      r.status = 503;
      return r;
    }
    r.headers.push_back({"Content-Type", "application/vnd.oci.image.index.v1+json"});
    r.body = kIndex;
    return r;
  });
  RegistryClient client(RegistryOptions{});
  auto m = client.FetchManifest(Ref(server.host() + "/a:latest"), {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(calls.load(), 3);

  // Always failing: gives up after max_attempts, Unavailable naming the status.
  std::atomic<int> fails{0};
  FakeServer broken([&](const FakeRequest&) {
    ++fails;
    FakeResponse r;
    r.status = 500;
    return r;
  });
  RegistryOptions o;
  o.max_attempts = 3;
  RegistryClient c2(o);
  auto f = c2.FetchManifest(Ref(broken.host() + "/a:latest"), {});
  EXPECT_EQ(f.status().code(), absl::StatusCode::kUnavailable) << f.status();
  EXPECT_TRUE(absl::StrContains(f.status().message(), "HTTP 500")) << f.status();
  EXPECT_EQ(fails.load(), 3);
}

TEST(FakeRegistry, StalledBlobHitsTheProgressTimeout) {
  const std::string blob = RandomBlob(100000);
  FakeServer server([&](const FakeRequest&) {
    FakeResponse r;
    r.body = blob;
    r.send_bytes = 1000;
    r.stall = true;
    return r;
  });
  RegistryOptions o;
  o.progress_timeout = absl::Seconds(1);
  RegistryClient client(o);
  absl::Time start = absl::Now();
  absl::Status st =
      client.FetchBlob(Ref(server.host() + "/a"), Digest::Of(blob), 0,
                       [](const char*, size_t) { return absl::OkStatus(); }, nullptr, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "progress timeout")) << st;
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
}

TEST(FakeRegistry, RedirectDoesNotForwardAuthorization) {
  const std::string blob = RandomBlob(5000);
  FakeServer storage([&](const FakeRequest&) {
    FakeResponse r;
    r.body = blob;
    return r;
  });
  FakeServer registry([&](const FakeRequest& req) {
    FakeResponse r;
    if (req.Header("authorization") != "Bearer reg-token-777") {
      r.status = 401;
      return r;
    }
    r.status = 307;
    r.headers.push_back(
        {"Location", absl::StrCat("http://", storage.host(), "/blob?X-Signature=abc")});
    return r;
  });
  RegistryClient client(RegistryOptions{});
  std::string got;
  absl::Status st = client.FetchBlob(
      Ref(registry.host() + "/a"), Digest::Of(blob), 0,
      [&](const char* p, size_t n) {
        got.append(p, n);
        return absl::OkStatus();
      },
      nullptr, Credentials{"", "", "", "reg-token-777"});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(got, blob);
  auto reqs = storage.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].Header("authorization"), "");
  EXPECT_EQ(reqs[0].target, "/blob?X-Signature=abc");
}

TEST(WwwAuthenticate, Parses) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.example/token",service="reg, \"x\"",scope="repository:a:pull", Basic realm=b)");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params["realm"], "https://auth.example/token");
  EXPECT_EQ(c[0].params["service"], "reg, \"x\"");
  EXPECT_EQ(c[0].params["scope"], "repository:a:pull");
  EXPECT_EQ(c[1].scheme, "basic");
  EXPECT_EQ(c[1].params["realm"], "b");
  EXPECT_TRUE(ParseWwwAuthenticate("").empty());
  auto unterminated = ParseWwwAuthenticate(R"(Bearer realm="x)");
  ASSERT_EQ(unterminated.size(), 1u);
  EXPECT_TRUE(unterminated[0].params.empty());
}

}  // namespace
}  // namespace berth::images

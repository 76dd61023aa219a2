// The OCI distribution client: manifests and blobs from registries (distribution spec v1.1,
// Docker registry API v2) over libcurl, with mirrors, retries, resumable blob downloads and the
// registry auth flows (anonymous, Basic, Bearer tokens from a token server, a registry token).
//
// Endpoints of a host: its mirrors in order, then the host itself ("docker.io" is served by
// registry-1.docker.io). A mirror's 404, a connection error and a 5xx move on to the next
// endpoint; when every endpoint failed transiently the round is retried with backoff, up to
// max_attempts rounds. Hosts are https unless marked insecure (then plain http); loopback hosts
// without a configuration (127.0.0.0/8, ::1, localhost) are plain http, as Docker treats them.
//
// Secrets (passwords, identity and registry tokens, bearer tokens, the "auth" of config.json)
// never appear in logs or status messages; URLs in messages lose their query and userinfo
// (redirects to blob storage carry signatures there).
//
// Thread-safe: one client serves concurrent pulls (connections, DNS and TLS sessions are
// shared; bearer tokens are cached per host, scope and credentials).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/digest.h"
#include "images/manifest.h"
#include "images/reference.h"

namespace berth::images {

struct RegistryHost {
  std::string host;                  // "127.0.0.1:5000", "docker.io"
  std::vector<std::string> mirrors;  // endpoints tried first, in order: "http://127.0.0.1:5001"
                                     // (without a scheme: https, or http when insecure)
  bool insecure = false;             // plain http
  std::string ca_file, cert_file, key_file;  // optional TLS material (PEM files)
};

// What PullImageRequest.auth carries (the CRI AuthConfig), decoded.
struct Credentials {
  std::string username, password, identity_token, registry_token;
  bool empty() const {
    return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
  }
};

// Credentials from a CRI AuthConfig: `auth` (base64 "user:pass", as in docker's config.json)
// wins over username/password when set. A malformed `auth` is InvalidArgument (the message
// does not show it).
absl::StatusOr<Credentials> CredentialsFromAuthConfig(absl::string_view username,
                                                      absl::string_view password,
                                                      absl::string_view auth,
                                                      absl::string_view identity_token,
                                                      absl::string_view registry_token);

// Decodes a base64 "user:pass" (padding optional). InvalidArgument without showing the input.
absl::StatusOr<Credentials> DecodeBasicAuth(absl::string_view auth);

// The credentials docker's config.json at `path` has for `host` ("auths" keyed by host,
// "https://host", "http://host" or, for docker.io, "https://index.docker.io/v1/"): "auth"
// (base64 user:pass) or "username"/"password", "identitytoken", "registrytoken". A missing file
// or host is empty credentials; an unreadable or malformed file is an error naming the path.
absl::StatusOr<Credentials> CredentialsFromAuthFile(const std::string& path,
                                                    absl::string_view host);

// One challenge of a WWW-Authenticate header: `Bearer realm="https://auth.example/token",
// service="registry",scope="repository:a:pull"` or `Basic realm="x"`. The scheme is
// lowercased, so are parameter names; quoted values may contain commas and \-escapes.
struct AuthChallenge {
  std::string scheme;  // "bearer", "basic"
  std::map<std::string, std::string> params;
};
// Every challenge of the header value (several may be comma-separated). Unparsable parts end
// the list; an empty result means nothing usable.
std::vector<AuthChallenge> ParseWwwAuthenticate(absl::string_view header);

struct RegistryOptions {
  std::map<std::string, RegistryHost> hosts;            // by RegistryHost::host
  absl::Duration request_timeout = absl::Seconds(30);   // per request, except blob bodies
  absl::Duration progress_timeout = absl::Seconds(60);  // a blob body without bytes this long
                                                        // is cancelled (DeadlineExceeded)
  int max_attempts = 4;  // rounds over the endpoints on connection errors, 429 and 5xx
  std::string user_agent = "berth/0.1.0";
  std::string auth_file;  // docker config.json, used when no credentials are passed
};

struct FetchedManifest {
  std::string body;
  MediaKind kind = MediaKind::kUnknown;  // kIndex or kManifest (ClassifyManifest)
  std::string media_type;                // as ClassifyManifest names it
  Digest digest = Digest::Of("");        // of the body, verified
  std::string endpoint;                  // where it came from: "http://127.0.0.1:5001"
};

class RegistryClient {
 public:
  explicit RegistryClient(RegistryOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // GETs the manifest for ref (its digest when it has one, else its tag), accepting the OCI
  // and Docker index and manifest types. The body is at most kMaxManifestSize; its digest is
  // checked against ref.digest when pulling by digest and against Docker-Content-Digest when
  // the registry sends one (DataLoss on a mismatch), and it must classify as an index or a
  // manifest. A 404 is NotFound "image <ref> not found in <host>".
  absl::StatusOr<FetchedManifest> FetchManifest(const Reference& ref, const Credentials& creds);
  // The same for `d` in the repository of `repo` (its tag and digest are ignored).
  absl::StatusOr<FetchedManifest> FetchManifestByDigest(const Reference& repo, const Digest& d,
                                                        const Credentials& creds);

  // Streams the blob `digest` of the repository of `repo` into `sink` (chunks as they arrive),
  // starting at byte `offset` (HTTP Range). When the server ignores the Range and sends the
  // whole blob, `reset()` is called first so that the sink starts over at 0. Redirects are
  // followed (the registry's Authorization is not sent to another origin). A dropped
  // connection resumes from the current offset; a body without bytes for progress_timeout is
  // DeadlineExceeded. An error returned by `sink` ends the download with that error. The
  // caller verifies the digest (it hashes what it stores).
  absl::Status FetchBlob(const Reference& repo, const Digest& digest, int64_t offset,
                         const std::function<absl::Status(const char*, size_t)>& sink,
                         const std::function<void()>& reset, const Credentials& creds);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::images

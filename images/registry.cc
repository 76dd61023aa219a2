#include "images/registry.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/status.h"
#include "nlohmann/json.hpp"

namespace berth::images {

// ---- credentials ----------------------------------------------------------------------------

absl::StatusOr<Credentials> DecodeBasicAuth(absl::string_view auth) {
  std::string text(absl::StripAsciiWhitespace(auth));
  while (text.size() % 4 != 0) text.push_back('=');
  std::string decoded;
  if (text.empty() || !absl::Base64Unescape(text, &decoded)) {
    return absl::InvalidArgumentError("auth is not valid base64 (expected base64 of user:pass)");
  }
  size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("auth does not decode to user:pass (no ':')");
  }
  Credentials c;
  c.username = decoded.substr(0, colon);
  c.password = decoded.substr(colon + 1);
  if (c.username.empty()) return absl::InvalidArgumentError("auth has an empty user name");
  return c;
}

absl::StatusOr<Credentials> CredentialsFromAuthConfig(absl::string_view username,
                                                      absl::string_view password,
                                                      absl::string_view auth,
                                                      absl::string_view identity_token,
                                                      absl::string_view registry_token) {
  Credentials c;
  if (!auth.empty()) {
    ASSIGN_OR_RETURN(c, DecodeBasicAuth(auth));
  } else {
    c.username = std::string(username);
    c.password = std::string(password);
  }
  c.identity_token = std::string(identity_token);
  c.registry_token = std::string(registry_token);
  return c;
}

absl::StatusOr<Credentials> CredentialsFromAuthFile(const std::string& path,
                                                    absl::string_view host) {
  if (path.empty()) return Credentials{};
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) return Credentials{};
    return text.status();
  }
  if (!JsonNestingWithin(*text, 16)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": nested too deeply"));
  }
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  auto auths = doc.find("auths");
  if (auths == doc.end() || !auths->is_object()) return Credentials{};
  std::vector<std::string> keys = {
      std::string(host), absl::StrCat("https://", host), absl::StrCat("http://", host),
      absl::StrCat("https://", host, "/v1/"), absl::StrCat("https://", host, "/v2/")};
  if (host == "docker.io" || host == "registry-1.docker.io") {
    keys.push_back("https://index.docker.io/v1/");
    keys.push_back("index.docker.io");
    keys.push_back("docker.io");
  }
  for (const std::string& key : keys) {
    auto it = auths->find(key);
    if (it == auths->end() || !it->is_object()) continue;
    auto str = [&](const char* name) -> std::string {
      auto f = it->find(name);
      return f != it->end() && f->is_string() ? f->get<std::string>() : std::string();
    };
    auto c = CredentialsFromAuthConfig(str("username"), str("password"), str("auth"),
                                       str("identitytoken"), str("registrytoken"));
    if (!c.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": auths.", QuoteForMessage(key), ": ", c.status().message()));
    }
    return c;
  }
  return Credentials{};
}

// ---- WWW-Authenticate -------------------------------------------------------------------------

std::vector<AuthChallenge> ParseWwwAuthenticate(absl::string_view h) {
  std::vector<AuthChallenge> out;
  size_t pos = 0;
  const size_t n = h.size();
  auto is_ws = [](char c) { return c == ' ' || c == '\t'; };
  auto skip_ws = [&] {
    while (pos < n && is_ws(h[pos])) ++pos;
  };
  auto skip_ws_commas = [&] {
    while (pos < n && (is_ws(h[pos]) || h[pos] == ',')) ++pos;
  };
  auto read_token = [&] {
    size_t start = pos;
    while (pos < n && !is_ws(h[pos]) && h[pos] != ',' && h[pos] != '=' && h[pos] != '"') ++pos;
    return h.substr(start, pos - start);
  };
  skip_ws_commas();
  while (pos < n) {
    absl::string_view scheme = read_token();
    if (scheme.empty()) break;
    AuthChallenge c;
    c.scheme = absl::AsciiStrToLower(scheme);
    while (true) {
      size_t save = pos;
      skip_ws_commas();
      size_t name_start = pos;
      absl::string_view name = read_token();
      skip_ws();
      if (name.empty() || pos >= n || h[pos] != '=') {
        // Not a parameter: the start of the next challenge (or the end).
        pos = name.empty() ? save : name_start;
        break;
      }
      ++pos;  // '='
      skip_ws();
      std::string value;
      if (pos < n && h[pos] == '"') {
        ++pos;
        bool closed = false;
        while (pos < n) {
          char ch = h[pos++];
          if (ch == '\\' && pos < n) {
            value.push_back(h[pos++]);
          } else if (ch == '"') {
            closed = true;
            break;
          } else {
            value.push_back(ch);
          }
        }
        if (!closed) {
          out.push_back(std::move(c));
          return out;
        }
      } else {
        value = std::string(read_token());
        // Token68 padding ("abc==") and stray '=' belong to the value.
        while (pos < n && h[pos] == '=') value.push_back(h[pos++]);
      }
      c.params[absl::AsciiStrToLower(name)] = std::move(value);
    }
    out.push_back(std::move(c));
    size_t before = pos;
    skip_ws_commas();
    if (pos == before && pos < n && (h[pos] == '=' || h[pos] == '"')) break;  // garbage
  }
  return out;
}

// ---- HTTP over libcurl ------------------------------------------------------------------------

namespace {

std::once_flag g_curl_init;

// A URL for messages: no userinfo, query or fragment.
std::string RedactUrl(const std::string& url) {
  CURLU* u = curl_url();
  std::string out = "<invalid URL>";
  if (u != nullptr && curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    curl_url_set(u, CURLUPART_USER, nullptr, 0);
    curl_url_set(u, CURLUPART_PASSWORD, nullptr, 0);
    curl_url_set(u, CURLUPART_OPTIONS, nullptr, 0);
    curl_url_set(u, CURLUPART_QUERY, nullptr, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, nullptr, 0);
    char* s = nullptr;
    if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) out = s;
    curl_free(s);
  }
  curl_url_cleanup(u);
  return out;
}

struct UrlParts {
  std::string scheme, host, port;
  std::string origin() const { return absl::StrCat(scheme, "://", host, ":", port); }
};

std::optional<UrlParts> ParseUrl(const std::string& url) {
  CURLU* u = curl_url();
  if (u == nullptr) return std::nullopt;
  std::optional<UrlParts> out;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
      out = UrlParts{absl::AsciiStrToLower(scheme), absl::AsciiStrToLower(host), port};
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

// Resolves `location` (absolute or relative) against `base`.
absl::StatusOr<std::string> ResolveUrl(const std::string& base, const std::string& location) {
  CURLU* u = curl_url();
  if (u == nullptr) return absl::ResourceExhaustedError("curl_url: out of memory");
  absl::StatusOr<std::string> out =
      absl::InvalidArgumentError(absl::StrCat("bad redirect Location from ", RedactUrl(base)));
  if (curl_url_set(u, CURLUPART_URL, base.c_str(), 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, location.c_str(), 0) == CURLUE_OK) {
    char* s = nullptr;
    if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
      std::string r = s;
      if (absl::StartsWith(r, "http://") || absl::StartsWith(r, "https://")) {
        out = r;
      } else {
        out = absl::InvalidArgumentError(
            absl::StrCat("redirect from ", RedactUrl(base), " to a scheme other than http(s)"));
      }
    }
    curl_free(s);
  }
  curl_url_cleanup(u);
  return out;
}

std::string UrlEscape(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::StrFormat("%02X", c));
    }
  }
  return out;
}

struct Response {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;      // buffered bodies (and the start of error bodies)
  int64_t streamed = 0;  // bytes given to the sink
  std::string url;       // the URL that answered (after redirects)

  std::string Header(absl::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  std::string Headers(absl::string_view name) const {
    std::vector<std::string> all;
    for (const auto& [k, v] : headers) {
      if (k == name) all.push_back(v);
    }
    return absl::StrJoin(all, ", ");
  }
};

struct Call {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Accept: ...": never secrets
  std::string post_body;             // POST only (may hold secrets: never logged)
  size_t max_body = 1 << 20;
  bool blob = false;  // no total timeout, the progress timeout instead
  int64_t range_start = -1;
  // For 2xx answers: called once before the body, then the body goes to `sink`.
  std::function<absl::Status(const Response&)> on_headers;
  const std::function<absl::Status(const char*, size_t)>* sink = nullptr;
};

// How an exchange went: kOk means an HTTP answer (any status) arrived.
enum class Kind { kOk, kTransient, kEndpointDead, kFatal };
struct Result {
  absl::Status status;
  Kind kind = Kind::kOk;
  Response resp;
};
Result Fail(absl::Status st, Kind kind) {
  return Result{std::move(st), kind, {}};
}

struct Tls {
  std::string ca_file, cert_file, key_file;
};

struct Transfer {
  const Call* call;
  Response* resp;
  absl::Duration progress_timeout;
  absl::Time last_progress;
  bool body_started = false;
  bool stalled = false;
  absl::Status abort;
};

bool Is2xx(long s) {
  return s >= 200 && s < 300;
}

size_t OnHeader(char* data, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * nitems;
  absl::string_view line(data, len);
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, "HTTP/")) {
    t->resp->headers.clear();
    t->resp->status = 0;
    size_t sp = line.find(' ');
    if (sp != absl::string_view::npos) {
      int code = 0;
      if (absl::SimpleAtoi(line.substr(sp + 1, 3), &code)) t->resp->status = code;
    }
    return len;
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos && t->resp->headers.size() < 200) {
    t->resp->headers.emplace_back(
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon))),
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return len;
}

size_t OnWrite(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * nmemb;
  t->last_progress = absl::Now();
  bool ok = Is2xx(t->resp->status);
  if (!t->body_started) {
    t->body_started = true;
    if (ok && t->call->on_headers) {
      absl::Status st = t->call->on_headers(*t->resp);
      if (!st.ok()) {
        t->abort = std::move(st);
        return 0;
      }
    }
  }
  if (ok && t->call->sink != nullptr) {
    absl::Status st = (*t->call->sink)(data, len);
    if (!st.ok()) {
      t->abort = std::move(st);
      return 0;
    }
    t->resp->streamed += static_cast<int64_t>(len);
    return len;
  }
  if (t->resp->body.size() + len > t->call->max_body) {
    if (ok) {
      t->abort = absl::ResourceExhaustedError(
          absl::StrCat(t->call->method, " ", RedactUrl(t->call->url), ": response larger than ",
                       t->call->max_body, " bytes"));
      return 0;
    }
    // An error body: keep its start for the message.
    t->resp->body.append(data,
                         t->call->max_body - std::min(t->call->max_body, t->resp->body.size()));
    return len;
  }
  t->resp->body.append(data, len);
  return len;
}

int OnProgress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(userdata);
  if (t->call->blob && absl::Now() - t->last_progress > t->progress_timeout) {
    t->stalled = true;
    return 1;
  }
  return 0;
}

bool IsTlsError(CURLcode c) {
  switch (c) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED: return true;
    default: return false;
  }
}

std::string ContentTypeOf(const Response& r) {
  std::string ct = r.Header("content-type");
  size_t semi = ct.find(';');
  if (semi != std::string::npos) ct.resize(semi);
  return std::string(absl::StripAsciiWhitespace(ct));
}

// "GET <url>: HTTP 500[: MANIFEST_UNKNOWN "message"]" from a registry's error answer.
std::string HttpErrorText(const Call& call, const Response& r) {
  std::string msg = absl::StrCat(call.method, " ", RedactUrl(r.url.empty() ? call.url : r.url),
                                 ": HTTP ", r.status);
  if (!r.body.empty() && JsonNestingWithin(r.body, 8)) {
    nlohmann::json doc = nlohmann::json::parse(r.body, nullptr, false);
    if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array() &&
        !doc["errors"].empty() && doc["errors"][0].is_object()) {
      const auto& e = doc["errors"][0];
      if (e.contains("code") && e["code"].is_string()) {
        absl::StrAppend(&msg, ": ", QuoteForMessage(e["code"].get<std::string>(), 40));
      }
      if (e.contains("message") && e["message"].is_string()) {
        absl::StrAppend(&msg, " ", QuoteForMessage(e["message"].get<std::string>(), 120));
      }
    }
  }
  if (r.status == 400 && absl::StrContains(r.body, "HTTP request to an HTTPS server")) {
    // Go's answer to plain http on a TLS port.
    absl::StrAppend(&msg,
                    ": the registry speaks https only, but the host is configured as "
                    "insecure (plain http) or is a loopback host without a configuration");
  }
  return msg;
}

bool IsLoopbackHost(absl::string_view domain) {
  absl::string_view host = domain;
  if (absl::StartsWith(host, "[")) {
    return absl::StartsWith(host, "[::1]");
  }
  size_t colon = host.rfind(':');
  if (colon != absl::string_view::npos) host = host.substr(0, colon);
  return host == "localhost" || absl::StartsWith(host, "127.");
}

struct Endpoint {
  std::string base;    // "https://registry-1.docker.io", "http://127.0.0.1:5001/prefix"
  std::string host;    // authority, for messages and credentials: "127.0.0.1:5001"
  std::string origin;  // "http://127.0.0.1:5001"
  bool mirror = false;
  Tls tls;
};

struct Token {
  std::string value;
  absl::Time expires;
};

}  // namespace

// ---- the client -------------------------------------------------------------------------------

struct RegistryClient::Impl {
  RegistryOptions options;
  CURLSH* share = nullptr;
  std::once_flag share_once;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> share_locks;

  std::mutex mu;
  std::map<std::string, AuthChallenge> challenges;  // by endpoint origin
  std::map<std::string, Token> tokens;              // by realm|service|scope|credentials hash

  explicit Impl(RegistryOptions o) : options(std::move(o)) {}

  // libcurl (and with it OpenSSL, GnuTLS, Kerberos...) is initialised at the first registry
  // request, not when berthd starts: a node that never pulls keeps none of that resident.
  CURLSH* Share() {
    std::call_once(share_once, [this] {
      std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
      share = curl_share_init();
      if (share != nullptr) {
        curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Impl::Lock);
        curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Impl::Unlock);
        curl_share_setopt(share, CURLSHOPT_USERDATA, this);
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
      }
    });
    return share;
  }

  ~Impl() {
    if (share != nullptr) curl_share_cleanup(share);
  }

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Impl*>(user)->share_locks[static_cast<size_t>(data) % CURL_LOCK_DATA_LAST].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Impl*>(user)->share_locks[static_cast<size_t>(data) % CURL_LOCK_DATA_LAST].unlock();
  }

  // ---- one request ----

  Result Perform(const Call& call, const std::string& url, const std::string& authorization,
                 const Tls* tls) {
    Result r;
    r.resp.url = url;
    CURLSH* sh = Share();  // initialises libcurl first (curl_easy_init would, unsafely)
    CURL* h = curl_easy_init();
    if (h == nullptr)
      return Fail(absl::ResourceExhaustedError("curl_easy_init failed"), Kind::kFatal);
    struct curl_slist* hdrs = nullptr;
    for (const std::string& line : call.headers) hdrs = curl_slist_append(hdrs, line.c_str());
    std::string auth_line;
    if (!authorization.empty()) {
      auth_line = absl::StrCat("Authorization: ", authorization);
      hdrs = curl_slist_append(hdrs, auth_line.c_str());
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    Transfer t{&call, &r.resp, options.progress_timeout, absl::Now()};
    std::string range;

    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, options.user_agent.c_str());
    if (sh != nullptr) curl_easy_setopt(h, CURLOPT_SHARE, sh);
    long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(options.request_timeout));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    if (!call.blob) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (call.method == "POST") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(call.post_body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, call.post_body.c_str());
    }
    if (call.range_start > 0) {
      range = absl::StrCat(call.range_start, "-");
      curl_easy_setopt(h, CURLOPT_RANGE, range.c_str());
    }
    if (tls != nullptr) {
      if (!tls->ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, tls->ca_file.c_str());
      if (!tls->cert_file.empty()) curl_easy_setopt(h, CURLOPT_SSLCERT, tls->cert_file.c_str());
      if (!tls->key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, tls->key_file.c_str());
    }

    CURLcode rc = curl_easy_perform(h);
    // Whether this transfer made a new connection and completed a TLS handshake on it.
    long new_connections = 0;
    curl_off_t tls_done_us = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &new_connections);
    curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls_done_us);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (!auth_line.empty()) std::fill(auth_line.begin(), auth_line.end(), '\0');

    if (rc == CURLE_OK) {
      log::Debug("registry request", {{"method", call.method},
                                      {"url", RedactUrl(url)},
                                      {"status", static_cast<long>(r.resp.status)}});
      return r;
    }
    if (!t.abort.ok()) return Fail(t.abort, Kind::kFatal);
    std::string what = absl::StrCat(call.method, " ", RedactUrl(url));
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
    if (t.stalled) {
      return Fail(
          absl::DeadlineExceededError(absl::StrCat(
              what, ": no data received for ", absl::FormatDuration(options.progress_timeout),
              " (progress timeout), after ", r.resp.streamed, " bytes")),
          Kind::kFatal);
    }
    auto parts = ParseUrl(url);
    std::string host = parts ? parts->host : "?";
    // A TLS alert on the first read or write: the server refused the connection after the
    // handshake (TLS 1.3 servers check the client certificate then). Not transient.
    bool alert = (rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) && parts &&
                 parts->scheme == "https" && r.resp.status == 0 &&
                 absl::StrContains(detail, " alert ");
    std::string cert_hint =
        tls != nullptr && !tls->cert_file.empty()
            ? " (the registry refused the client certificate?)"
            : " (the registry requires a client certificate? none is configured)";
    if (IsTlsError(rc) || alert) {
      std::string hint;
      if (alert && absl::StrContains(detail, "certificate")) hint = cert_hint;
      return Fail(absl::UnavailableError(absl::StrCat("TLS connection to ", host, " failed (", what,
                                                      "): ", detail, hint)),
                  Kind::kEndpointDead);
    }
    if ((rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) && parts && parts->scheme == "https" &&
        r.resp.status == 0 && new_connections > 0 && tls_done_us > 0) {
      // A new connection closed right after its TLS handshake, before any answer: usually
      // a TLS 1.3 server refusing the client certificate, whose alert was lost to the reset.
      // Retried (it might be transient), but named as what it most likely is.
      return Fail(
          absl::UnavailableError(absl::StrCat("TLS connection to ", host,
                                              " closed by the server right after the handshake (",
                                              what, "): ", detail, cert_hint)),
          Kind::kTransient);
    }
    switch (rc) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_PARTIAL_FILE:
      case CURLE_GOT_NOTHING:
      case CURLE_HTTP2:
      case CURLE_HTTP2_STREAM:
        return Fail(absl::UnavailableError(absl::StrCat(what, ": ", detail)), Kind::kTransient);
      case CURLE_OPERATION_TIMEDOUT:
        return Fail(absl::DeadlineExceededError(absl::StrCat(what, ": ", detail)),
                    Kind::kTransient);
      default: return Fail(absl::UnavailableError(absl::StrCat(what, ": ", detail)), Kind::kFatal);
    }
  }

  // Follows redirects by hand: the Authorization and the client certificate only go to the
  // origin the request started at.
  Result PerformWithRedirects(Call call, const std::string& authorization, const Tls* tls) {
    auto first = ParseUrl(call.url);
    if (!first) {
      return Fail(absl::InvalidArgumentError(absl::StrCat("bad URL ", RedactUrl(call.url))),
                  Kind::kFatal);
    }
    std::string url = call.url;
    for (int hop = 0; hop <= 10; ++hop) {
      auto parts = ParseUrl(url);
      bool same = parts && parts->origin() == first->origin();
      Result r = Perform(call, url, same ? authorization : "", same ? tls : nullptr);
      if (r.kind != Kind::kOk) return r;
      long s = r.resp.status;
      std::string location = r.resp.Header("location");
      if ((s == 301 || s == 302 || s == 303 || s == 307 || s == 308) && !location.empty()) {
        auto next = ResolveUrl(url, location);
        if (!next.ok()) return Fail(next.status(), Kind::kFatal);
        url = *next;
        if (s == 303 || ((s == 301 || s == 302) && call.method == "POST")) {
          call.method = "GET";
          call.post_body.clear();
        }
        continue;
      }
      return r;
    }
    return Fail(absl::UnavailableError(
                    absl::StrCat(call.method, " ", RedactUrl(call.url), ": too many redirects")),
                Kind::kFatal);
  }

  // ---- auth ----

  std::optional<AuthChallenge> KnownChallenge(const std::string& origin) {
    std::lock_guard<std::mutex> l(mu);
    auto it = challenges.find(origin);
    if (it == challenges.end()) return std::nullopt;
    return it->second;
  }

  static std::string TokenKey(const AuthChallenge& ch, const std::string& scope,
                              const Credentials& c) {
    // Tokens are per identity: two pulls with different credentials never share one.
    std::string who = Digest::Of(absl::StrCat(c.username.size(), ":", c.username, ":", c.password,
                                              ":", c.identity_token))
                          .hex();
    auto get = [&](const char* k) {
      auto it = ch.params.find(k);
      return it == ch.params.end() ? std::string() : it->second;
    };
    return absl::StrCat(get("realm"), "|", get("service"), "|", scope, "|", who);
  }

  void DropToken(const AuthChallenge& ch, const std::string& scope, const Credentials& c) {
    std::lock_guard<std::mutex> l(mu);
    tokens.erase(TokenKey(ch, scope, c));
  }

  // A bearer token from the challenge's realm.
  absl::StatusOr<std::string> FetchToken(const AuthChallenge& ch, const Endpoint& ep,
                                         const std::string& scope, const Credentials& c) {
    std::string key = TokenKey(ch, scope, c);
    {
      std::lock_guard<std::mutex> l(mu);
      auto it = tokens.find(key);
      if (it != tokens.end() && absl::Now() < it->second.expires) return it->second.value;
    }
    auto realm_it = ch.params.find("realm");
    if (realm_it == ch.params.end() || realm_it->second.empty()) {
      return absl::UnauthenticatedError(
          absl::StrCat(ep.host, " asks for a bearer token but names no realm"));
    }
    const std::string& realm = realm_it->second;
    auto realm_parts = ParseUrl(realm);
    if (!realm_parts || (realm_parts->scheme != "https" && realm_parts->scheme != "http")) {
      return absl::UnauthenticatedError(absl::StrCat(
          ep.host, ": token realm ", QuoteForMessage(RedactUrl(realm)), " is not an http(s) URL"));
    }
    bool has_secret = !c.username.empty() || !c.identity_token.empty();
    if (has_secret && realm_parts->scheme == "http" && !absl::StartsWith(ep.origin, "http://")) {
      return absl::UnauthenticatedError(absl::StrCat("refusing to send the credentials for ",
                                                     ep.host, " to the plain-http token realm ",
                                                     RedactUrl(realm)));
    }
    std::string service;
    if (auto it = ch.params.find("service"); it != ch.params.end()) service = it->second;
    Call call;
    call.max_body = 1 << 20;
    call.headers.push_back("Accept: application/json");
    std::string authz;
    if (!c.identity_token.empty()) {
      call.method = "POST";
      call.url = realm;
      call.headers.push_back("Content-Type: application/x-www-form-urlencoded");
      call.post_body = absl::StrCat(
          "grant_type=refresh_token&refresh_token=", UrlEscape(c.identity_token),
          "&service=", UrlEscape(service), "&scope=", UrlEscape(scope), "&client_id=berth");
    } else {
      call.url = absl::StrCat(realm, absl::StrContains(realm, "?") ? "&" : "?");
      if (!service.empty()) absl::StrAppend(&call.url, "service=", UrlEscape(service), "&");
      absl::StrAppend(&call.url, "scope=", UrlEscape(scope));
      if (!c.username.empty()) {
        authz =
            absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(c.username, ":", c.password)));
      }
    }
    Result r = PerformWithRedirects(call, authz, nullptr);
    if (!r.status.ok()) return r.status;
    std::string where = absl::StrCat("token server ", RedactUrl(realm), " (for ", ep.host, ")");
    if (r.resp.status == 401 || r.resp.status == 403) {
      std::string why = has_secret ? "rejected the credentials"
                                   : "refused an anonymous token (credentials needed)";
      auto err = absl::StrCat(where, " ", why, ": HTTP ", r.resp.status);
      return r.resp.status == 401 ? absl::UnauthenticatedError(err)
                                  : absl::PermissionDeniedError(err);
    }
    if (r.resp.status != 200) {
      auto err = absl::StrCat(where, ": HTTP ", r.resp.status);
      return r.resp.status >= 500 || r.resp.status == 429 ? absl::UnavailableError(err)
                                                          : absl::UnauthenticatedError(err);
    }
    if (!JsonNestingWithin(r.resp.body, 8)) {
      return absl::UnauthenticatedError(absl::StrCat(where, ": answer nested too deeply"));
    }
    nlohmann::json doc = nlohmann::json::parse(r.resp.body, nullptr, false);
    if (!doc.is_object()) {
      return absl::UnauthenticatedError(absl::StrCat(where, ": answer is not a JSON object"));
    }
    std::string token;
    for (const char* k : {"token", "access_token"}) {
      auto it = doc.find(k);
      if (it != doc.end() && it->is_string() && !it->get<std::string>().empty()) {
        token = it->get<std::string>();
        break;
      }
    }
    if (token.empty()) {
      return absl::UnauthenticatedError(absl::StrCat(where, ": answer has no token"));
    }
    int64_t expires_in = 60;
    if (auto it = doc.find("expires_in"); it != doc.end() && it->is_number_integer()) {
      expires_in = std::max<int64_t>(it->get<int64_t>(), 60);
    }
    absl::Time now = absl::Now();
    absl::Time issued = now;
    if (auto it = doc.find("issued_at"); it != doc.end() && it->is_string()) {
      absl::Time t;
      std::string err;
      if (absl::ParseTime(absl::RFC3339_full, it->get<std::string>(), &t, &err) && t < now) {
        issued = t;
      }
    }
    // A little early, for requests in flight and clock differences.
    absl::Time expires = issued + absl::Seconds(expires_in) - absl::Seconds(10);
    {
      std::lock_guard<std::mutex> l(mu);
      if (tokens.size() > 1000) tokens.clear();
      tokens[key] = Token{token, expires};
    }
    return token;
  }

  // The Authorization value for a request under a known challenge; "" for anonymous.
  absl::StatusOr<std::string> Authorize(const AuthChallenge& ch, const Endpoint& ep,
                                        const std::string& scope, const Credentials& c) {
    if (ch.scheme == "basic") {
      if (c.username.empty()) return std::string();
      return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(c.username, ":", c.password)));
    }
    ASSIGN_OR_RETURN(std::string token, FetchToken(ch, ep, scope, c));
    return absl::StrCat("Bearer ", token);
  }

  // One request to an endpoint with the registry's auth: anonymous (or with what an earlier
  // challenge of this endpoint asked for) first; on 401 the challenge is answered once.
  Result Exchange(const Endpoint& ep, const std::string& repo_path, const Credentials& c,
                  const Call& call) {
    std::string scope = absl::StrCat("repository:", repo_path, ":pull");
    for (int round = 0; round < 2; ++round) {
      std::string authz;
      std::optional<AuthChallenge> ch;
      if (!c.registry_token.empty()) {
        authz = absl::StrCat("Bearer ", c.registry_token);
      } else if ((ch = KnownChallenge(ep.origin))) {
        auto a = Authorize(*ch, ep, scope, c);
        if (!a.ok()) {
          return Fail(a.status(),
                      absl::IsUnavailable(a.status()) ? Kind::kTransient : Kind::kFatal);
        }
        authz = *std::move(a);
      }
      Result r = PerformWithRedirects(call, authz, &ep.tls);
      if (r.kind != Kind::kOk) return r;
      if (r.resp.status == 403) {
        return Fail(absl::PermissionDeniedError(absl::StrCat("access to ", repo_path, " on ",
                                                             ep.host, " denied (",
                                                             HttpErrorText(call, r.resp), ")")),
                    Kind::kFatal);
      }
      if (r.resp.status != 401) return r;
      auto fail = [&](absl::string_view why) {
        return Fail(absl::UnauthenticatedError(absl::StrCat("authentication to ", ep.host, " for ",
                                                            repo_path, " failed: ", why, " (",
                                                            HttpErrorText(call, r.resp), ")")),
                    Kind::kFatal);
      };
      if (!c.registry_token.empty()) return fail("the registry token was rejected");
      std::vector<AuthChallenge> all = ParseWwwAuthenticate(r.resp.Headers("www-authenticate"));
      const AuthChallenge* pick = nullptr;
      for (const auto& a : all) {
        if (a.scheme == "bearer") {
          pick = &a;
          break;
        }
      }
      for (const auto& a : all) {
        if (pick == nullptr && a.scheme == "basic") pick = &a;
      }
      if (pick == nullptr) return fail("no usable WWW-Authenticate challenge (Basic or Bearer)");
      if (pick->scheme == "basic" && c.username.empty()) {
        return fail("the registry requires a user name and password and none were given");
      }
      if (round == 1) {
        return fail(c.empty() ? "the registry requires credentials and none were given"
                              : "the credentials were rejected");
      }
      if (ch) DropToken(*ch, scope, c);
      {
        std::lock_guard<std::mutex> l(mu);
        challenges[ep.origin] = *pick;
      }
    }
    return Fail(absl::InternalError("unreachable"), Kind::kFatal);
  }

  // ---- endpoints ----

  std::vector<Endpoint> EndpointsFor(const std::string& domain) {
    std::vector<Endpoint> out;
    const RegistryHost* cfg = nullptr;
    if (auto it = options.hosts.find(domain); it != options.hosts.end()) cfg = &it->second;
    auto tls_of = [&](const std::string& host) {
      Tls t;
      const RegistryHost* h = nullptr;
      if (auto it = options.hosts.find(host); it != options.hosts.end()) h = &it->second;
      if (h == nullptr && host == domain) h = cfg;
      if (h != nullptr) t = Tls{h->ca_file, h->cert_file, h->key_file};
      return t;
    };
    if (cfg != nullptr) {
      for (const std::string& m : cfg->mirrors) {
        std::string base(absl::StripSuffix(absl::StripAsciiWhitespace(m), "/"));
        if (base.empty()) continue;
        if (!absl::StrContains(base, "://")) {
          base = absl::StrCat(cfg->insecure ? "http://" : "https://", base);
        }
        auto parts = ParseUrl(base);
        if (!parts || (parts->scheme != "http" && parts->scheme != "https")) {
          log::Warn("ignoring a registry mirror that is not an http(s) URL",
                    {{"host", domain}, {"mirror", RedactUrl(base)}});
          continue;
        }
        // The authority as written ("127.0.0.1:5001"), for messages and credentials.
        absl::string_view rest = base;
        rest.remove_prefix(rest.find("://") + 3);
        std::string host(rest.substr(0, rest.find('/')));
        out.push_back(Endpoint{base, host, parts->origin(), true, tls_of(host)});
      }
    }
    std::string api_host = domain == "docker.io" ? "registry-1.docker.io" : domain;
    bool plain = cfg != nullptr ? cfg->insecure : IsLoopbackHost(domain);
    std::string base = absl::StrCat(plain ? "http://" : "https://", api_host);
    auto parts = ParseUrl(base);
    out.push_back(Endpoint{base, api_host, parts ? parts->origin() : base, false, tls_of(domain)});
    return out;
  }

  Credentials CredentialsFor(const Endpoint& ep, const std::string& domain, const Credentials& c) {
    if (!ep.mirror && !c.empty()) return c;
    auto from_file = CredentialsFromAuthFile(options.auth_file, ep.mirror ? ep.host : domain);
    if (!from_file.ok()) {
      log::Warn("cannot read registry credentials; pulling anonymously",
                {{"host", ep.host}, {"error", std::string(from_file.status().message())}});
      return Credentials{};
    }
    return *from_file;
  }

  enum class Next { kDone, kNextEndpoint, kRetry };
  struct Attempt {
    Next next;
    absl::Status status;
  };

  // Tries the endpoints of `domain` in order, rounds of them with backoff while some failed
  // transiently. `fn` returns kDone with the final status, kNextEndpoint when this endpoint
  // will not do, kRetry on a transient failure. `progress` (optional) reports that the last
  // attempt moved forward, which does not use up a round.
  absl::Status OverEndpoints(const std::string& domain, const Credentials& creds,
                             const std::function<Attempt(const Endpoint&, const Credentials&)>& fn,
                             const std::function<bool()>& progress = nullptr) {
    std::vector<Endpoint> eps = EndpointsFor(domain);
    std::vector<bool> dead(eps.size(), false);
    absl::Status last = absl::UnavailableError(absl::StrCat("no endpoint for ", domain));
    int rounds = std::max(1, options.max_attempts);
    int budget = rounds * static_cast<int>(eps.size()) + 1000;  // bounds progress resumes
    for (int round = 0; round < rounds; ++round) {
      bool retry = false;
      for (size_t i = 0; i < eps.size(); ++i) {
        if (dead[i]) continue;
        if (--budget < 0) return last;
        Attempt a = fn(eps[i], CredentialsFor(eps[i], domain, creds));
        if (a.next == Next::kDone) return a.status;
        last = a.status;
        if (a.next == Next::kNextEndpoint) {
          dead[i] = true;
          continue;
        }
        if (progress && progress()) {
          // Bytes arrived before the failure: resume at once, on the same endpoint.
          round = -1;
          retry = true;
          --i;
          if (--budget < 0) return last;
          continue;
        }
        retry = true;
        log::Debug("registry endpoint failed, trying the next",
                   {{"endpoint", eps[i].base}, {"error", std::string(a.status.message())}});
      }
      if (!retry) break;
      if (round + 1 < rounds && round >= 0) {
        absl::SleepFor(
            std::min(absl::Milliseconds(250) * (1 << std::min(round, 4)), absl::Seconds(4)));
      }
    }
    return last;
  }

  // ---- manifests ----

  absl::StatusOr<FetchedManifest> Manifest(const Reference& repo, const std::string& reference,
                                           const std::optional<Digest>& want,
                                           const std::string& display, const Credentials& creds) {
    FetchedManifest out;
    auto fn = [&](const Endpoint& ep, const Credentials& c) -> Attempt {
      Call call;
      call.url = absl::StrCat(ep.base, "/v2/", repo.path, "/manifests/", reference);
      call.max_body = kMaxManifestSize;
      call.headers.push_back(absl::StrCat("Accept: ", kMediaTypeOciIndex, ", ",
                                          kMediaTypeOciManifest, ", ", kMediaTypeDockerManifestList,
                                          ", ", kMediaTypeDockerManifest));
      Result r = Exchange(ep, repo.path, c, call);
      Next on_error = ep.mirror ? Next::kNextEndpoint : Next::kDone;
      switch (r.kind) {
        case Kind::kOk: break;
        case Kind::kTransient: return {Next::kRetry, r.status};
        case Kind::kEndpointDead: return {Next::kNextEndpoint, r.status};
        case Kind::kFatal: return {on_error, r.status};
      }
      long s = r.resp.status;
      if (s == 404) {
        return {on_error, absl::NotFoundError(absl::StrCat("image ", display, " not found in ",
                                                           ep.mirror ? ep.base : ep.host))};
      }
      if (s == 429 || s >= 500) {
        return {Next::kRetry, absl::UnavailableError(HttpErrorText(call, r.resp))};
      }
      if (s != 200) {
        return {on_error, absl::FailedPreconditionError(HttpErrorText(call, r.resp))};
      }
      absl::Status st = Verify(r.resp, want, display, &out);
      if (!st.ok()) return {on_error, st};
      out.endpoint = ep.base;
      return {Next::kDone, absl::OkStatus()};
    };
    RETURN_IF_ERROR(OverEndpoints(repo.domain, creds, fn));
    return out;
  }

  static absl::Status Verify(Response& resp, const std::optional<Digest>& want,
                             const std::string& display, FetchedManifest* out) {
    std::string what = absl::StrCat("manifest of ", display, " from ", RedactUrl(resp.url));
    Digest actual = Digest::Of(resp.body);
    if (want) {
      actual = Digest::Of(resp.body, want->algorithm());
      if (actual != *want) {
        return absl::DataLossError(
            absl::StrCat(what, ": digest ", actual.ToString(), ", expected ", want->ToString()));
      }
    }
    std::string header = resp.Header("docker-content-digest");
    if (!header.empty()) {
      auto d = Digest::Parse(header);
      if (!d.ok()) {
        return absl::DataLossError(
            absl::StrCat(what, ": bad Docker-Content-Digest ", QuoteForMessage(header)));
      }
      Digest mine = Digest::Of(resp.body, d->algorithm());
      if (mine != *d) {
        return absl::DataLossError(absl::StrCat(what, ": body digest ", mine.ToString(),
                                                " but Docker-Content-Digest ", d->ToString()));
      }
    }
    auto type = ClassifyManifest(ContentTypeOf(resp), resp.body);
    if (!type.ok()) return Annotate(type.status(), what);
    out->body = std::move(resp.body);
    out->kind = type->kind;
    out->media_type = type->media_type;
    out->digest = want ? *want : actual;
    return absl::OkStatus();
  }
};

RegistryClient::RegistryClient(RegistryOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
RegistryClient::~RegistryClient() = default;

absl::StatusOr<FetchedManifest> RegistryClient::FetchManifest(const Reference& ref,
                                                              const Credentials& creds) {
  if (ref.digest) {
    return impl_->Manifest(ref, ref.digest->ToString(), ref.digest, ref.String(), creds);
  }
  if (ref.tag.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reference ", ref.String(), " has neither tag nor digest"));
  }
  return impl_->Manifest(ref, ref.tag, std::nullopt, ref.String(), creds);
}

absl::StatusOr<FetchedManifest> RegistryClient::FetchManifestByDigest(const Reference& repo,
                                                                      const Digest& d,
                                                                      const Credentials& creds) {
  return impl_->Manifest(repo, d.ToString(), d, absl::StrCat(repo.Name(), "@", d.ToString()),
                         creds);
}

absl::Status RegistryClient::FetchBlob(const Reference& repo, const Digest& digest, int64_t offset,
                                       const std::function<absl::Status(const char*, size_t)>& sink,
                                       const std::function<void()>& reset,
                                       const Credentials& creds) {
  if (offset < 0) return absl::InvalidArgumentError("FetchBlob: negative offset");
  int64_t current = offset;
  bool progressed = false;
  std::function<absl::Status(const char*, size_t)> counting = [&](const char* p, size_t n) {
    RETURN_IF_ERROR(sink(p, n));
    current += static_cast<int64_t>(n);
    if (n > 0) progressed = true;
    return absl::OkStatus();
  };
  std::string name = absl::StrCat("blob ", digest.ToString(), " of ", repo.Name());
  auto fn = [&](const Endpoint& ep, const Credentials& c) -> Impl::Attempt {
    progressed = false;
    Call call;
    call.url = absl::StrCat(ep.base, "/v2/", repo.path, "/blobs/", digest.ToString());
    call.blob = true;
    call.max_body = 64 << 10;  // error bodies
    call.range_start = current;
    call.sink = &counting;
    call.on_headers = [&](const Response& resp) -> absl::Status {
      if (resp.status == 206) {
        // "bytes START-END/TOTAL" must start where we are.
        std::string cr = resp.Header("content-range");
        absl::string_view v = cr;
        int64_t start = -1;
        if (absl::ConsumePrefix(&v, "bytes ")) {
          size_t dash = v.find('-');
          if (dash != absl::string_view::npos && !absl::SimpleAtoi(v.substr(0, dash), &start)) {
            start = -1;
          }
        }
        if (start != current) {
          return absl::DataLossError(absl::StrCat(name, ": asked for bytes from ", current,
                                                  ", got Content-Range ", QuoteForMessage(cr)));
        }
        return absl::OkStatus();
      }
      if (current > 0) {
        // The server ignored the Range: the whole blob follows.
        if (reset) reset();
        current = 0;
      }
      return absl::OkStatus();
    };
    Result r = impl_->Exchange(ep, repo.path, c, call);
    Impl::Next on_error = ep.mirror ? Impl::Next::kNextEndpoint : Impl::Next::kDone;
    switch (r.kind) {
      case Kind::kOk: break;
      case Kind::kTransient: return {Impl::Next::kRetry, r.status};
      case Kind::kEndpointDead: return {Impl::Next::kNextEndpoint, r.status};
      case Kind::kFatal: return {on_error, r.status};
    }
    long s = r.resp.status;
    if (s == 200 || s == 206) {
      if (!progressed && r.resp.streamed == 0 && s == 200 && current > 0) {
        // An empty 200 to a Range request: nothing was sent, treat as reset.
        if (reset) reset();
        current = 0;
      }
      return {Impl::Next::kDone, absl::OkStatus()};
    }
    if (s == 404) {
      return {on_error, absl::NotFoundError(
                            absl::StrCat(name, " not found in ", ep.mirror ? ep.base : ep.host))};
    }
    if (s == 416) {
      return {on_error, absl::OutOfRangeError(absl::StrCat(name, ": offset ", current,
                                                           " is not within the blob (HTTP 416)"))};
    }
    if (s == 429 || s >= 500) {
      return {Impl::Next::kRetry, absl::UnavailableError(HttpErrorText(call, r.resp))};
    }
    return {on_error, absl::FailedPreconditionError(HttpErrorText(call, r.resp))};
  };
  return impl_->OverEndpoints(repo.domain, creds, fn, [&] { return progressed; });
}

}  // namespace berth::images

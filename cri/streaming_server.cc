#include "cri/streaming_server.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "base/random.h"
#include "base/status.h"
#include "cri/stream/asio.h"
#include "cri/stream/channel_io.h"
#include "cri/stream/channels.h"
#include "cri/stream/spdy_session.h"
#include "nlohmann/json.hpp"

namespace berth::cri {
namespace v1 = runtime::v1;
namespace asio = boost::asio;
using stream::awaitable;
namespace beast = boost::beast;
using stream::ChannelIo;
using stream::error_code;
using stream::kAwait;
using tcp = asio::ip::tcp;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

constexpr size_t kMaxTokens = 10000;  // requests issued and not yet used (kubelet: 1000)
constexpr auto kRequestReadTimeout = std::chrono::seconds(30);
// After the process exits, output still in the pipes is forwarded; a pipe that some leftover
// child keeps open ends the session once it has been silent this long.
constexpr auto kDrainQuiet = std::chrono::milliseconds(100);
constexpr size_t kPumpBuffer = 32 << 10;

enum class Kind { kExec, kAttach, kPortForward };

absl::string_view KindPath(Kind k) {
  switch (k) {
    case Kind::kExec: return "exec";
    case Kind::kAttach: return "attach";
    case Kind::kPortForward: return "portforward";
  }
  return "";
}

// Single-use tokens standing for CRI requests (the kubelet's streaming server keeps the same
// kind of cache: the URL is all the client gets).
class TokenCache {
 public:
  using Request = std::variant<v1::ExecRequest, v1::AttachRequest, v1::PortForwardRequest>;

  absl::StatusOr<std::string> Insert(Request request, absl::Duration ttl) {
    ASSIGN_OR_RETURN(std::string raw, RandomBytes(16));
    std::string token = absl::WebSafeBase64Escape(raw);
    std::lock_guard lock(mu_);
    Expire();
    if (entries_.size() >= kMaxTokens) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many streaming requests in flight (", kMaxTokens, ")"));
    }
    entries_[token] = Entry{std::move(request), absl::Now() + ttl};
    return token;
  }

  std::optional<Request> Consume(const std::string& token) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(token);
    if (it == entries_.end()) return std::nullopt;
    Entry e = std::move(it->second);
    entries_.erase(it);
    if (absl::Now() > e.expires) return std::nullopt;
    return std::move(e.request);
  }

 private:
  struct Entry {
    Request request;
    absl::Time expires;
  };
  void Expire() {
    absl::Time now = absl::Now();
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = now > it->second.expires ? entries_.erase(it) : std::next(it);
    }
  }
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// Cancels the target when the session's frame goes away (ends, or the server stops).
struct TargetHolder {
  std::unique_ptr<StreamTarget> target;
  bool finished = false;
  ~TargetHolder() {
    if (target && !finished) target->Cancel();
  }
};

// A descriptor the session reads or writes through Asio; a dup, so that closing it (to cancel
// pending operations) leaves the target's own descriptors alone.
std::unique_ptr<asio::posix::stream_descriptor> Wrap(const asio::any_io_executor& ex, int fd) {
  if (fd < 0) return nullptr;
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return nullptr;
  auto d = std::make_unique<asio::posix::stream_descriptor>(ex, copy);
  error_code ec;
  d->non_blocking(true, ec);
  return d;
}

std::vector<std::string> HeaderValues(const http::request<http::empty_body>& req,
                                      absl::string_view name) {
  std::vector<std::string> out;
  auto range = req.equal_range(beast::string_view(name.data(), name.size()));
  for (auto it = range.first; it != range.second; ++it) out.emplace_back(it->value());
  return out;
}

}  // namespace

class StreamingServer::Impl {
 public:
  Impl(const StreamingOptions& options, StreamingRuntime* runtime)
      : options_(options), runtime_(runtime), acceptor_(io_), pool_(2) {}

  absl::Status Listen() {
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
      if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
        return absl::InvalidArgumentError("streaming: TLS needs both a certificate and a key file");
      }
      tls_.emplace(asio::ssl::context::tls_server);
      error_code ec;
      tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1,
                        ec);
      tls_->use_certificate_chain_file(options_.tls_cert_file, ec);
      if (ec) {
        return absl::InvalidArgumentError(absl::StrCat("streaming: TLS certificate ",
                                                       options_.tls_cert_file, ": ", ec.message()));
      }
      tls_->use_private_key_file(options_.tls_key_file, asio::ssl::context::pem, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            absl::StrCat("streaming: TLS key ", options_.tls_key_file, ": ", ec.message()));
      }
    }
    error_code ec;
    asio::ip::address addr = asio::ip::make_address(options_.address, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("streaming: bad address \"", options_.address, "\": ", ec.message()));
    }
    tcp::endpoint ep(addr, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("streaming: listen on ", options_.address, ":",
                                                 options_.port, ": ", ec.message()));
    }
    ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
    tcp::endpoint bound = acceptor_.local_endpoint(ec);
    std::string host = bound.address().to_string();
    if (bound.address().is_v6()) host = absl::StrCat("[", host, "]");
    base_url_ = absl::StrCat(tls_ ? "https://" : "http://", host, ":", bound.port());
    asio::co_spawn(io_, AcceptLoop(), asio::detached);
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
    return absl::OkStatus();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    asio::post(io_, [this] {
      error_code ignored;
      acceptor_.close(ignored);
      io_.stop();
    });
    if (thread_.joinable()) thread_.join();
    // Destroying the pending coroutines' frames cancels their targets (TargetHolder).
    io_.restart();
    while (io_.poll() > 0) {
    }
    pool_.join();
  }

  const std::string& base_url() const { return base_url_; }

  absl::StatusOr<std::string> Issue(Kind kind, TokenCache::Request request) {
    ASSIGN_OR_RETURN(std::string token, tokens_.Insert(std::move(request), options_.token_ttl));
    return absl::StrCat(base_url_, "/", KindPath(kind), "/", token);
  }

 private:
  // Runs f() on the worker pool and resumes on the I/O thread with its result.
  //
  // g++ 12 destroys the by-value arguments and temporaries of a co_awaited coroutine call
  // twice (GCC PR 99576): every coroutine here that is co_awaited takes its arguments by
  // reference, and callers pass named objects that outlive the call.
  template <typename F>
  awaitable<std::invoke_result_t<F&>> OnPool(F& f) {
    using R = std::invoke_result_t<F&>;
    auto task = [&f]() -> awaitable<R> { co_return f(); };
    auto op = asio::co_spawn(pool_.get_executor(), task, asio::use_awaitable);
    co_return co_await std::move(op);
  }

  // (What a burst of sessions leaves in the malloc arenas of this thread and the pool's is
  // given back by berthd's idle trim, which watches Activity().)
  void SessionEnded() {
    active_.fetch_sub(1, std::memory_order_relaxed);
    activity_.fetch_add(1, std::memory_order_relaxed);
  }

 public:
  int64_t Activity(bool* busy) const {
    *busy = active_.load(std::memory_order_relaxed) > 0;
    return activity_.load(std::memory_order_relaxed);
  }

 private:
  awaitable<void> AcceptLoop() {
    for (;;) {
      error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(kAwait(ec));
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) {
        log::Warn("streaming: accept", {{"error", ec.message()}});
        asio::steady_timer backoff(io_, std::chrono::milliseconds(50));
        co_await backoff.async_wait(kAwait(ec));
        continue;
      }
      ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
    }
  }

  awaitable<void> Serve(tcp::socket socket) {
    active_.fetch_add(1, std::memory_order_relaxed);
    activity_.fetch_add(1, std::memory_order_relaxed);
    struct Done {
      Impl* impl;
      ~Done() { impl->SessionEnded(); }
    } done{this};
    if (!tls_) {
      co_await ServeHttp(socket);
      co_return;
    }
    asio::ssl::stream<tcp::socket> s(std::move(socket), *tls_);
    asio::steady_timer deadline(io_, kRequestReadTimeout);
    deadline.async_wait([&s](error_code ec) {
      if (!ec) {
        error_code ignored;
        s.next_layer().close(ignored);
      }
    });
    error_code ec;
    co_await s.async_handshake(asio::ssl::stream_base::server, kAwait(ec));
    deadline.cancel();
    if (ec) co_return;
    co_await ServeHttp(s);
  }

  using Headers = std::vector<std::pair<std::string, std::string>>;
  template <typename S>
  awaitable<void> Respond(S& s, http::status status, const std::string& body,
                          const Headers& headers) {
    http::response<http::string_body> res{status, 11};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::connection, "close");
    for (const auto& [k, v] : headers) res.insert(k, v);
    res.body() = body;
    res.prepare_payload();
    error_code ec;
    co_await http::async_write(s, res, kAwait(ec));
  }

  // Takes the stream over (moves from it).
  template <typename S>
  awaitable<void> ServeHttp(S& s) {
    beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(16 << 10);
    parser.body_limit(0);
    {
      asio::steady_timer deadline(io_, kRequestReadTimeout);
      auto* lowest = &beast::get_lowest_layer(s);
      deadline.async_wait([lowest](error_code ec) {
        if (!ec) {
          error_code ignored;
          lowest->close(ignored);
        }
      });
      error_code ec;
      co_await http::async_read(s, buffer, parser, kAwait(ec));
      deadline.cancel();
      if (ec) {
        if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
          const std::string body = absl::StrCat("bad request: ", ec.message(), "\n");
          co_await Respond(s, http::status::bad_request, body, kNoHeaders);
        }
        co_return;
      }
    }
    const http::request<http::empty_body>& req = parser.get();
    // /<kind>/<token>
    std::string target(req.target());
    std::vector<std::string> parts = absl::StrSplit(target.substr(0, target.find('?')), '/');
    std::optional<Kind> kind;
    if (parts.size() == 3 && parts[0].empty()) {
      for (Kind k : {Kind::kExec, Kind::kAttach, Kind::kPortForward}) {
        if (parts[1] == KindPath(k)) kind = k;
      }
    }
    std::optional<TokenCache::Request> request;
    if (kind) request = tokens_.Consume(parts[2]);
    const bool kind_matches =
        request &&
        ((*kind == Kind::kExec && std::holds_alternative<v1::ExecRequest>(*request)) ||
         (*kind == Kind::kAttach && std::holds_alternative<v1::AttachRequest>(*request)) ||
         (*kind == Kind::kPortForward && std::holds_alternative<v1::PortForwardRequest>(*request)));
    if (!kind_matches) {
      const std::string body = "404 page not found\n";
      co_await Respond(s, http::status::not_found, body, kNoHeaders);
      co_return;
    }
    const bool remote_command = *kind != Kind::kPortForward;
    if (websocket::is_upgrade(req)) {
      std::vector<std::string> offered =
          stream::SplitProtocols(HeaderValues(req, "Sec-WebSocket-Protocol"));
      std::vector<std::string> supported =
          remote_command ? std::vector<std::string>{stream::kRemoteCommandV5,
                                                    stream::kRemoteCommandV4, stream::kBase64V4,
                                                    stream::kRemoteCommandV1, stream::kBase64V1}
                         : std::vector<std::string>{stream::kRemoteCommandV4, stream::kBase64V4,
                                                    stream::kPortForwardV1};
      std::string chosen;
      if (!offered.empty()) {
        std::optional<std::string> p = stream::Negotiate(offered, supported);
        if (!p) {
          const std::string body = absl::StrCat(
              "unable to upgrade: no supported WebSocket protocol in ",
              absl::StrJoin(offered, ", "), "; supported: ", absl::StrJoin(supported, ", "), "\n");
          co_await Respond(s, http::status::bad_request, body, kNoHeaders);
          co_return;
        }
        chosen = *p;
      }
      stream::RemoteCommandProtocol proto;  // "" and portforward.k8s.io: binary, v1 framing
      if (std::optional<stream::RemoteCommandProtocol> p =
              stream::ParseRemoteCommandProtocol(chosen)) {
        proto = *p;
      }
      websocket::stream<S> ws(std::move(s));
      ws.set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
        if (!chosen.empty()) res.set(http::field::sec_websocket_protocol, chosen);
      }));
      error_code ec;
      co_await ws.async_accept(req, kAwait(ec));
      if (ec) co_return;
      auto io =
          std::make_shared<stream::WebSocketChannelIo<websocket::stream<S>>>(std::move(ws), proto);
      io->SetIdleTimeout(options_.idle_timeout);
      io->Start();
      if (remote_command) {
        const std::shared_ptr<ChannelIo> channels = io;
        co_await RunRemoteCommand(channels, proto, *request, /*spdy=*/nullptr);
      } else {
        co_await RunWebSocketPortForward(*io, std::get<v1::PortForwardRequest>(*request));
      }
      co_return;
    }
    if (!absl::EqualsIgnoreCase(std::string(req[http::field::upgrade]), "SPDY/3.1")) {
      const std::string body = "unable to upgrade: a SPDY/3.1 or WebSocket upgrade is required\n";
      co_await Respond(s, http::status::bad_request, body, kNoHeaders);
      co_return;
    }
    std::vector<std::string> offered =
        stream::SplitProtocols(HeaderValues(req, "X-Stream-Protocol-Version"));
    std::vector<std::string> supported =
        remote_command
            ? std::vector<std::string>{stream::kRemoteCommandV5, stream::kRemoteCommandV4,
                                       stream::kRemoteCommandV3, stream::kRemoteCommandV2,
                                       stream::kRemoteCommandV1}
            : std::vector<std::string>{stream::kPortForwardV1};
    if (offered.empty()) {
      const std::string body = "unable to upgrade: X-Stream-Protocol-Version is required\n";
      co_await Respond(s, http::status::bad_request, body, kNoHeaders);
      co_return;
    }
    std::optional<std::string> chosen = stream::Negotiate(offered, supported);
    if (!chosen) {
      Headers accepted;
      for (const std::string& p : supported) {
        accepted.emplace_back("X-Accepted-Stream-Protocol-Versions", p);
      }
      const std::string body = absl::StrCat(
          "unable to upgrade: unable to negotiate protocol: client supports [",
          absl::StrJoin(offered, " "), "], server accepts [", absl::StrJoin(supported, " "), "]\n");
      co_await Respond(s, http::status::forbidden, body, accepted);
      co_return;
    }
    {
      std::string response = absl::StrCat(
          "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
          "X-Stream-Protocol-Version: ",
          *chosen, "\r\n\r\n");
      error_code ec;
      co_await asio::async_write(s, asio::buffer(response), kAwait(ec));
      if (ec) co_return;
    }
    auto bytes = buffer.cdata();
    std::string leftover(static_cast<const char*>(bytes.data()), bytes.size());
    auto conn = std::make_shared<stream::SpdyConnection>(
        io_.get_executor(), std::make_unique<stream::AsioByteStream<S>>(std::move(s)),
        /*server=*/true, std::move(leftover));
    conn->SetIdleTimeout(options_.idle_timeout);
    conn->Start();
    if (remote_command) {
      // v5 over SPDY is v4: the close signal is WebSocket's (half-close is a FIN here).
      stream::RemoteCommandProtocol proto = *stream::ParseRemoteCommandProtocol(
          *chosen == stream::kRemoteCommandV5 ? stream::kRemoteCommandV4 : *chosen);
      co_await RunRemoteCommand(*conn, proto, *request);
    } else {
      co_await RunSpdyPortForward(conn, std::get<v1::PortForwardRequest>(*request));
    }
  }

  // ---- exec / attach ---------------------------------------------------------------------

  struct RemoteOptions {
    bool stdin = false, stdout = false, stderr = false, tty = false;
  };

  static RemoteOptions OptionsOf(const TokenCache::Request& r) {
    RemoteOptions o;
    if (const auto* e = std::get_if<v1::ExecRequest>(&r)) {
      o = {e->stdin(), e->stdout(), e->stderr(), e->tty()};
    } else if (const auto* a = std::get_if<v1::AttachRequest>(&r)) {
      o = {a->stdin(), a->stdout(), a->stderr(), a->tty()};
    }
    if (o.tty) o.stderr = false;  // with a terminal, stdout carries both
    return o;
  }

  // SPDY: the client opens one stream per channel it wants; the session starts once the
  // expected ones are there (error, and stdin/stdout/stderr as requested, and resize with a
  // TTY from v3 on), as in the kubelet's server.
  awaitable<void> RunRemoteCommand(stream::SpdyConnection& conn_ref,
                                   const stream::RemoteCommandProtocol& proto,
                                   const TokenCache::Request& request) {
    std::shared_ptr<stream::SpdyConnection> conn = conn_ref.shared_from_this();
    RemoteOptions o = OptionsOf(request);
    auto spdy_io = std::make_shared<stream::SpdyChannelIo>(conn);
    stream::SpdyChannelIo* io = spdy_io.get();
    size_t expected = 1 + (o.stdin ? 1 : 0) + (o.stdout ? 1 : 0) + (o.stderr ? 1 : 0) +
                      (o.tty && proto.resize ? 1 : 0);
    // v1 clients always create the stdin stream... and may create more than needed: take
    // every named stream; wait until the expected ones are there.
    auto timed_out = std::make_shared<bool>(false);
    asio::steady_timer timer(io_, absl::ToChronoNanoseconds(options_.stream_creation_timeout));
    timer.async_wait([timed_out, conn](error_code ec) {
      if (!ec) {
        *timed_out = true;
        conn->Abort();
      }
    });
    size_t have = 0;
    while (have < expected) {
      std::shared_ptr<stream::SpdyStream> s = co_await conn->Accept();
      if (!s) break;
      s->Reply();
      std::string type = s->Header(stream::kStreamTypeHeader);
      std::optional<uint8_t> ch;
      if (type == stream::kStreamTypeStdin) ch = stream::kStdin;
      if (type == stream::kStreamTypeStdout) ch = stream::kStdout;
      if (type == stream::kStreamTypeStderr) ch = stream::kStderr;
      if (type == stream::kStreamTypeError) ch = stream::kError;
      if (type == stream::kStreamTypeResize) ch = stream::kResize;
      if (!ch) {
        s->Reset(stream::spdy::kProtocolError);
        continue;
      }
      if (!io->Has(*ch)) ++have;
      io->Bind(*ch, s);
    }
    timer.cancel();
    if (have < expected) {
      if (*timed_out) {
        log::Warn("streaming: the client did not open its streams in time",
                  {{"timeout", absl::FormatDuration(options_.stream_creation_timeout)}});
      }
      conn->Abort();
      co_return;
    }
    const IoPtr channels = spdy_io;
    co_await RunSession(channels, proto, request);
  }

  awaitable<void> RunRemoteCommand(const std::shared_ptr<ChannelIo>& io,
                                   const stream::RemoteCommandProtocol& proto,
                                   const TokenCache::Request& request, std::nullptr_t) {
    RemoteOptions o = OptionsOf(request);
    // The kubelet's WebSocket server tells the client the connection is established with an
    // empty message on the lowest channel it writes.
    uint8_t first = o.stdout ? stream::kStdout : o.stderr ? stream::kStderr : stream::kError;
    if (!co_await io->Send(first, "")) co_return;
    co_await RunSession(io, proto, request);
  }

  struct Pump {
    bool finished = false;
    bool reading = false;
    std::chrono::steady_clock::time_point since;
  };

  // What the coroutines of one exec/attach share; each holds it (and the channels), so none
  // outlives what it uses, whichever ends first.
  struct Session {
    explicit Session(const asio::any_io_executor& ex) : changed(ex) {}
    stream::Event changed;
    Pump out_state, err_state;
    bool done = false;
    std::unique_ptr<asio::posix::stream_descriptor> out, err, in, done_fd;
    UniqueFd tty;
    UniqueFd stdin_end;                // shut down (write side) when the client's stdin ends
    bool detach_at_stdin_end = false;  // ... both sides
  };
  using SessionPtr = std::shared_ptr<Session>;
  using IoPtr = std::shared_ptr<ChannelIo>;

  // Copies a target's output descriptor to a channel until EOF (EIO on a pty whose other side
  // is gone counts as EOF), or until the descriptor is closed under it.
  awaitable<void> PumpOut(SessionPtr s, IoPtr io, bool is_err, uint8_t channel) {
    asio::posix::stream_descriptor& d = is_err ? *s->err : *s->out;
    Pump& state = is_err ? s->err_state : s->out_state;
    std::string buf(kPumpBuffer, '\0');
    for (;;) {
      state.reading = true;
      state.since = std::chrono::steady_clock::now();
      error_code ec;
      size_t n = co_await d.async_read_some(asio::buffer(buf), kAwait(ec));
      state.reading = false;
      if (ec || n == 0) break;
      if (!co_await io->Send(channel, absl::string_view(buf.data(), n))) break;
    }
    state.finished = true;
    s->changed.NotifyAll();
  }

  awaitable<void> PumpIn(SessionPtr s, IoPtr io, bool close_at_eof) {
    for (;;) {
      std::optional<std::string> data = co_await io->Receive(stream::kStdin);
      if (!data) break;
      if (!s->in || !s->in->is_open()) continue;
      error_code ec;
      co_await asio::async_write(*s->in, asio::buffer(*data), kAwait(ec));
      if (ec) s->in->close(ec);
    }
    if (s->in && close_at_eof) {
      error_code ignored;
      s->in->close(ignored);
    }
    if (s->stdin_end) ::shutdown(s->stdin_end.get(), s->detach_at_stdin_end ? SHUT_RDWR : SHUT_WR);
  }

  awaitable<void> PumpResize(SessionPtr s, IoPtr io) {
    std::string pending;
    for (;;) {
      std::optional<std::string> data = co_await io->Receive(stream::kResize);
      if (!data) co_return;
      pending += *data;
      absl::StatusOr<std::vector<stream::TerminalSize>> sizes = stream::TakeTerminalSizes(&pending);
      if (!sizes.ok()) {
        log::Warn("streaming: bad resize message",
                  {{"error", std::string(sizes.status().message())}});
        co_return;
      }
      for (const stream::TerminalSize& size : *sizes) {
        if (!s->tty) continue;
        struct winsize ws {};
        ws.ws_col = size.width;
        ws.ws_row = size.height;
        (void)::ioctl(s->tty.get(), TIOCSWINSZ, &ws);
      }
    }
  }

  // Sends what can be read from `fd` now (until it would block, ends, or fails: EIO is a
  // terminal whose other side is gone).
  awaitable<void> DrainRest(const IoPtr& io, int fd, uint8_t channel) {
    if (fd < 0) co_return;
    std::string buf(kPumpBuffer, '\0');
    // (The pumps' dups made the shared file description non-blocking already.)
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) co_return;
      const absl::string_view data(buf.data(), static_cast<size_t>(n));
      if (!co_await io->Send(channel, data)) co_return;
    }
  }

  awaitable<void> WatchDone(SessionPtr s) {
    error_code ec;
    co_await s->done_fd->async_wait(asio::posix::stream_descriptor::wait_read, kAwait(ec));
    if (!ec) s->done = true;
    s->changed.NotifyAll();
  }

  // Writes how it ended on the error channel and closes the connection.
  awaitable<void> Finish(const IoPtr& io, const stream::RemoteCommandProtocol& proto,
                         const absl::Status& error, const std::optional<int>& exit_code) {
    std::string message;
    if (!error.ok()) {
      message = proto.json_status ? stream::FailureStatusJson(error.message())
                                  : std::string(error.message());
    } else if (exit_code && *exit_code != 0) {
      message = proto.json_status
                    ? stream::ExitCodeStatusJson(*exit_code)
                    : absl::StrCat("command terminated with non-zero exit code: exit status ",
                                   *exit_code);
    } else if (proto.json_status) {
      message = stream::SuccessStatusJson();
    }
    if (!message.empty()) (void)co_await io->Send(stream::kError, message);
    for (uint8_t ch : {stream::kStdout, stream::kStderr, stream::kError}) io->CloseSend(ch);
    io->Close();
  }

  awaitable<void> RunSession(const IoPtr& io, const stream::RemoteCommandProtocol& proto,
                             const TokenCache::Request& request) {
    RemoteOptions o = OptionsOf(request);
    const bool is_exec = std::holds_alternative<v1::ExecRequest>(request);
    // (if/else, not ?: — g++ 12 mishandles temporaries of co_await inside a conditional.)
    absl::StatusOr<std::unique_ptr<StreamTarget>> started;
    if (is_exec) {
      auto start = [&] { return runtime_->StartExec(std::get<v1::ExecRequest>(request)); };
      started = co_await OnPool(start);
    } else {
      auto start = [&] { return runtime_->StartAttach(std::get<v1::AttachRequest>(request)); };
      started = co_await OnPool(start);
    }
    if (!started.ok()) {
      const std::optional<int> no_code;
      co_await Finish(io, proto, started.status(), no_code);
      co_return;
    }
    TargetHolder holder{std::move(*started)};
    StreamTarget& t = *holder.target;
    auto ex = io_.get_executor();
    auto s = std::make_shared<Session>(ex);
    s->out = o.stdout ? Wrap(ex, t.out.get()) : nullptr;
    // With a terminal, `err` carries only the runtime's own messages: they go to stdout.
    s->err = (o.stderr || (o.tty && o.stdout)) ? Wrap(ex, t.err.get()) : nullptr;
    // The session owns the stdin descriptor: closing it at the client's EOF is the process'
    // EOF (a dup would leave the target's copy open).
    if (o.stdin && t.in) {
      s->in = std::make_unique<asio::posix::stream_descriptor>(ex, t.in.release());
      error_code ignored;
      s->in->non_blocking(true, ignored);
    }
    s->done_fd = Wrap(ex, t.done.get());
    if (t.tty) s->tty.reset(::fcntl(t.tty.get(), F_DUPFD_CLOEXEC, 3));
    if (o.stdin && t.done_takes_stdin_end) {
      s->stdin_end.reset(::fcntl(t.done.get(), F_DUPFD_CLOEXEC, 3));
      s->detach_at_stdin_end = t.detach_at_stdin_end;
    }
    s->out_state.finished = !s->out;
    s->err_state.finished = !s->err;
    if (s->out) asio::co_spawn(ex, PumpOut(s, io, false, stream::kStdout), asio::detached);
    if (s->err) {
      asio::co_spawn(ex, PumpOut(s, io, true, o.tty ? stream::kStdout : stream::kStderr),
                     asio::detached);
    }
    // Stdin is read even when the target takes none, so that the client's data is consumed.
    asio::co_spawn(ex, PumpIn(s, io, !o.tty), asio::detached);
    if (o.tty && proto.resize) asio::co_spawn(ex, PumpResize(s, io), asio::detached);
    if (s->done_fd) asio::co_spawn(ex, WatchDone(s), asio::detached);
    // Wake up now and then to notice a vanished client and quiet pipes.
    bool client_gone = false;
    std::optional<std::chrono::steady_clock::time_point> done_at;
    for (;;) {
      if (io->closed()) {
        client_gone = true;
        break;
      }
      const bool outputs_done = s->out_state.finished && s->err_state.finished;
      if (outputs_done && (s->done || !s->done_fd)) break;
      if (s->done && !outputs_done) {
        // Exited: what is left in the pipes is forwarded; a pipe that stays silent (counted from
        // the exit at the earliest) is held by something else and is let go.
        const auto now = std::chrono::steady_clock::now();
        if (!done_at) done_at = now;
        auto quiet = [&](const Pump& p) {
          return p.finished || (p.reading && now - std::max(p.since, *done_at) >= kDrainQuiet);
        };
        if (quiet(s->out_state) && quiet(s->err_state)) break;
      }
      co_await s->changed.WaitFor(std::chrono::milliseconds(50));
    }
    // Stop the pumps (closing our dups cancels their pending reads and writes).
    error_code ignored;
    for (auto* d : {s->out.get(), s->err.get(), s->in.get(), s->done_fd.get()}) {
      if (d) d->close(ignored);
    }
    if (client_gone) {
      auto cancel = [&t] {
        t.Cancel();
        return 0;
      };
      co_await OnPool(cancel);
      holder.finished = true;
      co_return;
    }
    std::optional<int> code;
    auto finish = [&t] { return t.Finish(); };
    if (s->done || !s->done_fd) code = co_await OnPool(finish);
    holder.finished = true;
    // The output pumps end on their closed descriptors before the status goes out after them.
    while (!(s->out_state.finished && s->err_state.finished)) co_await s->changed.Wait();
    // What the process wrote last may still sit in the pipe or the terminal, not yet seen by a
    // pump when it was stopped: read it without waiting, in order, after what they sent.
    if (o.stdout) co_await DrainRest(io, t.out.get(), stream::kStdout);
    if (o.stderr || (o.tty && o.stdout)) {
      co_await DrainRest(io, t.err.get(), o.tty ? stream::kStdout : stream::kStderr);
    }
    if (!is_exec) code.reset();  // attach reports no exit code
    const absl::Status ok;
    co_await Finish(io, proto, ok, code);
  }

  // ---- port forward ------------------------------------------------------------------------

  // One port: a connection in the pod's network namespace, copied both ways with the data
  // channel; a failure to connect is reported on the port's error channel (the other ports go
  // on). The client's end of its data is passed on as a half-close, and the port is done when
  // the pod closes its side (then the client has a second to finish its own, as containerd
  // gives it), or when the connection ends.
  awaitable<void> Forward(ChannelIo& io, uint8_t data_ch, uint8_t error_ch,
                          const v1::PortForwardRequest& request, int32_t port, bool json_errors) {
    bool allowed = request.port().empty() || std::find(request.port().begin(), request.port().end(),
                                                       port) != request.port().end();
    absl::StatusOr<UniqueFd> fd = absl::PermissionDeniedError(
        absl::StrCat("port ", port, " was not in the PortForward request"));
    if (allowed) {
      auto dial = [&] { return runtime_->DialPort(request.pod_sandbox_id(), port); };
      fd = co_await OnPool(dial);
    }
    if (!fd.ok()) {
      std::string message =
          absl::StrCat("error forwarding port ", port, " to pod ", request.pod_sandbox_id(),
                       ", uid : ", fd.status().message());
      // SPDY: the kubelet's current JSON form (older clients treat any text as fatal, which
      // this is); WebSocket: plain text, as the kubelet writes it there.
      if (json_errors) {
        message = nlohmann::json({{"closeConnection", true}, {"message", message}}).dump() + "\n";
      }
      (void)co_await io.Send(error_ch, message);
      io.CloseSend(error_ch);
      io.Abandon(data_ch);
      co_return;
    }
    auto ex = io_.get_executor();
    tcp::socket sock(ex);
    error_code ec;
    sock.assign(tcp::v4(), fd->release(), ec);
    if (ec) co_return;
    stream::Event changed(ex);
    bool up_done = false, down_done = false;
    // client -> pod
    auto up = [&]() -> awaitable<void> {
      for (;;) {
        std::optional<std::string> data = co_await io.Receive(data_ch);
        if (!data) break;
        error_code wec;
        co_await asio::async_write(sock, asio::buffer(*data), kAwait(wec));
        if (wec) break;
      }
      error_code ignored;
      sock.shutdown(tcp::socket::shutdown_send, ignored);
      up_done = true;
      changed.NotifyAll();
    };
    // pod -> client
    auto down = [&]() -> awaitable<void> {
      std::string buf(kPumpBuffer, '\0');
      for (;;) {
        error_code rec;
        size_t n = co_await sock.async_read_some(asio::buffer(buf), kAwait(rec));
        if (rec || n == 0) break;
        if (!co_await io.Send(data_ch, absl::string_view(buf.data(), n))) break;
      }
      io.CloseSend(data_ch);
      down_done = true;
      changed.NotifyAll();
    };
    asio::co_spawn(ex, up, asio::detached);
    asio::co_spawn(ex, down, asio::detached);
    std::optional<std::chrono::steady_clock::time_point> grace_until;
    while (!(up_done && down_done)) {
      const auto now = std::chrono::steady_clock::now();
      if (down_done && !grace_until) grace_until = now + std::chrono::seconds(1);
      if (io.closed() || (grace_until && now >= *grace_until)) {
        // Both pumps are released: the socket's read fails, the channel's receive ends.
        error_code ignored;
        sock.close(ignored);
        io.Abandon(data_ch);
      }
      co_await changed.WaitFor(std::chrono::milliseconds(200));
    }
    io.CloseSend(error_ch);
  }

  awaitable<void> RunSpdyPortForward(const std::shared_ptr<stream::SpdyConnection>& conn,
                                     const v1::PortForwardRequest& request) {
    struct Pair {
      std::shared_ptr<stream::SpdyStream> data, error;
    };
    std::map<std::string, Pair> pairs;
    auto active = std::make_shared<int>(0);
    for (;;) {
      std::shared_ptr<stream::SpdyStream> s = co_await conn->Accept();
      if (!s) break;
      s->Reply();
      std::string type = s->Header(stream::kStreamTypeHeader);
      std::string id = s->Header(stream::kRequestIdHeader);
      if (id.empty()) {
        // Clients before requestID: a data stream follows its error stream.
        id = std::to_string(type == stream::kStreamTypeData ? s->id() - 2 : s->id());
      }
      Pair& p = pairs[id];
      if (type == stream::kStreamTypeData) {
        p.data = s;
      } else if (type == stream::kStreamTypeError) {
        p.error = s;
      } else {
        s->Reset(stream::spdy::kProtocolError);
        continue;
      }
      if (!p.data || !p.error) continue;
      Pair ready = p;
      pairs.erase(id);
      int32_t port = 0;
      if (!absl::SimpleAtoi(ready.data->Header(stream::kPortHeader), &port) || port <= 0 ||
          port > 65535) {
        const std::string message =
            absl::StrCat("invalid port header \"", ready.data->Header(stream::kPortHeader), "\"");
        (void)co_await ready.error->Write(message);
        ready.error->CloseWrite();
        ready.data->Reset(stream::spdy::kProtocolError);
        continue;
      }
      ++*active;
      asio::co_spawn(
          io_,
          [this, conn, ready, request, port, active]() -> awaitable<void> {
            stream::SpdyChannelIo io(conn);
            io.Bind(0, ready.data);
            io.Bind(1, ready.error);
            co_await Forward(io, 0, 1, request, port, /*json_errors=*/true);
            --*active;
          },
          asio::detached);
    }
    conn->Close();
  }

  awaitable<void> RunWebSocketPortForward(ChannelIo& io, const v1::PortForwardRequest& request) {
    if (request.port().empty()) {
      io.Close();
      co_return;
    }
    auto ex = io_.get_executor();
    stream::Event changed(ex);
    int running = request.port_size();
    for (int i = 0; i < request.port_size(); ++i) {
      int32_t port = request.port(i);
      if (port <= 0 || port > 65535) {
        --running;
        continue;
      }
      uint8_t data_ch = static_cast<uint8_t>(2 * i), error_ch = static_cast<uint8_t>(2 * i + 1);
      std::string prefix = stream::EncodePortPrefix(static_cast<uint16_t>(port));
      (void)co_await io.Send(data_ch, prefix);
      (void)co_await io.Send(error_ch, prefix);
      asio::co_spawn(
          ex,
          [this, &io, &request, &running, &changed, data_ch, error_ch, port]() -> awaitable<void> {
            co_await Forward(io, data_ch, error_ch, request, port, /*json_errors=*/false);
            --running;
            changed.NotifyAll();
          },
          asio::detached);
    }
    // Every port's coroutine uses this frame: wait for all (they end when the connection does).
    while (running > 0) co_await changed.Wait();
    io.Close();
  }

  const Headers kNoHeaders;
  StreamingOptions options_;
  StreamingRuntime* runtime_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::thread_pool pool_;
  std::optional<asio::ssl::context> tls_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
  // Connections being served, and accepted + ended (changed on the I/O thread, read by any).
  std::atomic<int> active_{0};
  std::atomic<int64_t> activity_{0};
  std::string base_url_;
  TokenCache tokens_;
};

absl::StatusOr<std::unique_ptr<StreamingServer>> StreamingServer::Start(
    const StreamingOptions& options, StreamingRuntime* runtime) {
  auto impl = std::make_unique<Impl>(options, runtime);
  RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<StreamingServer>(new StreamingServer(std::move(impl)));
}

StreamingServer::StreamingServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StreamingServer::~StreamingServer() {
  Stop();
}
void StreamingServer::Stop() {
  impl_->Stop();
}
std::string StreamingServer::base_url() const {
  return impl_->base_url();
}
int64_t StreamingServer::Activity(bool* busy) const {
  return impl_->Activity(busy);
}

absl::StatusOr<std::string> StreamingServer::Url(const v1::ExecRequest& request) {
  return impl_->Issue(Kind::kExec, request);
}
absl::StatusOr<std::string> StreamingServer::Url(const v1::AttachRequest& request) {
  return impl_->Issue(Kind::kAttach, request);
}
absl::StatusOr<std::string> StreamingServer::Url(const v1::PortForwardRequest& request) {
  return impl_->Issue(Kind::kPortForward, request);
}

}  // namespace berth::cri

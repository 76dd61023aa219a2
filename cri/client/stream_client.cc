#include "cri/client/stream_client.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <future>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "cri/stream/asio.h"
#include "cri/stream/channel_io.h"
#include "cri/stream/channels.h"
#include "cri/stream/spdy_session.h"
#include "nlohmann/json.hpp"

namespace berth::cri::client {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using stream::awaitable;
using stream::ChannelIo;
using stream::error_code;
using stream::kAwait;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kStreamCreationTimeout = absl::Seconds(30);

struct Url {
  std::string host, port, target;
  bool tls = false;  // https
};

absl::StatusOr<Url> ParseUrl(const std::string& url) {
  absl::string_view rest = url;
  Url u;
  if (absl::ConsumePrefix(&rest, "https://")) {
    u.tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming URL ", url, ": not http:// or https://"));
  }
  size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  u.target = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  size_t colon = hostport.rfind(':');
  if (colon == absl::string_view::npos || hostport.back() == ']') {
    u.host = std::string(hostport);
    u.port = u.tls ? "443" : "80";
  } else {
    u.host = std::string(hostport.substr(0, colon));
    u.port = std::string(hostport.substr(colon + 1));
  }
  if (absl::StartsWith(u.host, "[") && absl::EndsWith(u.host, "]")) {
    u.host = u.host.substr(1, u.host.size() - 2);
  }
  if (u.host.empty())
    return absl::InvalidArgumentError(absl::StrCat("streaming URL ", url, ": no host"));
  return u;
}

// The TLS client context for a CA bundle ("": the server's certificate is not verified, as
// crictl does: the URL came over the runtime's own root-only socket and its token is single
// use). Kept for the process' lifetime; a process needs one or two.
absl::StatusOr<asio::ssl::context*> TlsContext(const std::string& ca_file) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* contexts = new std::map<std::string, std::unique_ptr<asio::ssl::context>>;
  absl::MutexLock lock(&mu);
  auto it = contexts->find(ca_file);
  if (it != contexts->end()) return it->second.get();
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1,
                   ec);
  if (ca_file.empty()) {
    ctx->set_verify_mode(asio::ssl::verify_none, ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("CA file ", ca_file, ": ", ec.message()));
    }
    ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  }
  if (ec) return absl::InternalError(absl::StrCat("TLS context: ", ec.message()));
  asio::ssl::context* raw = ctx.get();
  contexts->emplace(ca_file, std::move(ctx));
  return raw;
}

using TlsSocket = asio::ssl::stream<tcp::socket>;

// A terminal in raw mode for the session's lifetime.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::isatty(fd) && ::tcgetattr(fd, &saved_) == 0) {
      struct termios raw = saved_;
      ::cfmakeraw(&raw);
      active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::optional<stream::TerminalSize> SizeOf(int fd) {
  struct winsize ws {};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return std::nullopt;
  return stream::TerminalSize{ws.ws_col, ws.ws_row};
}

// Connects and upgrades; the result is the channels and the protocol the server chose.
struct Upgraded {
  std::shared_ptr<ChannelIo> io;
  stream::RemoteCommandProtocol protocol;
  std::string protocol_name;
};

awaitable<absl::StatusOr<tcp::socket>> Connect(const Url& u) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  error_code ec;
  auto endpoints = co_await resolver.async_resolve(u.host, u.port, kAwait(ec));
  if (ec) {
    co_return absl::UnavailableError(
        absl::StrCat("resolve ", u.host, ":", u.port, ": ", ec.message()));
  }
  tcp::socket socket(ex);
  co_await asio::async_connect(socket, endpoints, kAwait(ec));
  if (ec) {
    co_return absl::UnavailableError(
        absl::StrCat("connect to ", u.host, ":", u.port, ": ", ec.message()));
  }
  socket.set_option(tcp::no_delay(true), ec);
  co_return std::move(socket);
}

// The TLS handshake over a connected socket (moved into the result), checking the server's
// name when a CA was given.
awaitable<absl::StatusOr<TlsSocket>> Handshake(tcp::socket& socket, const Url& u,
                                               const std::string& ca_file) {
  absl::StatusOr<asio::ssl::context*> ctx = TlsContext(ca_file);
  if (!ctx.ok()) co_return ctx.status();
  TlsSocket tls(std::move(socket), **ctx);
  error_code ec;
  asio::ip::make_address(u.host, ec);
  const bool is_name = static_cast<bool>(ec);
  // SNI, for a name only (RFC 6066 forbids addresses).
  if (is_name && !SSL_set_tlsext_host_name(tls.native_handle(), u.host.c_str())) {
    co_return absl::InternalError("TLS: cannot set the server name");
  }
  if (!ca_file.empty()) tls.set_verify_callback(asio::ssl::host_name_verification(u.host));
  ec.clear();
  co_await tls.async_handshake(asio::ssl::stream_base::client, kAwait(ec));
  if (ec) {
    co_return absl::UnavailableError(
        absl::StrCat("TLS handshake with ", u.host, ":", u.port, ": ", ec.message()));
  }
  co_return std::move(tls);
}

// Connects to the URL's server (through TLS for https) and returns what `upgrade` makes of the
// stream: the TCP socket, or the TLS stream over it.
template <typename R, typename Upgrade>
awaitable<absl::StatusOr<R>> Connected(const Url& u, const std::string& ca_file, Upgrade& upgrade) {
  absl::StatusOr<tcp::socket> socket = co_await Connect(u);
  if (!socket.ok()) co_return socket.status();
  if (!u.tls) co_return co_await upgrade(*socket);
  absl::StatusOr<TlsSocket> tls = co_await Handshake(*socket, u, ca_file);
  if (!tls.ok()) co_return tls.status();
  co_return co_await upgrade(*tls);
}

// SPDY: POST with Upgrade: SPDY/3.1 and the protocols we speak, in preference order.
using SpdyUpgrade = std::pair<std::shared_ptr<stream::SpdyConnection>, std::string>;

template <typename S>
awaitable<absl::StatusOr<SpdyUpgrade>> UpgradeSpdyOn(S& socket, const Url& u,
                                                     const std::vector<std::string>& protocols) {
  auto ex = co_await asio::this_coro::executor;
  http::request<http::empty_body> req{http::verb::post, u.target, 11};
  req.set(http::field::host, absl::StrCat(u.host, ":", u.port));
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "SPDY/3.1");
  for (const std::string& p : protocols) req.insert("X-Stream-Protocol-Version", p);
  req.prepare_payload();
  error_code ec;
  co_await http::async_write(socket, req, kAwait(ec));
  if (ec) co_return absl::UnavailableError(absl::StrCat("send the upgrade: ", ec.message()));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.skip(false);
  parser.body_limit(64 << 10);
  // A 101 has no body: read only the header, whatever follows is SPDY.
  co_await http::async_read_header(socket, buffer, parser, kAwait(ec));
  if (ec)
    co_return absl::UnavailableError(absl::StrCat("read the upgrade response: ", ec.message()));
  if (parser.get().result() != http::status::switching_protocols) {
    if (!parser.is_done()) co_await http::async_read(socket, buffer, parser, kAwait(ec));
    co_return absl::FailedPreconditionError(
        absl::StrCat("the streaming server refused the upgrade: ", parser.get().result_int(), " ",
                     std::string(parser.get().reason()), ": ",
                     std::string(absl::StripAsciiWhitespace(parser.get().body()))));
  }
  std::string chosen(parser.get()["X-Stream-Protocol-Version"]);
  auto bytes = buffer.cdata();
  std::string leftover(static_cast<const char*>(bytes.data()), bytes.size());
  auto conn = std::make_shared<stream::SpdyConnection>(
      ex, std::make_unique<stream::AsioByteStream<S>>(std::move(socket)),
      /*server=*/false, std::move(leftover));
  conn->Start();
  co_return std::make_pair(conn, chosen);
}

awaitable<absl::StatusOr<SpdyUpgrade>> UpgradeSpdy(const Url& u,
                                                   const std::vector<std::string>& protocols,
                                                   const std::string& ca_file) {
  auto upgrade = [&](auto& stream) { return UpgradeSpdyOn(stream, u, protocols); };
  co_return co_await Connected<SpdyUpgrade>(u, ca_file, upgrade);
}

template <typename S>
awaitable<absl::StatusOr<Upgraded>> UpgradeWebSocketOn(S& socket, const Url& u,
                                                       const std::vector<std::string>& protocols) {
  websocket::stream<S> ws(std::move(socket));
  std::string offer = absl::StrJoin(protocols, ", ");
  ws.set_option(websocket::stream_base::decorator([offer](websocket::request_type& req) {
    req.set(http::field::sec_websocket_protocol, offer);
  }));
  websocket::response_type res;
  error_code ec;
  co_await ws.async_handshake(res, absl::StrCat(u.host, ":", u.port), u.target, kAwait(ec));
  if (ec) {
    co_return absl::FailedPreconditionError(
        absl::StrCat("WebSocket upgrade: ", ec.message(),
                     res.result_int() != 0 ? absl::StrCat(" (HTTP ", res.result_int(), ")") : ""));
  }
  Upgraded up;
  up.protocol_name = std::string(res[http::field::sec_websocket_protocol]);
  std::optional<stream::RemoteCommandProtocol> p =
      stream::ParseRemoteCommandProtocol(up.protocol_name);
  if (p) up.protocol = *p;
  auto io = std::make_shared<stream::WebSocketChannelIo<websocket::stream<S>>>(std::move(ws),
                                                                               up.protocol);
  io->Start();
  up.io = io;
  co_return up;
}

awaitable<absl::StatusOr<Upgraded>> UpgradeWebSocket(const Url& u,
                                                     const std::vector<std::string>& protocols,
                                                     const std::string& ca_file) {
  auto upgrade = [&](auto& stream) { return UpgradeWebSocketOn(stream, u, protocols); };
  co_return co_await Connected<Upgraded>(u, ca_file, upgrade);
}

// `context` is the io_context this runs on (a stdin reader thread may need it longer).
awaitable<absl::StatusOr<int>> RemoteCommand(const RemoteCommandOptions& o,
                                             const std::shared_ptr<asio::io_context>& context) {
  auto ex = co_await asio::this_coro::executor;
  absl::StatusOr<Url> u = ParseUrl(o.url);
  if (!u.ok()) co_return u.status();
  const bool tty = o.tty;
  const bool want_stderr = o.stderr && !tty;
  Upgraded up;
  if (o.transport == Transport::kSpdy) {
    // (Named, not a braced list inside co_await: g++ 12 cannot put that array in the frame.)
    std::vector<std::string> offer = {stream::kRemoteCommandV4, stream::kRemoteCommandV3,
                                      stream::kRemoteCommandV2, stream::kRemoteCommandV1};
    auto r = co_await UpgradeSpdy(*u, offer, o.tls_ca_file);
    if (!r.ok()) co_return r.status();
    std::shared_ptr<stream::SpdyConnection> conn = r->first;
    std::string chosen = r->second;
    std::optional<stream::RemoteCommandProtocol> p = stream::ParseRemoteCommandProtocol(chosen);
    if (!p) {
      conn->Abort();
      co_return absl::FailedPreconditionError(
          absl::StrCat("the server chose an unknown protocol \"", chosen, "\""));
    }
    up.protocol = *p;
    up.protocol_name = chosen;
    auto io = std::make_shared<stream::SpdyChannelIo>(conn);
    // The order client-go opens them in: error first.
    std::vector<std::pair<uint8_t, std::string>> wanted;
    wanted.emplace_back(stream::kError, std::string(stream::kStreamTypeError));
    if (o.stdin) wanted.emplace_back(stream::kStdin, std::string(stream::kStreamTypeStdin));
    if (o.stdout) wanted.emplace_back(stream::kStdout, std::string(stream::kStreamTypeStdout));
    if (want_stderr) wanted.emplace_back(stream::kStderr, std::string(stream::kStreamTypeStderr));
    if (tty && up.protocol.resize) {
      wanted.emplace_back(stream::kResize, std::string(stream::kStreamTypeResize));
    }
    for (size_t i = 0; i < wanted.size(); ++i) {
      const uint8_t ch = wanted[i].first;
      const std::string type = wanted[i].second;
      stream::spdy::Headers headers = {{std::string(stream::kStreamTypeHeader), type}};
      std::shared_ptr<stream::SpdyStream> s = co_await conn->Open(headers, kStreamCreationTimeout);
      if (!s) {
        conn->Abort();
        co_return absl::UnavailableError(
            absl::StrCat("the streaming server did not accept the ", type, " stream",
                         conn->status().ok() ? "" : absl::StrCat(": ", conn->status().message())));
      }
      io->Bind(ch, s);
    }
    up.io = io;
  } else {
    std::vector<std::string> offer = {stream::kRemoteCommandV5, stream::kRemoteCommandV4,
                                      stream::kRemoteCommandV1};
    auto r = co_await UpgradeWebSocket(*u, offer, o.tls_ca_file);
    if (!r.ok()) co_return r.status();
    up = *std::move(r);
  }
  ChannelIo& io = *up.io;
  stream::Event changed(ex);
  int open = 0;
  auto pump = [&](uint8_t ch, int fd) -> awaitable<void> {
    for (;;) {
      std::optional<std::string> data = co_await io.Receive(ch);
      if (!data) break;
      if (o.output) {
        o.output(ch, *data);
      } else if (fd >= 0 && !WriteAll(fd, *data)) {
        fd = -1;
      }
    }
    --open;
    changed.NotifyAll();
  };
  std::string error_text;
  auto collect = [&]() -> awaitable<void> {
    for (;;) {
      std::optional<std::string> data = co_await io.Receive(stream::kError);
      if (!data) break;
      error_text += *data;
    }
    --open;
    changed.NotifyAll();
  };
  if (o.stdout) {
    ++open;
    asio::co_spawn(ex, pump(stream::kStdout, o.out_fd), asio::detached);
  }
  if (want_stderr) {
    ++open;
    asio::co_spawn(ex, pump(stream::kStderr, o.err_fd), asio::detached);
  }
  ++open;
  asio::co_spawn(ex, collect(), asio::detached);

  std::optional<RawTerminal> raw;
  std::optional<asio::signal_set> winch;
  if (tty && o.raw_terminal) {
    raw.emplace(o.in_fd);
    if (up.protocol.resize) {
      if (std::optional<stream::TerminalSize> size = SizeOf(o.in_fd)) {
        const std::string message = stream::EncodeTerminalSize(*size);
        (void)co_await io.Send(stream::kResize, message);
      }
      winch.emplace(ex, SIGWINCH);
      std::function<void(error_code, int)> on_winch;
      on_winch = [&](error_code ec, int) {
        if (ec) return;
        if (std::optional<stream::TerminalSize> size = SizeOf(o.in_fd)) {
          asio::co_spawn(
              ex,
              [&io, s = *size]() -> awaitable<void> {
                const std::string message = stream::EncodeTerminalSize(s);
                (void)co_await io.Send(stream::kResize, message);
              },
              asio::detached);
        }
        winch->async_wait(on_winch);
      };
      winch->async_wait(on_winch);
    }
  }
  // stdin: a thread reads it (it may be a file, which epoll cannot watch) and hands each chunk
  // over, waiting until it has been queued; at EOF the channel is closed.
  if (o.stdin) {
    auto input = std::make_shared<std::deque<std::optional<std::string>>>();
    auto arrived = std::make_shared<stream::Event>(ex);
    // The thread may outlive the session (it can be blocked in read() when the session ends):
    // it keeps the io_context alive, and gives up once that has stopped.
    std::thread([fd = o.in_fd, io = context, input, arrived]() mutable {
      char buf[32 << 10];
      for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        std::optional<std::string> chunk;
        if (n > 0) chunk.emplace(buf, static_cast<size_t>(n));
        auto queued = std::make_shared<std::promise<void>>();
        std::future<void> wait = queued->get_future();
        bool delivered = false;
        if (!io->stopped()) {
          asio::post(*io, [input, arrived, chunk, queued] {
            input->push_back(chunk);
            arrived->NotifyAll();
            queued->set_value();
          });
          // Until it is queued (back-pressure), or the session is over.
          while (!(delivered = wait.wait_for(std::chrono::milliseconds(100)) ==
                               std::future_status::ready) &&
                 !io->stopped()) {
          }
        }
        if (n <= 0 || !delivered) {
          // What refers to the io_context goes before it does.
          arrived.reset();
          input.reset();
          return;
        }
      }
    }).detach();
    // Over WebSocket, only v5.channel.k8s.io can tell the server that stdin ended; older
    // servers (containerd 1.6/1.7, kubelets before 1.29) keep the remote stdin open.
    const bool can_close_stdin = o.transport == Transport::kSpdy || up.protocol.close_signal;
    asio::co_spawn(
        ex,
        [io = up.io, input, arrived, can_close_stdin, warn = o.warn,
         name = up.protocol_name]() -> awaitable<void> {
          for (;;) {
            while (input->empty() && !io->closed()) co_await arrived->Wait();
            if (input->empty()) co_return;
            std::optional<std::string> chunk = std::move(input->front());
            input->pop_front();
            if (!chunk) {
              if (can_close_stdin) {
                io->CloseSend(stream::kStdin);
              } else if (warn) {
                warn(absl::StrCat("stdin ended, but the server speaks ",
                                  name.empty() ? "WebSocket without a subprotocol" : name,
                                  ", which cannot close the remote stdin (that needs ",
                                  stream::kRemoteCommandV5, " or --transport spdy)"));
              }
              co_return;
            }
            if (!co_await io->Send(stream::kStdin, *chunk)) co_return;
          }
        },
        asio::detached);
  }
  while (open > 0) co_await changed.Wait();
  if (winch) winch->cancel();
  io.Close();
  raw.reset();
  if (up.protocol.json_status && error_text.empty()) {
    // From v4 on the server always says how it ended: silence means the connection was lost.
    co_return absl::UnavailableError(
        absl::StrCat("the streaming connection ended without a status",
                     io.status().ok() ? "" : absl::StrCat(": ", io.status().message())));
  }
  stream::RemoteStatus status = stream::ParseRemoteStatus(error_text, up.protocol.json_status);
  if (!status.message.empty()) co_return absl::UnknownError(status.message);
  if (!io.status().ok() && error_text.empty() && !up.protocol.json_status) {
    co_return io.status();
  }
  co_return status.exit_code;
}

// The error a port-forward server wrote: the kubelet's JSON ({"message": ...}) or plain text.
std::string PortForwardError(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  return std::string(text);
}

awaitable<absl::Status> Forward(const std::string& url, const PortForwardOptions& o) {
  auto ex = co_await asio::this_coro::executor;
  tcp::socket local(ex);
  error_code ec;
  local.assign(tcp::v4(), o.local_fd, ec);
  if (ec) co_return absl::InvalidArgumentError(absl::StrCat("local socket: ", ec.message()));
  absl::StatusOr<Url> u = ParseUrl(url);
  if (!u.ok()) co_return u.status();
  std::shared_ptr<ChannelIo> io;
  bool strip_prefix = false;  // WebSocket: each channel's first message is the port
  if (o.transport == Transport::kSpdy) {
    std::vector<std::string> offer = {stream::kPortForwardV1};
    auto r = co_await UpgradeSpdy(*u, offer, o.tls_ca_file);
    if (!r.ok()) co_return r.status();
    std::shared_ptr<stream::SpdyConnection> conn = r->first;
    auto spdy_io = std::make_shared<stream::SpdyChannelIo>(conn);
    // The error stream first, then the data stream, paired by requestid (as client-go does).
    std::vector<std::pair<uint8_t, std::string>> wanted = {
        {1, std::string(stream::kStreamTypeError)}, {0, std::string(stream::kStreamTypeData)}};
    for (size_t i = 0; i < wanted.size(); ++i) {
      stream::spdy::Headers headers = {
          {std::string(stream::kStreamTypeHeader), wanted[i].second},
          {std::string(stream::kPortHeader), std::to_string(o.remote_port)},
          {std::string(stream::kRequestIdHeader), "0"}};
      std::shared_ptr<stream::SpdyStream> st = co_await conn->Open(headers, kStreamCreationTimeout);
      if (!st) {
        conn->Abort();
        co_return absl::UnavailableError("the streaming server did not accept the port's streams");
      }
      spdy_io->Bind(wanted[i].first, st);
    }
    io = spdy_io;
  } else {
    std::vector<std::string> offer = {stream::kRemoteCommandV4, stream::kPortForwardV1};
    auto r = co_await UpgradeWebSocket(*u, offer, o.tls_ca_file);
    if (!r.ok()) co_return r.status();
    io = r->io;
    strip_prefix = true;
  }
  stream::Event changed(ex);
  int running = 3;
  std::string error_text;
  // The next data on a channel, without the port the server puts first over WebSocket.
  bool prefix_left[2] = {strip_prefix, strip_prefix};
  auto receive = [&](uint8_t channel) -> awaitable<std::optional<std::string>> {
    std::optional<std::string> data = co_await io->Receive(channel);
    if (data && prefix_left[channel]) {
      prefix_left[channel] = false;
      data->erase(0, std::min<size_t>(2, data->size()));
    }
    co_return data;
  };
  // pod -> local
  asio::co_spawn(
      ex,
      [&]() -> awaitable<void> {
        for (;;) {
          std::optional<std::string> data = co_await receive(0);
          if (!data) break;
          error_code wec;
          co_await asio::async_write(local, asio::buffer(*data), kAwait(wec));
          if (wec) break;
        }
        error_code ignored;
        local.shutdown(tcp::socket::shutdown_send, ignored);
        --running;
        changed.NotifyAll();
      },
      asio::detached);
  // local -> pod
  asio::co_spawn(
      ex,
      [&]() -> awaitable<void> {
        std::string buf(32 << 10, '\0');
        for (;;) {
          error_code rec;
          size_t n = co_await local.async_read_some(asio::buffer(buf), kAwait(rec));
          if (rec || n == 0) break;
          if (!co_await io->Send(0, absl::string_view(buf.data(), n))) break;
        }
        io->CloseSend(0);
        --running;
        changed.NotifyAll();
      },
      asio::detached);
  // errors
  asio::co_spawn(
      ex,
      [&]() -> awaitable<void> {
        for (;;) {
          std::optional<std::string> data = co_await receive(1);
          if (!data) break;
          error_text += *data;
          if (!error_text.empty()) {
            // The port is dead: stop copying towards it.
            error_code ignored;
            local.close(ignored);
          }
        }
        --running;
        changed.NotifyAll();
      },
      asio::detached);
  while (running > 0) {
    if (io->closed()) {
      error_code ignored;
      local.close(ignored);
    }
    co_await changed.WaitFor(std::chrono::milliseconds(200));
  }
  io->Close();
  if (!error_text.empty()) co_return absl::UnavailableError(PortForwardError(error_text));
  co_return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Transport> ParseTransport(const std::string& name) {
  if (name == "spdy") return Transport::kSpdy;
  if (name == "websocket" || name == "ws") return Transport::kWebSocket;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown transport \"", name, "\" (spdy or websocket)"));
}

absl::StatusOr<int> RunRemoteCommand(const RemoteCommandOptions& options) {
  // Shared: a stdin reader still blocked in read() when the session ends holds it too.
  auto io = std::make_shared<asio::io_context>();
  absl::StatusOr<int> result = absl::InternalError("the session did not run");
  asio::co_spawn(
      *io,
      [&]() -> awaitable<void> {
        result = co_await RemoteCommand(options, io);
        // What is left (the stdin reader, a resize) is not waited for.
        io->stop();
      },
      asio::detached);
  io->run();
  return result;
}

absl::Status ForwardConnection(const std::string& url, const PortForwardOptions& options) {
  asio::io_context io;
  absl::Status result = absl::InternalError("the forwarding did not run");
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        result = co_await Forward(url, options);
        io.stop();
      },
      asio::detached);
  io.run();
  return result;
}

}  // namespace berth::cri::client

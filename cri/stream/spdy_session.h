// A SPDY/3.1 connection over an upgraded HTTP/1.1 byte stream, as Kubernetes uses it for
// exec, attach and port-forward (the peer is Go's moby/spdystream): streams opened with
// SYN_STREAM and named by their headers, answered with SYN_REPLY, data both ways, half-close
// with FIN, RST_STREAM, PING echo, GOAWAY. Server and client role (stream-id parity).
//
// Runs on one Asio strand (berthd's streaming thread, or berthctl's): no locks. Writes of all
// streams go through one queue to the socket, so frames never interleave; a writer waits while
// the queue is above its high-water mark, which is the back-pressure towards what produces the
// data. Received data is queued per stream; the socket is not read while a stream holds more
// than a bound of unread data. No SETTINGS, WINDOW_UPDATE or HEADERS frames are sent:
// spdystream neither sends nor honours windows (a peer enforcing the 64 KiB default would
// stall it), and a HEADERS frame blocks one of its workers; flow control is TCP's.
#ifndef BERTH_CRI_STREAM_SPDY_SESSION_H_
#define BERTH_CRI_STREAM_SPDY_SESSION_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cri/stream/asio.h"
#include "cri/stream/spdy.h"

namespace berth::stream {

// A broadcast wake-up for coroutines on one strand, used as a condition variable: check the
// condition, and if it does not hold, co_await Wait(); every NotifyAll() wakes every waiter.
class Event {
 public:
  explicit Event(asio::any_io_executor ex) : ex_(std::move(ex)) {}
  awaitable<void> Wait();
  // The same, but also returns after `timeout` (to re-check a condition nothing notifies).
  awaitable<void> WaitFor(std::chrono::steady_clock::duration timeout);
  void NotifyAll();

 private:
  asio::any_io_executor ex_;
  std::vector<std::shared_ptr<asio::steady_timer>> waiters_;
};

// What SPDY runs on after the upgrade: a TCP socket, or TLS over one.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  virtual awaitable<size_t> ReadSome(asio::mutable_buffer buffer, error_code& ec) = 0;
  virtual awaitable<void> WriteAll(asio::const_buffer buffer, error_code& ec) = 0;
  virtual void Close() = 0;
  // No more bytes from this side (TCP FIN); reading goes on.
  virtual void ShutdownSend() = 0;
};

template <typename Stream>
class AsioByteStream final : public ByteStream {
 public:
  explicit AsioByteStream(Stream stream) : stream_(std::move(stream)) {}
  awaitable<size_t> ReadSome(asio::mutable_buffer buffer, error_code& ec) override {
    co_return co_await stream_.async_read_some(buffer, kAwait(ec));
  }
  awaitable<void> WriteAll(asio::const_buffer buffer, error_code& ec) override {
    co_await asio::async_write(stream_, buffer, kAwait(ec));
  }
  void Close() override {
    error_code ignored;
    beast::get_lowest_layer(stream_).close(ignored);
  }
  void ShutdownSend() override {
    error_code ignored;
    beast::get_lowest_layer(stream_).shutdown(asio::socket_base::shutdown_send, ignored);
  }
  Stream& stream() { return stream_; }

 private:
  Stream stream_;
};

class SpdyConnection;

class SpdyStream {
 public:
  SpdyStream(SpdyConnection* conn, uint32_t id, spdy::Headers headers);
  uint32_t id() const { return id_; }
  // A header of the SYN_STREAM that opened it (peer-opened) or of the SYN_REPLY (ours);
  // names are lowercase. Empty when absent.
  std::string Header(absl::string_view name) const;
  const spdy::Headers& headers() const { return headers_; }

  // The next chunk of data, or nullopt once the peer has finished (FIN) or the stream or
  // connection is gone.
  awaitable<std::optional<std::string>> Read();
  // Queues data; false when the stream or the connection can no longer carry it.
  awaitable<bool> Write(absl::string_view data);
  // Half-closes our side (an empty DATA frame with FIN); idempotent.
  void CloseWrite();
  // RST_STREAM: the stream is dead both ways.
  void Reset(uint32_t status = spdy::kCancel);
  // Server side: the SYN_REPLY that accepts a peer-opened stream.
  void Reply();
  bool remote_closed() const { return remote_closed_; }

 private:
  friend class SpdyConnection;
  SpdyConnection* conn_;
  uint32_t id_;
  spdy::Headers headers_;
  std::deque<std::string> received_;
  size_t received_bytes_ = 0;
  bool remote_closed_ = false;  // FIN received, reset, or the connection is gone
  bool local_closed_ = false;   // FIN sent, reset, or the connection is gone
  bool replied_ = false;        // SYN_REPLY sent (peer-opened) or received (ours)
};

class SpdyConnection : public std::enable_shared_from_this<SpdyConnection> {
 public:
  // `initial` holds bytes already read past the HTTP upgrade.
  SpdyConnection(asio::any_io_executor ex, std::unique_ptr<ByteStream> stream, bool server,
                 std::string initial = {});
  ~SpdyConnection();

  // Starts the reader and the writer (the connection keeps itself alive while they run).
  void Start();
  // Closes the connection after `idle` without a frame in either direction.
  void SetIdleTimeout(absl::Duration idle) { idle_timeout_ = idle; }

  // The next stream the peer opened; nullptr when the connection has ended.
  awaitable<std::shared_ptr<SpdyStream>> Accept();
  // Opens a stream and waits for the peer's SYN_REPLY (nullptr if the connection ends first,
  // or `timeout` passes).
  // (Arguments by reference: see OnPool in cri/streaming_server.cc on g++ 12.)
  awaitable<std::shared_ptr<SpdyStream>> Open(const spdy::Headers& headers,
                                              const absl::Duration& timeout);
  // GOAWAY, then the socket is closed once what is queued has been written.
  void Close();
  // Closes at once: queued writes are dropped.
  void Abort();
  bool closed() const { return closed_; }
  // Why the connection ended (OK for a clean close by either side).
  const absl::Status& status() const { return status_; }
  asio::any_io_executor executor() const { return ex_; }

 private:
  friend class SpdyStream;
  awaitable<void> ReadLoop();
  awaitable<void> WriteLoop();
  awaitable<void> IdleLoop();
  void Handle(spdy::Frame& frame);
  void Queue(const spdy::Frame& frame);
  void Fail(absl::Status why);
  void MaybeForget(const std::shared_ptr<SpdyStream>& s);
  void Consumed(SpdyStream* s, size_t bytes);

  asio::any_io_executor ex_;
  std::unique_ptr<ByteStream> stream_;
  bool server_;
  std::string initial_;
  spdy::Decoder decoder_;
  spdy::HeaderEncoder encoder_;
  std::map<uint32_t, std::shared_ptr<SpdyStream>> streams_;
  std::deque<std::shared_ptr<SpdyStream>> accept_queue_;
  uint32_t next_id_;
  uint32_t last_peer_id_ = 0;
  std::string out_;       // frames waiting for the writer
  bool goaway_ = false;   // the peer opens no more streams
  bool closing_ = false;  // Close(): the writer closes the socket once out_ is empty
  bool closed_ = false;
  absl::Status status_;
  absl::Duration idle_timeout_ = absl::ZeroDuration();
  std::chrono::steady_clock::time_point last_activity_;
  Event changed_;    // any stream's state, the accept queue, the out queue
  Event out_ready_;  // out_ has frames for the writer
};

}  // namespace berth::stream

#endif  // BERTH_CRI_STREAM_SPDY_SESSION_H_

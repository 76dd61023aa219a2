// One streaming connection seen as numbered channels (stdin 0, stdout 1, stderr 2, error 3,
// resize 4; port-forward: 2i data and 2i+1 error of the i-th port), whatever carries them:
// SPDY streams named by their "streamtype" header, or the WebSocket channel protocols' one
// prefix byte per message. The exec/attach/port-forward logic of the server and of berthctl is
// written once against this.
//
// All on one strand: no locks. Receive() on a channel has one reader at a time.
#ifndef BERTH_CRI_STREAM_CHANNEL_IO_H_
#define BERTH_CRI_STREAM_CHANNEL_IO_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "cri/stream/asio.h"
#include "cri/stream/channels.h"
#include "cri/stream/spdy_session.h"

namespace berth::stream {

class ChannelIo {
 public:
  virtual ~ChannelIo() = default;
  // Sends on a channel; false once the connection (or that channel) is gone.
  virtual awaitable<bool> Send(uint8_t channel, absl::string_view data) = 0;
  // No more data on the channel from this side (SPDY: FIN; WebSocket v5: the close signal;
  // older WebSocket protocols cannot say it: nothing).
  virtual void CloseSend(uint8_t channel) = 0;
  // The next data the peer sent on a channel, or nullopt once it will send no more.
  virtual awaitable<std::optional<std::string>> Receive(uint8_t channel) = 0;
  // This side is done with a channel both ways: what the peer sends on it from now on is
  // dropped, and a pending Receive() on it returns nullopt (SPDY: RST_STREAM CANCEL).
  virtual void Abandon(uint8_t channel) = 0;
  // Ends the connection after what was sent has been written.
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  // Why the connection ended, once closed (OK for a clean end).
  virtual absl::Status status() const = 0;
};

// Channels over SPDY streams: the caller maps each stream to a channel.
class SpdyChannelIo final : public ChannelIo {
 public:
  explicit SpdyChannelIo(std::shared_ptr<SpdyConnection> conn) : conn_(std::move(conn)) {}
  void Bind(uint8_t channel, std::shared_ptr<SpdyStream> stream) { streams_[channel] = stream; }
  bool Has(uint8_t channel) const { return streams_.count(channel) != 0; }

  awaitable<bool> Send(uint8_t channel, absl::string_view data) override {
    auto it = streams_.find(channel);
    if (it == streams_.end()) co_return false;
    co_return co_await it->second->Write(data);
  }
  void CloseSend(uint8_t channel) override {
    auto it = streams_.find(channel);
    if (it != streams_.end()) it->second->CloseWrite();
  }
  awaitable<std::optional<std::string>> Receive(uint8_t channel) override {
    auto it = streams_.find(channel);
    if (it == streams_.end()) co_return std::nullopt;
    std::shared_ptr<SpdyStream> s = it->second;
    co_return co_await s->Read();
  }
  void Abandon(uint8_t channel) override {
    auto it = streams_.find(channel);
    if (it != streams_.end()) it->second->Reset(spdy::kCancel);
  }
  void Close() override { conn_->Close(); }
  bool closed() const override { return conn_->closed(); }
  absl::Status status() const override { return conn_->status(); }
  SpdyConnection& connection() { return *conn_; }

 private:
  std::shared_ptr<SpdyConnection> conn_;
  std::map<uint8_t, std::shared_ptr<SpdyStream>> streams_;
};

// Channels over a WebSocket (Beast) with Kubernetes' channel framing. `Stream` is the
// websocket::stream type. Start() runs the reader and the writer; the object keeps itself
// alive while they run.
template <typename WsStream>
class WebSocketChannelIo final : public ChannelIo,
                                 public std::enable_shared_from_this<WebSocketChannelIo<WsStream>> {
 public:
  WebSocketChannelIo(WsStream ws, RemoteCommandProtocol protocol)
      : ws_(std::move(ws)),
        protocol_(protocol),
        changed_(ws_.get_executor()),
        out_ready_(ws_.get_executor()) {}

  void SetIdleTimeout(absl::Duration idle) { idle_ = idle; }

  void Start() {
    auto self = this->shared_from_this();
    ws_.binary(!protocol_.base64);
    ws_.read_message_max(16 << 20);
    asio::co_spawn(
        ws_.get_executor(), [self] { return self->ReadLoop(); }, asio::detached);
    asio::co_spawn(
        ws_.get_executor(), [self] { return self->WriteLoop(); }, asio::detached);
    if (idle_ > absl::ZeroDuration()) {
      asio::co_spawn(
          ws_.get_executor(), [self] { return self->IdleLoop(); }, asio::detached);
    }
  }

  awaitable<bool> Send(uint8_t channel, absl::string_view data) override {
    auto self = this->shared_from_this();
    // Large writes are split so that one channel cannot hold the others for long.
    do {
      while (!closed_ && queued_bytes_ >= kHighWater) co_await changed_.Wait();
      if (closed_ || closing_) co_return false;
      size_t n = std::min<size_t>(data.size(), kMaxMessage);
      out_.push_back(EncodeChannelMessage(channel, data.substr(0, n), protocol_.base64));
      queued_bytes_ += out_.back().size();
      out_ready_.NotifyAll();
      data.remove_prefix(n);
    } while (!data.empty());
    co_return true;
  }
  void CloseSend(uint8_t channel) override {
    if (!protocol_.close_signal || closed_ || closing_) return;
    std::string m(2, '\0');
    m[0] = static_cast<char>(kCloseSignal);
    m[1] = static_cast<char>(channel);
    queued_bytes_ += m.size();
    out_.push_back(std::move(m));
    out_ready_.NotifyAll();
  }
  awaitable<std::optional<std::string>> Receive(uint8_t channel) override {
    auto self = this->shared_from_this();
    for (;;) {
      In& in = in_[channel];
      if (!in.queue.empty()) {
        std::string data = std::move(in.queue.front());
        in.queue.pop_front();
        received_bytes_ -= data.size();
        changed_.NotifyAll();
        co_return data;
      }
      if (in.ended || closed_ || peer_closed_) co_return std::nullopt;
      co_await changed_.Wait();
    }
  }
  void Abandon(uint8_t channel) override {
    In& in = in_[channel];
    in.ended = in.abandoned = true;
    for (const std::string& d : in.queue) received_bytes_ -= d.size();
    in.queue.clear();
    changed_.NotifyAll();
  }
  void Close() override {
    if (closed_ || closing_) return;
    closing_ = true;
    out_ready_.NotifyAll();
  }
  bool closed() const override { return closed_; }
  absl::Status status() const override { return status_; }

 private:
  static constexpr size_t kHighWater = 1 << 20;
  static constexpr size_t kMaxUnread = 1 << 20;
  static constexpr size_t kMaxMessage = 32 << 10;
  struct In {
    std::deque<std::string> queue;
    bool ended = false;
    bool abandoned = false;  // what arrives is dropped
  };

  awaitable<void> ReadLoop() {
    auto self = this->shared_from_this();
    while (!closed_) {
      while (!closed_ && received_bytes_ >= kMaxUnread) co_await changed_.Wait();
      if (closed_) break;
      beast::flat_buffer buffer;
      error_code ec;
      co_await ws_.async_read(buffer, kAwait(ec));
      if (ec) {
        peer_closed_ = true;
        if (ec != beast::websocket::error::closed && ec != asio::error::eof && !closing_) {
          Fail(absl::UnavailableError(absl::StrCat("WebSocket: read: ", ec.message())));
        } else if (closing_ || ec == beast::websocket::error::closed) {
          Fail(absl::OkStatus());
        }
        changed_.NotifyAll();
        break;
      }
      last_activity_ = std::chrono::steady_clock::now();
      auto bytes = buffer.cdata();
      absl::string_view message(static_cast<const char*>(bytes.data()), bytes.size());
      if (message.empty()) continue;
      if (protocol_.close_signal && static_cast<uint8_t>(message[0]) == kCloseSignal) {
        if (message.size() >= 2) in_[static_cast<uint8_t>(message[1])].ended = true;
        changed_.NotifyAll();
        continue;
      }
      absl::StatusOr<ChannelMessage> m = DecodeChannelMessage(message, protocol_.base64);
      if (!m.ok()) {
        Fail(absl::InvalidArgumentError(absl::StrCat("WebSocket: ", m.status().message())));
        break;
      }
      In& in = in_[m->channel];
      // Empty: the "connected" notice some peers send.
      if (m->data.empty() || in.abandoned) continue;
      received_bytes_ += m->data.size();
      in.queue.push_back(std::move(m->data));
      changed_.NotifyAll();
    }
  }

  awaitable<void> WriteLoop() {
    auto self = this->shared_from_this();
    while (!closed_) {
      while (out_.empty() && !closed_ && !closing_) co_await out_ready_.Wait();
      if (closed_) break;
      if (out_.empty()) {  // closing: a close frame, then the peer's answer ends the reader
        error_code ec;
        co_await ws_.async_close(beast::websocket::close_code::normal, kAwait(ec));
        if (ec || peer_closed_) Fail(absl::OkStatus());
        // The reader sees the peer's close frame and ends; bound the wait for it.
        asio::steady_timer t(ws_.get_executor(), std::chrono::seconds(5));
        while (!closed_) {
          co_await t.async_wait(kAwait(ec));
          break;
        }
        Fail(absl::OkStatus());
        break;
      }
      std::string m = std::move(out_.front());
      out_.pop_front();
      error_code ec;
      co_await ws_.async_write(asio::buffer(m), kAwait(ec));
      queued_bytes_ -= m.size();
      changed_.NotifyAll();
      if (ec) {
        Fail(absl::UnavailableError(absl::StrCat("WebSocket: write: ", ec.message())));
        break;
      }
      last_activity_ = std::chrono::steady_clock::now();
    }
  }

  awaitable<void> IdleLoop() {
    auto self = this->shared_from_this();
    const auto idle = absl::ToChronoNanoseconds(idle_);
    asio::steady_timer timer(ws_.get_executor());
    while (!closed_) {
      auto deadline = last_activity_ + idle;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        Fail(absl::DeadlineExceededError(
            absl::StrCat("WebSocket: idle for ", absl::FormatDuration(idle_))));
        break;
      }
      timer.expires_at(std::min(deadline, now + std::chrono::seconds(1)));
      error_code ec;
      co_await timer.async_wait(kAwait(ec));
    }
  }

  void Fail(absl::Status why) {
    if (closed_) return;
    closed_ = true;
    status_ = std::move(why);
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
    out_.clear();
    queued_bytes_ = 0;
    changed_.NotifyAll();
    out_ready_.NotifyAll();
  }

  WsStream ws_;
  RemoteCommandProtocol protocol_;
  Event changed_, out_ready_;
  std::deque<std::string> out_;
  size_t queued_bytes_ = 0;
  size_t received_bytes_ = 0;
  std::map<uint8_t, In> in_;
  bool closing_ = false, closed_ = false, peer_closed_ = false;
  absl::Status status_;
  absl::Duration idle_ = absl::ZeroDuration();
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
};

}  // namespace berth::stream

#endif  // BERTH_CRI_STREAM_CHANNEL_IO_H_

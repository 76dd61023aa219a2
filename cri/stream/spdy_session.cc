#include "cri/stream/spdy_session.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace berth::stream {
namespace {

// The write queue's high-water mark: a writer waits above it.
constexpr size_t kHighWater = 1 << 20;
// Unread data one stream may hold before the socket stops being read.
constexpr size_t kMaxUnread = 1 << 20;
// DATA frames carry at most this much (spdystream reads any size; smaller frames interleave
// the streams more fairly).
constexpr size_t kMaxDataFrame = 32 << 10;
// After our GOAWAY and the last write, how long the peer has to close its side.
constexpr auto kLingerAfterClose = std::chrono::seconds(5);

}  // namespace

awaitable<void> Event::Wait() {
  co_await WaitFor(asio::steady_timer::duration::max());
}

awaitable<void> Event::WaitFor(std::chrono::steady_clock::duration timeout) {
  auto timer = std::make_shared<asio::steady_timer>(ex_);
  if (timeout == asio::steady_timer::duration::max()) {
    timer->expires_at(asio::steady_timer::time_point::max());
  } else {
    timer->expires_after(timeout);
  }
  waiters_.push_back(timer);
  error_code ec;
  co_await timer->async_wait(kAwait(ec));
  // Expired rather than notified: this waiter is no longer anyone's to wake.
  if (!ec) waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), timer), waiters_.end());
}

void Event::NotifyAll() {
  std::vector<std::shared_ptr<asio::steady_timer>> waiters;
  waiters.swap(waiters_);
  for (auto& w : waiters) w->cancel();
}

// ---- SpdyStream -----------------------------------------------------------------------------

SpdyStream::SpdyStream(SpdyConnection* conn, uint32_t id, spdy::Headers headers)
    : conn_(conn), id_(id), headers_(std::move(headers)) {}

std::string SpdyStream::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers_) {
    if (k == name) return v;
  }
  return "";
}

awaitable<std::optional<std::string>> SpdyStream::Read() {
  while (received_.empty() && !remote_closed_) co_await conn_->changed_.Wait();
  if (received_.empty()) co_return std::nullopt;
  std::string chunk = std::move(received_.front());
  received_.pop_front();
  received_bytes_ -= chunk.size();
  conn_->Consumed(this, chunk.size());
  co_return chunk;
}

awaitable<bool> SpdyStream::Write(absl::string_view data) {
  // The connection outlives its streams' users (they hold it), but not necessarily this call
  // across suspensions: keep it alive.
  std::shared_ptr<SpdyConnection> conn = conn_->shared_from_this();
  while (!data.empty()) {
    while (!conn->closed_ && !local_closed_ && conn->out_.size() >= kHighWater) {
      co_await conn->changed_.Wait();
    }
    if (conn->closed_ || local_closed_) co_return false;
    size_t n = std::min(data.size(), kMaxDataFrame);
    (void)spdy::AppendData(&conn->out_, id_, data.substr(0, n), false);
    conn->out_ready_.NotifyAll();
    data.remove_prefix(n);
  }
  co_return !conn->closed_;
}

void SpdyStream::CloseWrite() {
  if (local_closed_ || conn_->closed_) return;
  local_closed_ = true;
  (void)spdy::AppendData(&conn_->out_, id_, "", true);
  conn_->out_ready_.NotifyAll();
  conn_->MaybeForget(conn_->streams_.count(id_) ? conn_->streams_[id_] : nullptr);
}

void SpdyStream::Reset(uint32_t status) {
  if (conn_->closed_ || (local_closed_ && remote_closed_)) return;
  local_closed_ = remote_closed_ = true;
  (void)spdy::AppendRstStream(&conn_->out_, id_, status);
  conn_->out_ready_.NotifyAll();
  conn_->changed_.NotifyAll();
  conn_->streams_.erase(id_);
}

void SpdyStream::Reply() {
  if (replied_ || conn_->closed_) return;
  replied_ = true;
  spdy::Frame f;
  f.type = spdy::FrameType::kSynReply;
  f.stream_id = id_;
  conn_->Queue(f);
}

// ---- SpdyConnection -------------------------------------------------------------------------

SpdyConnection::SpdyConnection(asio::any_io_executor ex, std::unique_ptr<ByteStream> stream,
                               bool server, std::string initial)
    : ex_(ex),
      stream_(std::move(stream)),
      server_(server),
      initial_(std::move(initial)),
      next_id_(server ? 2 : 1),
      last_activity_(std::chrono::steady_clock::now()),
      changed_(ex),
      out_ready_(ex) {}

SpdyConnection::~SpdyConnection() {
  if (stream_) stream_->Close();
}

void SpdyConnection::Start() {
  auto self = shared_from_this();
  asio::co_spawn(
      ex_, [self] { return self->ReadLoop(); }, asio::detached);
  asio::co_spawn(
      ex_, [self] { return self->WriteLoop(); }, asio::detached);
  if (idle_timeout_ > absl::ZeroDuration()) {
    asio::co_spawn(
        ex_, [self] { return self->IdleLoop(); }, asio::detached);
  }
}

awaitable<void> SpdyConnection::ReadLoop() {
  auto self = shared_from_this();
  if (!initial_.empty()) decoder_.Feed(initial_);
  initial_.clear();
  std::string buf(64 << 10, '\0');
  bool first = true;
  while (!closed_) {
    if (!first) {
      // Back-pressure: a stream whose reader lags keeps the socket unread.
      for (;;) {
        bool full = std::any_of(streams_.begin(), streams_.end(), [](const auto& e) {
          return e.second->received_bytes_ >= kMaxUnread;
        });
        if (!full || closed_) break;
        co_await changed_.Wait();
      }
      if (closed_) break;
      error_code ec;
      size_t n = co_await stream_->ReadSome(asio::buffer(buf), ec);
      if (ec) {
        Fail(ec == asio::error::eof || closing_
                 ? absl::OkStatus()
                 : absl::UnavailableError(absl::StrCat("SPDY connection: read: ", ec.message())));
        break;
      }
      last_activity_ = std::chrono::steady_clock::now();
      decoder_.Feed(absl::string_view(buf.data(), n));
    }
    first = false;
    for (;;) {
      absl::StatusOr<std::optional<spdy::Frame>> frame = decoder_.Next();
      if (!frame.ok()) {
        // A malformed frame ends the session: tell the peer why (GOAWAY PROTOCOL_ERROR).
        std::string goaway;
        (void)spdy::AppendGoAway(&goaway, last_peer_id_, 1 /* PROTOCOL_ERROR */);
        error_code ignored;
        co_await stream_->WriteAll(asio::buffer(goaway), ignored);
        Fail(absl::InvalidArgumentError(
            absl::StrCat("SPDY connection: ", frame.status().message())));
        break;
      }
      if (!frame->has_value()) break;
      Handle(**frame);
      if (closed_) break;
    }
  }
  changed_.NotifyAll();
}

awaitable<void> SpdyConnection::WriteLoop() {
  auto self = shared_from_this();
  while (!closed_) {
    while (out_.empty() && !closed_ && !closing_) co_await out_ready_.Wait();
    if (closed_) break;
    if (out_.empty()) {
      // Closing and everything written: half-close, then give the peer a moment to close its
      // side (closing with unread input would reset the connection and could lose what we
      // wrote last).
      stream_->ShutdownSend();
      asio::steady_timer linger(ex_, kLingerAfterClose);
      error_code ec;
      co_await linger.async_wait(kAwait(ec));
      Fail(absl::OkStatus());
      break;
    }
    std::string chunk;
    chunk.swap(out_);
    changed_.NotifyAll();  // writers waiting for room
    error_code ec;
    co_await stream_->WriteAll(asio::buffer(chunk), ec);
    if (ec) {
      Fail(absl::UnavailableError(absl::StrCat("SPDY connection: write: ", ec.message())));
      break;
    }
    last_activity_ = std::chrono::steady_clock::now();
  }
}

awaitable<void> SpdyConnection::IdleLoop() {
  auto self = shared_from_this();
  const auto idle = absl::ToChronoNanoseconds(idle_timeout_);
  asio::steady_timer timer(ex_);
  while (!closed_) {
    auto deadline = last_activity_ + idle;
    if (std::chrono::steady_clock::now() >= deadline) {
      Fail(absl::DeadlineExceededError(
          absl::StrCat("SPDY connection: idle for ", absl::FormatDuration(idle_timeout_))));
      break;
    }
    timer.expires_at(
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(1)));
    error_code ec;
    co_await timer.async_wait(kAwait(ec));
  }
}

void SpdyConnection::Queue(const spdy::Frame& frame) {
  absl::StatusOr<std::string> bytes = spdy::Encode(frame, encoder_);
  if (!bytes.ok()) {
    Fail(absl::InternalError(absl::StrCat("SPDY connection: encode: ", bytes.status().message())));
    return;
  }
  out_ += *bytes;
  out_ready_.NotifyAll();
}

void SpdyConnection::Handle(spdy::Frame& f) {
  using spdy::FrameType;
  auto find = [this](uint32_t id) -> std::shared_ptr<SpdyStream> {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
  };
  switch (f.type) {
    case FrameType::kSynStream: {
      const bool peer_parity = server_ ? (f.stream_id % 2 == 1) : (f.stream_id % 2 == 0);
      if (!peer_parity || f.stream_id <= last_peer_id_) {
        (void)spdy::AppendRstStream(&out_, f.stream_id, spdy::kProtocolError);
        out_ready_.NotifyAll();
        return;
      }
      last_peer_id_ = f.stream_id;
      if (closing_) {
        (void)spdy::AppendRstStream(&out_, f.stream_id, spdy::kRefusedStream);
        out_ready_.NotifyAll();
        return;
      }
      auto s = std::make_shared<SpdyStream>(this, f.stream_id, std::move(f.headers));
      s->remote_closed_ = (f.flags & spdy::kFlagFin) != 0;
      s->local_closed_ = (f.flags & spdy::kFlagUnidirectional) != 0;
      streams_[f.stream_id] = s;
      accept_queue_.push_back(s);
      break;
    }
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      std::shared_ptr<SpdyStream> s = find(f.stream_id);
      if (!s) return;
      if (f.type == FrameType::kSynReply) s->replied_ = true;
      for (auto& h : f.headers) s->headers_.push_back(std::move(h));
      if (f.flags & spdy::kFlagFin) s->remote_closed_ = true;
      MaybeForget(s);
      break;
    }
    case FrameType::kData: {
      std::shared_ptr<SpdyStream> s = find(f.stream_id);
      if (!s || s->remote_closed_) return;  // a stream we have reset or forgotten
      if (!f.data.empty()) {
        s->received_bytes_ += f.data.size();
        s->received_.push_back(std::move(f.data));
      }
      if (f.flags & spdy::kFlagFin) s->remote_closed_ = true;
      MaybeForget(s);
      break;
    }
    case FrameType::kRstStream: {
      std::shared_ptr<SpdyStream> s = find(f.stream_id);
      if (!s) return;
      s->remote_closed_ = s->local_closed_ = true;
      streams_.erase(f.stream_id);
      break;
    }
    case FrameType::kPing: {
      // Echo the peer's pings (odd ids come from the client); ours would be even/odd the
      // other way, and this side sends none.
      const bool from_peer = server_ ? (f.ping_id % 2 == 1) : (f.ping_id % 2 == 0);
      if (from_peer) {
        (void)spdy::AppendPing(&out_, f.ping_id);
        out_ready_.NotifyAll();
      }
      return;
    }
    case FrameType::kGoAway: goaway_ = true; break;
    default:  // SETTINGS, WINDOW_UPDATE: nothing to do (see the header on flow control)
      return;
  }
  changed_.NotifyAll();
}

void SpdyConnection::Consumed(SpdyStream*, size_t) {
  // No WINDOW_UPDATE: spdystream neither sends nor honours them (see the header).
  changed_.NotifyAll();  // the reader may be waiting for room
}

void SpdyConnection::MaybeForget(const std::shared_ptr<SpdyStream>& s) {
  if (s && s->remote_closed_ && s->local_closed_) streams_.erase(s->id_);
}

awaitable<std::shared_ptr<SpdyStream>> SpdyConnection::Accept() {
  auto self = shared_from_this();
  while (accept_queue_.empty() && !closed_ && !goaway_) co_await changed_.Wait();
  if (accept_queue_.empty()) co_return nullptr;
  std::shared_ptr<SpdyStream> s = accept_queue_.front();
  accept_queue_.pop_front();
  co_return s;
}

awaitable<std::shared_ptr<SpdyStream>> SpdyConnection::Open(const spdy::Headers& headers,
                                                            const absl::Duration& timeout) {
  auto self = shared_from_this();
  if (closed_ || closing_) co_return nullptr;
  uint32_t id = next_id_;
  next_id_ += 2;
  auto s = std::make_shared<SpdyStream>(this, id, headers);
  streams_[id] = s;
  spdy::Frame f;
  f.type = spdy::FrameType::kSynStream;
  f.stream_id = id;
  f.headers = headers;
  Queue(f);
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer timer(ex_, absl::ToChronoNanoseconds(timeout));
  timer.async_wait([timed_out, self](error_code ec) {
    if (ec) return;
    *timed_out = true;
    self->changed_.NotifyAll();
  });
  while (!s->replied_ && !s->remote_closed_ && !closed_ && !*timed_out) {
    co_await changed_.Wait();
  }
  timer.cancel();
  if (!s->replied_) {
    if (!closed_) s->Reset(spdy::kCancel);
    co_return nullptr;
  }
  co_return s;
}

void SpdyConnection::Close() {
  if (closed_ || closing_) return;
  closing_ = true;
  (void)spdy::AppendGoAway(&out_, last_peer_id_, 0);
  out_ready_.NotifyAll();
}

void SpdyConnection::Abort() {
  Fail(absl::CancelledError("SPDY connection aborted"));
}

void SpdyConnection::Fail(absl::Status why) {
  if (closed_) return;
  closed_ = true;
  status_ = std::move(why);
  stream_->Close();
  for (auto& [id, s] : streams_) s->remote_closed_ = s->local_closed_ = true;
  for (auto& s : accept_queue_) s->remote_closed_ = s->local_closed_ = true;
  streams_.clear();
  accept_queue_.clear();
  out_.clear();
  changed_.NotifyAll();
  out_ready_.NotifyAll();
}

}  // namespace berth::stream

// SPDY/3.1 framing: the frame layer under the kubelet streaming protocol (exec, attach,
// port-forward), whose other end is Go's moby/spdystream (client-go, the kubelet, crictl). Bytes
// in, frames out and back; no sockets, no threads, no stream state: the session layer above
// owns stream ids, replies, flow control and timeouts.
//
// Wire format ("SPDY Protocol - Draft 3.1"; all integers big-endian):
//   control frame: |1| version(15) | type(16) | flags(8) | length(24) | payload
//   data frame:    |0| stream id(31)           | flags(8) | length(24) | payload
// SYN_STREAM, SYN_REPLY and HEADERS carry a name/value header block compressed with zlib, seeded
// with the spec's dictionary; the zlib stream runs across all header blocks of one connection
// in one direction, so each side keeps one HeaderEncoder (for what it sends) and one
// HeaderDecoder (inside its Decoder, for what it receives) for the connection's life.
//
// spdystream speaks version 3 and ignores the 3.1 additions (session-level WINDOW_UPDATE on
// stream 0); the framing is the same, so one codec serves both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::stream::spdy {

inline constexpr uint16_t kVersion = 3;

enum class FrameType : uint16_t {
  kData = 0,  // not a control type: a data frame has no type field
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

// Frame flags. FIN on DATA, SYN_STREAM, SYN_REPLY, HEADERS; UNIDIRECTIONAL on SYN_STREAM.
inline constexpr uint8_t kFlagFin = 0x01;
inline constexpr uint8_t kFlagUnidirectional = 0x02;
// SETTINGS frame flag: the receiver drops settings it persisted for this origin.
inline constexpr uint8_t kFlagClearSettings = 0x01;
// Per-entry SETTINGS flags.
inline constexpr uint8_t kSettingFlagPersistValue = 0x01;
inline constexpr uint8_t kSettingFlagPersisted = 0x02;

// Stream ids (and GOAWAY's last good id) are 31 bits; the top bit is reserved.
inline constexpr uint32_t kMaxStreamId = 0x7fffffff;
// The length field is 24 bits: no payload (data, or a compressed header block plus its fixed
// fields) exceeds this.
inline constexpr size_t kMaxPayload = 0xffffff;
// Largest WINDOW_UPDATE delta; also the largest window.
inline constexpr uint32_t kMaxWindowDelta = 0x7fffffff;
// Every stream's (and, in 3.1, the session's) window before any SETTINGS/WINDOW_UPDATE.
inline constexpr uint32_t kDefaultInitialWindow = 64 * 1024;

// RST_STREAM status codes (10, INVALID_CREDENTIALS, is gone in 3.1).
enum RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kFrameTooLarge = 11,
};

// GOAWAY status codes.
enum GoAwayStatus : uint32_t {
  kGoAwayOk = 0,
  kGoAwayProtocolError = 1,
  kGoAwayInternalError = 2,
};

// SETTINGS ids (24 bits on the wire).
enum SettingId : uint32_t {
  kSettingUploadBandwidth = 1,
  kSettingDownloadBandwidth = 2,
  kSettingRoundTripTime = 3,
  kSettingMaxConcurrentStreams = 4,
  kSettingCurrentCwnd = 5,
  kSettingDownloadRetransRate = 6,
  kSettingInitialWindowSize = 7,
  kSettingClientCertificateVectorSize = 8,
};

// Header names are lowercase and unique within a block; a value may hold several values
// separated by single NUL bytes (that is how the spec sends a repeated header). Order is kept
// as sent; spdystream sends its headers in Go map order, so never rely on it.
using Headers = std::vector<std::pair<std::string, std::string>>;

struct Setting {
  uint8_t flags = 0;  // kSettingFlag*
  uint32_t id = 0;    // SettingId, < 2^24
  uint32_t value = 0;
  bool operator==(const Setting&) const = default;
};

// One frame, unpacked. Only the fields of its type are meaningful: the decoder leaves the others
// at their defaults and the encoder ignores them, so decode(encode(f)) == f for a decoded f.
struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;                 // raw flags byte (kFlag*), unknown bits kept
  uint32_t stream_id = 0;            // DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS,
                                     // WINDOW_UPDATE (0 = the session's window, 3.1)
  uint32_t associated_id = 0;        // SYN_STREAM
  uint8_t priority = 0;              // SYN_STREAM, 0 (highest) .. 7
  Headers headers;                   // SYN_STREAM, SYN_REPLY, HEADERS
  std::string data;                  // DATA payload (may be empty: a bare FIN)
  uint32_t status = 0;               // RST_STREAM (RstStatus), GOAWAY (GoAwayStatus)
  uint32_t last_good_stream_id = 0;  // GOAWAY
  uint32_t ping_id = 0;              // PING
  uint32_t delta = 0;                // WINDOW_UPDATE, 1 .. kMaxWindowDelta
  std::vector<Setting> settings;     // SETTINGS
  bool operator==(const Frame&) const = default;
};

// The 1423-byte zlib dictionary of SPDY/3 (spec section 2.6.10.1), which both directions'
// header compression is seeded with.
absl::string_view HeaderDictionary();

// Compresses header blocks for one direction of one connection: deflate seeded with the
// dictionary, one Z_SYNC_FLUSH per block, the zlib stream shared by every block. Blocks must
// reach the peer in the order they were encoded. Movable, not copyable.
class HeaderEncoder {
 public:
  HeaderEncoder();
  ~HeaderEncoder();
  HeaderEncoder(HeaderEncoder&&) noexcept;
  HeaderEncoder& operator=(HeaderEncoder&&) noexcept;

  // The compressed block for `headers`. InvalidArgument for headers the peer would refuse (an
  // empty, uppercase or repeated name) or a block too large for a frame, leaving the zlib stream
  // untouched; a zlib failure (Internal) breaks the encoder for good, since the peer's
  // decompressor can no longer follow.
  absl::StatusOr<std::string> Encode(const Headers& headers);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Decompresses and parses header blocks for one direction of one connection (the inverse of
// HeaderEncoder). Checks the block's structure (counts, lengths within the block, no bytes after
// the last value) and names (non-empty, no uppercase, no repeats); values are taken as sent.
// Any error is final and every later call returns it: after bad zlib data the stream cannot
// resume, and after a malformed block the peer is not to be trusted with the next one.
class HeaderDecoder {
 public:
  // `max_decoded`: the largest uncompressed block accepted; inflating stops there, so a small
  // frame cannot expand into unbounded memory.
  explicit HeaderDecoder(size_t max_decoded = 256 << 10);
  ~HeaderDecoder();
  HeaderDecoder(HeaderDecoder&&) noexcept;
  HeaderDecoder& operator=(HeaderDecoder&&) noexcept;

  absl::StatusOr<Headers> Decode(absl::string_view block);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Serializes one frame; SYN_STREAM, SYN_REPLY and HEADERS compress their headers with `enc`.
// InvalidArgument for a frame the decoder (or spdystream) would refuse: a stream id of 0 where
// one is required, an id or GOAWAY id above kMaxStreamId, a priority above 7, a RST_STREAM
// status of 0, a WINDOW_UPDATE delta outside 1..kMaxWindowDelta, a setting id of 2^24 or more,
// a payload over kMaxPayload. A refused frame does not advance `enc`.
absl::StatusOr<std::string> Encode(const Frame& f, HeaderEncoder& enc);

// Appenders for the frames without a header block, to build output without a Frame (and, for
// DATA, without copying the payload twice). Same checks as Encode; on error nothing is appended.
absl::Status AppendData(std::string* out, uint32_t stream_id, absl::string_view data, bool fin);
absl::Status AppendRstStream(std::string* out, uint32_t stream_id, uint32_t status);
absl::Status AppendPing(std::string* out, uint32_t ping_id);
absl::Status AppendWindowUpdate(std::string* out, uint32_t stream_id, uint32_t delta);
absl::Status AppendGoAway(std::string* out, uint32_t last_good_stream_id, uint32_t status);
absl::Status AppendSettings(std::string* out, const std::vector<Setting>& settings,
                            uint8_t flags = 0);

// Incremental decoder for one direction of one connection: Feed bytes as they arrive, split
// anywhere, then take frames from Next until it gives nullopt. Control frames of unknown types
// are skipped, as the spec asks. Everything else that breaks the spec's rules is an error
// (InvalidArgument, naming the frame and the problem), after which the connection is beyond
// repair: Feed ignores its bytes and Next returns the same error forever.
class Decoder {
 public:
  // `max_frame_payload`: the largest payload (the length field) accepted, checked as soon as a
  // frame's 8-byte header is in, so the buffer never holds more than one frame over it; the
  // default, 2^24, is above anything the 24-bit field can say. `max_decoded_headers`: see
  // HeaderDecoder.
  explicit Decoder(size_t max_frame_payload = size_t{1} << 24,
                   size_t max_decoded_headers = 256 << 10);

  void Feed(absl::string_view bytes);
  // The next complete frame, nullopt when more bytes are needed, or the connection's error.
  absl::StatusOr<std::optional<Frame>> Next();
  // Bytes fed but not yet returned as (or skipped with) a frame.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  absl::Status Fail(absl::Status status);
  void Consume(size_t n);

  size_t max_frame_payload_;
  HeaderDecoder headers_;
  std::string buffer_;
  size_t consumed_ = 0;  // bytes at the front of buffer_ already returned
  absl::Status error_;
};

}  // namespace berth::stream::spdy

// Kubernetes' streaming protocols above the transport: the remote-command (exec/attach) and
// port-forward subprotocol names, their negotiation, the channel numbering and framing of the
// WebSocket variants, the terminal-size messages, and the status object that ends an exec.
// Shared by berthd's streaming server and berthctl's clients; no I/O here.
#ifndef BERTH_CRI_STREAM_CHANNELS_H_
#define BERTH_CRI_STREAM_CHANNELS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::stream {

// ---- remote command (exec, attach) ----------------------------------------------------------
// Over SPDY, offered in X-Stream-Protocol-Version; over WebSocket, in Sec-WebSocket-Protocol.
inline constexpr char kRemoteCommandV1[] = "channel.k8s.io";
inline constexpr char kRemoteCommandV2[] = "v2.channel.k8s.io";
inline constexpr char kRemoteCommandV3[] = "v3.channel.k8s.io";
inline constexpr char kRemoteCommandV4[] = "v4.channel.k8s.io";
inline constexpr char kRemoteCommandV5[] = "v5.channel.k8s.io";
inline constexpr char kBase64V1[] = "base64.channel.k8s.io";
inline constexpr char kBase64V4[] = "v4.base64.channel.k8s.io";
// Port forwarding over SPDY; over WebSocket the channel protocols above (or none) are used.
inline constexpr char kPortForwardV1[] = "portforward.k8s.io";

// Server preference does not matter: the first protocol the client offers that the server
// supports wins, as in k8s.io/apimachinery's httpstream.Handshake.
std::optional<std::string> Negotiate(const std::vector<std::string>& offered,
                                     const std::vector<std::string>& supported);
// Splits header values ("a, b" or repeated headers) into protocol names.
std::vector<std::string> SplitProtocols(const std::vector<std::string>& header_values);

// What the protocol version implies for the streams of an exec/attach.
struct RemoteCommandProtocol {
  int version = 1;      // 1..5
  bool base64 = false;  // WebSocket text frames carrying base64 (base64.channel.k8s.io, v4.base64)
  bool json_status = false;   // v4+: the error stream carries a metav1.Status JSON
  bool resize = false;        // v3+: a resize stream exists (with a TTY)
  bool close_signal = false;  // v5 (WebSocket): channel 255 half-closes a channel
};
std::optional<RemoteCommandProtocol> ParseRemoteCommandProtocol(absl::string_view name);

// SPDY: the client names each stream with the "streamtype" header.
inline constexpr char kStreamTypeHeader[] = "streamtype";
inline constexpr char kStreamTypeStdin[] = "stdin";
inline constexpr char kStreamTypeStdout[] = "stdout";
inline constexpr char kStreamTypeStderr[] = "stderr";
inline constexpr char kStreamTypeError[] = "error";
inline constexpr char kStreamTypeResize[] = "resize";
// port-forward streams: streamtype data|error, port, requestid.
inline constexpr char kStreamTypeData[] = "data";
inline constexpr char kPortHeader[] = "port";
inline constexpr char kRequestIdHeader[] = "requestid";

// WebSocket channel numbers for exec/attach.
enum Channel : uint8_t {
  kStdin = 0,
  kStdout = 1,
  kStderr = 2,
  kError = 3,
  kResize = 4,
  kCloseSignal = 255,  // v5: [255, channel] closes `channel` for writing
};

// One WebSocket message of a channel protocol: binary [channel][data], or with base64 a text
// message of the channel as an ASCII digit followed by the base64 of the data.
std::string EncodeChannelMessage(uint8_t channel, absl::string_view data, bool base64);
struct ChannelMessage {
  uint8_t channel = 0;
  std::string data;
};
absl::StatusOr<ChannelMessage> DecodeChannelMessage(absl::string_view message, bool base64);

// Terminal size, as the client sends it on the resize stream: {"Width":80,"Height":24}.
struct TerminalSize {
  uint16_t width = 0, height = 0;
  bool operator==(const TerminalSize&) const = default;
};
std::string EncodeTerminalSize(TerminalSize size);
// Consumes whole JSON objects from `buffer` (a stream of them, as Go's json.Encoder writes),
// leaving an incomplete tail in place. A malformed object is an error.
absl::StatusOr<std::vector<TerminalSize>> TakeTerminalSizes(std::string* buffer);

// The status that ends an exec/attach on the error stream (v4+): Success, NonZeroExitCode
// with the code as an ExitCode cause, or a Failure with a message.
std::string SuccessStatusJson();
std::string ExitCodeStatusJson(int exit_code);
std::string FailureStatusJson(absl::string_view message);
// What the error stream said, from the client's side: the exit code (0 for Success), or an
// error carrying the message. Before v4 the stream holds plain text: any text is an error.
struct RemoteStatus {
  int exit_code = 0;
  std::string message;  // non-empty for a failure that is not an exit code
};
RemoteStatus ParseRemoteStatus(absl::string_view error_stream, bool json);

// ---- port forward over WebSocket --------------------------------------------------------------
// Two channels per port, in the order of the request's ports: 2i data, 2i+1 error. The first
// message the server sends on each carries the port as two little-endian bytes.
std::string EncodePortPrefix(uint16_t port);

}  // namespace berth::stream

#endif  // BERTH_CRI_STREAM_CHANNELS_H_

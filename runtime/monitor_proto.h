// The framing between berthd and the per-pod monitor over a SOCK_STREAM unix socket: each
// message is a 4-byte big-endian length followed by that many bytes of JSON text (one object).
// A length above kMaxFrame is an error (InvalidArgument) and the connection is to be dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include <sys/un.h>

#include "base/unique_fd.h"

namespace berth::runtime {

// Fills `addr` for the unix socket at `path`. A path too long for sun_path (deep state dirs)
// is reached through its directory: opened O_PATH into `dir_fd` (keep it open while the
// address is used) and named /proc/self/fd/N/<name>.
absl::Status UnixAddress(const std::string& path, struct sockaddr_un* addr, UniqueFd* dir_fd);


inline constexpr uint32_t kMaxFrame = 4u << 20;

// Length prefix + compact JSON text. Invalid UTF-8 in strings is replaced (U+FFFD), never
// thrown. The result may exceed kMaxFrame; WriteFrame refuses such a message.
std::string EncodeFrame(const nlohmann::json& message);

// Blocking helpers for the client side (berthd).
// Writes the whole frame (EINTR, short writes and a non-blocking fd are handled; no SIGPIPE).
absl::Status WriteFrame(int fd, const nlohmann::json& message);
// Reads exactly one frame (never bytes past it), waiting with poll until `deadline`
// (absl::InfiniteFuture() waits forever). Unavailable on EOF before a full frame,
// DeadlineExceeded on timeout, InvalidArgument on a bad length or JSON that does not parse to
// an object.
absl::StatusOr<nlohmann::json> ReadFrame(int fd, absl::Time deadline);

// Incremental decoder for the monitor's non-blocking event loop: Feed bytes, then pop complete
// messages until Next gives nullopt.
class FrameDecoder {
 public:
  void Feed(absl::string_view bytes);
  // The next complete message, nullopt when more bytes are needed, or an error (bad length or
  // JSON) after which the decoder is unusable (every later call returns the same error).
  absl::StatusOr<std::optional<nlohmann::json>> Next();
  // Bytes fed but not yet returned as messages.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;  // bytes at the front of buffer_ already returned
  absl::Status error_;
};

// Client convenience: connect to the unix socket at `socket_path`, send `request`, read one
// reply, close. `timeout` covers all of it. Connect errors are Unavailable with the path.
absl::StatusOr<nlohmann::json> Call(const std::string& socket_path, const nlohmann::json& request,
                                    absl::Duration timeout);

// At most this many descriptors travel with one message.
inline constexpr size_t kMaxFds = 8;

// WriteFrame, with `fds` passed along (SCM_RIGHTS) on the frame's first bytes. Blocking.
absl::Status WriteFrameWithFds(int fd, const nlohmann::json& message,
                               const std::vector<int>& fds);

// Call, for a request answered with descriptors (WriteFrameWithFds): they are appended to
// `*fds`, and the connection is left open in `*conn` for requests that live on it (attach).
absl::StatusOr<nlohmann::json> CallWithFds(const std::string& socket_path,
                                           const nlohmann::json& request, absl::Duration timeout,
                                           std::vector<UniqueFd>* fds, UniqueFd* conn);

}  // namespace berth::runtime

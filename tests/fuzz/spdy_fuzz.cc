// Fuzz target: SPDY/3.1 frames are untrusted input (any client of the streaming server, any
// server berthctl connects to). The input is fed to a Decoder in chunks whose sizes come from the
// input itself, so frames straddle feeds at changing points; every frame decoded must encode
// again (with one HeaderEncoder, as a connection would) and decode, on a second Decoder, to an
// equal frame. The raw input also goes to a HeaderDecoder as if it were a header block.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "cri/stream/spdy.h"

namespace spdy = berth::stream::spdy;

namespace {

// Small limits keep each run cheap; the checks are the same.
constexpr size_t kMaxPayload = 1 << 20;
constexpr size_t kMaxHeaders = 64 << 10;

// Re-encodes `f` and decodes it on `check`, which has seen every earlier re-encoded frame.
void CheckRoundTrip(const spdy::Frame& f, spdy::HeaderEncoder& enc, spdy::Decoder& check) {
  absl::StatusOr<std::string> bytes = spdy::Encode(f, enc);
  if (!bytes.ok()) __builtin_trap();  // the decoder accepted what the encoder refuses
  check.Feed(*bytes);
  absl::StatusOr<std::optional<spdy::Frame>> again = check.Next();
  if (!again.ok() || !again->has_value() || **again != f) __builtin_trap();
  absl::StatusOr<std::optional<spdy::Frame>> none = check.Next();
  if (!none.ok() || none->has_value()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  spdy::Decoder decoder(kMaxPayload, kMaxHeaders);
  spdy::HeaderEncoder enc;
  spdy::Decoder check(kMaxPayload, kMaxHeaders);
  size_t pos = 0;
  bool failed = false;
  while (pos < input.size() && !failed) {
    // 1..64 bytes, from the byte at the split point: 1-byte feeds and whole frames both occur.
    size_t chunk = 1 + (static_cast<unsigned char>(input[pos]) * 7 + pos) % 64;
    decoder.Feed(input.substr(pos, chunk));
    pos += chunk;
    for (;;) {
      absl::StatusOr<std::optional<spdy::Frame>> f = decoder.Next();
      if (!f.ok()) {
        failed = true;
        // An error is final.
        if (decoder.Next().status() != f.status() || decoder.buffered() != 0) __builtin_trap();
        break;
      }
      if (!f->has_value()) break;
      CheckRoundTrip(**f, enc, check);
    }
  }
  if (!failed && decoder.buffered() > input.size()) __builtin_trap();

  spdy::HeaderDecoder headers(kMaxHeaders);
  absl::StatusOr<spdy::Headers> h = headers.Decode(input);
  if (h.ok()) {
    // A block that decodes holds names the encoder accepts.
    spdy::HeaderEncoder fresh;
    absl::StatusOr<std::string> block = fresh.Encode(*h);
    if (!block.ok()) __builtin_trap();
    spdy::HeaderDecoder back(kMaxHeaders);
    absl::StatusOr<spdy::Headers> again = back.Decode(*block);
    if (!again.ok() || *again != *h) __builtin_trap();
  }
  return 0;
}

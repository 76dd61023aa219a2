// Fuzz target: what a client sends after a WebSocket upgrade, read the way berthd's streaming
// server reads it (Boost.Beast's frame parser under the limits berthd sets, then Kubernetes'
// channel framing, binary and base64). Nothing may crash; every message either decodes or is
// refused.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "cri/stream/channels.h"

namespace {
namespace beast = boost::beast;
namespace websocket = beast::websocket;

// A well-formed upgrade request: the fuzz input is what follows it on the connection.
constexpr char kUpgrade[] =
    "GET /exec/token HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const bool base64 = size > 0 && (data[0] & 1);
  boost::asio::io_context io;
  beast::test::stream client(io), server(io);
  client.connect(server);
  client.write_size(1 << 20);
  boost::beast::error_code ec;
  std::string input(kUpgrade);
  input.append(reinterpret_cast<const char*>(data), size);
  server.append(input);
  server.close_remote();  // EOF after the input
  websocket::stream<beast::test::stream&> ws(server);
  ws.read_message_max(16 << 20);
  ws.accept(ec);
  if (ec) return 0;
  for (int i = 0; i < 1000; ++i) {
    beast::flat_buffer buffer;
    ws.read(buffer, ec);
    if (ec) break;
    auto bytes = buffer.cdata();
    std::string message(static_cast<const char*>(bytes.data()), bytes.size());
    auto decoded = berth::stream::DecodeChannelMessage(message, base64);
    if (decoded.ok()) {
      // What decodes must encode back to the same message.
      std::string again =
          berth::stream::EncodeChannelMessage(decoded->channel, decoded->data, base64);
      if (!base64 && again != message) __builtin_trap();
      if (decoded->channel == berth::stream::kResize) {
        std::string pending = decoded->data;
        (void)berth::stream::TakeTerminalSizes(&pending);
      }
    }
  }
  return 0;
}

// The one place Boost.Asio and Boost.Beast are included from (Debian's libboost-dev 1.74,
// header-only). Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#ifndef BERTH_CRI_STREAM_ASIO_H_
#define BERTH_CRI_STREAM_ASIO_H_

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace berth::stream {

namespace asio = boost::asio;
namespace beast = boost::beast;
using error_code = boost::system::error_code;
template <typename T = void>
using awaitable = asio::awaitable<T>;

// co_await op(..., kAwait(ec)): errors land in `ec` instead of being thrown.
inline auto kAwait(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

}  // namespace berth::stream

#endif  // BERTH_CRI_STREAM_ASIO_H_

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
inline auto kAwait(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// A one-shot-at-a-time wake-up for coroutines on one strand: Wait() suspends until Notify()
// (a steady_timer that never expires by itself, cancelled to wake the waiter).
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& ex) : timer_(ex) {
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  awaitable<void> Wait() {
    if (pending_) {
      pending_ = false;
      co_return;
    }
    error_code ec;
    co_await timer_.async_wait(kAwait(ec));
    pending_ = false;
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  void Notify() {
    pending_ = true;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  bool pending_ = false;
};

}  // namespace berth::stream

#endif  // BERTH_CRI_STREAM_ASIO_H_

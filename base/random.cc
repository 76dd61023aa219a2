#include "base/random.h"

#include <sys/random.h>

#include <cerrno>

#include "base/status.h"

namespace berth {

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return LastErrnoError("getrandom");
    got += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace berth

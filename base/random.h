// Random bytes from the kernel (getrandom), for ids and tokens.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace berth {

// `n` bytes from getrandom(2) (blocking only until the pool is initialised at boot).
absl::StatusOr<std::string> RandomBytes(size_t n);

}  // namespace berth

// Helpers for untrusted JSON (registry documents, CNI results, configs) on top of nlohmann.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace berth {

// False when brackets nest deeper than `max_depth` (strings are skipped). nlohmann::json parses
// and destroys deep values iteratively but copies, compares and dumps them recursively, so a
// document nested 100000 levels deep would overflow the stack later: check this before parsing.
bool JsonNestingWithin(absl::string_view text, int max_depth);

// A value for an error message: JSON-quoted and ASCII only (control characters, invalid UTF-8
// and terminal escapes cannot leak into logs), cut to `max_bytes` with "..." marking the cut.
std::string QuoteForMessage(absl::string_view s, size_t max_bytes = 64);

}  // namespace berth

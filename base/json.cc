#include "base/json.h"

#include "nlohmann/json.hpp"

namespace berth {

bool JsonNestingWithin(absl::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}': --depth; break;
      default: break;
    }
  }
  return true;
}

std::string QuoteForMessage(absl::string_view s, size_t max_bytes) {
  using nlohmann::json;
  std::string out = json(std::string(s.substr(0, max_bytes)))
                        .dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  if (s.size() > max_bytes) out.insert(out.size() - 1, "...");
  return out;
}

}  // namespace berth

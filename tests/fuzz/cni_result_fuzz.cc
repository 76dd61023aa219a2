// Fuzz target: CNI plugin output (results, errors) is untrusted input.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "network/cni_result.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<berth::network::CniResult> result = berth::network::ParseCniResult(text, "1.0.0");
  if (result.ok()) {
    for (const char* version : {"0.2.0", "0.4.0", "1.0.0"}) {
      absl::StatusOr<nlohmann::json> j = berth::network::CniResultToJson(*result, version);
      if (!j.ok()) continue;
      // What berth hands the next plugin must parse back, and render the same again.
      std::string out = j->dump();
      if (out.size() > (1 << 20)) continue;  // "version" fields can push it over the limit
      absl::StatusOr<berth::network::CniResult> back = berth::network::ParseCniResult(out, "");
      if (!back.ok()) __builtin_trap();
      absl::StatusOr<nlohmann::json> again = berth::network::CniResultToJson(*back, version);
      if (!again.ok() || *again != *j) __builtin_trap();
    }
    (void)berth::network::PodIps(*result, "eth0");
  }
  std::optional<berth::network::CniError> err = berth::network::ParseCniError(text);
  if (err.has_value()) (void)berth::network::CniErrorCodeName(err->code);
  (void)berth::network::ParseCniVersionResult(text);
  return 0;
}

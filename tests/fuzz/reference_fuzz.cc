// Fuzz target: image references come from pod specs and CRI clients (untrusted text).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "images/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<berth::images::Reference> ref = berth::images::ParseReference(text);
  if (!ref.ok()) return 0;
  // The normal form parses back to the same reference.
  absl::StatusOr<berth::images::Reference> again = berth::images::ParseReference(ref->String());
  if (!again.ok() || !(*again == *ref)) __builtin_trap();
  if (ref->domain.empty() || ref->path.empty() || (ref->tag.empty() && !ref->digest.has_value())) {
    __builtin_trap();
  }
  return 0;
}

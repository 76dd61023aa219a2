// Fuzz target: a bundle's config.json and exec's process.json are input from whoever runs the
// runtime (for berthd, derived from CRI requests), parsed before anything is made.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "runtime/spec.h"

namespace {

using namespace berth::runtime;  // NOLINT(google-build-using-namespace): a fuzz target

void Check(const Spec& spec) {
  // What the parser promises to later stages.
  if (spec.process) {
    if (spec.process->args.empty() || spec.process->cwd.empty() || spec.process->cwd[0] != '/') {
      __builtin_trap();
    }
  }
  for (const Mount& m : spec.mounts) {
    if (m.destination.empty() || m.destination[0] != '/') __builtin_trap();
    if (!ParseMountOptions(m.options).ok()) __builtin_trap();  // checked at parse time
  }
  for (const Device& d : spec.linux.devices) {
    if (d.path.empty() || d.path[0] != '/') __builtin_trap();
  }
  for (const auto& [key, value] : spec.linux.sysctl) {
    if (key.find("..") != std::string::npos || key.find('/') == 0) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Spec> spec = ParseSpec(text);
  if (spec.ok()) Check(*spec);
  (void)ParseProcess(text);
  std::vector<std::string> options = absl::StrSplit(text.substr(0, 512), ',');
  (void)ParseMountOptions(options);
  (void)ParseSignal(text.substr(0, 32));
  (void)CapabilityFromName(text.substr(0, 32));
  return 0;
}

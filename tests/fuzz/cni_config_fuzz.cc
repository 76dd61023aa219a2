// Fuzz target: CNI network config files are read from a directory anyone with root can write,
// and kubelet-adjacent tooling generates them; a bad one must be refused, never crash berthd.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "network/cni_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  for (const char* source : {"fuzz.conflist", "fuzz.conf"}) {
    absl::StatusOr<berth::network::CniConfigList> list =
        berth::network::ParseCniConfig(text, source);
    if (!list.ok()) continue;
    // berth passes each plugin's config to the plugin as JSON text.
    for (const nlohmann::json& plugin : list->plugins) {
      (void)plugin.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  return 0;
}

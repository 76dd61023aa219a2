// OCI hooks: a program on the host run with the container's state JSON on its stdin.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/spec.h"

namespace berth::runtime {

// Runs `hook` (path, args, env), writes `state_json` to its stdin and waits for it, killing it
// after its timeout. A non-zero exit, a signal or a timeout is an error naming the hook.
absl::Status RunHook(const Hook& hook, const std::string& state_json);
// Runs each in order; stops at the first error.
absl::Status RunHooks(const std::vector<Hook>& hooks, const std::string& state_json,
                      absl::string_view kind);

}  // namespace berth::runtime

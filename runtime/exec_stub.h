// The exec stub (runtime/stub/exec_stub.c), built freestanding and embedded in the runtime.
#pragma once

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace berth::runtime {

extern const unsigned char kExecStub[];
extern const unsigned long kExecStubSize;

// A memfd holding the stub, sealed against every change (write, grow, shrink, more seals), so
// nothing in a container can modify what it executes. Close-on-exec.
absl::StatusOr<UniqueFd> SealedExecStub();

}  // namespace berth::runtime

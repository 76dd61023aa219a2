// Starting helper processes from a multi-threaded daemon.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth {

// Forks and execs args[0] (a path; args[0] is also argv[0]) with `in`, `out` and `err` as its
// stdin, stdout and stderr (-1: /dev/null) and an empty signal mask. Every other descriptor
// of the caller should be close-on-exec. Returns the child's pid; the caller reaps it.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, int in, int out, int err);

}  // namespace berth

// berthctl's commands. Each speaks only CRI through Connection, so it works the same against
// berthd, containerd or CRI-O. Each returns the process exit code and writes errors as
// "berthctl: <what happened>" to `err`.
#pragma once

#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "cri/client/output.h"

namespace berth::cri::client {

struct GlobalOptions {
  std::string endpoint;  // resolved and normalized
  absl::Duration timeout = absl::Seconds(10);
  OutputFormat output = OutputFormat::kTable;
};

int CmdVersion(const GlobalOptions& opts, std::ostream& out, std::ostream& err);
int CmdInfo(const GlobalOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace berth::cri::client

// berthctl's commands. Each speaks only CRI through Connection (except `image import`, which
// needs berth's admin service, and pull's optional progress), so it works the same against
// berthd, containerd or CRI-O. Each returns the process exit code and writes errors as
// "berthctl: <what happened>" to `err`.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cri/client/output.h"

namespace berth::cri::client {

struct GlobalOptions {
  std::string endpoint;  // resolved and normalized
  absl::Duration timeout = absl::Seconds(10);
  OutputFormat output = OutputFormat::kTable;
};

struct PullFlags {
  std::string image;
  std::string creds;                                   // "user:pass"
  std::string auth;                                    // base64 of "user:pass"
  absl::Duration pull_timeout = absl::ZeroDuration();  // zero: none
  // Progress goes to `err`: bars redrawn in place on a terminal, else one line per layer done.
  bool terminal = false;
};

struct ImagesFlags {
  std::string image;  // filter; empty: all
  bool quiet = false;
  bool digests = false;
};

struct ImportFlags {
  std::string path;  // an OCI image layout directory, or an OCI archive (.tar)
  std::vector<std::string> tags;
  absl::Duration timeout = absl::ZeroDuration();  // zero: none
};

// Human sizes as crictl prints them (decimal units, 3 significant digits): "1.2MB", "512B".
std::string HumanSize(uint64_t bytes);

int CmdVersion(const GlobalOptions& opts, std::ostream& out, std::ostream& err);
int CmdInfo(const GlobalOptions& opts, std::ostream& out, std::ostream& err);

// Images: the CRI ImageService (pull also tries berth's admin service for layer progress and
// falls back to the plain CRI call when the runtime lacks it).
int CmdPull(const GlobalOptions& opts, const PullFlags& flags, std::ostream& out,
            std::ostream& err);
int CmdImages(const GlobalOptions& opts, const ImagesFlags& flags, std::ostream& out,
              std::ostream& err);
int CmdInspectImages(const GlobalOptions& opts, const std::vector<std::string>& images,
                     std::ostream& out, std::ostream& err);
int CmdRemoveImages(const GlobalOptions& opts, const std::vector<std::string>& images,
                    std::ostream& out, std::ostream& err);
int CmdImageFsInfo(const GlobalOptions& opts, std::ostream& out, std::ostream& err);

// berth-only: imports an OCI image layout through berth's admin service.
int CmdImportImage(const GlobalOptions& opts, const ImportFlags& flags, std::ostream& out,
                   std::ostream& err);

}  // namespace berth::cri::client

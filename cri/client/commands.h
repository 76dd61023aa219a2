// berthctl's commands. Each speaks only CRI through Connection (except `image import`, which
// needs berth's admin service, and pull's optional progress), so it works the same against
// berthd, containerd or CRI-O. Each returns the process exit code and writes errors as
// "berthctl: <what happened>" to `err`. `logs` also reads the container's log file, so it runs
// on the node, as crictl's does.
#pragma once

#include <cstdint>
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

// Pods and containers (CRI RuntimeService). Config files are PodSandboxConfig /
// ContainerConfig in the protobuf JSON mapping (crictl's pod-config.json, container-config.json):
// lowerCamelCase or the proto's own field names, unknown fields ignored.
struct RunPodFlags {
  std::string pod_config;       // path
  std::string runtime_handler;  // empty: the runtime's default
};

struct CreateFlags {
  std::string pod_id;
  std::string container_config;  // path
  std::string pod_config;        // path
};

struct RunFlags {
  std::string container_config;  // path
  std::string pod_config;        // path
  std::string runtime_handler;
};

struct StopFlags {
  std::vector<std::string> ids;
  int64_t timeout_seconds = 10;  // grace before SIGKILL
};

// rm and rmp.
struct RemoveFlags {
  std::vector<std::string> ids;
  bool force = false;  // stop first (rm: running containers; rmp: the pod)
  bool all = false;    // every container / pod the runtime lists
};

struct PodsFlags {
  std::string id;                   // prefix
  std::string state;                // ready | notready (any case); empty: both
  std::vector<std::string> labels;  // "k=v"
  std::string name;                 // regular expression on the pod's name
  std::string namespace_;           // regular expression on the pod's namespace
  bool quiet = false;
  bool no_trunc = false;
  bool latest = false;
  int last = 0;  // the newest N; 0: all
};

struct PsFlags {
  bool all = false;   // without it (and without --state), running containers only
  std::string id;     // prefix
  std::string pod;    // pod id (prefix)
  std::string state;  // created | running | exited | unknown (any case)
  std::vector<std::string> labels;
  std::string name;   // regular expression on the container's name
  std::string image;  // a reference or an image id (prefix)
  bool quiet = false;
  bool no_trunc = false;
  bool latest = false;
  int last = 0;
};

struct LogsFlags {
  std::string container;
  bool follow = false;
  int64_t tail = -1;  // the last N records; negative: all
  bool timestamps = false;
  std::string since;  // a duration back from now (5s, 2m, 3h) or an RFC 3339 time; empty: all
  absl::Duration poll = absl::Milliseconds(100);  // -f: how often the file is read again
};

struct ExecFlags {
  std::string container;
  std::vector<std::string> cmd;
  int64_t timeout_seconds = 0;  // 0: none
  bool interactive = false, tty = false;
  std::string transport = "spdy";
  std::string stream_ca;  // CA bundle for an https streaming URL ("": not verified)
};

// exec through the CRI Exec RPC and the runtime's streaming server (stdio are ours: fds 0-2).
int CmdExecStream(const GlobalOptions& opts, const ExecFlags& flags, std::ostream& err);

struct AttachFlags {
  std::string container;
  bool interactive = false, tty = false;
  std::string transport = "spdy";
  std::string stream_ca;  // CA bundle for an https streaming URL ("": not verified)
};

// Attaches to a running container's stdio (CRI Attach and the streaming server).
int CmdAttach(const GlobalOptions& opts, const AttachFlags& flags, std::ostream& err);

struct PortForwardFlags {
  std::string pod;
  std::vector<std::string> ports;  // LOCAL:REMOTE or PORT (the same on both sides)
  std::string transport = "spdy";
  std::string stream_ca;  // CA bundle for an https streaming URL ("": not verified)
};

// Listens on 127.0.0.1 for each LOCAL port and forwards every connection to REMOTE in the pod
// (one CRI PortForward and one streaming connection per local connection). Runs until killed;
// returns only on a setup error. `out` gets one "Forwarding from" line per port.
int CmdPortForward(const GlobalOptions& opts, const PortForwardFlags& flags, std::ostream& out,
                   std::ostream& err);

// crictl's "CREATED" column: go-units' HumanDuration ("2 minutes", "About an hour").
std::string HumanDuration(absl::Duration d);

int CmdRunPod(const GlobalOptions& opts, const RunPodFlags& flags, std::ostream& out,
              std::ostream& err);
int CmdStopPods(const GlobalOptions& opts, const std::vector<std::string>& ids, std::ostream& out,
                std::ostream& err);
int CmdRemovePods(const GlobalOptions& opts, const RemoveFlags& flags, std::ostream& out,
                  std::ostream& err);
int CmdPods(const GlobalOptions& opts, const PodsFlags& flags, std::ostream& out,
            std::ostream& err);
int CmdInspectPods(const GlobalOptions& opts, const std::vector<std::string>& ids,
                   std::ostream& out, std::ostream& err);

int CmdCreate(const GlobalOptions& opts, const CreateFlags& flags, std::ostream& out,
              std::ostream& err);
int CmdStart(const GlobalOptions& opts, const std::vector<std::string>& ids, std::ostream& out,
             std::ostream& err);
int CmdStop(const GlobalOptions& opts, const StopFlags& flags, std::ostream& out,
            std::ostream& err);
int CmdRemove(const GlobalOptions& opts, const RemoveFlags& flags, std::ostream& out,
              std::ostream& err);
// runp + create + start; prints the container's id.
int CmdRun(const GlobalOptions& opts, const RunFlags& flags, std::ostream& out, std::ostream& err);
int CmdPs(const GlobalOptions& opts, const PsFlags& flags, std::ostream& out, std::ostream& err);
int CmdInspect(const GlobalOptions& opts, const std::vector<std::string>& ids, std::ostream& out,
               std::ostream& err);
// stdout records to `out`, stderr records to `err`.
int CmdLogs(const GlobalOptions& opts, const LogsFlags& flags, std::ostream& out,
            std::ostream& err);
// ExecSync: the command's output to `out` / `err`; returns the command's exit code.
int CmdExec(const GlobalOptions& opts, const ExecFlags& flags, std::ostream& out,
            std::ostream& err);

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

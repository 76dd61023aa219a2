// berthd's streaming server: the HTTP endpoint that the URLs returned by the CRI Exec, Attach
// and PortForward RPCs point at. The kubelet (or crictl, or berthctl) upgrades a connection at
// such a URL to SPDY/3.1 or to a WebSocket and runs Kubernetes' remote-command or port-forward
// protocol over it (cri/stream/).
//
// A URL carries a single-use token (128 random bits, base64url) that stands for the CRI
// request it was issued for, valid for `token_ttl`; an unknown, used or expired token gets a
// 404 and nothing else. Connections run on one I/O thread (Asio); what may block — starting
// an exec, asking a pod's monitor for an attach, opening a socket in a pod's network
// namespace — runs on a small pool beside it, so sessions do not wait for each other.
#ifndef BERTH_CRI_STREAMING_SERVER_H_
#define BERTH_CRI_STREAMING_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "cri/api/cri.h"

namespace berth::cri {

struct StreamingOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;                        // 0: chosen at start
  std::string tls_cert_file, tls_key_file;  // both or neither
  absl::Duration token_ttl = absl::Minutes(1);
  absl::Duration idle_timeout = absl::Hours(4);
  absl::Duration stream_creation_timeout = absl::Seconds(30);
};

// The local end of an exec or an attach: the descriptors a session copies to and from the
// client. Empty ones are unused. With a terminal, `tty` is the pty master: input and output go
// through it and resizes apply to it (`in`/`out` may be dups of it).
class StreamTarget {
 public:
  virtual ~StreamTarget() = default;
  UniqueFd in;        // we write the client's stdin here
  UniqueFd out, err;  // we read the process' stdout / stderr here
  UniqueFd tty;       // pty master
  UniqueFd done;      // readable once the target has finished (exec: a pidfd); may be empty
  // Attach: `done` is a connection told when the client's stdin ends: its write side is
  // shut down (the monitor then closes the container's stdin if it was created stdin_once),
  // or, with `detach_at_stdin_end`, the whole of it (the monitor detaches the session, whose
  // output then ends).
  bool done_takes_stdin_end = false;
  bool detach_at_stdin_end = false;
  // Once `done` is readable: the exit code (exec), or nullopt (attach has none).
  virtual std::optional<int> Finish() = 0;
  // The session is over before the target finished: stop it (exec: kill the process) and
  // release what it holds. Idempotent.
  virtual void Cancel() = 0;
};

// What the streaming server needs from the runtime (PodManager implements it). Called on the
// server's worker pool; may block briefly.
class StreamingRuntime {
 public:
  virtual ~StreamingRuntime() = default;
  virtual absl::StatusOr<std::unique_ptr<StreamTarget>> StartExec(
      const runtime::v1::ExecRequest& request) = 0;
  virtual absl::StatusOr<std::unique_ptr<StreamTarget>> StartAttach(
      const runtime::v1::AttachRequest& request) = 0;
  // A connected TCP socket to `port` on localhost inside the pod's network namespace.
  virtual absl::StatusOr<UniqueFd> DialPort(const std::string& pod_id, int32_t port) = 0;
};

class StreamingServer {
 public:
  // Listens at once; `runtime` must outlive the server.
  static absl::StatusOr<std::unique_ptr<StreamingServer>> Start(const StreamingOptions& options,
                                                                StreamingRuntime* runtime);
  ~StreamingServer();

  // "http://127.0.0.1:PORT" (https with TLS).
  std::string base_url() const;

  // The URL for one request; the request is kept until the token is used or expires.
  absl::StatusOr<std::string> Url(const runtime::v1::ExecRequest& request);
  absl::StatusOr<std::string> Url(const runtime::v1::AttachRequest& request);
  absl::StatusOr<std::string> Url(const runtime::v1::PortForwardRequest& request);

  // Stops listening, ends every session (their targets are cancelled) and joins the threads.
  void Stop();

  // Changes whenever a connection is accepted or ends; `busy` while any is being served.
  // For berthd's idle trim (any thread).
  int64_t Activity(bool* busy) const;

  class Impl;

 private:
  explicit StreamingServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::cri

#endif  // BERTH_CRI_STREAMING_SERVER_H_

// The client side of the CRI streaming protocols, for berthctl: given the URL an Exec (or
// Attach) or PortForward RPC returned — by berthd, containerd or CRI-O — upgrade a connection
// (http or https) to SPDY/3.1 or a WebSocket and run Kubernetes' remote-command or port-forward
// protocol.
#ifndef BERTH_CRI_CLIENT_STREAM_CLIENT_H_
#define BERTH_CRI_CLIENT_STREAM_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::cri::client {

enum class Transport { kSpdy, kWebSocket };
absl::StatusOr<Transport> ParseTransport(const std::string& name);

struct RemoteCommandOptions {
  std::string url;
  Transport transport = Transport::kSpdy;
  bool stdin = false, stdout = true, stderr = true, tty = false;
  int in_fd = 0, out_fd = 1, err_fd = 2;
  // With tty: put in_fd's terminal (if it is one) in raw mode and follow its size.
  bool raw_terminal = true;
  // When set, stdout/stderr data goes here (channel 1 or 2) instead of out_fd/err_fd.
  std::function<void(uint8_t channel, absl::string_view data)> output;
  // Told what the user should know but is not an error (stdin's end that cannot be passed on).
  std::function<void(absl::string_view message)> warn;
  // https: the server's certificate is verified against this CA bundle (and the URL's host);
  // empty: not verified, as crictl does.
  std::string tls_ca_file;
};

// Runs the session to its end; returns the remote command's exit code (0 when the server
// reported success, or said nothing — attach).
absl::StatusOr<int> RunRemoteCommand(const RemoteCommandOptions& options);

struct PortForwardOptions {
  Transport transport = Transport::kSpdy;
  uint16_t remote_port = 0;
  int local_fd = -1;        // a connected local TCP socket; taken over (closed when done)
  std::string tls_ca_file;  // as in RemoteCommandOptions
};

// Forwards one local connection to `remote_port` in the pod through `url` (from a PortForward
// RPC; single use); returns when both directions are done. An error the server reports for
// the port (nothing listening, ...) is returned.
absl::Status ForwardConnection(const std::string& url, const PortForwardOptions& options);

}  // namespace berth::cri::client

#endif  // BERTH_CRI_CLIENT_STREAM_CLIENT_H_

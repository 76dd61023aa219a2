// berth-monitor: one small process per pod. berthd starts it for a sandbox; it outlives berthd
// (its own session, reparented to init). It is the parent and child subreaper of the pod's
// containers: it creates them through the runtime library (clone3 from here) or through an
// external runc-compatible binary, holds their stdio (pipes, or the pty master for `tty`),
// writes their output as CRI log records, reaps them, and records each exit in the pod dir so
// that it survives a berthd restart.
//
// berthd talks to it over <pod_dir>/monitor.sock with length-prefixed JSON frames
// (monitor_proto.h); one request per connection, one reply. Requests ("op"):
//
//   create   {id, bundle, dir, log_path, tty, stdin, stdin_once, runtime?, runtime_root?}
//            -> {pid}                 runtime: path of an external OCI runtime binary (runc)
//   start    {id}                     -> {started_ns}
//   kill     {id, signal, all}        -> {}
//   stop     {id, signal, timeout_ms} -> {exited: true} once the init has exited; SIGKILL to
//                                        everything in the container after the timeout
//   delete   {id}                     -> {}   (force: kills what is left, forgets the container)
//   reopen_log {id}                   -> {}
//   state    {}                       -> {pid, holder_pid, containers: [{id, pid, exited, ...}]}
//   shutdown {}                       -> {}   then the monitor exits (the pod is being removed)
//
// A reply is {"ok": true, ...} or {"ok": false, "code": <absl::StatusCode>, "error": "..."}.
//
// Exit records: <dir>/exit (dir is the container's directory given at create), JSON
// {"exit_code", "signal", "finished_ns", "oom_killed"}, written atomically when the init has
// been reaped and its output drained.
#pragma once

#include <string>

namespace berth::runtime {

struct MonitorOptions {
  std::string pod_dir;       // holds monitor.sock; the containers' dirs are given per request
  std::string runtime_root;  // the runtime library's state root (shared with berth-oci)
  bool pid_namespace_holder = false;  // start a pid-1 holder for a pod-wide pid namespace
  std::string holder_binary;          // what the holder execs ("<self> pause")
  size_t log_max_line = 16 * 1024;
  int ready_fd = -1;  // receives one line of JSON: {"pid", "holder_pid"} or {"error"}
};

// Runs the monitor until a shutdown request. Returns the process exit code.
int RunMonitor(const MonitorOptions& options);

// `berth-monitor exec-wait [--console-socket PATH] RUNTIME ROOT PID_FILE ID CMD...`: runs a
// runtime's
// `exec --detach` as a child subreaper and waits for the exec'd process itself (it is
// reparented here when the runtime exits); exits with the process's exit code (128+signal when
// killed), or 255 when the runtime failed. The process keeps this command's stdio. berthd's
// ExecSync uses it for runc: runc's foreground exec copies the output through pipes of its own
// and returns only when every writer (background children too) has closed them. The streaming
// exec uses it for every runtime: with --console-socket the process gets a terminal whose
// master the runtime sends there; SIGTERM/SIGHUP/SIGINT to exec-wait kill the process.
int RunExecWait(int argc, char** argv);

// The pid-namespace holder's body: pid 1 of the pod's pid namespace, reaping orphans until
// killed. Never returns.
[[noreturn]] void RunPidHolder();

}  // namespace berth::runtime

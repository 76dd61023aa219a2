// berthctl's pod and container commands, crictl-compatible: runp, stopp, rmp, pods, inspectp,
// create, start, stop, rm, run, ps, inspect, logs, exec (CRI RuntimeService only; logs reads the
// container's log file on the node, as crictl does).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cri/client/commands.h"
#include "cri/client/connection.h"
#include "cri/client/stream_client.h"

namespace berth::cri::client {

namespace {

namespace v1 = ::runtime::v1;

// crictl's getTruncatedID: 13 characters, after an optional prefix such as "sha256:".
std::string TruncateId(absl::string_view id, absl::string_view prefix = "") {
  absl::ConsumePrefix(&id, prefix);
  return std::string(id.size() > 13 ? id.substr(0, 13) : id);
}

std::string Created(int64_t unix_nanos) {
  if (unix_nanos <= 0) return "";
  return absl::StrCat(HumanDuration(absl::Now() - absl::FromUnixNanos(unix_nanos)), " ago");
}

std::string PodState(v1::PodSandboxState s) {
  switch (s) {
    case v1::SANDBOX_READY: return "Ready";
    case v1::SANDBOX_NOTREADY: return "NotReady";
    default: return "Unknown";
  }
}

std::string ContainerStateName(v1::ContainerState s) {
  switch (s) {
    case v1::CONTAINER_CREATED: return "Created";
    case v1::CONTAINER_RUNNING: return "Running";
    case v1::CONTAINER_EXITED: return "Exited";
    default: return "Unknown";
  }
}

// A PodSandboxConfig / ContainerConfig from a JSON file (the protobuf JSON mapping).
absl::Status ReadConfig(const std::string& path, google::protobuf::Message* message) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  google::protobuf::util::JsonParseOptions po;
  po.ignore_unknown_fields = true;  // as crictl
  auto st = google::protobuf::util::JsonStringToMessage(*text, message, po);
  if (st.ok()) return absl::OkStatus();
  std::string why(st.message().data(), st.message().size());
  absl::string_view body = absl::StripLeadingAsciiWhitespace(*text);
  if (absl::EndsWith(path, ".yaml") || absl::EndsWith(path, ".yml") ||
      (!body.empty() && body.front() != '{')) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a JSON ", message->GetDescriptor()->name(),
                     " (berthctl reads JSON config files only, not YAML): ", why));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": not a valid ", message->GetDescriptor()->name(), ": ", why));
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& labels) {
  std::map<std::string, std::string> out;
  for (const std::string& l : labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--label \"", l, "\": want KEY=VALUE"));
    }
    out[l.substr(0, eq)] = l.substr(eq + 1);
  }
  return out;
}

absl::StatusOr<std::regex> Pattern(const std::string& flag, const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " \"", pattern, "\" is not a regular expression: ", e.what()));
  }
}

// ---- calls shared by several commands ------------------------------------------------------

absl::StatusOr<std::string> RunPodSandbox(Connection& conn, const v1::PodSandboxConfig& config,
                                          const std::string& handler) {
  v1::RunPodSandboxRequest req;
  *req.mutable_config() = config;
  req.set_runtime_handler(handler);
  v1::RunPodSandboxResponse resp;
  auto ctx = conn.NewContext();
  RETURN_IF_ERROR(conn.Check(conn.runtime().RunPodSandbox(ctx.get(), req, &resp), "RunPodSandbox"));
  return resp.pod_sandbox_id();
}

absl::StatusOr<std::string> CreateContainer(Connection& conn, const std::string& pod,
                                            const v1::ContainerConfig& config,
                                            const v1::PodSandboxConfig& pod_config) {
  v1::CreateContainerRequest req;
  req.set_pod_sandbox_id(pod);
  *req.mutable_config() = config;
  *req.mutable_sandbox_config() = pod_config;
  v1::CreateContainerResponse resp;
  auto ctx = conn.NewContext();
  RETURN_IF_ERROR(
      conn.Check(conn.runtime().CreateContainer(ctx.get(), req, &resp), "CreateContainer"));
  return resp.container_id();
}

absl::Status StartContainer(Connection& conn, const std::string& id) {
  v1::StartContainerRequest req;
  req.set_container_id(id);
  v1::StartContainerResponse resp;
  auto ctx = conn.NewContext();
  return conn.Check(conn.runtime().StartContainer(ctx.get(), req, &resp), "StartContainer");
}

absl::Status StopContainer(Connection& conn, const std::string& id, int64_t timeout_seconds,
                           absl::Duration call_timeout) {
  v1::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(timeout_seconds);
  v1::StopContainerResponse resp;
  // The runtime waits up to the grace period before it answers.
  auto ctx = Connection::NewLongContext(call_timeout + absl::Seconds(timeout_seconds));
  return conn.Check(conn.runtime().StopContainer(ctx.get(), req, &resp), "StopContainer");
}

absl::StatusOr<v1::ContainerStatusResponse> ContainerStatus(Connection& conn, const std::string& id,
                                                            bool verbose) {
  v1::ContainerStatusRequest req;
  req.set_container_id(id);
  req.set_verbose(verbose);
  v1::ContainerStatusResponse resp;
  auto ctx = conn.NewContext();
  RETURN_IF_ERROR(
      conn.Check(conn.runtime().ContainerStatus(ctx.get(), req, &resp), "ContainerStatus"));
  if (!resp.has_status()) {
    return absl::NotFoundError(absl::StrCat("container \"", id, "\" not found"));
  }
  return resp;
}

absl::StatusOr<std::vector<v1::PodSandbox>> ListPods(Connection& conn,
                                                     const v1::PodSandboxFilter* filter) {
  v1::ListPodSandboxRequest req;
  if (filter != nullptr) *req.mutable_filter() = *filter;
  v1::ListPodSandboxResponse resp;
  auto ctx = conn.NewContext();
  RETURN_IF_ERROR(
      conn.Check(conn.runtime().ListPodSandbox(ctx.get(), req, &resp), "ListPodSandbox"));
  return std::vector<v1::PodSandbox>(resp.items().begin(), resp.items().end());
}

absl::StatusOr<std::vector<v1::Container>> ListContainers(Connection& conn,
                                                          const v1::ContainerFilter* filter) {
  v1::ListContainersRequest req;
  if (filter != nullptr) *req.mutable_filter() = *filter;
  v1::ListContainersResponse resp;
  auto ctx = conn.NewContext();
  RETURN_IF_ERROR(
      conn.Check(conn.runtime().ListContainers(ctx.get(), req, &resp), "ListContainers"));
  return std::vector<v1::Container>(resp.containers().begin(), resp.containers().end());
}

absl::Status StopPodSandbox(Connection& conn, const std::string& id) {
  v1::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::StopPodSandboxResponse resp;
  auto ctx = conn.NewContext();
  return conn.Check(conn.runtime().StopPodSandbox(ctx.get(), req, &resp), "StopPodSandbox");
}

absl::Status RemovePodSandbox(Connection& conn, const std::string& id) {
  v1::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  v1::RemovePodSandboxResponse resp;
  auto ctx = conn.NewContext();
  return conn.Check(conn.runtime().RemovePodSandbox(ctx.get(), req, &resp), "RemovePodSandbox");
}

absl::Status RemoveContainer(Connection& conn, const std::string& id) {
  v1::RemoveContainerRequest req;
  req.set_container_id(id);
  v1::RemoveContainerResponse resp;
  auto ctx = conn.NewContext();
  return conn.Check(conn.runtime().RemoveContainer(ctx.get(), req, &resp), "RemoveContainer");
}

// ---- output shared by several commands -----------------------------------------------------

// Runs `fn` on every id in turn: an id that fails has its error printed and the others still
// run. The exit code: PrintError's for the last failure, 0 when none failed.
int ForEachId(const std::vector<std::string>& ids, std::ostream& err,
              const std::function<absl::Status(const std::string&)>& fn) {
  int rc = 0;
  for (const std::string& id : ids) {
    if (absl::Status st = fn(id); !st.ok()) rc = PrintError(err, st);
  }
  return rc;
}

// The ids given (rm, rmp) and, with --all, the id of every item `list()` returns.
template <typename List>
absl::StatusOr<std::vector<std::string>> TargetIds(const RemoveFlags& flags, const List& list) {
  std::vector<std::string> ids = flags.ids;
  if (flags.all) {
    ASSIGN_OR_RETURN(auto items, list());
    for (const auto& item : items) ids.push_back(item.id());
  }
  return ids;
}

// A listing (pods, ps): the ids alone with -q; else the List response (`add` appends one item
// to it) as JSON or YAML with -o; else a table of `header` and row(item) for each item.
template <typename Response, typename T>
void PrintListing(const GlobalOptions& opts, bool quiet, const std::vector<T>& items,
                  T* (Response::*add)(), std::vector<std::string> header,
                  const std::function<std::vector<std::string>(const T&)>& row, std::ostream& out) {
  if (quiet) {
    for (const T& item : items) out << item.id() << "\n";
    return;
  }
  if (opts.output != OutputFormat::kTable) {
    Response resp;
    for (const T& item : items) *(resp.*add)() = item;
    out << RenderStructured(MessageToJson(resp), opts.output);
    return;
  }
  std::vector<std::vector<std::string>> rows = {std::move(header)};
  for (const T& item : items) rows.push_back(row(item));
  out << RenderTable(rows);
}

// {"status": <status>, <each info key>: <its value, parsed when JSON>}, as crictl prints.
void PrintInspect(const GlobalOptions& opts, const google::protobuf::Message& status,
                  const google::protobuf::Map<std::string, std::string>& info, std::ostream& out) {
  nlohmann::json doc;
  doc["status"] = MessageToJson(status);
  std::vector<std::string> keys;
  for (const auto& [k, v] : info) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  for (const std::string& k : keys) {
    const std::string& v = info.at(k);
    nlohmann::json parsed = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
    doc[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
  }
  out << RenderStructured(
      doc, opts.output == OutputFormat::kYaml ? OutputFormat::kYaml : OutputFormat::kJson);
}

// Newest first (crictl's order), then --latest / --last.
template <typename T>
void SortAndLimit(std::vector<T>& items, bool latest, int last) {
  std::stable_sort(items.begin(), items.end(),
                   [](const T& a, const T& b) { return a.created_at() > b.created_at(); });
  size_t keep = latest ? 1 : (last > 0 ? static_cast<size_t>(last) : items.size());
  if (items.size() > keep) items.resize(keep);
}

// ---- logs ----------------------------------------------------------------------------------

// One CRI log record: "<RFC 3339 time> <stdout|stderr> <P|F>[:more tags] <content>".
struct LogRecord {
  absl::Time time = absl::InfinitePast();
  bool parsed_time = false;
  bool is_stderr = false;
  bool partial = false;
  absl::string_view content;
};

bool ParseLogRecord(absl::string_view line, LogRecord* r) {
  size_t a = line.find(' ');
  if (a == absl::string_view::npos) return false;
  size_t b = line.find(' ', a + 1);
  if (b == absl::string_view::npos) return false;
  absl::string_view stream = line.substr(a + 1, b - a - 1);
  if (stream != "stdout" && stream != "stderr") return false;
  size_t c = line.find(' ', b + 1);
  absl::string_view tags =
      c == absl::string_view::npos ? line.substr(b + 1) : line.substr(b + 1, c - b - 1);
  r->content = c == absl::string_view::npos ? absl::string_view() : line.substr(c + 1);
  r->is_stderr = stream == "stderr";
  r->partial = absl::StartsWith(tags, "P");
  std::string error;
  r->parsed_time = absl::ParseTime(absl::RFC3339_full, line.substr(0, a), &r->time, &error);
  return true;
}

// Go's RFC3339Nano, as kubelet and crictl print it: trailing zeros dropped, "Z" for UTC.
std::string FormatLogTime(absl::Time t) {
  std::string s = absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*S", t, absl::UTCTimeZone());
  return s + "Z";
}

class LogPrinter {
 public:
  LogPrinter(std::ostream& out, std::ostream& err, bool timestamps, absl::Time since)
      : out_(out), err_(err), timestamps_(timestamps), since_(since) {}

  void Line(absl::string_view line) {
    LogRecord r;
    if (!ParseLogRecord(line, &r)) {
      out_ << line << "\n";  // not a CRI record: shown as it is
      return;
    }
    if (r.parsed_time && r.time < since_) return;
    const int s = r.is_stderr ? 1 : 0;
    std::ostream& o = r.is_stderr ? err_ : out_;
    if (timestamps_ && at_line_start_[s]) o << FormatLogTime(r.time) << " ";
    o << r.content;
    if (!r.partial) o << "\n";
    at_line_start_[s] = !r.partial;
  }

  // The complete lines of `*pending` (which keeps an unfinished last line).
  void CompleteLines(std::string* pending) {
    size_t start = 0;
    for (size_t nl; (nl = pending->find('\n', start)) != std::string::npos; start = nl + 1) {
      Line(absl::string_view(*pending).substr(start, nl - start));
    }
    pending->erase(0, start);
  }

  void Flush() {
    out_.flush();
    err_.flush();
  }

 private:
  std::ostream& out_;
  std::ostream& err_;
  bool timestamps_;
  absl::Time since_;
  bool at_line_start_[2] = {true, true};
};

// Appends what `fd` has now to `*buf`; the number of bytes read, or an error.
absl::StatusOr<size_t> ReadAvailable(int fd, const std::string& path, std::string* buf) {
  size_t total = 0;
  char chunk[64 << 10];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError(absl::StrCat("read ", path));
    }
    if (n == 0) return total;
    buf->append(chunk, static_cast<size_t>(n));
    total += static_cast<size_t>(n);
  }
}

absl::StatusOr<absl::Time> ParseSince(const std::string& since) {
  if (since.empty()) return absl::InfinitePast();
  absl::Duration d;
  if (absl::ParseDuration(since, &d) && d >= absl::ZeroDuration()) return absl::Now() - d;
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, since, &t, &error)) return t;
  return absl::InvalidArgumentError(
      absl::StrCat("--since \"", since, "\": want a duration (5s, 2m, 3h) or an RFC 3339 time"));
}

bool Finished(v1::ContainerState s) {
  return s != v1::CONTAINER_CREATED && s != v1::CONTAINER_RUNNING;
}

}  // namespace

std::string HumanDuration(absl::Duration d) {
  // go-units HumanDuration.
  const int64_t seconds = absl::ToInt64Seconds(d);
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return absl::StrCat(seconds, " seconds");
  const int64_t minutes = absl::ToInt64Minutes(d);
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return absl::StrCat(minutes, " minutes");
  const int64_t hours = std::llround(absl::ToDoubleHours(d));  // Go: int(d.Hours() + 0.5)
  constexpr int64_t kDay = 24;
  if (hours == 1) return "About an hour";
  if (hours < 48) return absl::StrCat(hours, " hours");
  if (hours < kDay * 7 * 2) return absl::StrCat(hours / kDay, " days");
  if (hours < kDay * 30 * 2) return absl::StrCat(hours / kDay / 7, " weeks");
  if (hours < kDay * 365 * 2) return absl::StrCat(hours / kDay / 30, " months");
  return absl::StrCat(absl::ToInt64Hours(d) / 24 / 365, " years");
}

// ---- pods ----------------------------------------------------------------------------------

int CmdRunPod(const GlobalOptions& opts, const RunPodFlags& flags, std::ostream& out,
              std::ostream& err) {
  v1::PodSandboxConfig config;
  if (absl::Status st = ReadConfig(flags.pod_config, &config); !st.ok()) {
    return PrintError(err, st);
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  absl::StatusOr<std::string> id = RunPodSandbox(*conn, config, flags.runtime_handler);
  if (!id.ok()) return PrintError(err, id.status());
  out << *id << "\n";
  return 0;
}

int CmdStopPods(const GlobalOptions& opts, const std::vector<std::string>& ids, std::ostream& out,
                std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  return ForEachId(ids, err, [&](const std::string& id) -> absl::Status {
    RETURN_IF_ERROR(StopPodSandbox(*conn, id));
    out << "Stopped sandbox " << id << "\n";
    return absl::OkStatus();
  });
}

int CmdRemovePods(const GlobalOptions& opts, const RemoveFlags& flags, std::ostream& out,
                  std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  absl::StatusOr<std::vector<std::string>> ids =
      TargetIds(flags, [&] { return ListPods(*conn, nullptr); });
  if (!ids.ok()) return PrintError(err, ids.status());
  return ForEachId(*ids, err, [&](const std::string& id) -> absl::Status {
    if (flags.force) RETURN_IF_ERROR(StopPodSandbox(*conn, id));
    RETURN_IF_ERROR(RemovePodSandbox(*conn, id));
    out << "Removed sandbox " << id << "\n";
    return absl::OkStatus();
  });
}

int CmdPods(const GlobalOptions& opts, const PodsFlags& flags, std::ostream& out,
            std::ostream& err) {
  v1::PodSandboxFilter filter;
  filter.set_id(flags.id);
  if (!flags.state.empty()) {
    std::string s = absl::AsciiStrToLower(flags.state);
    if (s == "ready") {
      filter.mutable_state()->set_state(v1::SANDBOX_READY);
    } else if (s == "notready") {
      filter.mutable_state()->set_state(v1::SANDBOX_NOTREADY);
    } else {
      return PrintError(err, absl::InvalidArgumentError(absl::StrCat(
                                 "--state \"", flags.state, "\": want ready or notready")));
    }
  }
  absl::StatusOr<std::map<std::string, std::string>> labels = ParseLabels(flags.labels);
  if (!labels.ok()) return PrintError(err, labels.status());
  filter.mutable_label_selector()->insert(labels->begin(), labels->end());
  absl::StatusOr<std::regex> name = Pattern("--name", flags.name);
  if (!name.ok()) return PrintError(err, name.status());
  absl::StatusOr<std::regex> ns = Pattern("--namespace", flags.namespace_);
  if (!ns.ok()) return PrintError(err, ns.status());

  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  absl::StatusOr<std::vector<v1::PodSandbox>> listed = ListPods(*conn, &filter);
  if (!listed.ok()) return PrintError(err, listed.status());
  std::vector<v1::PodSandbox> pods;
  for (v1::PodSandbox& p : *listed) {
    if (!flags.name.empty() && !std::regex_search(p.metadata().name(), *name)) continue;
    if (!flags.namespace_.empty() && !std::regex_search(p.metadata().namespace_(), *ns)) continue;
    pods.push_back(std::move(p));
  }
  SortAndLimit(pods, flags.latest, flags.last);

  PrintListing<v1::ListPodSandboxResponse, v1::PodSandbox>(
      opts, flags.quiet, pods, &v1::ListPodSandboxResponse::add_items,
      {"POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"},
      [&](const v1::PodSandbox& p) -> std::vector<std::string> {
        return {flags.no_trunc ? p.id() : TruncateId(p.id()),
                Created(p.created_at()),
                PodState(p.state()),
                p.metadata().name(),
                p.metadata().namespace_(),
                absl::StrCat(p.metadata().attempt()),
                p.runtime_handler().empty() ? "(default)" : p.runtime_handler()};
      },
      out);
  return 0;
}

int CmdInspectPods(const GlobalOptions& opts, const std::vector<std::string>& ids,
                   std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  return ForEachId(ids, err, [&](const std::string& id) -> absl::Status {
    v1::PodSandboxStatusRequest req;
    req.set_pod_sandbox_id(id);
    req.set_verbose(true);
    v1::PodSandboxStatusResponse resp;
    auto ctx = conn->NewContext();
    RETURN_IF_ERROR(
        conn->Check(conn->runtime().PodSandboxStatus(ctx.get(), req, &resp), "PodSandboxStatus"));
    if (!resp.has_status()) {
      return absl::NotFoundError(absl::StrCat("pod sandbox \"", id, "\" not found"));
    }
    PrintInspect(opts, resp.status(), resp.info(), out);
    return absl::OkStatus();
  });
}

// ---- containers ----------------------------------------------------------------------------

int CmdCreate(const GlobalOptions& opts, const CreateFlags& flags, std::ostream& out,
              std::ostream& err) {
  v1::ContainerConfig config;
  if (absl::Status st = ReadConfig(flags.container_config, &config); !st.ok()) {
    return PrintError(err, st);
  }
  v1::PodSandboxConfig pod_config;
  if (absl::Status st = ReadConfig(flags.pod_config, &pod_config); !st.ok()) {
    return PrintError(err, st);
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  absl::StatusOr<std::string> id = CreateContainer(*conn, flags.pod_id, config, pod_config);
  if (!id.ok()) return PrintError(err, id.status());
  out << *id << "\n";
  return 0;
}

int CmdStart(const GlobalOptions& opts, const std::vector<std::string>& ids, std::ostream& out,
             std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  return ForEachId(ids, err, [&](const std::string& id) -> absl::Status {
    RETURN_IF_ERROR(StartContainer(*conn, id));
    out << id << "\n";
    return absl::OkStatus();
  });
}

int CmdStop(const GlobalOptions& opts, const StopFlags& flags, std::ostream& out,
            std::ostream& err) {
  if (flags.timeout_seconds < 0) {
    return PrintError(err, absl::InvalidArgumentError("--timeout must not be negative"));
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  return ForEachId(flags.ids, err, [&](const std::string& id) -> absl::Status {
    RETURN_IF_ERROR(StopContainer(*conn, id, flags.timeout_seconds, opts.timeout));
    out << id << "\n";
    return absl::OkStatus();
  });
}

int CmdRemove(const GlobalOptions& opts, const RemoveFlags& flags, std::ostream& out,
              std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  absl::StatusOr<std::vector<std::string>> ids =
      TargetIds(flags, [&] { return ListContainers(*conn, nullptr); });
  if (!ids.ok()) return PrintError(err, ids.status());
  return ForEachId(*ids, err, [&](const std::string& id) -> absl::Status {
    // As crictl: a running container is refused unless forced, then stopped at once.
    ASSIGN_OR_RETURN(v1::ContainerStatusResponse status, ContainerStatus(*conn, id, false));
    if (status.status().state() == v1::CONTAINER_RUNNING) {
      if (!flags.force) {
        return absl::FailedPreconditionError(
            absl::StrCat("container ", id, " is running; stop it first or use -f"));
      }
      RETURN_IF_ERROR(StopContainer(*conn, id, 0, opts.timeout));
    }
    RETURN_IF_ERROR(RemoveContainer(*conn, id));
    out << id << "\n";
    return absl::OkStatus();
  });
}

int CmdRun(const GlobalOptions& opts, const RunFlags& flags, std::ostream& out, std::ostream& err) {
  v1::ContainerConfig config;
  if (absl::Status st = ReadConfig(flags.container_config, &config); !st.ok()) {
    return PrintError(err, st);
  }
  v1::PodSandboxConfig pod_config;
  if (absl::Status st = ReadConfig(flags.pod_config, &pod_config); !st.ok()) {
    return PrintError(err, st);
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  absl::StatusOr<std::string> pod = RunPodSandbox(*conn, pod_config, flags.runtime_handler);
  if (!pod.ok()) return PrintError(err, pod.status());
  absl::StatusOr<std::string> id = CreateContainer(*conn, *pod, config, pod_config);
  if (!id.ok()) {
    return PrintError(err, Annotate(id.status(), absl::StrCat("in pod ", *pod)));
  }
  if (absl::Status st = StartContainer(*conn, *id); !st.ok()) {
    return PrintError(err, Annotate(st, absl::StrCat("container ", *id, " in pod ", *pod)));
  }
  out << *id << "\n";
  return 0;
}

int CmdPs(const GlobalOptions& opts, const PsFlags& flags, std::ostream& out, std::ostream& err) {
  v1::ContainerFilter filter;
  filter.set_id(flags.id);
  filter.set_pod_sandbox_id(flags.pod);
  if (!flags.state.empty()) {
    std::string s = absl::AsciiStrToLower(flags.state);
    v1::ContainerState state;
    if (s == "created") {
      state = v1::CONTAINER_CREATED;
    } else if (s == "running") {
      state = v1::CONTAINER_RUNNING;
    } else if (s == "exited") {
      state = v1::CONTAINER_EXITED;
    } else if (s == "unknown") {
      state = v1::CONTAINER_UNKNOWN;
    } else {
      return PrintError(
          err, absl::InvalidArgumentError(absl::StrCat(
                   "--state \"", flags.state, "\": want created, running, exited or unknown")));
    }
    filter.mutable_state()->set_state(state);
  } else if (!flags.all) {
    filter.mutable_state()->set_state(v1::CONTAINER_RUNNING);
  }
  absl::StatusOr<std::map<std::string, std::string>> labels = ParseLabels(flags.labels);
  if (!labels.ok()) return PrintError(err, labels.status());
  filter.mutable_label_selector()->insert(labels->begin(), labels->end());
  absl::StatusOr<std::regex> name = Pattern("--name", flags.name);
  if (!name.ok()) return PrintError(err, name.status());

  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  // --image: a reference or an id; matched against what the runtime resolved it to.
  std::string image_id;
  if (!flags.image.empty()) {
    v1::ImageStatusRequest req;
    req.mutable_image()->set_image(flags.image);
    v1::ImageStatusResponse resp;
    auto ctx = conn->NewContext();
    if (conn->image().ImageStatus(ctx.get(), req, &resp).ok() && resp.has_image()) {
      image_id = resp.image().id();
    }
  }
  auto image_matches = [&](const v1::Container& c) {
    if (flags.image.empty()) return true;
    if (c.image().image() == flags.image || c.image_ref() == flags.image) return true;
    if (!image_id.empty() &&
        (c.image_ref() == image_id || c.image().image() == image_id || c.image_id() == image_id)) {
      return true;
    }
    std::string bare = absl::StrCat("sha256:", flags.image);
    return absl::StartsWith(c.image_ref(), flags.image) || absl::StartsWith(c.image_ref(), bare);
  };

  absl::StatusOr<std::vector<v1::Container>> listed = ListContainers(*conn, &filter);
  if (!listed.ok()) return PrintError(err, listed.status());
  std::vector<v1::Container> ctrs;
  for (v1::Container& c : *listed) {
    if (!flags.name.empty() && !std::regex_search(c.metadata().name(), *name)) continue;
    if (!image_matches(c)) continue;
    ctrs.push_back(std::move(c));
  }
  SortAndLimit(ctrs, flags.latest, flags.last);

  PrintListing<v1::ListContainersResponse, v1::Container>(
      opts, flags.quiet, ctrs, &v1::ListContainersResponse::add_containers,
      {"CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID"},
      [&](const v1::Container& c) -> std::vector<std::string> {
        std::string image = c.image().image();
        if (!flags.no_trunc && absl::StartsWith(image, "sha256:")) {
          image = TruncateId(image, "sha256:");
        }
        return {flags.no_trunc ? c.id() : TruncateId(c.id()),
                image,
                Created(c.created_at()),
                ContainerStateName(c.state()),
                c.metadata().name(),
                absl::StrCat(c.metadata().attempt()),
                flags.no_trunc ? c.pod_sandbox_id() : TruncateId(c.pod_sandbox_id())};
      },
      out);
  return 0;
}

int CmdInspect(const GlobalOptions& opts, const std::vector<std::string>& ids, std::ostream& out,
               std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  return ForEachId(ids, err, [&](const std::string& id) -> absl::Status {
    ASSIGN_OR_RETURN(v1::ContainerStatusResponse resp, ContainerStatus(*conn, id, true));
    PrintInspect(opts, resp.status(), resp.info(), out);
    return absl::OkStatus();
  });
}

int CmdLogs(const GlobalOptions& opts, const LogsFlags& flags, std::ostream& out,
            std::ostream& err) {
  absl::StatusOr<absl::Time> since = ParseSince(flags.since);
  if (!since.ok()) return PrintError(err, since.status());
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  absl::StatusOr<v1::ContainerStatusResponse> status =
      ContainerStatus(*conn, flags.container, false);
  if (!status.ok()) return PrintError(err, status.status());
  const std::string path = status->status().log_path();
  const std::string id = status->status().id().empty() ? flags.container : status->status().id();
  if (path.empty()) {
    return PrintError(err, absl::FailedPreconditionError(
                               absl::StrCat("container ", flags.container, " has no log path")));
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return PrintError(err, LastErrnoError(absl::StrCat("open ", path)));
  struct stat opened;
  if (::fstat(fd.get(), &opened) != 0) {
    return PrintError(err, LastErrnoError(absl::StrCat("stat ", path)));
  }

  LogPrinter printer(out, err, flags.timestamps, *since);
  std::string pending;
  absl::StatusOr<size_t> n = ReadAvailable(fd.get(), path, &pending);
  if (!n.ok()) return PrintError(err, n.status());
  off_t offset = static_cast<off_t>(*n);
  if (flags.tail >= 0) {
    // The last N complete records of what is there now.
    std::vector<size_t> starts;
    size_t next = 0;
    for (size_t nl; (nl = pending.find('\n', next)) != std::string::npos; next = nl + 1) {
      starts.push_back(next);
    }
    const size_t want = static_cast<size_t>(flags.tail);
    if (want < starts.size()) pending.erase(0, want == 0 ? next : starts[starts.size() - want]);
  }
  printer.CompleteLines(&pending);
  printer.Flush();

  if (flags.follow) {
    bool exited = false;
    absl::Time next_check = absl::InfinitePast();
    for (;;) {
      absl::StatusOr<size_t> got = ReadAvailable(fd.get(), path, &pending);
      if (!got.ok()) return PrintError(err, got.status());
      offset += static_cast<off_t>(*got);
      printer.CompleteLines(&pending);
      printer.Flush();
      if (*got > 0) continue;
      // At the end: a rotated file (a new one at `path`) or one truncated in place.
      struct stat now;
      if (::stat(path.c_str(), &now) == 0 &&
          (now.st_ino != opened.st_ino || now.st_dev != opened.st_dev)) {
        UniqueFd next(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (next && ::fstat(next.get(), &opened) == 0) {
          // What reached the old file after the read above and before the new one appeared.
          absl::StatusOr<size_t> last = ReadAvailable(fd.get(), path, &pending);
          if (!last.ok()) return PrintError(err, last.status());
          printer.CompleteLines(&pending);
          if (!pending.empty()) printer.Line(pending);
          pending.clear();
          fd = std::move(next);
          offset = 0;
          continue;
        }
      }
      struct stat cur;
      if (::fstat(fd.get(), &cur) == 0 && cur.st_size < offset) {
        ::lseek(fd.get(), 0, SEEK_SET);
        offset = 0;
        pending.clear();
        continue;
      }
      if (exited) break;  // the file was read to its end after the container had exited
      if (absl::Now() >= next_check) {
        absl::StatusOr<v1::ContainerStatusResponse> s = ContainerStatus(*conn, id, false);
        if (!s.ok() && !absl::IsNotFound(s.status())) return PrintError(err, s.status());
        if (!s.ok() || Finished(s->status().state())) {
          exited = true;  // one more pass for what it wrote last
          continue;
        }
        next_check = absl::Now() + std::max(flags.poll * 5, absl::Milliseconds(500));
      }
      absl::SleepFor(flags.poll);
    }
  }
  if (!pending.empty()) printer.Line(pending);  // a last record without its newline
  printer.Flush();
  return 0;
}

int CmdExec(const GlobalOptions& opts, const ExecFlags& flags, std::ostream& out,
            std::ostream& err) {
  if (flags.cmd.empty()) {
    return PrintError(err, absl::InvalidArgumentError("exec: no command given"));
  }
  if (flags.timeout_seconds < 0) {
    return PrintError(err, absl::InvalidArgumentError("--timeout must not be negative"));
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  v1::ExecSyncRequest req;
  req.set_container_id(flags.container);
  for (const std::string& a : flags.cmd) req.add_cmd(a);
  req.set_timeout(flags.timeout_seconds);
  v1::ExecSyncResponse resp;
  // No deadline of our own without --timeout: the command may take as long as it takes.
  auto ctx = Connection::NewLongContext(flags.timeout_seconds > 0
                                            ? absl::Seconds(flags.timeout_seconds) + opts.timeout
                                            : absl::ZeroDuration());
  grpc::Status gst = conn->runtime().ExecSync(ctx.get(), req, &resp);
  if (gst.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && flags.timeout_seconds > 0) {
    return PrintError(err, absl::DeadlineExceededError(absl::StrCat(
                               "command timed out after ", flags.timeout_seconds, "s",
                               gst.error_message().empty() ? "" : ": ", gst.error_message())));
  }
  if (absl::Status st = conn->Check(gst, "ExecSync"); !st.ok()) return PrintError(err, st);
  out << resp.stdout();
  err << resp.stderr();
  out.flush();
  err.flush();
  return resp.exit_code();
}

namespace {

// Runs the remote-command session at a URL from Exec or Attach with our stdio.
int RunStream(const std::string& url, const std::string& transport_name,
              const std::string& stream_ca, bool in, bool tty, std::ostream& err) {
  absl::StatusOr<Transport> transport = ParseTransport(transport_name);
  if (!transport.ok()) return PrintError(err, transport.status());
  RemoteCommandOptions o;
  o.url = url;
  o.transport = *transport;
  o.tls_ca_file = stream_ca;
  o.warn = [&err](absl::string_view message) { err << "berthctl: " << message << std::endl; };
  o.stdin = in;
  o.tty = tty;
  o.stderr = !tty;  // with a terminal, stdout carries both
  absl::StatusOr<int> code = RunRemoteCommand(o);
  if (!code.ok()) return PrintError(err, code.status());
  return *code;
}

}  // namespace

int CmdExecStream(const GlobalOptions& opts, const ExecFlags& flags, std::ostream& err) {
  if (absl::Status st = ParseTransport(flags.transport).status(); !st.ok()) {
    return PrintError(err, st);
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  v1::ExecRequest req;
  req.set_container_id(flags.container);
  for (const std::string& a : flags.cmd) req.add_cmd(a);
  req.set_stdin(flags.interactive);
  req.set_tty(flags.tty);
  req.set_stdout(true);
  req.set_stderr(!flags.tty);
  v1::ExecResponse resp;
  auto ctx = conn->NewContext();
  if (absl::Status st = conn->Check(conn->runtime().Exec(ctx.get(), req, &resp), "Exec");
      !st.ok()) {
    return PrintError(err, st);
  }
  return RunStream(resp.url(), flags.transport, flags.stream_ca, flags.interactive, flags.tty, err);
}

int CmdAttach(const GlobalOptions& opts, const AttachFlags& flags, std::ostream& err) {
  if (absl::Status st = ParseTransport(flags.transport).status(); !st.ok()) {
    return PrintError(err, st);
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  v1::AttachRequest req;
  req.set_container_id(flags.container);
  req.set_stdin(flags.interactive);
  req.set_tty(flags.tty);
  req.set_stdout(true);
  req.set_stderr(!flags.tty);
  v1::AttachResponse resp;
  auto ctx = conn->NewContext();
  if (absl::Status st = conn->Check(conn->runtime().Attach(ctx.get(), req, &resp), "Attach");
      !st.ok()) {
    return PrintError(err, st);
  }
  return RunStream(resp.url(), flags.transport, flags.stream_ca, flags.interactive, flags.tty, err);
}

int CmdPortForward(const GlobalOptions& opts, const PortForwardFlags& flags, std::ostream& out,
                   std::ostream& err) {
  absl::StatusOr<Transport> transport = ParseTransport(flags.transport);
  if (!transport.ok()) return PrintError(err, transport.status());
  struct Forward {
    uint16_t local = 0, remote = 0;
    UniqueFd listener;
  };
  std::vector<Forward> forwards;
  for (const std::string& spec : flags.ports) {
    std::vector<std::string> parts = absl::StrSplit(spec, ':');
    Forward f;
    int local = 0, remote = 0;
    bool ok = false;
    if (parts.size() == 1) {
      ok = absl::SimpleAtoi(parts[0], &remote);
      local = remote;
    } else if (parts.size() == 2) {
      ok = (parts[0].empty() || absl::SimpleAtoi(parts[0], &local)) &&
           absl::SimpleAtoi(parts[1], &remote);
    }
    if (!ok || local < 0 || local > 65535 || remote <= 0 || remote > 65535) {
      return PrintError(
          err, absl::InvalidArgumentError(absl::StrCat("port-forward: bad port spec \"", spec,
                                                       "\" (LOCAL:REMOTE, :REMOTE or PORT)")));
    }
    f.remote = static_cast<uint16_t>(remote);
    f.listener.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!f.listener) return PrintError(err, LastErrnoError("socket"));
    int one = 1;
    ::setsockopt(f.listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(local));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(f.listener.get(), reinterpret_cast<struct sockaddr*>(&addr), len) != 0 ||
        ::listen(f.listener.get(), 128) != 0 ||
        ::getsockname(f.listener.get(), reinterpret_cast<struct sockaddr*>(&addr), &len) != 0) {
      return PrintError(err, LastErrnoError(absl::StrCat("listen on 127.0.0.1:", local)));
    }
    f.local = ntohs(addr.sin_port);
    forwards.push_back(std::move(f));
  }
  if (forwards.empty()) {
    return PrintError(err, absl::InvalidArgumentError("port-forward: no ports given"));
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  for (const Forward& f : forwards) {
    out << "Forwarding from 127.0.0.1:" << f.local << " -> " << f.remote << std::endl;
  }
  std::vector<struct pollfd> fds;
  for (const Forward& f : forwards) fds.push_back({f.listener.get(), POLLIN, 0});
  std::mutex err_mu;
  for (;;) {
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PrintError(err, LastErrnoError("poll"));
    for (size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      int client = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      // Each connection gets its own URL (tokens are single-use) and its own thread.
      std::thread([&conn, &err, &err_mu, pod = flags.pod, remote = forwards[i].remote,
                   transport = *transport, ca = flags.stream_ca, client] {
        v1::PortForwardRequest req;
        req.set_pod_sandbox_id(pod);
        req.add_port(remote);
        v1::PortForwardResponse resp;
        auto ctx = conn->NewContext();
        absl::Status st =
            conn->Check(conn->runtime().PortForward(ctx.get(), req, &resp), "PortForward");
        if (st.ok()) {
          st = ForwardConnection(resp.url(), {.transport = transport,
                                              .remote_port = remote,
                                              .local_fd = client,
                                              .tls_ca_file = ca});
        } else {
          ::close(client);
        }
        if (!st.ok()) {
          std::lock_guard lock(err_mu);
          err << "berthctl: port-forward " << remote << ": " << st.message() << std::endl;
        }
      }).detach();
    }
  }
}

}  // namespace berth::cri::client

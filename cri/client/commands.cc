#include "cri/client/commands.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cri/client/connection.h"

namespace berth::cri::client {

int CmdVersion(const GlobalOptions& opts, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  ::runtime::v1::VersionRequest req;
  req.set_version("v1");  // the CRI API version this client speaks
  ::runtime::v1::VersionResponse resp;
  auto ctx = conn->NewContext();
  absl::Status st = conn->Check(conn->runtime().Version(ctx.get(), req, &resp), "Version");
  if (!st.ok()) return PrintError(err, st);

  if (opts.output == OutputFormat::kTable) {
    // The same shape as crictl's, so scripts written for one read the other.
    out << "Version:  " << resp.version() << "\n"
        << "RuntimeName:  " << resp.runtime_name() << "\n"
        << "RuntimeVersion:  " << resp.runtime_version() << "\n"
        << "RuntimeApiVersion:  " << resp.runtime_api_version() << "\n";
  } else {
    out << RenderStructured(MessageToJson(resp), opts.output);
  }
  return 0;
}

int CmdInfo(const GlobalOptions& opts, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  ::runtime::v1::StatusRequest req;
  req.set_verbose(true);
  ::runtime::v1::StatusResponse resp;
  auto ctx = conn->NewContext();
  absl::Status st = conn->Check(conn->runtime().Status(ctx.get(), req, &resp), "Status");
  if (!st.ok()) return PrintError(err, st);

  if (opts.output == OutputFormat::kTable) {
    std::vector<std::vector<std::string>> rows = {{"CONDITION", "STATUS", "REASON", "MESSAGE"}};
    for (const auto& c : resp.status().conditions()) {
      rows.push_back({c.type(), c.status() ? "true" : "false", c.reason(), c.message()});
    }
    out << RenderTable(rows);
    std::vector<std::string> keys;
    for (const auto& [k, v] : resp.info()) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    if (!keys.empty()) {
      std::string joined;
      for (const auto& k : keys) absl::StrAppend(&joined, joined.empty() ? "" : ", ", k);
      out << "\nverbose info: " << joined << " (see -o json)\n";
    }
    return 0;
  }
  // As crictl prints it: {"status": ..., <each info key>: <its value, parsed when JSON>}.
  nlohmann::json doc;
  doc["status"] = MessageToJson(resp.status());
  for (const auto& [k, v] : resp.info()) {
    nlohmann::json parsed = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
    doc[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
  }
  out << RenderStructured(doc, opts.output);
  return 0;
}

}  // namespace berth::cri::client

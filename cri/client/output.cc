#include "cri/client/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <ostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace berth::cri::client {

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  if (name == "table" || name.empty()) return OutputFormat::kTable;
  if (name == "json") return OutputFormat::kJson;
  if (name == "yaml") return OutputFormat::kYaml;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format \"", name, "\" (want json, yaml or table)"));
}

nlohmann::json MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(message, &out, opts);
  if (!st.ok()) return nlohmann::json{{"error", std::string(st.message())}};
  return nlohmann::json::parse(out);
}

namespace {

bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* kReserved[] = {"true", "false", "yes", "no", "on",
                                    "off",  "null",  "~",   "y",  "n"};
  std::string lower = absl::AsciiStrToLower(s);
  for (const char* r : kReserved) {
    if (lower == r) return true;
  }
  if (absl::ascii_isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+' ||
      s[0] == '.') {
    return true;
  }
  if (s.front() == ' ' || s.back() == ' ') return true;
  for (unsigned char c : s) {
    if (c < 0x20 || c == ':' || c == '#' || c == '"' || c == '\'' || c == '{' || c == '}' ||
        c == '[' || c == ']' || c == ',' || c == '&' || c == '*' || c == '!' || c == '|' ||
        c == '>' || c == '%' || c == '@' || c == '`' || c == '\\') {
      return true;
    }
  }
  return false;
}

std::string Scalar(const nlohmann::json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return NeedsQuotes(s) ? nlohmann::json(s).dump() : s;  // JSON strings are valid YAML
  }
  return v.dump();
}

void Emit(const nlohmann::json& v, int indent, std::string& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string key = NeedsQuotes(it.key()) ? nlohmann::json(it.key()).dump() : it.key();
      const nlohmann::json& child = it.value();
      if ((child.is_object() || child.is_array()) && !child.empty()) {
        absl::StrAppend(&out, pad, key, ":\n");
        Emit(child, child.is_array() ? indent : indent + 2, out);
      } else if (child.is_object()) {
        absl::StrAppend(&out, pad, key, ": {}\n");
      } else if (child.is_array()) {
        absl::StrAppend(&out, pad, key, ": []\n");
      } else {
        absl::StrAppend(&out, pad, key, ": ", Scalar(child), "\n");
      }
    }
  } else if (v.is_array()) {
    for (const nlohmann::json& child : v) {
      if (child.is_object() && !child.empty()) {
        // The first key goes on the dash line; the rest align under it.
        std::string sub;
        Emit(child, indent + 2, sub);
        absl::StrAppend(&out, pad, "- ", sub.substr(static_cast<size_t>(indent) + 2));
      } else if (child.is_array() && !child.empty()) {
        absl::StrAppend(&out, pad, "-\n");
        Emit(child, indent + 2, out);
      } else if (child.is_object()) {
        absl::StrAppend(&out, pad, "- {}\n");
      } else if (child.is_array()) {
        absl::StrAppend(&out, pad, "- []\n");
      } else {
        absl::StrAppend(&out, pad, "- ", Scalar(child), "\n");
      }
    }
  } else {
    absl::StrAppend(&out, pad, Scalar(v), "\n");
  }
}

}  // namespace

std::string ToYaml(const nlohmann::json& value) {
  std::string out;
  if ((value.is_object() || value.is_array()) && value.empty()) {
    return value.is_object() ? "{}\n" : "[]\n";
  }
  Emit(value, 0, out);
  return out;
}

std::string RenderStructured(const nlohmann::json& value, OutputFormat format) {
  if (format == OutputFormat::kYaml) return ToYaml(value);
  return value.dump(2) + "\n";
}

std::string RenderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 3, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

int PrintError(std::ostream& err, const absl::Status& status) {
  err << "berthctl: " << status.message() << "\n";
  return 1;
}

}  // namespace berth::cri::client

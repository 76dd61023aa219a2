// Rendering CRI answers for people (table) and programs (json, yaml).
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>
#include "absl/strings/string_view.h"

#include <google/protobuf/message.h>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace berth::cri::client {

enum class OutputFormat { kTable, kJson, kYaml };

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// The proto3 JSON mapping (lowerCamelCase names, as crictl prints), with default-valued
// fields included so that `false` and `0` are visible.
nlohmann::json MessageToJson(const google::protobuf::Message& message);

// Block-style YAML for a JSON value; strings are quoted where YAML would misread them.
std::string ToYaml(const nlohmann::json& value);

// json (2-space indent) or yaml; a trailing newline included.
std::string RenderStructured(const nlohmann::json& value, OutputFormat format);

// Left-aligned columns separated by at least three spaces, trailing spaces trimmed.
std::string RenderTable(const std::vector<std::vector<std::string>>& rows);

// Writes "berthctl: <message>" to `err` and returns the exit code for a failed command (1).
int PrintError(std::ostream& err, const absl::Status& status);

}  // namespace berth::cri::client

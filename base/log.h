// Structured logging over spdlog. Every line has a UTC timestamp, a level, a message and
// optional key/value fields; the output is either text (`msg key=value ...`) or one JSON object
// per line. Call Init once at start-up; before that, logs go to stderr as text at info level.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spdlog/common.h"

namespace berth::log {

enum class Format { kText, kJson };

struct Options {
  spdlog::level::level_enum level = spdlog::level::info;
  Format format = Format::kText;
  std::string file;  // empty: stderr
};

absl::StatusOr<spdlog::level::level_enum> ParseLevel(absl::string_view name);
absl::StatusOr<Format> ParseFormat(absl::string_view name);

// Sets up the process-wide logger.
absl::Status Init(const Options& options);

// Reopens the log file (after rotation; berthd calls it on SIGHUP). No-op for stderr.
absl::Status Reopen();

bool Enabled(spdlog::level::level_enum level);

// One key/value field. Strings are quoted in JSON; numbers and bools are not.
struct Field {
  Field(absl::string_view k, absl::string_view v) : key(k), value(v), quote(true) {}
  Field(absl::string_view k, const std::string& v) : key(k), value(v), quote(true) {}
  Field(absl::string_view k, const char* v) : key(k), value(v), quote(true) {}
  Field(absl::string_view k, bool v) : key(k), value(v ? "true" : "false"), quote(false) {}
  Field(absl::string_view k, int v) : key(k), value(std::to_string(v)), quote(false) {}
  Field(absl::string_view k, long v) : key(k), value(std::to_string(v)), quote(false) {}
  Field(absl::string_view k, long long v) : key(k), value(std::to_string(v)), quote(false) {}
  Field(absl::string_view k, unsigned v) : key(k), value(std::to_string(v)), quote(false) {}
  Field(absl::string_view k, unsigned long v) : key(k), value(std::to_string(v)), quote(false) {}
  Field(absl::string_view k, unsigned long long v)
      : key(k), value(std::to_string(v)), quote(false) {}
  Field(absl::string_view k, double v);
  absl::string_view key;
  std::string value;
  bool quote;
};

void Log(spdlog::level::level_enum level, absl::string_view msg,
         std::initializer_list<Field> fields = {});

inline void Debug(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(spdlog::level::debug, msg, fields);
}
inline void Info(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(spdlog::level::info, msg, fields);
}
inline void Warn(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(spdlog::level::warn, msg, fields);
}
inline void Error(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(spdlog::level::err, msg, fields);
}

// Exposed for tests: renders the payload part of a line in the given format.
std::string RenderPayload(Format format, absl::string_view msg,
                          std::initializer_list<Field> fields);

}  // namespace berth::log

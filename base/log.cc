#include "base/log.h"


#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/details/file_helper.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace berth::log {

namespace {

// A file sink that can reopen its file, so that logrotate's rename + SIGHUP works.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(const std::string& path) { helper_.open(path, false); }
  void Reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    helper_.reopen(false);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    helper_.write(formatted);
  }
  void flush_() override { helper_.flush(); }

 private:
  spdlog::details::file_helper helper_;
};

std::atomic<Format> g_format{Format::kText};
std::shared_ptr<spdlog::logger> g_logger;  // set by Init; guarded by g_mu for replacement
std::shared_ptr<ReopenableFileSink> g_file_sink;
std::mutex g_mu;

void AppendJsonString(std::string& out, absl::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

bool NeedsQuotingInText(absl::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return true;
  }
  return false;
}

std::shared_ptr<spdlog::logger> Logger() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_logger) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    g_logger = std::make_shared<spdlog::logger>("berth", sink);
    g_logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc));
    g_logger->set_level(spdlog::level::info);
  }
  return g_logger;
}

}  // namespace

Field::Field(absl::string_view k, double v)
    : key(k), value(absl::StrFormat("%.3f", v)), quote(false) {}

absl::StatusOr<spdlog::level::level_enum> ParseLevel(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(name);
  if (n == "trace") return spdlog::level::trace;
  if (n == "debug") return spdlog::level::debug;
  if (n == "info") return spdlog::level::info;
  if (n == "warn" || n == "warning") return spdlog::level::warn;
  if (n == "error") return spdlog::level::err;
  if (n == "fatal" || n == "critical") return spdlog::level::critical;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level \"", name, "\" (want trace, debug, info, warn, error or fatal)"));
}

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format \"", name, "\" (want text or json)"));
}

std::string RenderPayload(Format format, absl::string_view msg,
                          std::initializer_list<Field> fields) {
  std::string out;
  if (format == Format::kJson) {
    out += "\"msg\":";
    AppendJsonString(out, msg);
    for (const Field& f : fields) {
      out.push_back(',');
      AppendJsonString(out, f.key);
      out.push_back(':');
      if (f.quote) {
        AppendJsonString(out, f.value);
      } else {
        out += f.value;
      }
    }
    return out;
  }
  out.append(msg.data(), msg.size());
  for (const Field& f : fields) {
    out.push_back(' ');
    out.append(f.key.data(), f.key.size());
    out.push_back('=');
    if (f.quote && NeedsQuotingInText(f.value)) {
      AppendJsonString(out, f.value);
    } else {
      out.append(f.value);
    }
  }
  return out;
}

absl::Status Init(const Options& options) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  std::shared_ptr<ReopenableFileSink> file_sink;
  if (options.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      file_sink = std::make_shared<ReopenableFileSink>(options.file);
    } catch (const spdlog::spdlog_ex& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("open log file ", options.file, ": ", e.what()));
    }
    sink = file_sink;
  }
  auto logger = std::make_shared<spdlog::logger>("berth", sink);
  const char* pattern = options.format == Format::kJson
                            ? R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})"
                            : "%Y-%m-%dT%H:%M:%S.%fZ %l %v";
  logger->set_formatter(
      std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc));
  logger->set_level(options.level);
  logger->flush_on(spdlog::level::trace);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_logger = std::move(logger);
    g_file_sink = std::move(file_sink);
    g_format.store(options.format);
  }
  return absl::OkStatus();
}

absl::Status Reopen() {
  std::shared_ptr<ReopenableFileSink> sink;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    sink = g_file_sink;
  }
  if (!sink) return absl::OkStatus();
  try {
    sink->Reopen();
  } catch (const spdlog::spdlog_ex& e) {
    return absl::InternalError(absl::StrCat("reopen log file: ", e.what()));
  }
  return absl::OkStatus();
}

bool Enabled(spdlog::level::level_enum level) {
  return Logger()->should_log(level);
}

void Log(spdlog::level::level_enum level, absl::string_view msg,
         std::initializer_list<Field> fields) {
  auto logger = Logger();
  if (!logger->should_log(level)) return;
  std::string payload = RenderPayload(g_format.load(), msg, fields);
  logger->log(level, spdlog::string_view_t(payload.data(), payload.size()));
}

}  // namespace berth::log

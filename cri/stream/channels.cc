#include "cri/stream/channels.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace berth::stream {

std::optional<std::string> Negotiate(const std::vector<std::string>& offered,
                                     const std::vector<std::string>& supported) {
  for (const std::string& p : offered) {
    if (std::find(supported.begin(), supported.end(), p) != supported.end()) return p;
  }
  return std::nullopt;
}

std::vector<std::string> SplitProtocols(const std::vector<std::string>& header_values) {
  std::vector<std::string> out;
  for (const std::string& v : header_values) {
    for (absl::string_view p : absl::StrSplit(v, ',')) {
      p = absl::StripAsciiWhitespace(p);
      if (!p.empty()) out.emplace_back(p);
    }
  }
  return out;
}

std::optional<RemoteCommandProtocol> ParseRemoteCommandProtocol(absl::string_view name) {
  RemoteCommandProtocol p;
  if (name == kRemoteCommandV1) {
    p.version = 1;
  } else if (name == kBase64V1) {
    p.version = 1;
    p.base64 = true;
  } else if (name == kRemoteCommandV2) {
    p.version = 2;
  } else if (name == kRemoteCommandV3) {
    p.version = 3;
  } else if (name == kRemoteCommandV4) {
    p.version = 4;
  } else if (name == kBase64V4) {
    p.version = 4;
    p.base64 = true;
  } else if (name == kRemoteCommandV5) {
    p.version = 5;
    p.close_signal = true;
  } else {
    return std::nullopt;
  }
  p.json_status = p.version >= 4;
  p.resize = p.version >= 3;
  return p;
}

std::string EncodeChannelMessage(uint8_t channel, absl::string_view data, bool base64) {
  if (!base64) {
    std::string out;
    out.reserve(data.size() + 1);
    out.push_back(static_cast<char>(channel));
    out.append(data.data(), data.size());
    return out;
  }
  return absl::StrCat(std::string(1, static_cast<char>('0' + channel)), absl::Base64Escape(data));
}

absl::StatusOr<ChannelMessage> DecodeChannelMessage(absl::string_view message, bool base64) {
  if (message.empty()) return absl::InvalidArgumentError("empty channel message");
  ChannelMessage m;
  if (!base64) {
    m.channel = static_cast<uint8_t>(message[0]);
    m.data = std::string(message.substr(1));
    return m;
  }
  char c = message[0];
  if (c < '0' || c > '9') {
    return absl::InvalidArgumentError(absl::StrCat("base64 channel message: bad channel byte 0x",
                                                   absl::Hex(static_cast<unsigned char>(c))));
  }
  m.channel = static_cast<uint8_t>(c - '0');
  if (!absl::Base64Unescape(message.substr(1), &m.data)) {
    return absl::InvalidArgumentError("base64 channel message: bad base64");
  }
  return m;
}

std::string EncodeTerminalSize(TerminalSize size) {
  return absl::StrCat("{\"Width\":", size.width, ",\"Height\":", size.height, "}\n");
}

absl::StatusOr<std::vector<TerminalSize>> TakeTerminalSizes(std::string* buffer) {
  std::vector<TerminalSize> out;
  size_t pos = 0;
  for (;;) {
    while (pos < buffer->size() &&
           absl::ascii_isspace(static_cast<unsigned char>((*buffer)[pos]))) {
      ++pos;
    }
    if (pos >= buffer->size()) break;
    if ((*buffer)[pos] != '{') return absl::InvalidArgumentError("resize: expected a JSON object");
    size_t end = buffer->find('}', pos);  // the object has no nested objects or strings with '}'
    if (end == std::string::npos) {
      if (buffer->size() - pos > 4096) return absl::InvalidArgumentError("resize: object too long");
      break;
    }
    nlohmann::json j = nlohmann::json::parse(buffer->begin() + static_cast<std::ptrdiff_t>(pos),
                                             buffer->begin() + static_cast<std::ptrdiff_t>(end + 1),
                                             nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError("resize: malformed JSON");
    }
    TerminalSize size;
    for (auto [key, field] : {std::pair{"Width", &size.width}, std::pair{"Height", &size.height}}) {
      auto it = j.find(key);
      if (it == j.end()) continue;
      if (!it->is_number_unsigned() || it->get<uint64_t>() > 0xffff) {
        return absl::InvalidArgumentError(absl::StrCat("resize: bad ", key));
      }
      *field = static_cast<uint16_t>(it->get<uint64_t>());
    }
    out.push_back(size);
    pos = end + 1;
  }
  buffer->erase(0, pos);
  return out;
}

std::string SuccessStatusJson() {
  return R"({"metadata":{},"status":"Success"})";
}

std::string ExitCodeStatusJson(int exit_code) {
  // client-go parses the code as a byte.
  exit_code = std::clamp(exit_code, 0, 255);
  nlohmann::ordered_json j = {
      {"metadata", nlohmann::ordered_json::object()},
      {"status", "Failure"},
      {"message",
       absl::StrCat("command terminated with non-zero exit code: exit status ", exit_code)},
      {"reason", "NonZeroExitCode"},
      {"details",
       {{"causes", nlohmann::ordered_json::array(
                       {{{"reason", "ExitCode"}, {"message", std::to_string(exit_code)}}})}}}};
  return j.dump();
}

std::string FailureStatusJson(absl::string_view message) {
  nlohmann::ordered_json j = {{"metadata", nlohmann::json::object()},
                              {"status", "Failure"},
                              {"message", std::string(message)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

RemoteStatus ParseRemoteStatus(absl::string_view error_stream, bool json) {
  RemoteStatus s;
  if (error_stream.empty()) return s;
  if (!json) {
    s.exit_code = 1;
    s.message = std::string(error_stream);
    // Before v4 the server wrote the error's text; an exit code is recognisable in it.
    constexpr absl::string_view kPrefix = "command terminated with non-zero exit code: ";
    size_t at = error_stream.find(kPrefix);
    if (at != absl::string_view::npos) {
      absl::string_view rest = error_stream.substr(at + kPrefix.size());
      std::vector<absl::string_view> words = absl::StrSplit(rest, ' ', absl::SkipEmpty());
      int code = 0;
      if (!words.empty() && absl::SimpleAtoi(words.back(), &code) && code > 0) {
        s.exit_code = code;
        s.message.clear();
      }
    }
    return s;
  }
  nlohmann::json j = nlohmann::json::parse(error_stream, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    s.exit_code = 1;
    s.message = absl::StrCat("malformed status from the server: ", error_stream);
    return s;
  }
  if (j.value("status", "") == "Success") return s;
  if (j.value("reason", "") == "NonZeroExitCode") {
    auto details = j.find("details");
    if (details != j.end() && details->is_object()) {
      auto causes = details->find("causes");
      if (causes != details->end() && causes->is_array()) {
        for (const auto& cause : *causes) {
          if (!cause.is_object() || cause.value("reason", "") != "ExitCode") continue;
          int code = 0;
          if (absl::SimpleAtoi(cause.value("message", ""), &code)) {
            s.exit_code = code;
            return s;
          }
        }
      }
    }
  }
  s.exit_code = 1;
  s.message = j.value("message", std::string(error_stream));
  if (s.message.empty()) s.message = "the server reported a failure without a message";
  return s;
}

std::string EncodePortPrefix(uint16_t port) {
  std::string out(2, '\0');
  out[0] = static_cast<char>(port & 0xff);
  out[1] = static_cast<char>(port >> 8);
  return out;
}

}  // namespace berth::stream

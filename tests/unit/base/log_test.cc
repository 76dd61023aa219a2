#include "base/log.h"

#include <stdlib.h>

#include <string>

#include "base/file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace berth::log {
namespace {

TEST(Log, TextPayloadQuotesOnlyWhenNeeded) {
  EXPECT_EQ(RenderPayload(Format::kText, "rpc",
                          {{"method", "/runtime.v1.RuntimeService/Version"},
                           {"duration_ms", 1.25},
                           {"ok", true},
                           {"error", "two words"}}),
            "rpc method=/runtime.v1.RuntimeService/Version duration_ms=1.250 ok=true "
            "error=\"two words\"");
}

TEST(Log, JsonPayloadIsValidJsonObjectBody) {
  std::string body = RenderPayload(Format::kJson, "say \"hi\"\n",
                                   {{"n", 3}, {"s", "a\\b"}, {"ctl", std::string(1, '\x01')}});
  nlohmann::json j = nlohmann::json::parse("{" + body + "}");
  EXPECT_EQ(j["msg"], "say \"hi\"\n");
  EXPECT_EQ(j["n"], 3);
  EXPECT_EQ(j["s"], "a\\b");
  EXPECT_EQ(j["ctl"], "\x01");
}

TEST(Log, ParseLevelAndFormat) {
  EXPECT_EQ(*ParseLevel("debug"), spdlog::level::debug);
  EXPECT_EQ(*ParseLevel("WARN"), spdlog::level::warn);
  EXPECT_FALSE(ParseLevel("loud").ok());
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_FALSE(ParseFormat("xml").ok());
}

TEST(Log, JsonFileLinesAndReopenAfterRotation) {
  char tmpl[] = "/tmp/berth-log-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/berthd.log";
  ASSERT_TRUE(Init({.level = spdlog::level::debug, .format = Format::kJson, .file = path}).ok());
  Debug("first", {{"k", "v"}});
  ASSERT_EQ(rename(path.c_str(), (path + ".1").c_str()), 0);  // logrotate moves the file
  Info("still old file");
  ASSERT_TRUE(Reopen().ok());
  Warn("new file");

  std::string old_text = *ReadFile(path + ".1");
  std::string new_text = *ReadFile(path);
  EXPECT_NE(old_text.find("\"msg\":\"first\""), std::string::npos);
  EXPECT_NE(old_text.find("still old file"), std::string::npos);
  EXPECT_EQ(new_text.find("first"), std::string::npos);
  nlohmann::json line = nlohmann::json::parse(new_text);
  EXPECT_EQ(line["msg"], "new file");
  EXPECT_EQ(line["level"], "warning");
  EXPECT_TRUE(line["time"].get<std::string>().ends_with("Z"));

  ASSERT_TRUE(Init({.level = spdlog::level::info, .format = Format::kText, .file = ""}).ok());
  std::system(("rm -rf " + std::string(tmpl)).c_str());
}

}  // namespace
}  // namespace berth::log

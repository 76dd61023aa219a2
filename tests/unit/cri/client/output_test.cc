#include "cri/client/output.h"

#include "cri/api/cri.h"
#include "gtest/gtest.h"

namespace berth::cri::client {
namespace {

TEST(Output, ParseFormat) {
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("yaml"), OutputFormat::kYaml);
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_FALSE(ParseOutputFormat("xml").ok());
}

TEST(Output, MessageToJsonUsesCamelCaseAndShowsDefaults) {
  ::runtime::v1::RuntimeCondition c;
  c.set_type("NetworkReady");
  nlohmann::json j = MessageToJson(c);
  EXPECT_EQ(j["type"], "NetworkReady");
  EXPECT_EQ(j["status"], false);  // a default value, still printed
  EXPECT_EQ(j["reason"], "");

  ::runtime::v1::VersionResponse v;
  v.set_runtime_api_version("v1");
  EXPECT_EQ(MessageToJson(v)["runtimeApiVersion"], "v1");
}

TEST(Output, Yaml) {
  nlohmann::json j = {{"status",
                       {{"conditions",
                         {{{"type", "RuntimeReady"}, {"status", true}},
                          {{"type", "NetworkReady"}, {"status", false}, {"message", "a: b"}}}}}},
                      {"empty", nlohmann::json::object()},
                      {"list", {1, "yes", "plain"}},
                      {"version", "0.1.0"}};
  EXPECT_EQ(ToYaml(j),
            "empty: {}\n"
            "list:\n"
            "- 1\n"
            "- \"yes\"\n"
            "- plain\n"
            "status:\n"
            "  conditions:\n"
            "  - status: true\n"
            "    type: RuntimeReady\n"
            "  - message: \"a: b\"\n"
            "    status: false\n"
            "    type: NetworkReady\n"
            "version: \"0.1.0\"\n");
}

}  // namespace
}  // namespace berth::cri::client

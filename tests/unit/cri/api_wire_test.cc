// Wire-compatibility tests for cri/api/api.proto (CRI runtime.v1).
//
// Each expected byte string below was worked out by hand from the field
// numbers and types in the CRI spec, using the protobuf encoding rules:
//
//   tag        = varint((field_number << 3) | wire_type)
//   wire types : 0 = VARINT (int32/int64/uint32/uint64/bool/enum)
//                1 = I64    (double, fixed64)
//                2 = LEN    (string, bytes, embedded message, packed repeated,
//                            map entry)
//   map<K,V>   = repeated embedded message { K key = 1; V value = 2; }
//   proto3     : fields equal to their default (0, "", false, unset message)
//                are not written; repeated scalars are packed.
//   negative int32/int64 are sign-extended to 64 bits -> 10-byte varints.
//
// Serializers emit fields in field-number order, which is what the expected
// strings assume. Deterministic serialization is used so map entries are
// ordered; every map here has a single entry anyway.
//
// The CRI `Signal` enum has values named SIGTERM, SIGKILL, ... which collide
// with <csignal> macros (cri/api/cri.h explains); in this file such values are
// only referenced through Signal_Name()/numbers.
#include "cri/api/cri.h"

#include <cstdint>
#include <initializer_list>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>

namespace {

namespace v1 = ::runtime::v1;

// Builds a byte string from hex literals.
std::string Bytes(std::initializer_list<std::uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// Serializes with deterministic (sorted-map) output.
std::string Serialize(const google::protobuf::MessageLite& msg) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    EXPECT_TRUE(msg.SerializeToCodedStream(&cos));
  }
  return out;
}

std::string Hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
    out += ' ';
  }
  return out;
}

#define EXPECT_BYTES_EQ(expected, actual) EXPECT_EQ(Hex(expected), Hex(actual))

// ---------------------------------------------------------------------------
// VersionRequest / VersionResponse: plain strings.
// ---------------------------------------------------------------------------

TEST(CriApiWire, VersionRequest) {
  const std::string wire = Bytes({
      0x0a, 0x02, 0x76, 0x31,  // 0x0a = field 1 (version), wire type 2; len 2; "v1"
  });

  v1::VersionRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.version(), "v1");

  v1::VersionRequest built;
  built.set_version("v1");
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

TEST(CriApiWire, VersionResponse) {
  const std::string wire = Bytes({
      0x0a, 0x05, '0', '.', '1', '.', '0',  // 0x0a = field 1 (version), LEN; "0.1.0"
      0x12, 0x05, 'b', 'e', 'r', 't', 'h',  // 0x12 = field 2 (runtime_name), LEN
      0x1a, 0x05, '1', '.', '2', '.', '3',  // 0x1a = field 3 (runtime_version), LEN
      0x22, 0x02, 'v', '1',                 // 0x22 = field 4 (runtime_api_version), LEN
  });

  v1::VersionResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.version(), "0.1.0");
  EXPECT_EQ(parsed.runtime_name(), "berth");
  EXPECT_EQ(parsed.runtime_version(), "1.2.3");
  EXPECT_EQ(parsed.runtime_api_version(), "v1");

  v1::VersionResponse built;
  built.set_version("0.1.0");
  built.set_runtime_name("berth");
  built.set_runtime_version("1.2.3");
  built.set_runtime_api_version("v1");
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// PodSandboxMetadata: strings + uint32 with a two-byte varint value.
// ---------------------------------------------------------------------------

TEST(CriApiWire, PodSandboxMetadata) {
  const std::string wire = Bytes({
      0x0a, 0x05, 'n',  'g', 'i', 'n', 'x',            // field 1 (name), LEN
      0x12, 0x03, 'a',  'b', 'c',                      // field 2 (uid), LEN
      0x1a, 0x07, 'd',  'e', 'f', 'a', 'u', 'l', 't',  // field 3 (namespace), LEN
      0x20, 0xac, 0x02,                                // 0x20 = field 4 (attempt), wire type 0;
                         // 300 = 0b10_0101100 -> 0xac (0x2c|0x80), 0x02
  });

  v1::PodSandboxMetadata parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.name(), "nginx");
  EXPECT_EQ(parsed.uid(), "abc");
  EXPECT_EQ(parsed.namespace_(), "default");  // `namespace` is a C++ keyword
  EXPECT_EQ(parsed.attempt(), 300u);

  v1::PodSandboxMetadata built;
  built.set_name("nginx");
  built.set_uid("abc");
  built.set_namespace_("default");
  built.set_attempt(300);
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// RuntimeStatus: repeated nested message (RuntimeCondition), bool, and
// omission of proto3 defaults (status=false, reason="").
// ---------------------------------------------------------------------------

TEST(CriApiWire, RuntimeStatusWithConditions) {
  const std::string wire = Bytes({
      // 0x0a = RuntimeStatus field 1 (conditions), LEN; 20 bytes follow
      0x0a, 0x14,
      /**/ 0x0a, 0x0c, 'R', 'u', 'n', 't', 'i', 'm', 'e',  // field 1 (type), LEN 12
      /**/ 'R', 'e', 'a', 'd', 'y',
      /**/ 0x10, 0x01,            // 0x10 = field 2 (status), VARINT; true
      /**/ 0x22, 0x02, 'o', 'k',  // 0x22 = field 4 (message), LEN
      // second element of the repeated field; 21 bytes follow
      0x0a, 0x15,
      /**/ 0x0a, 0x0c, 'N', 'e', 't', 'w', 'o', 'r', 'k',  // field 1 (type), LEN 12
      /**/ 'R', 'e', 'a', 'd', 'y',
      /**/                                       // status=false: omitted
      /**/ 0x1a, 0x05, 'N', 'o', 'C', 'N', 'I',  // 0x1a = field 3 (reason), LEN
  });

  v1::RuntimeStatus parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ASSERT_EQ(parsed.conditions_size(), 2);
  EXPECT_EQ(parsed.conditions(0).type(), "RuntimeReady");
  EXPECT_TRUE(parsed.conditions(0).status());
  EXPECT_EQ(parsed.conditions(0).reason(), "");
  EXPECT_EQ(parsed.conditions(0).message(), "ok");
  EXPECT_EQ(parsed.conditions(1).type(), "NetworkReady");
  EXPECT_FALSE(parsed.conditions(1).status());
  EXPECT_EQ(parsed.conditions(1).reason(), "NoCNI");
  EXPECT_EQ(parsed.conditions(1).message(), "");

  v1::RuntimeStatus built;
  auto* ready = built.add_conditions();
  ready->set_type("RuntimeReady");
  ready->set_status(true);
  ready->set_message("ok");
  auto* net = built.add_conditions();
  net->set_type("NetworkReady");
  net->set_status(false);
  net->set_reason("NoCNI");
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// PodSandboxConfig: nested message, repeated nested message with an enum,
// and a map<string,string>.
// ---------------------------------------------------------------------------

TEST(CriApiWire, PodSandboxConfigWithPortMappingAndLabels) {
  const std::string wire = Bytes({
      // 0x0a = field 1 (metadata: PodSandboxMetadata), LEN 9
      0x0a, 0x09,
      /**/ 0x0a, 0x01, 'p',  // name
      /**/ 0x12, 0x01, 'u',  // uid
      /**/ 0x1a, 0x01, 'n',  // namespace; attempt=0 omitted
      // 0x12 = field 2 (hostname), LEN
      0x12, 0x01, 'h',
      // 0x2a = field 5 (port_mappings: repeated PortMapping), LEN 7
      0x2a, 0x07,
      /**/ 0x08, 0x01,        // 0x08 = field 1 (protocol), VARINT; UDP = 1
      /**/ 0x10, 0x35,        // 0x10 = field 2 (container_port), VARINT; 53
      /**/ 0x18, 0xe9, 0x29,  // 0x18 = field 3 (host_port), VARINT;
                              // 5353 = 41*128 + 105 -> 0xe9 (105|0x80), 0x29
      // 0x32 = field 6 (labels: map entry), LEN 10
      0x32, 0x0a,
      /**/ 0x0a, 0x03, 'a', 'p', 'p',  // entry key   (field 1)
      /**/ 0x12, 0x03, 'w', 'e', 'b',  // entry value (field 2)
  });

  v1::PodSandboxConfig parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ASSERT_TRUE(parsed.has_metadata());
  EXPECT_EQ(parsed.metadata().name(), "p");
  EXPECT_EQ(parsed.metadata().uid(), "u");
  EXPECT_EQ(parsed.metadata().namespace_(), "n");
  EXPECT_EQ(parsed.metadata().attempt(), 0u);
  EXPECT_EQ(parsed.hostname(), "h");
  ASSERT_EQ(parsed.port_mappings_size(), 1);
  EXPECT_EQ(parsed.port_mappings(0).protocol(), v1::UDP);
  EXPECT_EQ(parsed.port_mappings(0).container_port(), 53);
  EXPECT_EQ(parsed.port_mappings(0).host_port(), 5353);
  EXPECT_EQ(parsed.port_mappings(0).host_ip(), "");
  ASSERT_EQ(parsed.labels_size(), 1);
  EXPECT_EQ(parsed.labels().at("app"), "web");
  EXPECT_FALSE(parsed.has_linux());

  v1::PodSandboxConfig built;
  auto* md = built.mutable_metadata();
  md->set_name("p");
  md->set_uid("u");
  md->set_namespace_("n");
  built.set_hostname("h");
  auto* pm = built.add_port_mappings();
  pm->set_protocol(v1::UDP);
  pm->set_container_port(53);
  pm->set_host_port(5353);
  (*built.mutable_labels())["app"] = "web";
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// ImageSpec: map plus fields 18/19 whose tags need two bytes.
// ---------------------------------------------------------------------------

TEST(CriApiWire, ImageSpecTwoByteTags) {
  const std::string wire = Bytes({
      0x0a,
      0x07,
      'b',
      'u',
      's',
      'y',
      'b',
      'o',
      'x',  // field 1 (image), LEN
      // 0x12 = field 2 (annotations: map entry), LEN 6
      0x12,
      0x06,
      /**/ 0x0a,
      0x01,
      'k',  // key
      /**/ 0x12,
      0x01,
      'v',  // value
      // field 18 (user_specified_image), LEN: (18<<3)|2 = 146 -> 0x92 0x01
      0x92,
      0x01,
      0x09,
      'b',
      'u',
      's',
      'y',
      'b',
      'o',
      'x',
      ':',
      '1',
      // field 19 (runtime_handler), LEN: (19<<3)|2 = 154 -> 0x9a 0x01
      0x9a,
      0x01,
      0x04,
      'r',
      'u',
      'n',
      'c',
  });

  v1::ImageSpec parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.image(), "busybox");
  ASSERT_EQ(parsed.annotations_size(), 1);
  EXPECT_EQ(parsed.annotations().at("k"), "v");
  EXPECT_EQ(parsed.user_specified_image(), "busybox:1");
  EXPECT_EQ(parsed.runtime_handler(), "runc");
  EXPECT_EQ(parsed.image_ref(), "");

  v1::ImageSpec built;
  built.set_image("busybox");
  (*built.mutable_annotations())["k"] = "v";
  built.set_user_specified_image("busybox:1");
  built.set_runtime_handler("runc");
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// ContainerStatusRequest: string + bool.
// ---------------------------------------------------------------------------

TEST(CriApiWire, ContainerStatusRequest) {
  const std::string wire = Bytes({
      0x0a, 0x02, 'c', '1',  // 0x0a = field 1 (container_id), LEN
      0x10, 0x01,            // 0x10 = field 2 (verbose), VARINT; true
  });

  v1::ContainerStatusRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.container_id(), "c1");
  EXPECT_TRUE(parsed.verbose());

  v1::ContainerStatusRequest built;
  built.set_container_id("c1");
  built.set_verbose(true);
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// ContainerStats: nested messages three deep, int64 and UInt64Value.
// ---------------------------------------------------------------------------

TEST(CriApiWire, ContainerStatsWithUInt64Values) {
  const std::string wire = Bytes({
      // 0x0a = field 1 (attributes: ContainerAttributes), LEN 3
      0x0a, 0x03,
      /**/ 0x0a, 0x01, 'c',  // id
      // 0x12 = field 2 (cpu: CpuUsage), LEN 7
      0x12, 0x07,
      /**/ 0x08, 0xe8, 0x07,  // 0x08 = field 1 (timestamp int64), VARINT;
                              // 1000 = 7*128 + 104 -> 0xe8 (104|0x80), 0x07
      /**/ 0x12, 0x02,        // 0x12 = field 2 (usage_core_nano_seconds), LEN 2
      /**/ /**/ 0x08, 0x01,   // UInt64Value field 1 (value), VARINT; 1
      // 0x1a = field 3 (memory: MemoryUsage), LEN 5
      0x1a, 0x05,
      /**/ 0x12, 0x03,             // field 2 (working_set_bytes), LEN 3
      /**/ /**/ 0x08, 0x80, 0x20,  // value = 4096 = 32*128 -> 0x80, 0x20
  });

  v1::ContainerStats parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.attributes().id(), "c");
  EXPECT_EQ(parsed.cpu().timestamp(), 1000);
  ASSERT_TRUE(parsed.cpu().has_usage_core_nano_seconds());
  EXPECT_EQ(parsed.cpu().usage_core_nano_seconds().value(), 1u);
  EXPECT_FALSE(parsed.cpu().has_usage_nano_cores());
  ASSERT_TRUE(parsed.memory().has_working_set_bytes());
  EXPECT_EQ(parsed.memory().working_set_bytes().value(), 4096u);
  EXPECT_FALSE(parsed.has_writable_layer());

  v1::ContainerStats built;
  built.mutable_attributes()->set_id("c");
  built.mutable_cpu()->set_timestamp(1000);
  built.mutable_cpu()->mutable_usage_core_nano_seconds()->set_value(1);
  built.mutable_memory()->mutable_working_set_bytes()->set_value(4096);
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// ExecSyncResponse: bytes (non-UTF-8) and a negative int32.
// ---------------------------------------------------------------------------

TEST(CriApiWire, ExecSyncResponseBytesAndNegativeExitCode) {
  const std::string wire = Bytes({
      0x0a, 0x03, 0x00, 0xff, 0x0a,  // 0x0a = field 1 (stdout bytes), LEN 3
                                     // stderr empty: omitted
      0x18,                          // 0x18 = field 3 (exit_code int32), VARINT
      0xff, 0xff, 0xff, 0xff, 0xff,  // -1 sign-extended to 64 bits:
      0xff, 0xff, 0xff, 0xff, 0x01,  // 9 x 0xff (63 one-bits) + 0x01
  });

  v1::ExecSyncResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.stdout(), std::string("\x00\xff\n", 3));
  EXPECT_EQ(parsed.stderr(), "");
  EXPECT_EQ(parsed.exit_code(), -1);

  v1::ExecSyncResponse built;
  built.set_stdout(std::string("\x00\xff\n", 3));
  built.set_exit_code(-1);
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// ContainerConfig: fields 15..18 (one- and two-byte tags), packed repeated
// int64, negative int64, enums, nested repeated messages.
// ---------------------------------------------------------------------------

TEST(CriApiWire, ContainerConfigHighFieldNumbers) {
  const std::string wire = Bytes({
      // 0x0a = field 1 (metadata: ContainerMetadata), LEN 5
      0x0a,
      0x05,
      /**/ 0x0a,
      0x03,
      'a',
      'p',
      'p',  // name; attempt=0 omitted
      // 0x32 = field 6 (envs: repeated KeyValue), LEN 6
      0x32,
      0x06,
      /**/ 0x0a,
      0x01,
      'A',  // key
      /**/ 0x12,
      0x01,
      '1',  // value
      // 0x70 = field 14 (tty), VARINT: (14<<3)|0 = 112
      0x70,
      0x01,
      // 0x7a = field 15 (linux: LinuxContainerConfig), LEN: (15<<3)|2 = 122;
      // 24 bytes follow
      0x7a,
      0x18,
      /**/ 0x0a,
      0x0b,            // field 1 (resources: LinuxContainerResources), LEN 11
      /**/ /**/ 0x28,  // 0x28 = field 5 (oom_score_adj int64), VARINT
      /**/ /**/ 0x98,
      0xf8,
      0xff,
      0xff,
      0xff,  // -1000 = 2^64-1000:
      /**/ /**/ 0xff,
      0xff,
      0xff,
      0xff,
      0x01,  // 0x18|0x80, 0x78|0x80, 7x0xff, 0x01
      /**/ 0x12,
      0x09,  // field 2 (security_context), LEN 9
      /**/ /**/ 0x42,
      0x04,  // 0x42 = field 8 (supplemental_groups),
             // packed (LEN) repeated int64, 4 bytes:
      /**/ /**/ 0xe8,
      0x07,  //   1000
      /**/ /**/ 0xd0,
      0x0f,  //   2000 = 15*128 + 80 -> 0xd0, 0x0f
      /**/ /**/ 0x88,
      0x01,
      0x01,  // field 17 (supplemental_groups_policy),
             // VARINT: (17<<3)|0 = 136 -> 0x88 0x01;
             // Strict = 1
      // field 16 (windows: WindowsContainerConfig), LEN: (16<<3)|2 = 130 -> 0x82 0x01
      0x82,
      0x01,
      0x04,
      /**/ 0x12,
      0x02,  // field 2 (security_context), LEN 2
      /**/ /**/ 0x18,
      0x01,  // 0x18 = field 3 (host_process), VARINT; true
      // field 17 (CDI_devices: repeated CDIDevice), LEN: (17<<3)|2 = 138 -> 0x8a 0x01
      0x8a,
      0x01,
      0x0d,
      /**/ 0x0a,
      0x0b,
      'v',
      '.',
      'c',
      'o',
      'm',
      '/',
      'g',
      'p',
      'u',
      '=',
      '0',
      // field 18 (stop_signal enum), VARINT: (18<<3)|0 = 144 -> 0x90 0x01;
      // SIGTERM = 23 = 0x17
      0x90,
      0x01,
      0x17,
  });

  v1::ContainerConfig parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.metadata().name(), "app");
  ASSERT_EQ(parsed.envs_size(), 1);
  EXPECT_EQ(parsed.envs(0).key(), "A");
  EXPECT_EQ(parsed.envs(0).value(), "1");
  EXPECT_TRUE(parsed.tty());
  EXPECT_FALSE(parsed.stdin());
  EXPECT_EQ(parsed.linux().resources().oom_score_adj(), -1000);
  const auto& sc = parsed.linux().security_context();
  ASSERT_EQ(sc.supplemental_groups_size(), 2);
  EXPECT_EQ(sc.supplemental_groups(0), 1000);
  EXPECT_EQ(sc.supplemental_groups(1), 2000);
  EXPECT_EQ(sc.supplemental_groups_policy(), v1::Strict);
  EXPECT_TRUE(parsed.windows().security_context().host_process());
  ASSERT_EQ(parsed.cdi_devices_size(), 1);
  EXPECT_EQ(parsed.cdi_devices(0).name(), "v.com/gpu=0");
  EXPECT_EQ(static_cast<int>(parsed.stop_signal()), 23);
  EXPECT_EQ(v1::Signal_Name(parsed.stop_signal()), "SIGTERM");

  v1::ContainerConfig built;
  built.mutable_metadata()->set_name("app");
  auto* env = built.add_envs();
  env->set_key("A");
  env->set_value("1");
  built.set_tty(true);
  built.mutable_linux()->mutable_resources()->set_oom_score_adj(-1000);
  auto* bsc = built.mutable_linux()->mutable_security_context();
  bsc->add_supplemental_groups(1000);
  bsc->add_supplemental_groups(2000);
  bsc->set_supplemental_groups_policy(v1::Strict);
  built.mutable_windows()->mutable_security_context()->set_host_process(true);
  built.add_cdi_devices()->set_name("v.com/gpu=0");
  v1::Signal sigterm{};
  ASSERT_TRUE(v1::Signal_Parse("SIGTERM", &sigterm));
  built.set_stop_signal(sigterm);
  EXPECT_BYTES_EQ(wire, Serialize(built));
}

// ---------------------------------------------------------------------------
// Unknown fields (e.g. from a newer kubelet) must survive a round trip.
// ---------------------------------------------------------------------------

TEST(CriApiWire, UnknownFieldsSurviveRoundTrip) {
  const std::string wire = Bytes({
      0x0a, 0x02, 'v', '1',   // known: field 1 (version), LEN
      0x98, 0x06, 0x2a,       // unknown field 99, VARINT: (99<<3)|0 = 792
                              //   = 6*128 + 24 -> 0x98, 0x06; value 42
      0xa2, 0x06, 0x01, 'x',  // unknown field 100, LEN: (100<<3)|2 = 802
                              //   = 6*128 + 34 -> 0xa2, 0x06; "x"
  });

  v1::VersionRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.version(), "v1");

  const auto& unknown = parsed.GetReflection()->GetUnknownFields(parsed);
  ASSERT_EQ(unknown.field_count(), 2);
  EXPECT_EQ(unknown.field(0).number(), 99);
  EXPECT_EQ(unknown.field(0).type(), google::protobuf::UnknownField::TYPE_VARINT);
  EXPECT_EQ(unknown.field(0).varint(), 42u);
  EXPECT_EQ(unknown.field(1).number(), 100);
  EXPECT_EQ(unknown.field(1).type(), google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED);
  EXPECT_EQ(unknown.field(1).length_delimited(), "x");

  EXPECT_BYTES_EQ(wire, Serialize(parsed));
}

// ---------------------------------------------------------------------------
// gRPC method paths are "/<package>.<Service>/<Method>"; check the names and
// streaming flags through the descriptor pool.
// ---------------------------------------------------------------------------

TEST(CriApiWire, ServiceAndMethodNames) {
  const auto* file = v1::VersionRequest::descriptor()->file();
  EXPECT_EQ(file->package(), "runtime.v1");

  const auto* rt = file->FindServiceByName("RuntimeService");
  ASSERT_NE(rt, nullptr);
  EXPECT_EQ(rt->full_name(), "runtime.v1.RuntimeService");
  const auto* img = file->FindServiceByName("ImageService");
  ASSERT_NE(img, nullptr);
  EXPECT_EQ(img->full_name(), "runtime.v1.ImageService");

  const auto* version = rt->FindMethodByName("Version");
  ASSERT_NE(version, nullptr);
  EXPECT_EQ("/" + rt->full_name() + "/" + version->name(), "/runtime.v1.RuntimeService/Version");

  const auto* events = rt->FindMethodByName("GetContainerEvents");
  ASSERT_NE(events, nullptr);
  EXPECT_FALSE(events->client_streaming());
  EXPECT_TRUE(events->server_streaming());
  EXPECT_EQ(events->input_type()->full_name(), "runtime.v1.GetEventsRequest");
  EXPECT_EQ(events->output_type()->full_name(), "runtime.v1.ContainerEventResponse");

  for (const char* name :
       {"RunPodSandbox", "UpdatePodSandboxResources", "RuntimeConfig", "ListMetricDescriptors",
        "ListPodSandboxMetrics", "CheckpointContainer", "ListPodSandboxStats", "PodSandboxStats"}) {
    const auto* m = rt->FindMethodByName(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_FALSE(m->server_streaming()) << name;
  }
  const auto* fsinfo = img->FindMethodByName("ImageFsInfo");
  ASSERT_NE(fsinfo, nullptr);
  EXPECT_EQ(fsinfo->output_type()->full_name(), "runtime.v1.ImageFsInfoResponse");
  EXPECT_EQ(rt->method_count(), 35);
  EXPECT_EQ(img->method_count(), 6);
}

}  // namespace

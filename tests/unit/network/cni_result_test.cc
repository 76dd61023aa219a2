#include "network/cni_result.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "network/cni_config.h"

namespace berth::network {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Real outputs of Debian bookworm's containernetworking-plugins 1.1.1, captured with the
// plugins run inside throwaway network namespaces (unshare -n) and a temporary IPAM dataDir.

// bridge (isGateway, host-local with an IPv4 and an IPv6 range), cniVersion 1.0.0,
// CNI_IFNAME=eth100.
constexpr char kBridge100[] = R"({
    "cniVersion": "1.0.0",
    "interfaces": [
        {
            "name": "berth0",
            "mac": "9a:ea:57:43:79:77"
        },
        {
            "name": "vethc5bec138",
            "mac": "46:1c:eb:ac:f8:c3"
        },
        {
            "name": "eth100",
            "mac": "02:1b:57:68:ed:bd",
            "sandbox": "/proc/2396/ns/net"
        }
    ],
    "ips": [
        {
            "interface": 2,
            "address": "10.88.0.4/16",
            "gateway": "10.88.0.1"
        },
        {
            "interface": 2,
            "address": "fd00:88::4/64",
            "gateway": "fd00:88::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0"
        }
    ],
    "dns": {}
})";

// The same plugin and config at cniVersion 0.4.0 (CNI_IFNAME=eth040).
constexpr char kBridge040[] = R"({
    "cniVersion": "0.4.0",
    "interfaces": [
        {
            "name": "berth0",
            "mac": "9a:ea:57:43:79:77"
        },
        {
            "name": "vetha9c0e5d6",
            "mac": "c2:55:f9:c1:38:e8"
        },
        {
            "name": "eth040",
            "mac": "b6:5b:5b:61:90:8d",
            "sandbox": "/proc/2396/ns/net"
        }
    ],
    "ips": [
        {
            "version": "4",
            "interface": 2,
            "address": "10.88.0.3/16",
            "gateway": "10.88.0.1"
        },
        {
            "version": "6",
            "interface": 2,
            "address": "fd00:88::3/64",
            "gateway": "fd00:88::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0"
        }
    ],
    "dns": {}
})";

// ... and at cniVersion 0.3.1 (CNI_IFNAME=eth031).
constexpr char kBridge031[] = R"({
    "cniVersion": "0.3.1",
    "interfaces": [
        {
            "name": "berth0",
            "mac": "9a:ea:57:43:79:77"
        },
        {
            "name": "veth0d8aff6f",
            "mac": "de:88:34:8e:66:57"
        },
        {
            "name": "eth031",
            "mac": "72:31:46:4a:a4:12",
            "sandbox": "/proc/2396/ns/net"
        }
    ],
    "ips": [
        {
            "version": "4",
            "interface": 2,
            "address": "10.88.0.2/16",
            "gateway": "10.88.0.1"
        },
        {
            "version": "6",
            "interface": 2,
            "address": "fd00:88::2/64",
            "gateway": "fd00:88::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0"
        }
    ],
    "dns": {}
})";

// host-local alone (IPv4 and IPv6 ranges, routes 0.0.0.0/0 and ::/0), cniVersion 1.0.0.
constexpr char kHostLocal100[] = R"({
    "cniVersion": "1.0.0",
    "ips": [
        {
            "address": "10.99.0.5/24",
            "gateway": "10.99.0.1"
        },
        {
            "address": "fd00:99::5/64",
            "gateway": "fd00:99::1"
        }
    ],
    "routes": [
        {
            "dst": "0.0.0.0/0"
        },
        {
            "dst": "::/0"
        }
    ],
    "dns": {}
})";

// host-local at cniVersion 0.2.0.
constexpr char kHostLocal020[] = R"({
    "cniVersion": "0.2.0",
    "ip4": {
        "ip": "10.99.0.2/24",
        "gateway": "10.99.0.1",
        "routes": [
            {
                "dst": "0.0.0.0/0"
            }
        ]
    },
    "ip6": {
        "ip": "fd00:99::2/64",
        "gateway": "fd00:99::1",
        "routes": [
            {
                "dst": "::/0"
            }
        ]
    },
    "dns": {}
})";

// ptp with an IPv4-only host-local range at cniVersion 0.2.0.
constexpr char kPtp020[] = R"({
    "cniVersion": "0.2.0",
    "ip4": {
        "ip": "10.77.0.2/16",
        "gateway": "10.77.0.1"
    },
    "dns": {}
})";

// loopback at cniVersion 1.0.0.
constexpr char kLoopback100[] = R"({
    "cniVersion": "1.0.0",
    "interfaces": [
        {
            "name": "lo",
            "mac": "00:00:00:00:00:00",
            "sandbox": "/proc/2396/ns/net"
        }
    ],
    "ips": [
        {
            "interface": 0,
            "address": "127.0.0.1/8"
        },
        {
            "interface": 0,
            "address": "::1/128"
        }
    ],
    "dns": {}
})";

// Errors printed by host-local / bridge / portmap.
constexpr char kErrIncompatible[] = R"({
    "code": 1,
    "msg": "incompatible CNI versions",
    "details": "config is \"1.1.0\", plugin supports [\"0.1.0\" \"0.2.0\" \"0.3.0\" \"0.3.1\" \"0.4.0\" \"1.0.0\"]"
})";
constexpr char kErrNoRanges[] = R"({
    "code": 999,
    "msg": "no IP ranges specified"
})";
constexpr char kErrDecode[] = R"({
    "code": 6,
    "msg": "error unmarshall network config: invalid character 'g' looking for beginning of value"
})";
constexpr char kErrEnv[] = R"({
    "code": 4,
    "msg": "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"
})";

// CNI_COMMAND=VERSION of host-local and bridge.
constexpr char kVersionAnswer[] =
    R"({"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]})";

CniResult MustParse(absl::string_view text, absl::string_view default_version = "1.0.0") {
  absl::StatusOr<CniResult> r = ParseCniResult(text, default_version);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CniResult{};
}

std::string ParseError(absl::string_view text, absl::string_view default_version = "1.0.0") {
  absl::StatusOr<CniResult> r = ParseCniResult(text, default_version);
  if (r.ok()) return "unexpectedly OK";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

// ---- versions ---------------------------------------------------------------------------------

TEST(CniVersionTest, ParsesReleasedVersions) {
  for (const char* v : {"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    EXPECT_TRUE(ParseCniVersion(v).ok()) << v;
  }
  absl::StatusOr<CniVersion> v = ParseCniVersion("0.3.1");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->major, 0);
  EXPECT_EQ(v->minor, 3);
  EXPECT_EQ(v->patch, 1);
  v = ParseCniVersion("1.0");  // libcni accepts short forms
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(CompareCniVersions(*v, CniVersion{1, 0, 0}), 0);
  v = ParseCniVersion("2");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->major, 2);
}

TEST(CniVersionTest, RejectsGarbage) {
  for (const char* v : {"", ".", "1.", ".1", "1..0", "1.0.0.0", "v1.0.0", "1.0.0-rc1", " 1.0.0",
                        "1.0.0 ", "+1.0.0", "-1.0.0", "1.-1.0", "1.0.x", "1234567890.0.0", "one"}) {
    absl::StatusOr<CniVersion> r = ParseCniVersion(v);
    EXPECT_FALSE(r.ok()) << '"' << v << '"';
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_THAT(ParseCniVersion("1.x").status().message(), HasSubstr("\"1.x\""));
}

TEST(CniVersionTest, Compares) {
  auto v = [](const char* s) { return *ParseCniVersion(s); };
  EXPECT_LT(CompareCniVersions(v("0.3.1"), v("0.4.0")), 0);
  EXPECT_LT(CompareCniVersions(v("0.4.0"), v("1.0.0")), 0);
  EXPECT_LT(CompareCniVersions(v("0.3.0"), v("0.3.1")), 0);
  EXPECT_GT(CompareCniVersions(v("1.1.0"), v("1.0.0")), 0);
  EXPECT_GT(CompareCniVersions(v("0.10.0"), v("0.9.0")), 0);
  EXPECT_EQ(CompareCniVersions(v("1.0.0"), v("1.0.0")), 0);
}

TEST(CniVersionTest, SupportedResultVersions) {
  for (const char* v : {"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    EXPECT_TRUE(IsSupportedCniResultVersion(v)) << v;
  }
  for (const char* v : {"", "1.0", "1.2.0", "0.5.0", "2.0.0"}) {
    EXPECT_FALSE(IsSupportedCniResultVersion(v)) << v;
  }
}

// ---- real plugin outputs ------------------------------------------------------------------------

TEST(CniResultTest, BridgeResult100) {
  CniResult r = MustParse(kBridge100);
  EXPECT_EQ(r.cni_version, "1.0.0");
  ASSERT_EQ(r.interfaces.size(), 3u);
  EXPECT_EQ(r.interfaces[0].name, "berth0");
  EXPECT_EQ(r.interfaces[0].mac, "9a:ea:57:43:79:77");
  EXPECT_EQ(r.interfaces[0].sandbox, "");
  EXPECT_EQ(r.interfaces[2].name, "eth100");
  EXPECT_EQ(r.interfaces[2].sandbox, "/proc/2396/ns/net");
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_EQ(r.ips[0].address, "10.88.0.4/16");
  EXPECT_EQ(r.ips[0].gateway, "10.88.0.1");
  EXPECT_EQ(r.ips[0].interface, 2);
  EXPECT_EQ(r.ips[0].family, 4);
  EXPECT_EQ(r.ips[1].address, "fd00:88::4/64");
  EXPECT_EQ(r.ips[1].gateway, "fd00:88::1");
  EXPECT_EQ(r.ips[1].family, 6);
  ASSERT_EQ(r.routes.size(), 1u);
  EXPECT_EQ(r.routes[0].dst, "0.0.0.0/0");
  EXPECT_EQ(r.routes[0].gw, "");
  EXPECT_THAT(r.dns.nameservers, IsEmpty());
  EXPECT_THAT(PodIps(r, "eth100"), ElementsAre("10.88.0.4", "fd00:88::4"));
  EXPECT_THAT(PodIps(r, "eth0"), IsEmpty());
  // The host-side bridge and veth have no sandbox, so their names never select anything.
  EXPECT_THAT(PodIps(r, "berth0"), IsEmpty());
}

TEST(CniResultTest, BridgeResult040And031) {
  CniResult r = MustParse(kBridge040);
  EXPECT_EQ(r.cni_version, "0.4.0");
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_EQ(r.ips[0].family, 4);
  EXPECT_EQ(r.ips[1].family, 6);
  EXPECT_EQ(r.ips[1].interface, 2);
  EXPECT_THAT(PodIps(r, "eth040"), ElementsAre("10.88.0.3", "fd00:88::3"));

  r = MustParse(kBridge031, "0.3.1");
  EXPECT_EQ(r.cni_version, "0.3.1");
  ASSERT_EQ(r.interfaces.size(), 3u);
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_EQ(r.ips[0].address, "10.88.0.2/16");
  EXPECT_THAT(PodIps(r, "eth031"), ElementsAre("10.88.0.2", "fd00:88::2"));
}

TEST(CniResultTest, HostLocalResult100) {
  CniResult r = MustParse(kHostLocal100);
  EXPECT_THAT(r.interfaces, IsEmpty());
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_FALSE(r.ips[0].interface.has_value());
  ASSERT_EQ(r.routes.size(), 2u);
  EXPECT_EQ(r.routes[1].dst, "::/0");
  // No ip names an interface: all of them are the pod's.
  EXPECT_THAT(PodIps(r, "eth0"), ElementsAre("10.99.0.5", "fd00:99::5"));
}

TEST(CniResultTest, HostLocalResult020) {
  CniResult r = MustParse(kHostLocal020);
  EXPECT_EQ(r.cni_version, "0.2.0");
  EXPECT_THAT(r.interfaces, IsEmpty());
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_EQ(r.ips[0].address, "10.99.0.2/24");
  EXPECT_EQ(r.ips[0].gateway, "10.99.0.1");
  EXPECT_EQ(r.ips[0].family, 4);
  EXPECT_FALSE(r.ips[0].interface.has_value());
  EXPECT_EQ(r.ips[1].address, "fd00:99::2/64");
  EXPECT_EQ(r.ips[1].family, 6);
  ASSERT_EQ(r.routes.size(), 2u);  // ip4's routes, then ip6's
  EXPECT_EQ(r.routes[0].dst, "0.0.0.0/0");
  EXPECT_EQ(r.routes[1].dst, "::/0");
  EXPECT_THAT(PodIps(r, "eth0"), ElementsAre("10.99.0.2", "fd00:99::2"));
}

TEST(CniResultTest, PtpResult020) {
  CniResult r = MustParse(kPtp020, "0.2.0");
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_EQ(r.ips[0].address, "10.77.0.2/16");
  EXPECT_THAT(r.routes, IsEmpty());
}

TEST(CniResultTest, LoopbackResult100) {
  CniResult r = MustParse(kLoopback100);
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_EQ(r.ips[0].interface, 0);
  EXPECT_THAT(PodIps(r, "lo"), ElementsAre("127.0.0.1", "::1"));
}

TEST(CniResultTest, Result110WithNewFieldsIsAccepted) {
  CniResult r = MustParse(R"({"cniVersion":"1.1.0",
    "interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","mtu":1450,"sandbox":"/run/netns/p",
                   "socketPath":"/run/vhost.sock","pciID":"0000:00:1f.6"}],
    "ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1","interface":0}],
    "routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1","mtu":1400,"advmss":1360,"priority":10,
               "table":100,"scope":0}],
    "dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local",
           "search":["default.svc.cluster.local","svc.cluster.local"],"options":["ndots:5"]},
    "futureField":{"anything":[1,2,3]}})");
  EXPECT_EQ(r.cni_version, "1.1.0");
  ASSERT_EQ(r.routes.size(), 1u);
  EXPECT_EQ(r.routes[0].gw, "10.1.0.1");
  EXPECT_THAT(r.dns.nameservers, ElementsAre("10.96.0.10"));
  EXPECT_EQ(r.dns.domain, "cluster.local");
  EXPECT_THAT(r.dns.search, ElementsAre("default.svc.cluster.local", "svc.cluster.local"));
  EXPECT_THAT(r.dns.options, ElementsAre("ndots:5"));
  EXPECT_THAT(PodIps(r, "eth0"), ElementsAre("10.1.0.5"));
}

TEST(CniResultTest, NullMeansAbsent) {
  CniResult r = MustParse(
      R"({"cniVersion":"1.0.0","interfaces":null,"ips":[{"address":"10.0.0.2/8","gateway":null,
          "interface":null}],"routes":null,"dns":null})");
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_FALSE(r.ips[0].interface.has_value());
  EXPECT_EQ(r.ips[0].gateway, "");
}

TEST(CniResultTest, EmptyResultIsValid) {
  CniResult r = MustParse(R"({"cniVersion":"1.0.0"})");
  EXPECT_THAT(r.ips, IsEmpty());
  EXPECT_THAT(PodIps(r, "eth0"), IsEmpty());
}

// ---- versions in the text and the default -------------------------------------------------------

TEST(CniResultTest, MissingVersionTakesTheDefault) {
  CniResult r = MustParse(R"({"ips":[{"version":"4","address":"10.0.0.2/8"}]})", "0.4.0");
  EXPECT_EQ(r.cni_version, "0.4.0");
  // The default decides the shape too: 0.2.0 reads ip4/ip6.
  r = MustParse(R"({"ip4":{"ip":"10.0.0.2/8"}})", "0.2.0");
  EXPECT_EQ(r.cni_version, "0.2.0");
  ASSERT_EQ(r.ips.size(), 1u);
  // An empty cniVersion counts as missing.
  r = MustParse(R"({"cniVersion":"","ips":[{"address":"10.0.0.2/8"}]})", "1.0.0");
  EXPECT_EQ(r.cni_version, "1.0.0");
  // The text's own version wins over the default.
  r = MustParse(kHostLocal020, "1.0.0");
  EXPECT_EQ(r.cni_version, "0.2.0");
  EXPECT_EQ(r.ips.size(), 2u);
}

TEST(CniResultTest, VersionErrors) {
  EXPECT_THAT(ParseError(R"({"ips":[]})", ""), HasSubstr("no cniVersion"));
  EXPECT_THAT(ParseError(R"({"cniVersion":"2.0.0"})"),
              HasSubstr("cniVersion: \"2.0.0\" is not supported"));
  EXPECT_THAT(ParseError(R"({})", "9.9.9"), HasSubstr("\"9.9.9\" is not supported"));
  EXPECT_THAT(ParseError(R"({"cniVersion":1.0})"),
              HasSubstr("cniVersion: expected a string, got number"));
}

// ---- conversions ------------------------------------------------------------------------------

TEST(CniResultTest, Convert100To040AddsVersion) {
  absl::StatusOr<json> j = CniResultToJson(MustParse(kBridge100), "0.4.0");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, json::parse(R"({
    "cniVersion": "0.4.0",
    "interfaces": [
      {"name": "berth0", "mac": "9a:ea:57:43:79:77"},
      {"name": "vethc5bec138", "mac": "46:1c:eb:ac:f8:c3"},
      {"name": "eth100", "mac": "02:1b:57:68:ed:bd", "sandbox": "/proc/2396/ns/net"}],
    "ips": [
      {"version": "4", "interface": 2, "address": "10.88.0.4/16", "gateway": "10.88.0.1"},
      {"version": "6", "interface": 2, "address": "fd00:88::4/64", "gateway": "fd00:88::1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {}})"))
      << j->dump(2);
  // A 0.4.0 result rendered in 0.4.0 is what the plugin printed.
  j = CniResultToJson(MustParse(kBridge040), "0.4.0");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json::parse(kBridge040));
  j = CniResultToJson(MustParse(kBridge031), "0.3.1");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json::parse(kBridge031));
}

TEST(CniResultTest, Convert040To100DropsVersion) {
  absl::StatusOr<json> j = CniResultToJson(MustParse(kBridge040), "1.0.0");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->at("cniVersion"), "1.0.0");
  for (const json& ip : j->at("ips")) EXPECT_FALSE(ip.contains("version")) << ip.dump();
  EXPECT_EQ(j->at("ips")[1]["address"], "fd00:88::3/64");
  EXPECT_EQ(j->at("ips")[1]["interface"], 2);
  // Real 1.0.0 outputs survive a round trip unchanged.
  for (const char* text : {kBridge100, kHostLocal100, kLoopback100}) {
    j = CniResultToJson(MustParse(text), "1.0.0");
    ASSERT_TRUE(j.ok());
    EXPECT_EQ(*j, json::parse(text)) << text;
  }
  // And so do the converted ones when parsed back.
  j = CniResultToJson(MustParse(kBridge100), "0.4.0");
  ASSERT_TRUE(j.ok());
  absl::StatusOr<json> back = CniResultToJson(MustParse(j->dump()), "1.0.0");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, json::parse(kBridge100));
}

TEST(CniResultTest, ConvertTo020KeepsFirstOfEachFamily) {
  CniResult r = MustParse(R"({"cniVersion":"1.0.0",
    "interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],
    "ips":[{"address":"fd00::5/64","gateway":"fd00::1","interface":0},
           {"address":"10.1.0.5/16","gateway":"10.1.0.1","interface":0},
           {"address":"10.2.0.5/16","interface":0},
           {"address":"fd01::5/64","interface":0}],
    "routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"},{"dst":"::/0"},{"dst":"10.96.0.0/12"}],
    "dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]}})");
  absl::StatusOr<json> j = CniResultToJson(r, "0.2.0");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, json::parse(R"({
    "cniVersion": "0.2.0",
    "ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "10.96.0.0/12"}]},
    "ip6": {"ip": "fd00::5/64", "gateway": "fd00::1", "routes": [{"dst": "::/0"}]},
    "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}})"))
      << j->dump(2);
  j = CniResultToJson(r, "0.1.0");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->at("cniVersion"), "0.1.0");

  // IPv4 only: no ip6, and IPv6 routes have nowhere to go.
  r = MustParse(R"({"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/16"}],
                    "routes":[{"dst":"::/0"},{"dst":"0.0.0.0/0"}]})");
  j = CniResultToJson(r, "0.2.0");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json::parse(R"({"cniVersion":"0.2.0",
      "ip4":{"ip":"10.1.0.5/16","routes":[{"dst":"0.0.0.0/0"}]},"dns":{}})"));
  // A 0.2.0 result rendered in 0.2.0 is what the plugin printed.
  j = CniResultToJson(MustParse(kHostLocal020), "0.2.0");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json::parse(kHostLocal020));
  j = CniResultToJson(MustParse(kPtp020), "0.2.0");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, json::parse(kPtp020));
}

TEST(CniResultTest, ConvertTo020WithoutAddressesFails) {
  CniResult r = MustParse(R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],
                              "routes":[{"dst":"0.0.0.0/0"}]})");
  absl::StatusOr<json> j = CniResultToJson(r, "0.2.0");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(j.status().message(), HasSubstr("no valid IP addresses"));
  EXPECT_TRUE(CniResultToJson(r, "1.0.0").ok());
}

TEST(CniResultTest, Convert020Up) {
  CniResult r = MustParse(kHostLocal020);
  absl::StatusOr<json> j = CniResultToJson(r, "1.0.0");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, json::parse(R"({"cniVersion":"1.0.0",
    "ips":[{"address":"10.99.0.2/24","gateway":"10.99.0.1"},
           {"address":"fd00:99::2/64","gateway":"fd00:99::1"}],
    "routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}],"dns":{}})"))
      << j->dump(2);
  j = CniResultToJson(r, "0.3.0");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->at("ips")[0]["version"], "4");
  EXPECT_EQ(j->at("ips")[1]["version"], "6");
  EXPECT_FALSE(j->contains("interfaces"));
}

TEST(CniResultTest, ConvertErrors) {
  CniResult r = MustParse(kBridge100);
  for (const char* v : {"", "1.0", "1.2.0", "0.5.0", "latest"}) {
    absl::StatusOr<json> j = CniResultToJson(r, v);
    EXPECT_FALSE(j.ok()) << v;
    if (!j.ok()) {
      EXPECT_THAT(j.status().message(), HasSubstr("not supported"));
    }
  }
  // A hand-built result whose interface index points nowhere.
  CniResult bad;
  bad.ips.push_back(CniIpConfig{"10.0.0.2/8", "", 3, 4});
  absl::StatusOr<json> j = CniResultToJson(bad, "1.0.0");
  ASSERT_FALSE(j.ok());
  EXPECT_THAT(j.status().message(), HasSubstr("ips[0].interface 3 is out of range"));
  // A hand-built result with a wrong family field: the address decides.
  CniResult v6;
  v6.ips.push_back(CniIpConfig{"fd00::2/64", "", std::nullopt, 4});
  j = CniResultToJson(v6, "0.4.0");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->at("ips")[0]["version"], "6");
}

// ---- PodIps -----------------------------------------------------------------------------------

TEST(CniResultTest, PodIpsSelectsTheSandboxInterface) {
  CniResult r = MustParse(R"({"cniVersion":"1.0.0",
    "interfaces":[{"name":"eth0"},{"name":"eth0","sandbox":"/run/netns/p"},
                  {"name":"net1","sandbox":"/run/netns/p"}],
    "ips":[{"address":"fd00::7/64","interface":1},
           {"address":"192.168.5.5/24","interface":0},
           {"address":"10.0.0.7/8","interface":1},
           {"address":"10.9.0.7/16","interface":2},
           {"address":"10.0.0.8/8"},
           {"address":"10.0.0.7/16","interface":1},
           {"address":"FD00:0::7/64","interface":1},
           {"address":"10.0.0.6/8","interface":1}]})");
  // Only ips on interfaces[1]: IPv4 first, result order, duplicates (in any spelling) removed.
  EXPECT_THAT(PodIps(r, "eth0"), ElementsAre("10.0.0.7", "10.0.0.6", "fd00::7"));
  EXPECT_THAT(PodIps(r, "net1"), ElementsAre("10.9.0.7"));
  EXPECT_THAT(PodIps(r, "eth1"), IsEmpty());
}

TEST(CniResultTest, PodIpsWithoutInterfacesTakesAll) {
  CniResult r = MustParse(R"({"cniVersion":"1.0.0",
    "ips":[{"address":"fd00::7/64"},{"address":"10.0.0.7/8"},{"address":"10.0.0.7/24"},
           {"address":"fd00::8/64"},{"address":"10.0.0.1/8"}]})");
  EXPECT_THAT(PodIps(r, "eth0"), ElementsAre("10.0.0.7", "10.0.0.1", "fd00::7", "fd00::8"));
  EXPECT_THAT(PodIps(r, ""), ElementsAre("10.0.0.7", "10.0.0.1", "fd00::7", "fd00::8"));
}

// ---- hostile input ----------------------------------------------------------------------------

TEST(CniResultHostileTest, NotAnObject) {
  EXPECT_THAT(ParseError(""), HasSubstr("not valid JSON"));
  EXPECT_THAT(ParseError("plugin crashed: panic"), HasSubstr("not valid JSON"));
  EXPECT_THAT(ParseError(R"({"cniVersion":"1.0.0",)"), HasSubstr("not valid JSON"));
  EXPECT_THAT(ParseError(R"({"cniVersion":"1.0.0"} {})"), HasSubstr("not valid JSON"));
  EXPECT_THAT(ParseError("[]"), HasSubstr("expected a JSON object, got array"));
  EXPECT_THAT(ParseError("\"1.0.0\""), HasSubstr("expected a JSON object, got string"));
  EXPECT_THAT(ParseError("42"), HasSubstr("expected a JSON object, got number"));
  EXPECT_THAT(ParseError("null"), HasSubstr("expected a JSON object, got null"));
  EXPECT_THAT(ParseError(std::string("{\"cniVersion\":\"1.0\xff.0\"}")),
              HasSubstr("not valid JSON"));
}

TEST(CniResultHostileTest, WrongTypesNameThePath) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {R"({"ips":{}})", "CNI result: ips: expected an array, got object"},
      {R"({"ips":[1]})", "ips[0]: expected an object, got number"},
      {R"({"ips":[{"address":10}]})", "ips[0].address: expected a string, got number"},
      {R"({"ips":[{"gateway":"10.0.0.1"}]})", "ips[0].address: missing"},
      {R"({"ips":[{"address":"10.0.0.2/8","gateway":true}]})",
       "ips[0].gateway: expected a string, got boolean"},
      {R"({"ips":[{"address":"10.0.0.2/8","gateway":"10.0.0.256"}]})",
       "ips[0].gateway: \"10.0.0.256\" is not an IP address"},
      {R"({"ips":[{"address":"10.0.0.2/8","gateway":"10.0.0.1/8"}]})",
       "ips[0].gateway: \"10.0.0.1/8\" is not an IP address"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/8","interface":"0"}]})",
       "ips[0].interface: expected an integer, got string"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/8","interface":0.5}]})",
       "ips[0].interface: expected an integer, got number"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/8","interface":1}]})",
       "ips[0].interface: 1 is out of range (1 interfaces)"},
      {R"({"ips":[{"address":"10.0.0.2/8","interface":0}]})",
       "ips[0].interface: 0 is out of range (0 interfaces)"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/8","interface":-1}]})",
       "ips[0].interface: -1 is out of range"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/8",
           "interface":18446744073709551615}]})",
       "ips[0].interface: 18446744073709551615 is out of range"},
      {R"({"interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/8",
           "interface":4294967296}]})",
       "ips[0].interface: 4294967296 is out of range"},
      {R"({"interfaces":"eth0"})", "interfaces: expected an array, got string"},
      {R"({"interfaces":[["eth0"]]})", "interfaces[0]: expected an object, got array"},
      {R"({"interfaces":[{"name":"eth0"},{"name":"eth1","sandbox":7}]})",
       "interfaces[1].sandbox: expected a string, got number"},
      {R"({"routes":[{"dst":"0.0.0.0/0"},{"gw":"10.0.0.1"}]})", "routes[1].dst: missing"},
      {R"({"routes":[{"dst":"0.0.0.0/0","gw":"::1::"}]})",
       "routes[0].gw: \"::1::\" is not an IP address"},
      {R"({"routes":[{"dst":"0.0.0.0"}]})", "routes[0].dst: \"0.0.0.0\" is not a CIDR"},
      {R"({"routes":"default"})", "routes: expected an array, got string"},
      {R"({"dns":[]})", "dns: expected an object, got array"},
      {R"({"dns":{"nameservers":"10.0.0.10"}})", "dns.nameservers: expected an array, got string"},
      {R"({"dns":{"nameservers":["10.0.0.10",53]}})",
       "dns.nameservers[1]: expected a string, got number"},
      {R"({"dns":{"domain":["a"]}})", "dns.domain: expected a string, got array"},
      {R"({"dns":{"search":[null]}})", "dns.search[0]: expected a string, got null"},
      {R"({"dns":{"options":{}}})", "dns.options: expected an array, got object"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseError(c.text), HasSubstr(c.want)) << c.text;
  }
}

TEST(CniResultHostileTest, ControlCharactersInText) {
  EXPECT_THAT(
      ParseError(R"({"dns":{"nameservers":["10.0.0.10\nnameserver 6.6.6.6"]}})"),
      HasSubstr(R"(dns.nameservers[0]: "10.0.0.10\nnameserver 6.6.6.6" contains a control)"));
  EXPECT_THAT(ParseError(R"({"dns":{"domain":"a\u0000b"}})"),
              HasSubstr("dns.domain: \"a\\u0000b\" contains a control character"));
  EXPECT_THAT(ParseError(R"({"interfaces":[{"name":"eth0\r"}]})"),
              HasSubstr("interfaces[0].name: \"eth0\\r\" contains a control character"));
  EXPECT_THAT(ParseError(R"({"interfaces":[{"name":"eth0","sandbox":"/run/netns/\u007f"}]})"),
              HasSubstr("interfaces[0].sandbox: \"/run/netns/\\u007f\" contains a control"));
  // Anything printable, UTF-8 included, is fine.
  EXPECT_TRUE(ParseCniResult(R"({"dns":{"search":["caf\u00e9.example","x y"]}})", "1.0.0").ok());
}

TEST(CniResultHostileTest, BadCidrs) {
  EXPECT_EQ(ParseError(R"({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/8"},
                          {"address":"10.0.0.300/8"}]})"),
            "CNI result: ips[1].address: \"10.0.0.300/8\" is not a CIDR");
  for (const char* cidr : {"",
                           "/",
                           "10.0.0.1",
                           "10.0.0.1/",
                           "10.0.0.1/33",
                           "10.0.0.1/08",
                           "10.0.0.1/-1",
                           "10.0.0.1/+8",
                           "10.0.0.1/ 8",
                           "10.0.0.1/8 ",
                           " 10.0.0.1/8",
                           "10.0.0.1/8/8",
                           "10.0.0/8",
                           "010.0.0.1/8",
                           "10.0.0.1.5/8",
                           "fd00::1/129",
                           "fd00::1/1000",
                           "fd00:::1/64",
                           "fe80::1%eth0/64",
                           "10.0.0.1/0x8",
                           "localhost/8",
                           "1.2.3.4/4294967328"}) {
    std::string text = json{{"ips", {{{"address", cidr}}}}}.dump();
    EXPECT_THAT(ParseError(text), HasSubstr("is not a CIDR")) << cidr;
  }
  // An embedded NUL must not cut the address short.
  std::string nul = json{{"ips", {{{"address", std::string("10.0.0.1\0/8", 11)}}}}}.dump();
  EXPECT_THAT(ParseError(nul), HasSubstr("is not a CIDR"));
  nul = json{{"ips", {{{"address", std::string("10.0.0.1/8\0", 11)}}}}}.dump();
  EXPECT_THAT(ParseError(nul), HasSubstr("is not a CIDR"));
  for (const char* cidr : {"0.0.0.0/0", "10.0.0.1/32", "::/0", "fd00::1/128", "::ffff:10.0.0.1/96",
                           "2001:db8::5/64"}) {
    std::string text = json{{"ips", {{{"address", cidr}}}}}.dump();
    EXPECT_TRUE(ParseCniResult(text, "1.0.0").ok()) << cidr;
  }
}

TEST(CniResultHostileTest, LegacyShapes) {
  EXPECT_THAT(ParseError(R"({"ip4":"10.0.0.2/8"})", "0.2.0"),
              HasSubstr("ip4: expected an object, got string"));
  EXPECT_THAT(ParseError(R"({"ip4":{"gateway":"10.0.0.1"}})", "0.2.0"),
              HasSubstr("ip4.ip: missing"));
  EXPECT_THAT(
      ParseError(R"({"ip6":{"ip":"fd00::2/64","routes":[{"dst":"::/0","gw":"x"}]}})", "0.2.0"),
      HasSubstr("ip6.routes[0].gw: \"x\" is not an IP address"));
  EXPECT_THAT(ParseError(R"({"ip4":{"ip":"10.0.0.2/8","routes":{}}})", "0.1.0"),
              HasSubstr("ip4.routes: expected an array, got object"));
  // 0.2.0 has no "ips": a result that uses it anyway has no addresses.
  CniResult r = MustParse(R"({"ips":[{"address":"10.0.0.2/8"}]})", "0.2.0");
  EXPECT_THAT(r.ips, IsEmpty());
}

TEST(CniResultHostileTest, IpVersionField) {
  EXPECT_THAT(ParseError(R"({"ips":[{"version":4,"address":"10.0.0.2/8"}]})", "0.4.0"),
              HasSubstr("ips[0].version: expected a string, got number"));
  EXPECT_THAT(ParseError(R"({"ips":[{"version":"5","address":"10.0.0.2/8"}]})", "0.3.1"),
              HasSubstr("ips[0].version: \"5\" is not \"4\" or \"6\""));
  // libcni ignores it on input: a missing one is fine, and 1.0.0 has no such field.
  EXPECT_TRUE(ParseCniResult(R"({"ips":[{"address":"10.0.0.2/8"}]})", "0.4.0").ok());
  EXPECT_TRUE(ParseCniResult(R"({"ips":[{"version":4,"address":"10.0.0.2/8"}]})", "1.0.0").ok());
}

TEST(CniResultHostileTest, HugeLists) {
  auto ips = [](size_t n) {
    json list = json::array();
    for (size_t i = 0; i < n; ++i) {
      list.push_back({{"address", "10.0." + std::to_string(i / 250) + "." +
                                      std::to_string(i % 250 + 1) + "/16"}});
    }
    return json{{"cniVersion", "1.0.0"}, {"ips", list}}.dump();
  };
  absl::StatusOr<CniResult> r = ParseCniResult(ips(1024), "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ips.size(), 1024u);
  EXPECT_EQ(PodIps(*r, "eth0").size(), 1024u);
  EXPECT_THAT(ParseError(ips(1025)), HasSubstr("ips: 1025 entries, more than the 1024 allowed"));

  json many = json::array();
  for (int i = 0; i < 1025; ++i) many.push_back({{"name", "eth0"}});
  EXPECT_THAT(ParseError(json{{"interfaces", many}}.dump()),
              HasSubstr("interfaces: 1025 entries, more than the 1024 allowed"));
  json search(1025, "x");
  EXPECT_THAT(ParseError(json{{"dns", {{"search", search}}}}.dump()),
              HasSubstr("dns.search: 1025 entries"));
  // 0.2.0's two route lists count together.
  json routes = json::array();
  for (int i = 0; i < 600; ++i) routes.push_back({{"dst", "0.0.0.0/0"}});
  json legacy = {{"ip4", {{"ip", "10.0.0.2/8"}, {"routes", routes}}},
                 {"ip6", {{"ip", "fd00::2/64"}, {"routes", routes}}}};
  EXPECT_THAT(ParseError(legacy.dump(), "0.2.0"), HasSubstr("ip6.routes: more than 1024 routes"));
}

TEST(CniResultHostileTest, HugeText) {
  std::string text = R"({"cniVersion":"1.0.0","junk":")" + std::string(1 << 20, 'a') + "\"}";
  EXPECT_THAT(ParseError(text), HasSubstr("more than the 1048576 allowed"));
  EXPECT_FALSE(ParseCniError(text).has_value());
}

TEST(CniResultHostileTest, DeepNesting) {
  for (int depth : {65, 100000, 500000}) {
    std::string text =
        R"({"cniVersion":"1.0.0","x":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
    EXPECT_THAT(ParseError(text), HasSubstr("nested deeper than 64 levels")) << depth;
    EXPECT_FALSE(ParseCniError(text).has_value());
  }
  // Unclosed brackets fail the same way, before the parser sees them.
  EXPECT_THAT(ParseError(std::string(200000, '{')), HasSubstr("nested deeper"));
  // Brackets inside strings do not count.
  std::string text =
      R"({"cniVersion":"1.0.0","x":")" + std::string(1000, '[') + R"(\"[{","ips":[]})";
  EXPECT_TRUE(ParseCniResult(text, "").ok());
  text = R"({"cniVersion":"1.0.0","x":)" + std::string(63, '[') + std::string(63, ']') + "}";
  EXPECT_TRUE(ParseCniResult(text, "").ok());
}

TEST(CniResultHostileTest, LongValuesAreCutInMessages) {
  std::string addr(5000, '1');
  std::string msg = ParseError(json{{"ips", {{{"address", addr}}}}}.dump());
  EXPECT_LT(msg.size(), 200u) << msg;
  EXPECT_THAT(msg, HasSubstr("...\" is not a CIDR"));
  // Control characters are escaped, not copied into the message.
  msg = ParseError(json{{"ips", {{{"address", "10.0.0.1\n/8\x1b[31m"}}}}}.dump());
  EXPECT_THAT(msg, HasSubstr(R"("10.0.0.1\n/8\u001b[31m")"));
}

// ParseCniConfig lives in cni_config.cc; its deep-nesting guard is tested here with the other
// hostile inputs (a deeply nested plugin used to overflow the stack when the plugin was copied).
TEST(CniConfigHostileTest, DeepNestingIsRefused) {
  std::string text = R"({"cniVersion":"1.0.0","name":"n","type":"bridge","x":)" +
                     std::string(100000, '[') + std::string(100000, ']') + "}";
  absl::StatusOr<CniConfigList> list = ParseCniConfig(text, "deep.conf");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.status().message(), HasSubstr("nested deeper than 64 levels"));
  text = R"({"cniVersion":"1.0.0","name":"n","type":"bridge","x":)" + std::string(60, '[') +
         std::string(60, ']') + "}";
  EXPECT_TRUE(ParseCniConfig(text, "ok.conf").ok());
}

// ---- errors -----------------------------------------------------------------------------------

TEST(CniErrorTest, RealPluginErrors) {
  std::optional<CniError> e = ParseCniError(kErrIncompatible);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 1u);
  EXPECT_EQ(e->msg, "incompatible CNI versions");
  EXPECT_EQ(
      e->details,
      R"(config is "1.1.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0"])");
  EXPECT_EQ(CniErrorCodeName(e->code), "incompatible CNI version");

  e = ParseCniError(kErrNoRanges);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 999u);
  EXPECT_EQ(e->msg, "no IP ranges specified");
  EXPECT_EQ(e->details, "");
  EXPECT_EQ(CniErrorCodeName(e->code), "");

  e = ParseCniError(kErrDecode);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 6u);
  EXPECT_EQ(CniErrorCodeName(e->code), "failed to decode content");

  e = ParseCniError(kErrEnv);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 4u);
  EXPECT_THAT(e->msg, HasSubstr("CNI_CONTAINERID"));
}

TEST(CniErrorTest, SpecShapes) {
  std::optional<CniError> e = ParseCniError(
      R"({"cniVersion":"1.0.0","code":7,"msg":"invalid config","details":"no bridge name"})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 7u);
  EXPECT_EQ(e->details, "no bridge name");
  e = ParseCniError(R"({"code":11})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->msg, "");
  e = ParseCniError(R"({"code":4294967295,"msg":null})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 4294967295u);
  e = ParseCniError("\n  {\"code\": 3, \"msg\": \"gone\"}\n");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->msg, "gone");
}

TEST(CniErrorTest, NotAnErrorObject) {
  for (const char* text :
       {"", "panic: runtime error: index out of range", "{", "[]", "\"error\"", "null", "{}",
        kHostLocal100, R"({"msg":"no code"})", R"({"code":"7","msg":"x"})",
        R"({"code":-1,"msg":"x"})", R"({"code":1.5,"msg":"x"})", R"({"code":4294967296})",
        R"({"code":7,"msg":["x"]})", R"({"code":7,"msg":"x","details":{}})",
        R"({"code":7} trailing)"}) {
    EXPECT_FALSE(ParseCniError(text).has_value()) << text;
  }
}

TEST(CniErrorTest, CodeNames) {
  EXPECT_EQ(CniErrorCodeName(1), "incompatible CNI version");
  EXPECT_EQ(CniErrorCodeName(2), "unsupported field in network configuration");
  EXPECT_EQ(CniErrorCodeName(3), "container unknown or does not exist");
  EXPECT_EQ(CniErrorCodeName(4), "invalid necessary environment variables");
  EXPECT_EQ(CniErrorCodeName(5), "I/O failure");
  EXPECT_EQ(CniErrorCodeName(7), "invalid network config");
  EXPECT_EQ(CniErrorCodeName(11), "try again later");
  EXPECT_EQ(CniErrorCodeName(50), "plugin not available");
  EXPECT_THAT(std::string(CniErrorCodeName(51)), HasSubstr("plugin not available"));
  for (uint32_t code : {0u, 8u, 10u, 12u, 49u, 52u, 100u, 999u}) {
    EXPECT_EQ(CniErrorCodeName(code), "") << code;
  }
}

// ---- VERSION ------------------------------------------------------------------------------------

TEST(CniVersionResultTest, RealAnswer) {
  absl::StatusOr<std::vector<std::string>> v = ParseCniVersionResult(kVersionAnswer);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(*v, ElementsAre("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"));
}

TEST(CniVersionResultTest, Legacy020Answer) {
  absl::StatusOr<std::vector<std::string>> v = ParseCniVersionResult(R"({"cniVersion":"0.2.0"})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(*v, ElementsAre("0.1.0", "0.2.0"));
}

TEST(CniVersionResultTest, Malformed) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"", "not valid JSON"},
      {"[]", "expected a JSON object"},
      {R"({"supportedVersions":["1.0.0"]})", "missing cniVersion"},
      {R"({"cniVersion":1,"supportedVersions":["1.0.0"]})", "cniVersion: expected a string"},
      {R"({"cniVersion":"x","supportedVersions":["1.0.0"]})", "cniVersion: \"x\" is not a version"},
      {R"({"cniVersion":"1.0.0"})", "missing supportedVersions"},
      {R"({"cniVersion":"1.0.0","supportedVersions":[]})", "missing supportedVersions"},
      {R"({"cniVersion":"1.0.0","supportedVersions":"1.0.0"})",
       "supportedVersions: expected an array, got string"},
      {R"({"cniVersion":"1.0.0","supportedVersions":["1.0.0",1]})",
       "supportedVersions[1]: expected a string, got number"},
      {R"({"cniVersion":"1.0.0","supportedVersions":["1.0.0","1.0.0-beta"]})",
       "supportedVersions[1]: \"1.0.0-beta\" is not a version"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> v = ParseCniVersionResult(c.text);
    ASSERT_FALSE(v.ok()) << c.text;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(v.status().message(), HasSubstr(c.want)) << c.text;
    EXPECT_THAT(v.status().message(), HasSubstr("CNI VERSION result: ")) << c.text;
  }
  json many = {{"cniVersion", "1.0.0"}, {"supportedVersions", json(1025, "1.0.0")}};
  EXPECT_THAT(ParseCniVersionResult(many.dump()).status().message(), HasSubstr("1025 entries"));
}

}  // namespace
}  // namespace berth::network

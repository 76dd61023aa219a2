#include "images/reference.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::images {
namespace {

using ::testing::HasSubstr;

constexpr char kHex[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string Sha(absl::string_view hex = kHex) {
  return absl::StrCat("sha256:", hex);
}

struct Case {
  std::string in;
  std::string domain, path, tag;
  bool digest = false;
  std::string string;
};

TEST(ParseReferenceTest, NormalisesLikeDistribution) {
  const Case cases[] = {
      {"busybox", "docker.io", "library/busybox", "latest", false,
       "docker.io/library/busybox:latest"},
      {"busybox:1.36", "docker.io", "library/busybox", "1.36", false,
       "docker.io/library/busybox:1.36"},
      {"user/app", "docker.io", "user/app", "latest", false, "docker.io/user/app:latest"},
      {"docker.io/busybox", "docker.io", "library/busybox", "latest", false,
       "docker.io/library/busybox:latest"},
      {"docker.io/library/busybox:1", "docker.io", "library/busybox", "1", false,
       "docker.io/library/busybox:1"},
      {"index.docker.io/x", "docker.io", "library/x", "latest", false,
       "docker.io/library/x:latest"},
      {"index.docker.io/org/x:v2", "docker.io", "org/x", "v2", false, "docker.io/org/x:v2"},
      {"localhost/app", "localhost", "app", "latest", false, "localhost/app:latest"},
      {"localhost:5000/a:1", "localhost:5000", "a", "1", false, "localhost:5000/a:1"},
      {"127.0.0.1:5000/a@" + Sha(), "127.0.0.1:5000", "a", "", true, "127.0.0.1:5000/a@" + Sha()},
      {"a:tag@" + Sha(), "docker.io", "library/a", "tag", true, "docker.io/library/a:tag@" + Sha()},
      {"registry.example.com:5000/org/team/app:v1.2.3-rc_1", "registry.example.com:5000",
       "org/team/app", "v1.2.3-rc_1", false, "registry.example.com:5000/org/team/app:v1.2.3-rc_1"},
      {"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", false,
       "registry.k8s.io/pause:3.9"},
      {"[::1]:5000/foo", "[::1]:5000", "foo", "latest", false, "[::1]:5000/foo:latest"},
      {"[fe80::1]/foo:t", "[fe80::1]", "foo", "t", false, "[fe80::1]/foo:t"},
      // Docker's reading: with no '/', "localhost:5000" is the image localhost, tag 5000.
      {"localhost:5000", "docker.io", "library/localhost", "5000", false,
       "docker.io/library/localhost:5000"},
      {"Registry.Example.COM/app", "Registry.Example.COM", "app", "latest", false,
       "Registry.Example.COM/app:latest"},
      {"a__b/c-d---e/f.g_h", "docker.io", "a__b/c-d---e/f.g_h", "latest", false,
       "docker.io/a__b/c-d---e/f.g_h:latest"},
      {"my-host:1/x", "my-host:1", "x", "latest", false, "my-host:1/x:latest"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    absl::StatusOr<Reference> ref = ParseReference(c.in);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(ref->domain, c.domain);
    EXPECT_EQ(ref->path, c.path);
    EXPECT_EQ(ref->tag, c.tag);
    EXPECT_EQ(ref->digest.has_value(), c.digest);
    EXPECT_EQ(ref->String(), c.string);
    EXPECT_EQ(ref->Name(), c.domain + "/" + c.path);
    // The normal form is a fixed point.
    absl::StatusOr<Reference> again = ParseReference(ref->String());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, *ref);
  }
}

TEST(ParseReferenceTest, KeepsTheDigest) {
  absl::StatusOr<Reference> ref = ParseReference("busybox@" + Sha());
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_TRUE(ref->digest.has_value());
  EXPECT_EQ(ref->digest->ToString(), Sha());
  EXPECT_EQ(ref->tag, "");

  std::string sha512 = "sha512:" + std::string(kHex) + kHex;
  ref = ParseReference("example.com/a:b@" + sha512);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->digest->ToString(), sha512);
  EXPECT_EQ(ref->tag, "b");
}

TEST(ParseReferenceTest, LongestValidTagAndName) {
  std::string tag = "t" + std::string(127, 'x');
  absl::StatusOr<Reference> ref = ParseReference("a:" + tag);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->tag, tag);
  EXPECT_FALSE(ParseReference("a:" + tag + "x").ok());

  // "example.com/" is 12 characters: a 243-character path makes a 255-character name.
  std::string path = std::string(121, 'a') + "/" + std::string(121, 'b');
  ref = ParseReference("example.com/" + path);
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->Name().size(), 255u);
  absl::StatusOr<Reference> too_long = ParseReference("example.com/" + path + "b");
  ASSERT_FALSE(too_long.ok());
  EXPECT_THAT(too_long.status().message(), HasSubstr("more than the 255 allowed"));
  // docker.io's library/ prefix counts.
  EXPECT_FALSE(ParseReference(std::string(250, 'a')).ok());
}

struct Bad {
  std::string in;
  std::string message;
};

TEST(ParseReferenceTest, RefusesWithAReason) {
  const Bad cases[] = {
      {"", "empty"},
      {" busybox", "whitespace"},
      {"busybox ", "whitespace"},
      {"busy\tbox", "whitespace"},
      {"busy\x01"
       "box",
       "control character"},
      {"busybox\x7f", "control character"},
      {"b\xc3\xa9", "non-ASCII"},
      {"https://registry.example.com/app", "URL scheme"},
      {"docker://busybox", "URL scheme"},
      {"app/", "ends with '/'"},
      {"/app", "starts with '/'"},
      {"a//b", "empty path component"},
      {"example.com//b", "empty path component"},
      {"Busybox", "repository name must be lowercase"},
      {"example.com/Org/app", "repository name must be lowercase"},
      {"library/BusyBox:1", "repository name must be lowercase"},
      {"UPPER/app", "repository name must be lowercase"},
      {"a..b", "path component \"a..b\" is invalid"},
      {"a___b", "invalid"},
      {"-a", "invalid"},
      {"a-", "invalid"},
      {"a_", "invalid"},
      {".a", "invalid"},
      {"a/.b", "invalid"},
      {"a$b", "invalid"},
      {"a:", "nothing after ':'"},
      {"a:.tag", "tag \".tag\" is invalid"},
      {"a:-tag", "is invalid"},
      {"a:t@g", "invalid digest"},
      {"a:b:c", "path component \"a:b\" is invalid"},
      {"a@", "nothing after '@'"},
      {"a@sha256:abc", "sha256 needs 64 lowercase hex digits"},
      {"a@sha256:" + std::string(kHex).substr(0, 63) + "A", "lowercase hex"},
      {"a@md5:0123456789abcdef0123456789abcdef", "unsupported digest algorithm"},
      {"a@" + Sha() + "@" + Sha(), "invalid digest"},
      {":tag", "repository name is empty"},
      {"@" + Sha(), "repository name is empty"},
      {"example.com:/app", "port \"\" is not a number"},
      {"example.com:0/app", "port \"0\""},
      {"example.com:65536/app", "port \"65536\""},
      {"example.com:12a/app", "port \"12a\""},
      {"example.com:1:2/app", "port \"1:2\""},
      {"exa_mple.com/app", "is not a host name"},
      {"-example.com/app", "is not a host name"},
      {"example..com/app", "is not a host name"},
      {"[::1/app", "closing ']'"},
      {"[::1]x/app", "expected ':' and a port"},
      {"[zz::1]:5000/app", "is not an IPv6 address"},
      {"[]:5000/app", "is not an IPv6 address"},
      {"[::1]:99999/app", "port"},
      {kHex, "looks like an image ID"},
      {Sha(), "looks like an image ID"},
      {std::string(2000, 'a'), "more than the 1024 allowed"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.in);
    absl::StatusOr<Reference> ref = ParseReference(c.in);
    ASSERT_FALSE(ref.ok()) << ref->String();
    EXPECT_THAT(ref.status().message(), HasSubstr(c.message));
    if (!c.in.empty() && c.in.size() < 100 &&
        c.in.find_first_of("\t\x01\x7f\xc3") == std::string::npos) {
      // The input is shown, quoted.
      EXPECT_THAT(ref.status().message(), HasSubstr("\"" + c.in + "\""));
    }
  }
}

TEST(ParseReferenceTest, ErrorCodes) {
  EXPECT_EQ(ParseReference("A").status().code(), absl::StatusCode::kInvalidArgument);
  // A well-formed digest of an algorithm berth cannot verify keeps Digest::Parse's code.
  EXPECT_EQ(ParseReference("a@md5:0123456789abcdef0123456789abcdef").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(ParseReferenceTest, QuotesHostileInputSafely) {
  absl::StatusOr<Reference> ref = ParseReference("a\x1b[31mred");
  ASSERT_FALSE(ref.ok());
  EXPECT_THAT(ref.status().message(), HasSubstr("\\u001b"));
  EXPECT_EQ(ref.status().message().find('\x1b'), absl::string_view::npos);
  ref = ParseReference(std::string(900, 'A'));
  ASSERT_FALSE(ref.ok());
  EXPECT_LT(ref.status().message().size(), 300u);
}

}  // namespace
}  // namespace berth::images

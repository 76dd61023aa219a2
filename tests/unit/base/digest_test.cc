#include "base/digest.h"

#include "gtest/gtest.h"

namespace berth {
namespace {

constexpr char kEmpty256[] =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Digest, ParseAndPrint) {
  absl::StatusOr<Digest> d = Digest::Parse(kEmpty256);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->ToString(), kEmpty256);
  EXPECT_EQ(d->algorithm(), Digest::Algorithm::kSha256);
  EXPECT_EQ(*d, Digest::Of(""));
}

TEST(Digest, KnownValues) {
  EXPECT_EQ(Digest::Of("abc").ToString(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Digest::Of("abc", Digest::Algorithm::kSha512).hex().substr(0, 16), "ddaf35a193617aba");
}

TEST(Digest, RefusesMalformed) {
  for (const char* bad :
       {"", "sha256", "sha256:", ":abc",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "sha256:e3b0",
        "sha256:../../etc/passwd", "SHA256:e3b0",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/x", "sha-:abc",
        "-sha:abc"}) {
    absl::StatusOr<Digest> d = Digest::Parse(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(Digest::Parse("md5:abc").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Digest::Parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
}

TEST(Hasher, StreamingEqualsOneShot) {
  Hasher h;
  h.Update("ab");
  Digest partial = h.Finish();  // does not end the stream
  h.Update("c");
  EXPECT_EQ(h.bytes(), 3u);
  EXPECT_EQ(h.Finish(), Digest::Of("abc"));
  EXPECT_EQ(partial, Digest::Of("ab"));
}

}  // namespace
}  // namespace berth

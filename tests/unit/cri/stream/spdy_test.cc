// SPDY/3.1 frame layer: byte layouts worked out by hand from the spec, round trips, splits, the
// shared header compression context, every decoder error, and header blocks produced by other
// implementations (a Chromium capture; zlib driven directly the way spdystream drives it).
#include "cri/stream/spdy.h"

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace berth::stream::spdy {
namespace {

using ::testing::HasSubstr;

// Bytes from a list of values 0..255: the frames below are written out the way the spec draws
// them.
std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

std::string Be32(uint32_t v) {
  return Bytes({static_cast<int>(v >> 24), static_cast<int>((v >> 16) & 0xff),
                static_cast<int>((v >> 8) & 0xff), static_cast<int>(v & 0xff)});
}

// The uncompressed name/value block, built by hand: count, then length-prefixed names/values.
std::string RawBlock(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string b = Be32(static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    b += Be32(static_cast<uint32_t>(name.size())) + name;
    b += Be32(static_cast<uint32_t>(value.size())) + value;
  }
  return b;
}

// The SPDY/3 dictionary rebuilt from its definition (65 length-prefixed words, then a plain
// tail), independently of the library's byte table.
std::string SpecDictionary() {
  // clang-format off
  const char* const words[] = {
      "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
      "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
      "cache-control", "connection", "content-base", "content-encoding", "content-language",
      "content-length", "content-location", "content-md5", "content-range", "content-type",
      "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
      "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
      "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
      "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
      "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
      "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"};
  // clang-format on
  std::string d;
  for (const char* w : words) d += Be32(static_cast<uint32_t>(std::string(w).size())) + w;
  d += "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504"
       "505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
       "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
       "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
       "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
       "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,"
       "sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
  return d;
}

// zlib driven directly, as Go's compress/zlib is by spdystream's Framer: one stream per
// direction, dictionary set up front, a sync flush after every block (level 9, like Go's
// zlib.BestCompression).
class RawDeflater {
 public:
  explicit RawDeflater(const std::string& dict = SpecDictionary(), int level = 9) {
    EXPECT_EQ(deflateInit2(&z_, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    EXPECT_EQ(deflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(dict.data()),
                                   static_cast<uInt>(dict.size())),
              Z_OK);
  }
  ~RawDeflater() { deflateEnd(&z_); }

  std::string Block(std::string raw, int flush = Z_SYNC_FLUSH) {
    std::string out(raw.size() + 1024, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(raw.data());
    z_.avail_in = static_cast<uInt>(raw.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&z_, flush);
    EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END) << rc;
    EXPECT_EQ(z_.avail_in, 0u);
    out.resize(out.size() - z_.avail_out);
    return out;
  }

 private:
  z_stream z_{};
};

// The test's own inflate, to look inside what HeaderEncoder produced.
class RawInflater {
 public:
  RawInflater() { EXPECT_EQ(inflateInit(&z_), Z_OK); }
  ~RawInflater() { inflateEnd(&z_); }

  std::string Block(std::string in) {
    std::string out(1 << 16, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(in.data());
    z_.avail_in = static_cast<uInt>(in.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      std::string dict = SpecDictionary();
      EXPECT_EQ(inflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(dict.data()),
                                     static_cast<uInt>(dict.size())),
                Z_OK);
      rc = inflate(&z_, Z_SYNC_FLUSH);
    }
    EXPECT_EQ(rc, Z_OK);
    EXPECT_EQ(z_.avail_in, 0u);
    out.resize(out.size() - z_.avail_out);
    return out;
  }

 private:
  z_stream z_{};
};

// A control frame with a hand-set header around `payload`.
std::string Control(int type, int flags, const std::string& payload, int version = 3) {
  uint32_t len = static_cast<uint32_t>(payload.size());
  return Bytes({0x80 | (version >> 8), version & 0xff, type >> 8, type & 0xff, flags,
                static_cast<int>(len >> 16), static_cast<int>((len >> 8) & 0xff),
                static_cast<int>(len & 0xff)}) +
         payload;
}

// SYN_STREAM for `stream` around an already compressed header block.
std::string SynStreamWithBlock(uint32_t stream, const std::string& block) {
  return Control(1, 0, Be32(stream) + Be32(0) + Bytes({0, 0}) + block);
}

// Decodes everything in `bytes` with a fresh decoder.
absl::StatusOr<std::vector<Frame>> DecodeAll(const std::string& bytes,
                                             Decoder decoder = Decoder()) {
  decoder.Feed(bytes);
  std::vector<Frame> frames;
  for (;;) {
    absl::StatusOr<std::optional<Frame>> f = decoder.Next();
    if (!f.ok()) return f.status();
    if (!f->has_value()) break;
    frames.push_back(**f);
  }
  EXPECT_EQ(decoder.buffered(), 0u);
  return frames;
}

// The single frame in `bytes`, or the decoder's error.
absl::StatusOr<Frame> DecodeOne(const std::string& bytes) {
  absl::StatusOr<std::vector<Frame>> frames = DecodeAll(bytes);
  if (!frames.ok()) return frames.status();
  EXPECT_EQ(frames->size(), 1u);
  if (frames->empty()) return absl::NotFoundError("no frame");
  return frames->front();
}

// The decoder's error for `bytes`, which must be InvalidArgument.
std::string DecodeError(const std::string& bytes, Decoder decoder = Decoder()) {
  absl::StatusOr<std::vector<Frame>> frames = DecodeAll(bytes, std::move(decoder));
  EXPECT_FALSE(frames.ok());
  if (frames.ok()) return "";
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInvalidArgument) << frames.status();
  return std::string(frames.status().message());
}

Frame MakeSynStream(uint32_t id, Headers headers) {
  Frame f;
  f.type = FrameType::kSynStream;
  f.stream_id = id;
  f.headers = std::move(headers);
  return f;
}

// ---- the dictionary ----------------------------------------------------------------------

TEST(SpdyDictionary, MatchesTheSpec) {
  EXPECT_EQ(HeaderDictionary().size(), 1423u);
  EXPECT_EQ(HeaderDictionary(), SpecDictionary());
  // The dictionary id every SPDY/3 peer's first header block carries (see the Chromium capture
  // below: 38 ea e3 c6 a7 c2).
  uLong adler =
      adler32(adler32(0, nullptr, 0), reinterpret_cast<const Bytef*>(HeaderDictionary().data()),
              static_cast<uInt>(HeaderDictionary().size()));
  EXPECT_EQ(adler, 0xe3c6a7c2u);
}

// ---- fixed layouts, by hand from the spec ------------------------------------------------

TEST(SpdyEncode, Ping) {
  // |1|version 3|type 6|, flags 0, length 4, then the 32-bit id.
  std::string want =
      Bytes({0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x12, 0x34, 0x56, 0x78});
  std::string out;
  ASSERT_TRUE(AppendPing(&out, 0x12345678).ok());
  EXPECT_EQ(out, want);
  HeaderEncoder enc;
  Frame f;
  f.type = FrameType::kPing;
  f.ping_id = 0x12345678;
  EXPECT_EQ(*Encode(f, enc), want);
  EXPECT_EQ(*DecodeOne(want), f);
}

TEST(SpdyEncode, RstStream) {
  std::string want = Bytes({0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08,  // type 3, length 8
                            0x00, 0x00, 0x00, 0x05,                          // stream 5
                            0x00, 0x00, 0x00, 0x05});                        // CANCEL
  std::string out;
  ASSERT_TRUE(AppendRstStream(&out, 5, kCancel).ok());
  EXPECT_EQ(out, want);
  absl::StatusOr<Frame> f = DecodeOne(want);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, FrameType::kRstStream);
  EXPECT_EQ(f->stream_id, 5u);
  EXPECT_EQ(f->status, kCancel);
}

TEST(SpdyEncode, WindowUpdate) {
  std::string want = Bytes({0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08,  // type 9, length 8
                            0x00, 0x00, 0x00, 0x01,                          // stream 1
                            0x00, 0x01, 0x00, 0x00});                        // delta 65536
  std::string out;
  ASSERT_TRUE(AppendWindowUpdate(&out, 1, 0x10000).ok());
  EXPECT_EQ(out, want);
  // Stream 0 is the session's window (3.1), and 2^31-1 the largest delta.
  out.clear();
  ASSERT_TRUE(AppendWindowUpdate(&out, 0, kMaxWindowDelta).ok());
  EXPECT_EQ(out, Bytes({0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
                        0x7f, 0xff, 0xff, 0xff}));
  absl::StatusOr<Frame> f = DecodeOne(out);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, FrameType::kWindowUpdate);
  EXPECT_EQ(f->stream_id, 0u);
  EXPECT_EQ(f->delta, kMaxWindowDelta);
}

TEST(SpdyEncode, GoAway) {
  std::string want = Bytes({0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08,  // type 7, length 8
                            0x00, 0x00, 0x00, 0x07,                          // last good 7
                            0x00, 0x00, 0x00, 0x01});                        // PROTOCOL_ERROR
  std::string out;
  ASSERT_TRUE(AppendGoAway(&out, 7, kGoAwayProtocolError).ok());
  EXPECT_EQ(out, want);
  absl::StatusOr<Frame> f = DecodeOne(want);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, FrameType::kGoAway);
  EXPECT_EQ(f->last_good_stream_id, 7u);
  EXPECT_EQ(f->status, kGoAwayProtocolError);
}

TEST(SpdyEncode, SettingsWithTwoEntries) {
  std::string want = Bytes({0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x14,  // type 4, len 20
                            0x00, 0x00, 0x00, 0x02,                          // 2 entries
                            0x00, 0x00, 0x00, 0x04,    // flags 0, id 4 (MAX_CONCURRENT_STREAMS)
                            0x00, 0x00, 0x00, 0x64,    // 100
                            0x01, 0x00, 0x00, 0x07,    // PERSIST_VALUE, id 7 (INITIAL_WINDOW_SIZE)
                            0x00, 0x01, 0x00, 0x00});  // 65536
  std::vector<Setting> settings = {{0, kSettingMaxConcurrentStreams, 100},
                                   {kSettingFlagPersistValue, kSettingInitialWindowSize, 65536}};
  std::string out;
  ASSERT_TRUE(AppendSettings(&out, settings).ok());
  EXPECT_EQ(out, want);
  absl::StatusOr<Frame> f = DecodeOne(want);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, FrameType::kSettings);
  EXPECT_EQ(f->settings, settings);
  // The frame-level flag: clear persisted settings.
  out.clear();
  ASSERT_TRUE(AppendSettings(&out, {}, kFlagClearSettings).ok());
  EXPECT_EQ(out, Bytes({0x80, 0x03, 0x00, 0x04, 0x01, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00}));
}

TEST(SpdyEncode, DataWithFin) {
  // |0|stream id 3|, flags FIN, length 2, payload.
  std::string want = Bytes({0x00, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x02, 'h', 'i'});
  std::string out;
  ASSERT_TRUE(AppendData(&out, 3, "hi", true).ok());
  EXPECT_EQ(out, want);
  absl::StatusOr<Frame> f = DecodeOne(want);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, FrameType::kData);
  EXPECT_EQ(f->stream_id, 3u);
  EXPECT_EQ(f->flags, kFlagFin);
  EXPECT_EQ(f->data, "hi");
  // A bare FIN: no payload at all.
  out.clear();
  ASSERT_TRUE(AppendData(&out, 0x7fffffff, "", true).ok());
  EXPECT_EQ(out, Bytes({0x7f, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00}));
  f = DecodeOne(out);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->data, "");
  EXPECT_EQ(f->flags, kFlagFin);
}

TEST(SpdyEncode, SynStreamFixedFields) {
  HeaderEncoder enc;
  Frame f = MakeSynStream(1, {{"streamtype", "stdin"}});
  f.flags = kFlagFin;
  f.associated_id = 0;
  f.priority = 2;
  absl::StatusOr<std::string> out = Encode(f, enc);
  ASSERT_TRUE(out.ok()) << out.status();
  size_t len = out->size() - 8;
  // clang-format off
  EXPECT_EQ(out->substr(0, 18),
            Bytes({0x80, 0x03, 0x00, 0x01, 0x01, static_cast<int>(len >> 16),
                   static_cast<int>((len >> 8) & 0xff), static_cast<int>(len & 0xff),
                   0x00, 0x00, 0x00, 0x01,    // stream 1
                   0x00, 0x00, 0x00, 0x00,    // associated 0
                   0x40, 0x00}));             // priority 2 in the top 3 bits, slot 0
  // clang-format on
}

TEST(SpdyEncode, HeaderBlockLayout) {
  HeaderEncoder enc;
  Headers headers = {{"streamtype", "error"}, {"port", "8080"}, {"multi", std::string("a\0b", 3)}};
  absl::StatusOr<std::string> block = enc.Encode(headers);
  ASSERT_TRUE(block.ok()) << block.status();
  // zlib header (deflate, FDICT set), then the dictionary's adler32 ...
  ASSERT_GE(block->size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>((*block)[0]) & 0x0f, 8);  // CM = deflate
  EXPECT_NE(static_cast<unsigned char>((*block)[1]) & 0x20, 0);  // FDICT
  EXPECT_EQ(block->substr(2, 4), Bytes({0xe3, 0xc6, 0xa7, 0xc2}));
  // ... and a sync flush at the end: an empty stored block.
  EXPECT_EQ(block->substr(block->size() - 4), Bytes({0x00, 0x00, 0xff, 0xff}));

  // clang-format off
  std::string want = Bytes({0, 0, 0, 3,                                  // 3 headers
                            0, 0, 0, 10, 's', 't', 'r', 'e', 'a', 'm', 't', 'y', 'p', 'e',
                            0, 0, 0, 5, 'e', 'r', 'r', 'o', 'r',
                            0, 0, 0, 4, 'p', 'o', 'r', 't',
                            0, 0, 0, 4, '8', '0', '8', '0',
                            0, 0, 0, 5, 'm', 'u', 'l', 't', 'i',
                            0, 0, 0, 3, 'a', 0, 'b'});
  // clang-format on
  RawInflater inflater;
  EXPECT_EQ(inflater.Block(*block), want);
  // The second block on the same stream continues it: no zlib header this time.
  absl::StatusOr<std::string> second = enc.Encode({{"streamtype", "stdout"}});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(inflater.Block(*second), RawBlock({{"streamtype", "stdout"}}));
}

// ---- round trips -------------------------------------------------------------------------

std::vector<Frame> EveryKindOfFrame() {
  std::vector<Frame> frames;
  Frame syn = MakeSynStream(1, {{"streamtype", "error"}, {"requestid", "0"}, {"port", "80"}});
  syn.priority = 7;
  syn.flags = kFlagFin | kFlagUnidirectional;
  syn.associated_id = kMaxStreamId;
  frames.push_back(syn);
  frames.push_back(MakeSynStream(3, {{"empty", ""}, {"multi", std::string("x\0yy\0z", 6)}}));
  frames.push_back(MakeSynStream(5, {}));
  Frame reply;
  reply.type = FrameType::kSynReply;
  reply.stream_id = 1;
  reply.headers = {{"streamtype", "error"}};
  frames.push_back(reply);
  Frame headers;
  headers.type = FrameType::kHeaders;
  headers.flags = kFlagFin;
  headers.stream_id = kMaxStreamId;
  headers.headers = {{"x-trailer", std::string(3000, 'v')}};
  frames.push_back(headers);
  Frame data;
  data.stream_id = 1;
  data.data = std::string(100000, '\xa5');
  frames.push_back(data);
  Frame fin;
  fin.stream_id = 3;
  fin.flags = kFlagFin;
  frames.push_back(fin);
  Frame rst;
  rst.type = FrameType::kRstStream;
  rst.stream_id = 9;
  rst.status = kFrameTooLarge;
  frames.push_back(rst);
  Frame settings;
  settings.type = FrameType::kSettings;
  settings.flags = kFlagClearSettings;
  settings.settings = {{kSettingFlagPersisted, 0xffffff, 0xffffffff}, {0, 7, 1}};
  frames.push_back(settings);
  Frame no_settings;
  no_settings.type = FrameType::kSettings;
  frames.push_back(no_settings);
  Frame ping;
  ping.type = FrameType::kPing;
  ping.ping_id = 0xffffffff;
  frames.push_back(ping);
  Frame goaway;
  goaway.type = FrameType::kGoAway;
  goaway.last_good_stream_id = kMaxStreamId;
  goaway.status = kGoAwayInternalError;
  frames.push_back(goaway);
  Frame window;
  window.type = FrameType::kWindowUpdate;
  window.stream_id = 0;
  window.delta = 1;
  frames.push_back(window);
  return frames;
}

TEST(SpdyRoundTrip, EveryType) {
  HeaderEncoder enc;
  Decoder dec;
  for (const Frame& f : EveryKindOfFrame()) {
    absl::StatusOr<std::string> bytes = Encode(f, enc);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    dec.Feed(*bytes);
    absl::StatusOr<std::optional<Frame>> got = dec.Next();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value()) << "type " << static_cast<int>(f.type);
    EXPECT_EQ(**got, f);
    absl::StatusOr<std::optional<Frame>> none = dec.Next();
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
  }
}

TEST(SpdyRoundTrip, AllFramesInOneFeedAndOneByteFeeds) {
  HeaderEncoder enc;
  std::string wire;
  std::vector<Frame> want = EveryKindOfFrame();
  want.resize(6);  // the header frames and the big DATA: enough to cross many feeds
  for (const Frame& f : want) wire += *Encode(f, enc);

  absl::StatusOr<std::vector<Frame>> all = DecodeAll(wire);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, want);

  // One frame at a time in 1-byte feeds: nothing until its last byte.
  Decoder dec;
  std::vector<Frame> got;
  for (size_t i = 0; i < wire.size(); ++i) {
    dec.Feed(wire.substr(i, 1));
    absl::StatusOr<std::optional<Frame>> f = dec.Next();
    ASSERT_TRUE(f.ok()) << f.status();
    if (f->has_value()) got.push_back(**f);
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(SpdyDecoder, SynStreamSplitIntoSingleBytes) {
  HeaderEncoder enc;
  Frame f = MakeSynStream(7, {{"streamtype", "stdout"}, {"requestid", "42"}});
  std::string wire = *Encode(f, enc);
  Decoder dec;
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    dec.Feed(wire.substr(i, 1));
    absl::StatusOr<std::optional<Frame>> none = dec.Next();
    ASSERT_TRUE(none.ok()) << none.status();
    ASSERT_FALSE(none->has_value()) << "frame before its last byte, at " << i;
    EXPECT_EQ(dec.buffered(), i + 1);
  }
  dec.Feed(wire.substr(wire.size() - 1));
  absl::StatusOr<std::optional<Frame>> got = dec.Next();
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, f);
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(SpdyDecoder, TwoFramesInOneFeed) {
  std::string wire;
  ASSERT_TRUE(AppendPing(&wire, 2).ok());
  ASSERT_TRUE(AppendData(&wire, 1, "abc", false).ok());
  wire += Bytes({0x00, 0x00});  // the start of a third frame
  Decoder dec;
  dec.Feed(wire);
  absl::StatusOr<std::optional<Frame>> a = dec.Next();
  absl::StatusOr<std::optional<Frame>> b = dec.Next();
  absl::StatusOr<std::optional<Frame>> c = dec.Next();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(a->has_value() && b->has_value());
  EXPECT_EQ((*a)->type, FrameType::kPing);
  EXPECT_EQ((*a)->ping_id, 2u);
  EXPECT_EQ((*b)->type, FrameType::kData);
  EXPECT_EQ((*b)->data, "abc");
  EXPECT_FALSE(c->has_value());
  EXPECT_EQ(dec.buffered(), 2u);
}

TEST(SpdyDecoder, UnknownControlFramesAreSkipped) {
  std::string wire = Control(10, 0, std::string(20, 'c'));  // CREDENTIAL, gone in 3.1
  wire += Control(5, 0, "");                                // NOOP (SPDY/2)
  wire += Control(0xffff, 0xff, std::string(3, 'x'));
  ASSERT_TRUE(AppendPing(&wire, 4).ok());
  absl::StatusOr<Frame> f = DecodeOne(wire);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->type, FrameType::kPing);
  EXPECT_EQ(f->ping_id, 4u);
}

TEST(SpdyDecoder, ReservedBitsAreMasked) {
  std::string wire = Control(3, 0, Be32(0x80000005) + Be32(kCancel));
  wire += Control(7, 0, Be32(0x80000009) + Be32(0));
  wire += Control(9, 0, Be32(0x80000000) + Be32(10));
  absl::StatusOr<std::vector<Frame>> frames = DecodeAll(wire);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 3u);
  EXPECT_EQ((*frames)[0].stream_id, 5u);
  EXPECT_EQ((*frames)[1].last_good_stream_id, 9u);
  EXPECT_EQ((*frames)[2].stream_id, 0u);
  EXPECT_EQ((*frames)[2].delta, 10u);
}

TEST(SpdyDecoder, UnknownFlagBitsAreKept) {
  std::string wire = Bytes({0x00, 0x00, 0x00, 0x01, 0xfe, 0x00, 0x00, 0x00});
  absl::StatusOr<Frame> f = DecodeOne(wire);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->flags, 0xfe);
  HeaderEncoder enc;
  EXPECT_EQ(*Encode(*f, enc), wire);
}

// ---- the shared compression context ------------------------------------------------------

TEST(SpdyHeaders, ContextIsSharedAcrossBlocks) {
  HeaderEncoder enc;
  Headers h = {{"streamtype", "stdout"}, {"requestid", "1"}};
  std::string first = *enc.Encode(h);
  std::string second = *enc.Encode(h);
  std::string third = *enc.Encode({{"streamtype", "stderr"}});
  // The repeat refers back to the first block instead of spelling it out again.
  EXPECT_LT(second.size(), first.size());

  HeaderDecoder dec;
  EXPECT_EQ(*dec.Decode(first), h);
  EXPECT_EQ(*dec.Decode(second), h);
  EXPECT_EQ(*dec.Decode(third), (Headers{{"streamtype", "stderr"}}));

  // A decoder that missed the first block cannot follow.
  HeaderDecoder fresh;
  absl::StatusOr<Headers> lost = fresh.Decode(second);
  EXPECT_FALSE(lost.ok() && *lost == h);
  HeaderDecoder fresh2;
  EXPECT_FALSE(fresh2.Decode(third).ok());

  // The same across frames: a Decoder fed only the second SYN_STREAM fails.
  HeaderEncoder enc2;
  std::string frame1 = *Encode(MakeSynStream(1, h), enc2);
  std::string frame2 = *Encode(MakeSynStream(3, h), enc2);
  absl::StatusOr<std::vector<Frame>> both = DecodeAll(frame1 + frame2);
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[1].headers, h);
  EXPECT_THAT(DecodeError(frame2), HasSubstr("SPDY SYN_STREAM frame for stream 3: SPDY header"));
}

TEST(SpdyHeaders, RefusedHeadersLeaveTheContextAlone) {
  HeaderEncoder enc;
  HeaderDecoder dec;
  EXPECT_EQ(enc.Encode({{"Upper", "x"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(enc.Encode({{"", "x"}}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(enc.Encode({{"a", "1"}, {"a", "2"}}).status().message()),
              HasSubstr("duplicate header name \"a\""));
  // A refused frame does not reach the encoder either.
  Frame bad = MakeSynStream(0, {{"a", "1"}});
  EXPECT_FALSE(Encode(bad, enc).ok());
  // The decoder, which saw none of those, still follows.
  absl::StatusOr<std::string> block = enc.Encode({{"a", "1"}});
  ASSERT_TRUE(block.ok());
  EXPECT_EQ(*dec.Decode(*block), (Headers{{"a", "1"}}));
}

TEST(SpdyHeaders, EncoderIsMovable) {
  HeaderEncoder a;
  std::string first = *a.Encode({{"a", "1"}});
  HeaderEncoder b = std::move(a);
  std::string second = *b.Encode({{"b", "2"}});
  HeaderDecoder dec;
  HeaderDecoder moved = std::move(dec);
  EXPECT_EQ(*moved.Decode(first), (Headers{{"a", "1"}}));
  EXPECT_EQ(*moved.Decode(second), (Headers{{"b", "2"}}));
}

// ---- interoperability --------------------------------------------------------------------

// Chromium's SPDY/3 framer (net/spdy/spdy_framer_test.cc, CreateSynStreamCompressed): stream 1,
// priority 4, headers bar: foo and foo: bar, compressed by Chromium's zlib setup (window 2 KiB,
// CMF 0x38) with the SPDY/3 dictionary.
const int kChromiumSynStream[] = {
    0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x37, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x80, 0x00, 0x38, 0xEA, 0xE3, 0xC6, 0xA7, 0xC2, 0x02, 0xE5, 0x0E, 0x50, 0xC2, 0x4B, 0x4A, 0x04,
    0xE5, 0x0B, 0x66, 0x80, 0x00, 0x4A, 0xCB, 0xCF, 0x07, 0x08, 0x20, 0x10, 0x95, 0x96, 0x9F, 0x0F,
    0xA2, 0x00, 0x02, 0x28, 0x29, 0xB1, 0x08, 0x20, 0x80, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF};

// The same file's CreateSynReplyCompressed: SYN_REPLY for stream 1, same headers.
const int kChromiumSynReply[] = {
    0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, 0x01, 0x38, 0xea, 0xe3,
    0xc6, 0xa7, 0xc2, 0x02, 0xe5, 0x0e, 0x50, 0xc2, 0x4b, 0x4a, 0x04, 0xe5, 0x0b, 0x66, 0x80,
    0x00, 0x4a, 0xcb, 0xcf, 0x07, 0x08, 0x20, 0x10, 0x95, 0x96, 0x9f, 0x0f, 0xa2, 0x00, 0x02,
    0x28, 0x29, 0xb1, 0x08, 0x20, 0x80, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff};

template <size_t N>
std::string FromInts(const int (&bytes)[N]) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

TEST(SpdyInterop, ChromiumCapture) {
  absl::StatusOr<Frame> syn = DecodeOne(FromInts(kChromiumSynStream));
  ASSERT_TRUE(syn.ok()) << syn.status();
  EXPECT_EQ(syn->type, FrameType::kSynStream);
  EXPECT_EQ(syn->stream_id, 1u);
  EXPECT_EQ(syn->associated_id, 0u);
  EXPECT_EQ(syn->priority, 4);
  EXPECT_EQ(syn->flags, 0);
  EXPECT_EQ(syn->headers, (Headers{{"bar", "foo"}, {"foo", "bar"}}));

  absl::StatusOr<Frame> reply = DecodeOne(FromInts(kChromiumSynReply));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->type, FrameType::kSynReply);
  EXPECT_EQ(reply->stream_id, 1u);
  EXPECT_EQ(reply->headers, (Headers{{"bar", "foo"}, {"foo", "bar"}}));
}

TEST(SpdyInterop, SpdystreamStyleCompression) {
  // What client-go's exec client sends over one connection: a SYN_STREAM per channel, header
  // blocks compressed by one zlib stream (level 9, dictionary, sync flush per block), names
  // lowercased by spdystream.
  RawDeflater peer;
  std::string wire;
  const char* const types[] = {"error", "stdin", "stdout", "stderr", "resize"};
  uint32_t id = 1;
  for (const char* type : types) {
    wire += SynStreamWithBlock(id, peer.Block(RawBlock({{"streamtype", type}})));
    id += 2;
  }
  absl::StatusOr<std::vector<Frame>> frames = DecodeAll(wire);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ((*frames)[i].stream_id, 1 + 2 * i);
    EXPECT_EQ((*frames)[i].headers, (Headers{{"streamtype", types[i]}}));
  }
}

TEST(SpdyInterop, PeerStreamThatEnds) {
  // A peer that finished its zlib stream: that block decodes, nothing may follow.
  RawDeflater peer;
  HeaderDecoder dec;
  EXPECT_EQ(*dec.Decode(peer.Block(RawBlock({{"a", "b"}}), Z_FINISH)), (Headers{{"a", "b"}}));
  EXPECT_THAT(std::string(dec.Decode("x").status().message()), HasSubstr("already ended"));
}

// ---- decoder errors ----------------------------------------------------------------------

TEST(SpdyDecoderError, UnsupportedVersion) {
  std::string ping = Control(6, 0, Be32(1), /*version=*/2);
  EXPECT_THAT(DecodeError(ping), HasSubstr("unsupported SPDY version 2"));
  // Even for a type it would skip.
  EXPECT_THAT(DecodeError(Control(0x77, 0, "", 4)), HasSubstr("unsupported SPDY version 4"));
  // Found from the header alone, before the payload is in.
  EXPECT_THAT(DecodeError(Control(1, 0, std::string(100, 'x'), 1).substr(0, 8)),
              HasSubstr("unsupported SPDY version 1"));
}

TEST(SpdyDecoderError, FixedLengths) {
  EXPECT_THAT(DecodeError(Control(3, 0, Be32(1))), HasSubstr("RST_STREAM frame: length 4, want 8"));
  EXPECT_THAT(DecodeError(Control(6, 0, Be32(1) + Be32(2))),
              HasSubstr("PING frame: length 8, want 4"));
  EXPECT_THAT(DecodeError(Control(7, 0, Be32(1))), HasSubstr("GOAWAY frame: length 4, want 8"));
  EXPECT_THAT(DecodeError(Control(9, 0, Be32(1) + Be32(1) + Be32(1))),
              HasSubstr("WINDOW_UPDATE frame: length 12, want 8"));
  EXPECT_THAT(DecodeError(Control(4, 0, Be32(0) + Be32(0))),
              HasSubstr("SETTINGS frame: length 8 is not 4 + 8 bytes per entry"));
  EXPECT_THAT(DecodeError(Control(4, 0, "")), HasSubstr("SETTINGS frame: length 0"));
  EXPECT_THAT(DecodeError(Control(4, 0, Be32(2) + Be32(4) + Be32(100))),
              HasSubstr("SETTINGS frame: 2 entries do not match the length 12"));
  EXPECT_THAT(DecodeError(Control(1, 0, Be32(1) + Be32(0))),
              HasSubstr("SYN_STREAM frame: length 8, want at least 10"));
  EXPECT_THAT(DecodeError(Control(2, 0, std::string(1, '\0'))),
              HasSubstr("SYN_REPLY frame: length 1"));
  EXPECT_THAT(DecodeError(Control(8, 0, "")), HasSubstr("HEADERS frame: length 0"));
  // A short fixed-size frame fails on its header: the decoder does not wait for 16 MB.
  EXPECT_THAT(DecodeError(Bytes({0x80, 0x03, 0x00, 0x06, 0x00, 0xff, 0xff, 0xff})),
              HasSubstr("PING frame: length 16777215, want 4"));
}

TEST(SpdyDecoderError, StreamIdZero) {
  RawDeflater peer;
  std::string block = peer.Block(RawBlock({{"a", "b"}}));
  EXPECT_THAT(DecodeError(SynStreamWithBlock(0, block)),
              HasSubstr("SYN_STREAM frame: stream id 0"));
  EXPECT_THAT(DecodeError(SynStreamWithBlock(0x80000000, block)),
              HasSubstr("SYN_STREAM frame: stream id 0"));
  EXPECT_THAT(DecodeError(Control(2, 0, Be32(0) + block)),
              HasSubstr("SYN_REPLY frame: stream id 0"));
  EXPECT_THAT(DecodeError(Control(8, 0, Be32(0) + block)), HasSubstr("HEADERS frame: stream id 0"));
  EXPECT_THAT(DecodeError(Control(3, 0, Be32(0) + Be32(kCancel))),
              HasSubstr("RST_STREAM frame: stream id 0"));
  EXPECT_THAT(DecodeError(Bytes({0, 0, 0, 0, 1, 0, 0, 0})), HasSubstr("DATA frame: stream id 0"));
}

TEST(SpdyDecoderError, RstStatusZero) {
  EXPECT_THAT(DecodeError(Control(3, 0, Be32(1) + Be32(0))),
              HasSubstr("RST_STREAM frame: status 0"));
}

TEST(SpdyDecoderError, WindowUpdateDelta) {
  EXPECT_THAT(DecodeError(Control(9, 0, Be32(1) + Be32(0))),
              HasSubstr("WINDOW_UPDATE frame: delta window size 0 outside 1..2^31-1"));
  EXPECT_THAT(DecodeError(Control(9, 0, Be32(1) + Be32(0x80000000))),
              HasSubstr("delta window size 2147483648 outside"));
}

TEST(SpdyDecoderError, FrameTooLarge) {
  // From the header alone: 101 bytes announced, limit 100.
  EXPECT_THAT(DecodeError(Bytes({0, 0, 0, 1, 0, 0, 0, 101}), Decoder(100)),
              HasSubstr("DATA frame of 101 bytes exceeds the limit of 100"));
  EXPECT_THAT(DecodeError(Control(0x55, 0, std::string(101, 'x')), Decoder(100)),
              HasSubstr("control type 85 frame of 101 bytes exceeds the limit of 100"));
  // Exactly the limit is fine.
  Decoder dec(100);
  std::string data(100, 'd');
  std::string wire;
  ASSERT_TRUE(AppendData(&wire, 1, data, false).ok());
  absl::StatusOr<std::vector<Frame>> frames = DecodeAll(wire, std::move(dec));
  ASSERT_TRUE(frames.ok()) << frames.status();
  EXPECT_EQ(frames->at(0).data, data);
}

TEST(SpdyDecoderError, ErrorsAreFinal) {
  Decoder dec;
  dec.Feed(Control(6, 0, Be32(1), 2));
  absl::Status first = dec.Next().status();
  ASSERT_FALSE(first.ok());
  std::string ping;
  ASSERT_TRUE(AppendPing(&ping, 1).ok());
  dec.Feed(ping);
  EXPECT_EQ(dec.buffered(), 0u);
  EXPECT_EQ(dec.Next().status(), first);
  EXPECT_EQ(dec.Next().status(), first);
}

// Header block errors, each through a SYN_STREAM as a peer would send it.
std::string HeaderError(const std::string& raw_block, size_t max_decoded = 256 << 10) {
  RawDeflater peer;
  return DecodeError(SynStreamWithBlock(1, peer.Block(raw_block)), Decoder(1 << 24, max_decoded));
}

TEST(SpdyDecoderError, HeaderBlocks) {
  EXPECT_THAT(DecodeError(SynStreamWithBlock(1, "not zlib at all")),
              HasSubstr("bad compressed data"));
  EXPECT_THAT(DecodeError(SynStreamWithBlock(1, "")),
              HasSubstr("0 bytes, too short for the header count"));
  EXPECT_THAT(HeaderError(Bytes({0, 0})), HasSubstr("too short for the header count"));
  EXPECT_THAT(HeaderError(Be32(1)), HasSubstr("1 headers cannot fit in 0 bytes"));
  EXPECT_THAT(HeaderError(Be32(0xffffffff) + std::string(16, '\0')),
              HasSubstr("4294967295 headers cannot fit in 16 bytes"));
  // Two headers announced, the second's value length missing.
  EXPECT_THAT(
      HeaderError(Be32(2) + Be32(1) + "a" + Be32(1) + "b" + Be32(1) + "c" + std::string(3, '\0')),
      HasSubstr("header 1 truncated before its value length"));
  EXPECT_THAT(HeaderError(Be32(1) + Be32(100) + "abc" + Be32(0)),
              HasSubstr("header 0 name length 100 runs past the end"));
  EXPECT_THAT(HeaderError(Be32(1) + Be32(1) + "a" + Be32(9) + "abc"),
              HasSubstr("header 0 value length 9 runs past the end (3 bytes left)"));
  EXPECT_THAT(HeaderError(RawBlock({{"a", "b"}}) + "junk"),
              HasSubstr("4 bytes after the last header"));
  EXPECT_THAT(HeaderError(RawBlock({{"", "b"}})), HasSubstr("empty header name"));
  EXPECT_THAT(HeaderError(RawBlock({{"streamType", "error"}})),
              HasSubstr("header name \"streamType\" is not lowercase"));
  EXPECT_THAT(HeaderError(RawBlock({{"port", "1"}, {"x", ""}, {"port", "2"}})),
              HasSubstr("duplicate header name \"port\""));
  EXPECT_THAT(HeaderError(RawBlock({{"big", std::string(2000, 'v')}}), 1000),
              HasSubstr("decompresses to more than the limit of 1000 bytes"));
  // A block compressed against another dictionary.
  RawDeflater stranger(std::string("some other dictionary"));
  EXPECT_THAT(DecodeError(SynStreamWithBlock(1, stranger.Block(RawBlock({{"a", "b"}})))),
              HasSubstr("unknown dictionary"));
}

TEST(SpdyDecoderError, DecompressionBombStopsAtTheLimit) {
  // 16 MiB of zeros compress to ~16 KiB; the decoder gives up after the first 64 KiB.
  RawDeflater peer;
  std::string raw = RawBlock({{"z", std::string(16 << 20, '\0')}});
  std::string block = peer.Block(raw);
  EXPECT_LT(block.size(), 64u << 10);
  HeaderDecoder dec(64 << 10);
  absl::StatusOr<Headers> h = dec.Decode(block);
  ASSERT_FALSE(h.ok());
  EXPECT_THAT(std::string(h.status().message()), HasSubstr("more than the limit of 65536"));
  // And the decoder stays broken.
  EXPECT_EQ(dec.Decode(block).status(), h.status());
}

// ---- encoder refusals --------------------------------------------------------------------

TEST(SpdyEncodeError, RefusesWhatPeersRefuse) {
  HeaderEncoder enc;
  auto error = [&enc](const Frame& f) {
    absl::StatusOr<std::string> out = Encode(f, enc);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    return std::string(out.status().message());
  };
  Frame data;
  EXPECT_THAT(error(data), HasSubstr("DATA frame: stream id 0"));
  data.stream_id = 0x80000000;
  EXPECT_THAT(error(data), HasSubstr("stream id 2147483648 exceeds 2^31-1"));
  Frame syn = MakeSynStream(1, {});
  syn.priority = 8;
  EXPECT_THAT(error(syn), HasSubstr("priority 8 outside 0..7"));
  syn.priority = 0;
  syn.associated_id = 0x80000001;
  EXPECT_THAT(error(syn), HasSubstr("associated stream id 2147483649"));
  Frame reply;
  reply.type = FrameType::kSynReply;
  EXPECT_THAT(error(reply), HasSubstr("SYN_REPLY frame: stream id 0"));
  Frame rst;
  rst.type = FrameType::kRstStream;
  rst.stream_id = 1;
  EXPECT_THAT(error(rst), HasSubstr("RST_STREAM frame: status 0"));
  Frame window;
  window.type = FrameType::kWindowUpdate;
  EXPECT_THAT(error(window), HasSubstr("delta window size 0"));
  window.delta = 0x80000000;
  EXPECT_THAT(error(window), HasSubstr("delta window size 2147483648"));
  Frame goaway;
  goaway.type = FrameType::kGoAway;
  goaway.last_good_stream_id = 0x80000000;
  EXPECT_THAT(error(goaway), HasSubstr("last good stream id 2147483648"));
  Frame settings;
  settings.type = FrameType::kSettings;
  settings.settings = {{0, 0x1000000, 1}};
  EXPECT_THAT(error(settings), HasSubstr("setting id 16777216 exceeds 24 bits"));
  Frame unknown;
  unknown.type = static_cast<FrameType>(5);
  EXPECT_THAT(error(unknown), HasSubstr("cannot encode frame type 5"));

  std::string out = "keep";
  std::string big(kMaxPayload + 1, 'x');
  absl::Status too_big = AppendData(&out, 1, big, false);
  EXPECT_THAT(std::string(too_big.message()), HasSubstr("16777216 bytes of data"));
  EXPECT_FALSE(AppendRstStream(&out, 0, kCancel).ok());
  EXPECT_FALSE(AppendWindowUpdate(&out, 1, 0).ok());
  EXPECT_FALSE(AppendGoAway(&out, 0x80000000, 0).ok());
  EXPECT_EQ(out, "keep");  // nothing appended on error
  ASSERT_TRUE(AppendData(&out, 1, absl::string_view(big).substr(0, kMaxPayload), false).ok());
  EXPECT_EQ(out.size(), 4 + 8 + kMaxPayload);
}

}  // namespace
}  // namespace berth::stream::spdy

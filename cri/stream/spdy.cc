// SPDY/3.1 frame encoding and decoding; see spdy.h for the format and what is checked.
#include "cri/stream/spdy.h"

#include <zlib.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth::stream::spdy {
namespace {

// The SPDY/3 header dictionary, byte for byte as the spec gives it: 65 length-prefixed header
// names and values ("options" .. "origin"), then a run of status codes, reason phrases, dates
// and media types. Its zlib id (adler32) is 0xe3c6a7c2, the id every SPDY/3 peer's first header
// block names.
// clang-format off
constexpr unsigned char kDictionary[] = {
    0x00, 0x00, 0x00, 0x07, 0x6f, 0x70, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x00,
    0x00, 0x00, 0x04, 0x68, 0x65, 0x61, 0x64, 0x00, 0x00, 0x00, 0x04, 0x70,
    0x6f, 0x73, 0x74, 0x00, 0x00, 0x00, 0x03, 0x70, 0x75, 0x74, 0x00, 0x00,
    0x00, 0x06, 0x64, 0x65, 0x6c, 0x65, 0x74, 0x65, 0x00, 0x00, 0x00, 0x05,
    0x74, 0x72, 0x61, 0x63, 0x65, 0x00, 0x00, 0x00, 0x06, 0x61, 0x63, 0x63,
    0x65, 0x70, 0x74, 0x00, 0x00, 0x00, 0x0e, 0x61, 0x63, 0x63, 0x65, 0x70,
    0x74, 0x2d, 0x63, 0x68, 0x61, 0x72, 0x73, 0x65, 0x74, 0x00, 0x00, 0x00,
    0x0f, 0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x65, 0x6e, 0x63, 0x6f,
    0x64, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x0f, 0x61, 0x63, 0x63, 0x65,
    0x70, 0x74, 0x2d, 0x6c, 0x61, 0x6e, 0x67, 0x75, 0x61, 0x67, 0x65, 0x00,
    0x00, 0x00, 0x0d, 0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x72, 0x61,
    0x6e, 0x67, 0x65, 0x73, 0x00, 0x00, 0x00, 0x03, 0x61, 0x67, 0x65, 0x00,
    0x00, 0x00, 0x05, 0x61, 0x6c, 0x6c, 0x6f, 0x77, 0x00, 0x00, 0x00, 0x0d,
    0x61, 0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f,
    0x6e, 0x00, 0x00, 0x00, 0x0d, 0x63, 0x61, 0x63, 0x68, 0x65, 0x2d, 0x63,
    0x6f, 0x6e, 0x74, 0x72, 0x6f, 0x6c, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x6f,
    0x6e, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x0c,
    0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x62, 0x61, 0x73, 0x65,
    0x00, 0x00, 0x00, 0x10, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d,
    0x65, 0x6e, 0x63, 0x6f, 0x64, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x10,
    0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x61, 0x6e, 0x67,
    0x75, 0x61, 0x67, 0x65, 0x00, 0x00, 0x00, 0x0e, 0x63, 0x6f, 0x6e, 0x74,
    0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x65, 0x6e, 0x67, 0x74, 0x68, 0x00, 0x00,
    0x00, 0x10, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x6f,
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x0b, 0x63, 0x6f,
    0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x6d, 0x64, 0x35, 0x00, 0x00, 0x00,
    0x0d, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x72, 0x61, 0x6e,
    0x67, 0x65, 0x00, 0x00, 0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e,
    0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x00, 0x00, 0x00, 0x04, 0x64, 0x61,
    0x74, 0x65, 0x00, 0x00, 0x00, 0x04, 0x65, 0x74, 0x61, 0x67, 0x00, 0x00,
    0x00, 0x06, 0x65, 0x78, 0x70, 0x65, 0x63, 0x74, 0x00, 0x00, 0x00, 0x07,
    0x65, 0x78, 0x70, 0x69, 0x72, 0x65, 0x73, 0x00, 0x00, 0x00, 0x04, 0x66,
    0x72, 0x6f, 0x6d, 0x00, 0x00, 0x00, 0x04, 0x68, 0x6f, 0x73, 0x74, 0x00,
    0x00, 0x00, 0x08, 0x69, 0x66, 0x2d, 0x6d, 0x61, 0x74, 0x63, 0x68, 0x00,
    0x00, 0x00, 0x11, 0x69, 0x66, 0x2d, 0x6d, 0x6f, 0x64, 0x69, 0x66, 0x69,
    0x65, 0x64, 0x2d, 0x73, 0x69, 0x6e, 0x63, 0x65, 0x00, 0x00, 0x00, 0x0d,
    0x69, 0x66, 0x2d, 0x6e, 0x6f, 0x6e, 0x65, 0x2d, 0x6d, 0x61, 0x74, 0x63,
    0x68, 0x00, 0x00, 0x00, 0x08, 0x69, 0x66, 0x2d, 0x72, 0x61, 0x6e, 0x67,
    0x65, 0x00, 0x00, 0x00, 0x13, 0x69, 0x66, 0x2d, 0x75, 0x6e, 0x6d, 0x6f,
    0x64, 0x69, 0x66, 0x69, 0x65, 0x64, 0x2d, 0x73, 0x69, 0x6e, 0x63, 0x65,
    0x00, 0x00, 0x00, 0x0d, 0x6c, 0x61, 0x73, 0x74, 0x2d, 0x6d, 0x6f, 0x64,
    0x69, 0x66, 0x69, 0x65, 0x64, 0x00, 0x00, 0x00, 0x08, 0x6c, 0x6f, 0x63,
    0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x0c, 0x6d, 0x61, 0x78,
    0x2d, 0x66, 0x6f, 0x72, 0x77, 0x61, 0x72, 0x64, 0x73, 0x00, 0x00, 0x00,
    0x06, 0x70, 0x72, 0x61, 0x67, 0x6d, 0x61, 0x00, 0x00, 0x00, 0x12, 0x70,
    0x72, 0x6f, 0x78, 0x79, 0x2d, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74,
    0x69, 0x63, 0x61, 0x74, 0x65, 0x00, 0x00, 0x00, 0x13, 0x70, 0x72, 0x6f,
    0x78, 0x79, 0x2d, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x7a, 0x61,
    0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x05, 0x72, 0x61, 0x6e, 0x67,
    0x65, 0x00, 0x00, 0x00, 0x07, 0x72, 0x65, 0x66, 0x65, 0x72, 0x65, 0x72,
    0x00, 0x00, 0x00, 0x0b, 0x72, 0x65, 0x74, 0x72, 0x79, 0x2d, 0x61, 0x66,
    0x74, 0x65, 0x72, 0x00, 0x00, 0x00, 0x06, 0x73, 0x65, 0x72, 0x76, 0x65,
    0x72, 0x00, 0x00, 0x00, 0x02, 0x74, 0x65, 0x00, 0x00, 0x00, 0x07, 0x74,
    0x72, 0x61, 0x69, 0x6c, 0x65, 0x72, 0x00, 0x00, 0x00, 0x11, 0x74, 0x72,
    0x61, 0x6e, 0x73, 0x66, 0x65, 0x72, 0x2d, 0x65, 0x6e, 0x63, 0x6f, 0x64,
    0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x07, 0x75, 0x70, 0x67, 0x72, 0x61,
    0x64, 0x65, 0x00, 0x00, 0x00, 0x0a, 0x75, 0x73, 0x65, 0x72, 0x2d, 0x61,
    0x67, 0x65, 0x6e, 0x74, 0x00, 0x00, 0x00, 0x04, 0x76, 0x61, 0x72, 0x79,
    0x00, 0x00, 0x00, 0x03, 0x76, 0x69, 0x61, 0x00, 0x00, 0x00, 0x07, 0x77,
    0x61, 0x72, 0x6e, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x10, 0x77, 0x77,
    0x77, 0x2d, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74, 0x69, 0x63, 0x61,
    0x74, 0x65, 0x00, 0x00, 0x00, 0x06, 0x6d, 0x65, 0x74, 0x68, 0x6f, 0x64,
    0x00, 0x00, 0x00, 0x03, 0x67, 0x65, 0x74, 0x00, 0x00, 0x00, 0x06, 0x73,
    0x74, 0x61, 0x74, 0x75, 0x73, 0x00, 0x00, 0x00, 0x06, 0x32, 0x30, 0x30,
    0x20, 0x4f, 0x4b, 0x00, 0x00, 0x00, 0x07, 0x76, 0x65, 0x72, 0x73, 0x69,
    0x6f, 0x6e, 0x00, 0x00, 0x00, 0x08, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31,
    0x2e, 0x31, 0x00, 0x00, 0x00, 0x03, 0x75, 0x72, 0x6c, 0x00, 0x00, 0x00,
    0x06, 0x70, 0x75, 0x62, 0x6c, 0x69, 0x63, 0x00, 0x00, 0x00, 0x0a, 0x73,
    0x65, 0x74, 0x2d, 0x63, 0x6f, 0x6f, 0x6b, 0x69, 0x65, 0x00, 0x00, 0x00,
    0x0a, 0x6b, 0x65, 0x65, 0x70, 0x2d, 0x61, 0x6c, 0x69, 0x76, 0x65, 0x00,
    0x00, 0x00, 0x06, 0x6f, 0x72, 0x69, 0x67, 0x69, 0x6e, 0x31, 0x30, 0x30,
    0x31, 0x30, 0x31, 0x32, 0x30, 0x31, 0x32, 0x30, 0x32, 0x32, 0x30, 0x35,
    0x32, 0x30, 0x36, 0x33, 0x30, 0x30, 0x33, 0x30, 0x32, 0x33, 0x30, 0x33,
    0x33, 0x30, 0x34, 0x33, 0x30, 0x35, 0x33, 0x30, 0x36, 0x33, 0x30, 0x37,
    0x34, 0x30, 0x32, 0x34, 0x30, 0x35, 0x34, 0x30, 0x36, 0x34, 0x30, 0x37,
    0x34, 0x30, 0x38, 0x34, 0x30, 0x39, 0x34, 0x31, 0x30, 0x34, 0x31, 0x31,
    0x34, 0x31, 0x32, 0x34, 0x31, 0x33, 0x34, 0x31, 0x34, 0x34, 0x31, 0x35,
    0x34, 0x31, 0x36, 0x34, 0x31, 0x37, 0x35, 0x30, 0x32, 0x35, 0x30, 0x34,
    0x35, 0x30, 0x35, 0x32, 0x30, 0x33, 0x20, 0x4e, 0x6f, 0x6e, 0x2d, 0x41,
    0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x74, 0x61, 0x74, 0x69, 0x76, 0x65,
    0x20, 0x49, 0x6e, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74, 0x69, 0x6f, 0x6e,
    0x32, 0x30, 0x34, 0x20, 0x4e, 0x6f, 0x20, 0x43, 0x6f, 0x6e, 0x74, 0x65,
    0x6e, 0x74, 0x33, 0x30, 0x31, 0x20, 0x4d, 0x6f, 0x76, 0x65, 0x64, 0x20,
    0x50, 0x65, 0x72, 0x6d, 0x61, 0x6e, 0x65, 0x6e, 0x74, 0x6c, 0x79, 0x34,
    0x30, 0x30, 0x20, 0x42, 0x61, 0x64, 0x20, 0x52, 0x65, 0x71, 0x75, 0x65,
    0x73, 0x74, 0x34, 0x30, 0x31, 0x20, 0x55, 0x6e, 0x61, 0x75, 0x74, 0x68,
    0x6f, 0x72, 0x69, 0x7a, 0x65, 0x64, 0x34, 0x30, 0x33, 0x20, 0x46, 0x6f,
    0x72, 0x62, 0x69, 0x64, 0x64, 0x65, 0x6e, 0x34, 0x30, 0x34, 0x20, 0x4e,
    0x6f, 0x74, 0x20, 0x46, 0x6f, 0x75, 0x6e, 0x64, 0x35, 0x30, 0x30, 0x20,
    0x49, 0x6e, 0x74, 0x65, 0x72, 0x6e, 0x61, 0x6c, 0x20, 0x53, 0x65, 0x72,
    0x76, 0x65, 0x72, 0x20, 0x45, 0x72, 0x72, 0x6f, 0x72, 0x35, 0x30, 0x31,
    0x20, 0x4e, 0x6f, 0x74, 0x20, 0x49, 0x6d, 0x70, 0x6c, 0x65, 0x6d, 0x65,
    0x6e, 0x74, 0x65, 0x64, 0x35, 0x30, 0x33, 0x20, 0x53, 0x65, 0x72, 0x76,
    0x69, 0x63, 0x65, 0x20, 0x55, 0x6e, 0x61, 0x76, 0x61, 0x69, 0x6c, 0x61,
    0x62, 0x6c, 0x65, 0x4a, 0x61, 0x6e, 0x20, 0x46, 0x65, 0x62, 0x20, 0x4d,
    0x61, 0x72, 0x20, 0x41, 0x70, 0x72, 0x20, 0x4d, 0x61, 0x79, 0x20, 0x4a,
    0x75, 0x6e, 0x20, 0x4a, 0x75, 0x6c, 0x20, 0x41, 0x75, 0x67, 0x20, 0x53,
    0x65, 0x70, 0x74, 0x20, 0x4f, 0x63, 0x74, 0x20, 0x4e, 0x6f, 0x76, 0x20,
    0x44, 0x65, 0x63, 0x20, 0x30, 0x30, 0x3a, 0x30, 0x30, 0x3a, 0x30, 0x30,
    0x20, 0x4d, 0x6f, 0x6e, 0x2c, 0x20, 0x54, 0x75, 0x65, 0x2c, 0x20, 0x57,
    0x65, 0x64, 0x2c, 0x20, 0x54, 0x68, 0x75, 0x2c, 0x20, 0x46, 0x72, 0x69,
    0x2c, 0x20, 0x53, 0x61, 0x74, 0x2c, 0x20, 0x53, 0x75, 0x6e, 0x2c, 0x20,
    0x47, 0x4d, 0x54, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0x65, 0x64, 0x2c, 0x74,
    0x65, 0x78, 0x74, 0x2f, 0x68, 0x74, 0x6d, 0x6c, 0x2c, 0x69, 0x6d, 0x61,
    0x67, 0x65, 0x2f, 0x70, 0x6e, 0x67, 0x2c, 0x69, 0x6d, 0x61, 0x67, 0x65,
    0x2f, 0x6a, 0x70, 0x67, 0x2c, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x2f, 0x67,
    0x69, 0x66, 0x2c, 0x61, 0x70, 0x70, 0x6c, 0x69, 0x63, 0x61, 0x74, 0x69,
    0x6f, 0x6e, 0x2f, 0x78, 0x6d, 0x6c, 0x2c, 0x61, 0x70, 0x70, 0x6c, 0x69,
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x78, 0x68, 0x74, 0x6d, 0x6c,
    0x2b, 0x78, 0x6d, 0x6c, 0x2c, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x70, 0x6c,
    0x61, 0x69, 0x6e, 0x2c, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x6a, 0x61, 0x76,
    0x61, 0x73, 0x63, 0x72, 0x69, 0x70, 0x74, 0x2c, 0x70, 0x75, 0x62, 0x6c,
    0x69, 0x63, 0x70, 0x72, 0x69, 0x76, 0x61, 0x74, 0x65, 0x6d, 0x61, 0x78,
    0x2d, 0x61, 0x67, 0x65, 0x3d, 0x67, 0x7a, 0x69, 0x70, 0x2c, 0x64, 0x65,
    0x66, 0x6c, 0x61, 0x74, 0x65, 0x2c, 0x73, 0x64, 0x63, 0x68, 0x63, 0x68,
    0x61, 0x72, 0x73, 0x65, 0x74, 0x3d, 0x75, 0x74, 0x66, 0x2d, 0x38, 0x63,
    0x68, 0x61, 0x72, 0x73, 0x65, 0x74, 0x3d, 0x69, 0x73, 0x6f, 0x2d, 0x38,
    0x38, 0x35, 0x39, 0x2d, 0x31, 0x2c, 0x75, 0x74, 0x66, 0x2d, 0x2c, 0x2a,
    0x2c, 0x65, 0x6e, 0x71, 0x3d, 0x30, 0x2e,
};
// clang-format on
static_assert(sizeof(kDictionary) == 1423, "the SPDY/3 header dictionary is 1423 bytes");

constexpr size_t kFrameHeader = 8;
// Fixed fields before the header block: SYN_STREAM has stream id, associated id, priority and
// slot; SYN_REPLY and HEADERS only the stream id.
constexpr size_t kSynStreamFixed = 10;
constexpr size_t kStreamIdFixed = 4;
constexpr size_t kInflateChunk = 4096;
// After a large frame the decoder gives its memory back once it is drained.
constexpr size_t kKeepCapacity = 64 * 1024;
// How much of a header name goes into an error message.
constexpr size_t kQuoteLimit = 64;

uint32_t Get32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

void Put32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, sizeof(b));
}

// The spec's name for a frame type, for messages.
std::string TypeName(uint16_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kData: return "DATA";
    case FrameType::kSynStream: return "SYN_STREAM";
    case FrameType::kSynReply: return "SYN_REPLY";
    case FrameType::kRstStream: return "RST_STREAM";
    case FrameType::kSettings: return "SETTINGS";
    case FrameType::kPing: return "PING";
    case FrameType::kGoAway: return "GOAWAY";
    case FrameType::kHeaders: return "HEADERS";
    case FrameType::kWindowUpdate: return "WINDOW_UPDATE";
  }
  return absl::StrCat("control type ", type);
}

std::string TypeName(FrameType type) {
  return TypeName(static_cast<uint16_t>(type));
}

bool KnownControlType(uint16_t type) {
  return type != 0 && type != 5 && type <= static_cast<uint16_t>(FrameType::kWindowUpdate);
}

absl::Status FrameError(FrameType type, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("SPDY ", TypeName(type), " frame: ", problem));
}

// Names are peer bytes: escaped and cut short before they go into a message.
std::string Quote(absl::string_view s) {
  std::string q = absl::StrCat("\"", absl::CEscape(s.substr(0, kQuoteLimit)), "\"");
  if (s.size() > kQuoteLimit) q += "...";
  return q;
}

// A stream id field: 31 bits, and not 0 unless `zero_ok`.
absl::Status CheckId(FrameType type, absl::string_view field, uint32_t id, bool zero_ok) {
  if (id > kMaxStreamId) return FrameError(type, absl::StrCat(field, " ", id, " exceeds 2^31-1"));
  if (id == 0 && !zero_ok) return FrameError(type, absl::StrCat(field, " 0"));
  return absl::OkStatus();
}

// What both directions require of names (spec 2.6.10): non-empty, lowercase, each once.
absl::Status CheckNames(const Headers& headers) {
  std::vector<absl::string_view> names;
  names.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    if (name.empty()) return absl::InvalidArgumentError("SPDY header block: empty header name");
    if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return absl::InvalidArgumentError(
          absl::StrCat("SPDY header block: header name ", Quote(name), " is not lowercase"));
    }
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup != names.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY header block: duplicate header name ", Quote(*dup),
                     " (repeated values go in one header, NUL-separated)"));
  }
  return absl::OkStatus();
}

// The uncompressed name/value block: count, then length-prefixed name and value per header.
absl::StatusOr<Headers> ParseBlock(absl::string_view b) {
  if (b.size() < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY header block: ", b.size(), " bytes, too short for the header count"));
  }
  uint32_t count = Get32(b.data());
  b.remove_prefix(4);
  // Each header takes at least its two length fields: a count the rest cannot hold is refused
  // before anything is reserved for it.
  if (count > b.size() / 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY header block: ", count, " headers cannot fit in ", b.size(), " bytes"));
  }
  Headers headers;
  headers.reserve(count);
  auto take = [&b](uint32_t i, const char* what) -> absl::StatusOr<absl::string_view> {
    if (b.size() < 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("SPDY header block: header ", i, " truncated before its ", what, " length"));
    }
    uint32_t len = Get32(b.data());
    b.remove_prefix(4);
    if (len > b.size()) {
      return absl::InvalidArgumentError(absl::StrCat("SPDY header block: header ", i, " ", what,
                                                     " length ", len, " runs past the end (",
                                                     b.size(), " bytes left)"));
    }
    absl::string_view field = b.substr(0, len);
    b.remove_prefix(len);
    return field;
  };
  for (uint32_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(absl::string_view name, take(i, "name"));
    ASSIGN_OR_RETURN(absl::string_view value, take(i, "value"));
    headers.emplace_back(std::string(name), std::string(value));
  }
  if (!b.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY header block: ", b.size(), " bytes after the last header"));
  }
  RETURN_IF_ERROR(CheckNames(headers));
  return headers;
}

void PutControlHeader(std::string* out, FrameType type, uint8_t flags, size_t length) {
  Put16(out, static_cast<uint16_t>(0x8000 | kVersion));
  Put16(out, static_cast<uint16_t>(type));
  Put32(out, (uint32_t{flags} << 24) | static_cast<uint32_t>(length));
}

absl::Status AppendDataFrame(std::string* out, uint32_t stream_id, absl::string_view data,
                             uint8_t flags) {
  RETURN_IF_ERROR(CheckId(FrameType::kData, "stream id", stream_id, false));
  if (data.size() > kMaxPayload) {
    return FrameError(
        FrameType::kData,
        absl::StrCat(data.size(), " bytes of data, more than a frame holds (", kMaxPayload, ")"));
  }
  Put32(out, stream_id);
  Put32(out, (uint32_t{flags} << 24) | static_cast<uint32_t>(data.size()));
  out->append(data.data(), data.size());
  return absl::OkStatus();
}

absl::Status AppendRstFrame(std::string* out, uint32_t stream_id, uint32_t status, uint8_t flags) {
  RETURN_IF_ERROR(CheckId(FrameType::kRstStream, "stream id", stream_id, false));
  // Status 0 is undefined, and spdystream drops the connection over it.
  if (status == 0) return FrameError(FrameType::kRstStream, "status 0");
  PutControlHeader(out, FrameType::kRstStream, flags, 8);
  Put32(out, stream_id);
  Put32(out, status);
  return absl::OkStatus();
}

void AppendPingFrame(std::string* out, uint32_t ping_id, uint8_t flags) {
  PutControlHeader(out, FrameType::kPing, flags, 4);
  Put32(out, ping_id);
}

absl::Status AppendWindowUpdateFrame(std::string* out, uint32_t stream_id, uint32_t delta,
                                     uint8_t flags) {
  RETURN_IF_ERROR(CheckId(FrameType::kWindowUpdate, "stream id", stream_id, true));
  if (delta == 0 || delta > kMaxWindowDelta) {
    return FrameError(FrameType::kWindowUpdate,
                      absl::StrCat("delta window size ", delta, " outside 1..2^31-1"));
  }
  PutControlHeader(out, FrameType::kWindowUpdate, flags, 8);
  Put32(out, stream_id);
  Put32(out, delta);
  return absl::OkStatus();
}

absl::Status AppendGoAwayFrame(std::string* out, uint32_t last_good_stream_id, uint32_t status,
                               uint8_t flags) {
  RETURN_IF_ERROR(CheckId(FrameType::kGoAway, "last good stream id", last_good_stream_id, true));
  PutControlHeader(out, FrameType::kGoAway, flags, 8);
  Put32(out, last_good_stream_id);
  Put32(out, status);
  return absl::OkStatus();
}

absl::Status AppendSettingsFrame(std::string* out, const std::vector<Setting>& settings,
                                 uint8_t flags) {
  if (settings.size() > (kMaxPayload - 4) / 8) {
    return FrameError(FrameType::kSettings,
                      absl::StrCat(settings.size(), " entries, more than a frame holds"));
  }
  for (const Setting& s : settings) {
    if (s.id > 0xffffff) {
      return FrameError(FrameType::kSettings,
                        absl::StrCat("setting id ", s.id, " exceeds 24 bits"));
    }
  }
  PutControlHeader(out, FrameType::kSettings, flags, 4 + 8 * settings.size());
  Put32(out, static_cast<uint32_t>(settings.size()));
  for (const Setting& s : settings) {
    Put32(out, (uint32_t{s.flags} << 24) | s.id);
    Put32(out, s.value);
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view HeaderDictionary() {
  return absl::string_view(reinterpret_cast<const char*>(kDictionary), sizeof(kDictionary));
}

// ---- header compression ------------------------------------------------------------------

struct HeaderEncoder::State {
  z_stream z{};
  bool initialized = false;
  // Set when deflate could not be set up or failed mid-stream: the peer's inflate has lost track
  // of ours, so nothing more may be encoded.
  absl::Status error;

  ~State() {
    if (initialized) deflateEnd(&z);
  }
};

HeaderEncoder::HeaderEncoder() : state_(std::make_unique<State>()) {
  State& s = *state_;
  // zlib format (header, adler32 dictionary id) with a 32 KiB window, as the spec asks of peers.
  if (deflateInit2(&s.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    s.error = absl::ResourceExhaustedError("SPDY header compression: deflateInit2 failed");
    return;
  }
  s.initialized = true;
  if (deflateSetDictionary(&s.z, kDictionary, sizeof(kDictionary)) != Z_OK) {
    s.error = absl::InternalError("SPDY header compression: deflateSetDictionary failed");
  }
}

HeaderEncoder::~HeaderEncoder() = default;
HeaderEncoder::HeaderEncoder(HeaderEncoder&&) noexcept = default;
HeaderEncoder& HeaderEncoder::operator=(HeaderEncoder&&) noexcept = default;

absl::StatusOr<std::string> HeaderEncoder::Encode(const Headers& headers) {
  if (state_ == nullptr) return absl::FailedPreconditionError("SPDY header encoder moved from");
  State& s = *state_;
  if (!s.error.ok()) return s.error;
  RETURN_IF_ERROR(CheckNames(headers));
  // Refuse a block whose compressed form might not fit a frame before deflate sees it: once
  // compressed, a block must be sent, or the peer's inflate falls out of step. Incompressible
  // input grows by the zlib header, 5 bytes per stored block (at most 64 KiB each) and the flush.
  size_t raw_size = 4;
  for (const auto& [name, value] : headers) {
    raw_size += 8 + name.size() + value.size();
    if (raw_size + raw_size / 4096 + 64 > kMaxPayload - kSynStreamFixed) {
      return absl::InvalidArgumentError(absl::StrCat("SPDY header block: more than ",
                                                     kMaxPayload - kSynStreamFixed,
                                                     " bytes would not fit a frame"));
    }
  }
  std::string raw;
  raw.reserve(raw_size);
  Put32(&raw, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    Put32(&raw, static_cast<uint32_t>(name.size()));
    raw += name;
    Put32(&raw, static_cast<uint32_t>(value.size()));
    raw += value;
  }

  std::string out;
  s.z.next_in = reinterpret_cast<Bytef*>(raw.data());
  s.z.avail_in = static_cast<uInt>(raw.size());
  size_t chunk = raw.size() + 64;  // usually one round
  do {
    size_t old = out.size();
    out.resize(old + chunk);
    s.z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    s.z.avail_out = static_cast<uInt>(chunk);
    int rc = deflate(&s.z, Z_SYNC_FLUSH);
    out.resize(old + chunk - s.z.avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      s.error = absl::InternalError(absl::StrCat("SPDY header compression: deflate returned ", rc));
      return s.error;
    }
    chunk = 4096;
  } while (s.z.avail_out == 0);
  s.z.next_in = nullptr;
  s.z.next_out = nullptr;
  if (s.z.avail_in != 0 || out.size() > kMaxPayload - kSynStreamFixed) {
    s.error = absl::InternalError("SPDY header compression: block not fully compressed");
    return s.error;
  }
  return out;
}

struct HeaderDecoder::State {
  z_stream z{};
  size_t max_decoded = 0;
  bool initialized = false;
  bool ended = false;  // the peer finished its zlib stream: no block may follow
  absl::Status error;  // final, see Decode

  ~State() {
    if (initialized) inflateEnd(&z);
  }

  absl::StatusOr<std::string> Inflate(absl::string_view block);
};

HeaderDecoder::HeaderDecoder(size_t max_decoded) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.max_decoded = max_decoded;
  // windowBits 15 takes any zlib stream, whatever window the peer's deflate chose.
  if (inflateInit2(&s.z, 15) != Z_OK) {
    s.error = absl::ResourceExhaustedError("SPDY header decompression: inflateInit2 failed");
    return;
  }
  s.initialized = true;
}

HeaderDecoder::~HeaderDecoder() = default;
HeaderDecoder::HeaderDecoder(HeaderDecoder&&) noexcept = default;
HeaderDecoder& HeaderDecoder::operator=(HeaderDecoder&&) noexcept = default;

absl::StatusOr<std::string> HeaderDecoder::State::Inflate(absl::string_view block) {
  if (ended) {
    return absl::InvalidArgumentError(
        "SPDY header block: the peer's compressed header stream has already ended");
  }
  if (block.size() > std::numeric_limits<uInt>::max()) {
    return absl::InvalidArgumentError("SPDY header block: too large");
  }
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z.avail_in = static_cast<uInt>(block.size());
  for (;;) {
    size_t old = out.size();
    out.resize(old + kInflateChunk);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    z.avail_out = static_cast<uInt>(kInflateChunk);
    int rc = inflate(&z, Z_SYNC_FLUSH);
    out.resize(old + kInflateChunk - z.avail_out);
    if (rc == Z_NEED_DICT) {
      // The zlib header names its dictionary by adler32; inflateSetDictionary checks it.
      uLong id = z.adler;
      if (inflateSetDictionary(&z, kDictionary, sizeof(kDictionary)) != Z_OK) {
        return absl::InvalidArgumentError(
            absl::StrCat("SPDY header block: compressed with an unknown dictionary (id 0x",
                         absl::Hex(id), "), not SPDY/3's"));
      }
      continue;
    }
    if (rc == Z_STREAM_END) {
      ended = true;
      if (z.avail_in != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "SPDY header block: ", z.avail_in, " bytes after the end of the compressed stream"));
      }
      break;
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // all input used, nothing pending
    if (rc != Z_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("SPDY header block: bad compressed data: ",
                       z.msg != nullptr ? z.msg : absl::StrCat("zlib error ", rc)));
    }
    if (out.size() > max_decoded) break;
    if (z.avail_in == 0 && z.avail_out != 0) break;
  }
  z.next_in = nullptr;
  z.next_out = nullptr;
  if (out.size() > max_decoded) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SPDY header block: decompresses to more than the limit of ", max_decoded, " bytes"));
  }
  return out;
}

absl::StatusOr<Headers> HeaderDecoder::Decode(absl::string_view block) {
  if (state_ == nullptr) return absl::FailedPreconditionError("SPDY header decoder moved from");
  State& s = *state_;
  if (!s.error.ok()) return s.error;
  absl::StatusOr<Headers> headers = [&]() -> absl::StatusOr<Headers> {
    ASSIGN_OR_RETURN(std::string raw, s.Inflate(block));
    return ParseBlock(raw);
  }();
  if (!headers.ok()) s.error = headers.status();
  return headers;
}

// ---- frames ------------------------------------------------------------------------------

absl::StatusOr<std::string> Encode(const Frame& f, HeaderEncoder& enc) {
  std::string out;
  switch (f.type) {
    case FrameType::kData:
      RETURN_IF_ERROR(AppendDataFrame(&out, f.stream_id, f.data, f.flags));
      return out;
    case FrameType::kSynStream: {
      // Everything is checked before the headers are compressed: see HeaderEncoder::Encode.
      RETURN_IF_ERROR(CheckId(f.type, "stream id", f.stream_id, false));
      RETURN_IF_ERROR(CheckId(f.type, "associated stream id", f.associated_id, true));
      if (f.priority > 7) {
        return FrameError(f.type, absl::StrCat("priority ", f.priority, " outside 0..7"));
      }
      ASSIGN_OR_RETURN(std::string block, enc.Encode(f.headers));
      PutControlHeader(&out, f.type, f.flags, kSynStreamFixed + block.size());
      Put32(&out, f.stream_id);
      Put32(&out, f.associated_id);
      out.push_back(static_cast<char>(f.priority << 5));
      out.push_back('\0');  // credential slot: unused in 3.1
      out += block;
      return out;
    }
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      RETURN_IF_ERROR(CheckId(f.type, "stream id", f.stream_id, false));
      ASSIGN_OR_RETURN(std::string block, enc.Encode(f.headers));
      PutControlHeader(&out, f.type, f.flags, kStreamIdFixed + block.size());
      Put32(&out, f.stream_id);
      out += block;
      return out;
    }
    case FrameType::kRstStream:
      RETURN_IF_ERROR(AppendRstFrame(&out, f.stream_id, f.status, f.flags));
      return out;
    case FrameType::kSettings:
      RETURN_IF_ERROR(AppendSettingsFrame(&out, f.settings, f.flags));
      return out;
    case FrameType::kPing: AppendPingFrame(&out, f.ping_id, f.flags); return out;
    case FrameType::kGoAway:
      RETURN_IF_ERROR(AppendGoAwayFrame(&out, f.last_good_stream_id, f.status, f.flags));
      return out;
    case FrameType::kWindowUpdate:
      RETURN_IF_ERROR(AppendWindowUpdateFrame(&out, f.stream_id, f.delta, f.flags));
      return out;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("SPDY: cannot encode frame type ", static_cast<uint16_t>(f.type)));
}

absl::Status AppendData(std::string* out, uint32_t stream_id, absl::string_view data, bool fin) {
  return AppendDataFrame(out, stream_id, data, fin ? kFlagFin : 0);
}

absl::Status AppendRstStream(std::string* out, uint32_t stream_id, uint32_t status) {
  return AppendRstFrame(out, stream_id, status, 0);
}

absl::Status AppendPing(std::string* out, uint32_t ping_id) {
  AppendPingFrame(out, ping_id, 0);
  return absl::OkStatus();
}

absl::Status AppendWindowUpdate(std::string* out, uint32_t stream_id, uint32_t delta) {
  return AppendWindowUpdateFrame(out, stream_id, delta, 0);
}

absl::Status AppendGoAway(std::string* out, uint32_t last_good_stream_id, uint32_t status) {
  return AppendGoAwayFrame(out, last_good_stream_id, status, 0);
}

absl::Status AppendSettings(std::string* out, const std::vector<Setting>& settings, uint8_t flags) {
  return AppendSettingsFrame(out, settings, flags);
}

// ---- decoder -----------------------------------------------------------------------------

namespace {

// Checks what a frame's 8-byte header alone settles: the version, the size limit and the
// lengths of fixed-size frames, so a bad frame fails before its payload is waited for.
absl::Status CheckFrameHeader(uint32_t word0, uint32_t length, size_t max_payload) {
  bool control = (word0 & 0x80000000u) != 0;
  uint16_t type = control ? static_cast<uint16_t>(word0 & 0xffff) : 0;
  if (control) {
    uint16_t version = static_cast<uint16_t>((word0 >> 16) & 0x7fff);
    if (version != kVersion) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported SPDY version ", version,
                                                     " in a control frame (want ", kVersion, ")"));
    }
  }
  if (length > max_payload) {
    return absl::InvalidArgumentError(absl::StrCat("SPDY ", TypeName(type), " frame of ", length,
                                                   " bytes exceeds the limit of ", max_payload));
  }
  if (!control) return absl::OkStatus();
  auto want = [&](uint32_t n) -> absl::Status {
    if (length == n) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY ", TypeName(type), " frame: length ", length, ", want ", n));
  };
  auto at_least = [&](uint32_t n) -> absl::Status {
    if (length >= n) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY ", TypeName(type), " frame: length ", length, ", want at least ", n));
  };
  switch (static_cast<FrameType>(type)) {
    case FrameType::kRstStream:
    case FrameType::kGoAway:
    case FrameType::kWindowUpdate: return want(8);
    case FrameType::kPing: return want(4);
    case FrameType::kSettings:
      if (length < 4 || (length - 4) % 8 != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("SPDY SETTINGS frame: length ", length, " is not 4 + 8 bytes per entry"));
      }
      return absl::OkStatus();
    case FrameType::kSynStream: return at_least(kSynStreamFixed);
    case FrameType::kSynReply:
    case FrameType::kHeaders: return at_least(kStreamIdFixed);
    default: return absl::OkStatus();  // unknown: skipped whatever its length
  }
}

}  // namespace

Decoder::Decoder(size_t max_frame_payload, size_t max_decoded_headers)
    : max_frame_payload_(max_frame_payload), headers_(max_decoded_headers) {}

void Decoder::Feed(absl::string_view bytes) {
  if (!error_.ok() || bytes.empty()) return;
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

absl::Status Decoder::Fail(absl::Status status) {
  error_ = std::move(status);
  std::string().swap(buffer_);
  consumed_ = 0;
  return error_;
}

void Decoder::Consume(size_t n) {
  consumed_ += n;
  if (consumed_ == buffer_.size()) {
    consumed_ = 0;
    if (buffer_.capacity() > kKeepCapacity) {
      std::string().swap(buffer_);
    } else {
      buffer_.clear();
    }
  }
}

absl::StatusOr<std::optional<Frame>> Decoder::Next() {
  for (;;) {
    if (!error_.ok()) return error_;
    absl::string_view rest(buffer_);
    rest.remove_prefix(consumed_);
    if (rest.size() < kFrameHeader) return std::nullopt;
    uint32_t word0 = Get32(rest.data());
    uint32_t word1 = Get32(rest.data() + 4);
    auto flags = static_cast<uint8_t>(word1 >> 24);
    uint32_t length = word1 & 0xffffff;
    absl::Status header = CheckFrameHeader(word0, length, max_frame_payload_);
    if (!header.ok()) return Fail(std::move(header));
    if (rest.size() - kFrameHeader < length) return std::nullopt;
    absl::string_view p = rest.substr(kFrameHeader, length);

    Frame f;
    f.flags = flags;
    if ((word0 & 0x80000000u) == 0) {
      f.type = FrameType::kData;
      f.stream_id = word0 & kMaxStreamId;
      if (f.stream_id == 0) return Fail(FrameError(f.type, "stream id 0"));
      f.data.assign(p.data(), p.size());
      Consume(kFrameHeader + length);
      return std::optional<Frame>(std::move(f));
    }
    auto type = static_cast<uint16_t>(word0 & 0xffff);
    if (!KnownControlType(type)) {
      // Spec 2.2.1: a receiver ignores control frames of types it does not know.
      Consume(kFrameHeader + length);
      continue;
    }
    f.type = static_cast<FrameType>(type);
    switch (f.type) {
      case FrameType::kSynStream:
      case FrameType::kSynReply:
      case FrameType::kHeaders: {
        f.stream_id = Get32(p.data()) & kMaxStreamId;
        if (f.stream_id == 0) return Fail(FrameError(f.type, "stream id 0"));
        size_t fixed = kStreamIdFixed;
        if (f.type == FrameType::kSynStream) {
          f.associated_id = Get32(p.data() + 4) & kMaxStreamId;
          f.priority = static_cast<uint8_t>(static_cast<unsigned char>(p[8]) >> 5);
          fixed = kSynStreamFixed;  // p[9], the 3.0 credential slot, is ignored
        }
        absl::StatusOr<Headers> headers = headers_.Decode(p.substr(fixed));
        if (!headers.ok()) {
          return Fail(absl::InvalidArgumentError(absl::StrCat("SPDY ", TypeName(f.type),
                                                              " frame for stream ", f.stream_id,
                                                              ": ", headers.status().message())));
        }
        f.headers = *std::move(headers);
        break;
      }
      case FrameType::kRstStream:
        f.stream_id = Get32(p.data()) & kMaxStreamId;
        f.status = Get32(p.data() + 4);
        if (f.stream_id == 0) return Fail(FrameError(f.type, "stream id 0"));
        if (f.status == 0) return Fail(FrameError(f.type, "status 0"));
        break;
      case FrameType::kSettings: {
        uint32_t count = Get32(p.data());
        if (uint64_t{count} * 8 + 4 != length) {
          return Fail(
              FrameError(f.type, absl::StrCat(count, " entries do not match the length ", length)));
        }
        f.settings.reserve(count);
        for (uint32_t i = 0; i < count; ++i) {
          uint32_t flag_id = Get32(p.data() + 4 + 8 * i);
          f.settings.push_back(Setting{static_cast<uint8_t>(flag_id >> 24), flag_id & 0xffffff,
                                       Get32(p.data() + 8 + 8 * i)});
        }
        break;
      }
      case FrameType::kPing: f.ping_id = Get32(p.data()); break;
      case FrameType::kGoAway:
        f.last_good_stream_id = Get32(p.data()) & kMaxStreamId;
        f.status = Get32(p.data() + 4);
        break;
      case FrameType::kWindowUpdate:
        f.stream_id = Get32(p.data()) & kMaxStreamId;
        f.delta = Get32(p.data() + 4);
        if (f.delta == 0 || f.delta > kMaxWindowDelta) {
          return Fail(FrameError(
              f.type, absl::StrCat("delta window size ", f.delta, " outside 1..2^31-1")));
        }
        break;
      case FrameType::kData: break;  // not a control type; KnownControlType excludes it
    }
    Consume(kFrameHeader + length);
    return std::optional<Frame>(std::move(f));
  }
}

}  // namespace berth::stream::spdy

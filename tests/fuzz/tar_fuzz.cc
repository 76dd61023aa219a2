// Fuzz target: layer tars come from registries (untrusted). The input is an uncompressed tar,
// extracted by LayerUnpacker into a fresh temporary directory that is then removed. Whatever the
// input, extraction must not crash, hang or write outside that directory (the sanitizers and
// the check below see to it).
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "images/unpack.h"

namespace {

// Removes a tree without following symlinks (the fuzzer makes plenty).
void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One scratch dir per process, removed at exit (it is empty between inputs).
  static char base_path[] = "/tmp/berth-tar-fuzz.XXXXXX";
  static const bool made = [] {
    if (::mkdtemp(base_path) == nullptr) __builtin_trap();
    std::atexit([] { (void)::rmdir(base_path); });
    return true;
  }();
  (void)made;
  const std::string base = base_path;
  // base/layer is the extraction dir; base/outside must stay empty.
  const std::string layer = base + "/layer", outside = base + "/outside";
  RemoveTree(layer);
  if (::mkdir(layer.c_str(), 0755) != 0) __builtin_trap();
  if (::mkdir(outside.c_str(), 0755) != 0 && errno != EEXIST) __builtin_trap();
  berth::images::UnpackOptions options;
  options.max_uncompressed_bytes = 8 << 20;
  options.max_entries = 10000;
  auto unpacker =
      berth::images::LayerUnpacker::Create(layer, berth::images::Compression::kNone, options);
  if (!unpacker.ok()) __builtin_trap();
  // Two writes, to cross a chunk boundary at an arbitrary place.
  size_t half = size / 3;
  absl::Status status = (*unpacker)->Write(data, half);
  if (status.ok()) status = (*unpacker)->Write(data + half, size - half);
  if (status.ok()) (void)(*unpacker)->Finish();
  unpacker->reset();
  if (::rmdir(outside.c_str()) != 0) __builtin_trap();  // not empty: something escaped
  RemoveTree(layer);
  return 0;
}

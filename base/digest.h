// Content digests as the OCI image spec defines them ("sha256:<64 lowercase hex>"), and
// streaming hashers that produce them. Digests name blobs, configs and layers everywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

class Digest {
 public:
  enum class Algorithm { kSha256, kSha512 };

  // Parses "sha256:<64 hex>" or "sha512:<128 hex>" (lowercase hex only, as the spec
  // requires). Other well-formed algorithms are Unimplemented; malformed input is
  // InvalidArgument naming the input.
  static absl::StatusOr<Digest> Parse(absl::string_view text);

  // The digest of `data`.
  static Digest Of(absl::string_view data, Algorithm algorithm = Algorithm::kSha256);

  Algorithm algorithm() const { return algorithm_; }
  absl::string_view algorithm_name() const;
  const std::string& hex() const { return hex_; }
  std::string ToString() const;  // "sha256:..."

  bool operator==(const Digest& o) const { return algorithm_ == o.algorithm_ && hex_ == o.hex_; }
  bool operator!=(const Digest& o) const { return !(*this == o); }
  bool operator<(const Digest& o) const {
    return algorithm_ != o.algorithm_ ? algorithm_ < o.algorithm_ : hex_ < o.hex_;
  }

 private:
  Digest(Algorithm a, std::string hex) : algorithm_(a), hex_(std::move(hex)) {}
  friend class Hasher;
  Algorithm algorithm_ = Algorithm::kSha256;
  std::string hex_;
};

// Incremental hashing of a stream (downloads are hashed as they arrive).
class Hasher {
 public:
  explicit Hasher(Digest::Algorithm algorithm = Digest::Algorithm::kSha256);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  uint64_t bytes() const { return bytes_; }
  // The digest of everything so far; the hasher can continue to be updated afterwards.
  Digest Finish() const;

 private:
  struct Impl;
  Digest::Algorithm algorithm_;
  std::unique_ptr<Impl> impl_;
  uint64_t bytes_ = 0;
};

}  // namespace berth

#include "base/digest.h"

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace berth {

namespace {

// The OCI grammar: algorithm ":" encoded, algorithm = component (separator component)*,
// component = [a-z0-9]+, separator = [+._-]; encoded = [a-zA-Z0-9=_-]+.
bool WellFormed(absl::string_view alg, absl::string_view enc) {
  if (alg.empty() || enc.empty()) return false;
  bool prev_sep = true;
  for (char c : alg) {
    bool sep = c == '+' || c == '.' || c == '_' || c == '-';
    if (sep) {
      if (prev_sep) return false;
    } else if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
                 absl::ascii_isdigit(static_cast<unsigned char>(c)))) {
      return false;
    }
    prev_sep = sep;
  }
  if (prev_sep) return false;
  for (char c : enc) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '=' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

bool LowerHex(absl::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    if (!(absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

const EVP_MD* Md(Digest::Algorithm a) {
  return a == Digest::Algorithm::kSha512 ? EVP_sha512() : EVP_sha256();
}

}  // namespace

absl::StatusOr<Digest> Digest::Parse(absl::string_view text) {
  size_t colon = text.find(':');
  absl::string_view alg = colon == absl::string_view::npos ? "" : text.substr(0, colon);
  absl::string_view enc = colon == absl::string_view::npos ? "" : text.substr(colon + 1);
  std::string shown(text.substr(0, 160));
  if (!WellFormed(alg, enc)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid digest \"", shown, "\""));
  }
  if (alg == "sha256") {
    if (!LowerHex(enc, 64)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid digest \"", shown, "\": sha256 needs 64 lowercase hex digits"));
    }
    return Digest(Algorithm::kSha256, std::string(enc));
  }
  if (alg == "sha512") {
    if (!LowerHex(enc, 128)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid digest \"", shown, "\": sha512 needs 128 lowercase hex digits"));
    }
    return Digest(Algorithm::kSha512, std::string(enc));
  }
  return absl::UnimplementedError(absl::StrCat("unsupported digest algorithm \"", alg,
                                               "\" (berth verifies sha256 and sha512)"));
}

Digest Digest::Of(absl::string_view data, Algorithm algorithm) {
  Hasher h(algorithm);
  h.Update(data);
  return h.Finish();
}

absl::string_view Digest::algorithm_name() const {
  return algorithm_ == Algorithm::kSha512 ? "sha512" : "sha256";
}

std::string Digest::ToString() const {
  return absl::StrCat(algorithm_name(), ":", hex_);
}

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Hasher::Hasher(Digest::Algorithm algorithm) : algorithm_(algorithm), impl_(new Impl) {
  impl_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->ctx, Md(algorithm), nullptr);
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(const void* data, size_t size) {
  EVP_DigestUpdate(impl_->ctx, data, size);
  bytes_ += size;
}

Digest Hasher::Finish() const {
  // Finish a copy, so the running state stays usable.
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  EVP_MD_CTX_copy_ex(copy, impl_->ctx);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(copy, md, &len);
  EVP_MD_CTX_free(copy);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return Digest(algorithm_, std::move(hex));
}

}  // namespace berth

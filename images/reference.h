// Image references ("busybox", "registry.example.com:5000/org/app:1.2@sha256:..."), parsed and
// normalised as containerd and Docker do it (github.com/distribution/reference,
// ParseDockerRef): a reference without a registry is on docker.io, a single-component docker.io
// path is under library/, index.docker.io is docker.io, and a reference with neither tag nor
// digest gets the tag "latest".
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/digest.h"

namespace berth::images {

struct Reference {
  // "docker.io", "registry.example.com:5000", "127.0.0.1:5000", "localhost", "[::1]:5000".
  std::string domain;
  // "library/busybox", "org/team/app".
  std::string path;
  // Empty when only a digest was given. When both are given the tag is kept for display and
  // the digest decides what is fetched.
  std::string tag;
  std::optional<Digest> digest;

  std::string Name() const;    // domain "/" path
  std::string String() const;  // Name() [":" tag] ["@" digest]

  bool operator==(const Reference& o) const {
    return domain == o.domain && path == o.path && tag == o.tag && digest == o.digest;
  }
};

// Parses and normalises `text`:
//   busybox                      -> docker.io/library/busybox:latest
//   user/app                     -> docker.io/user/app:latest
//   index.docker.io/x            -> docker.io/library/x:latest
//   localhost:5000/a:1           -> localhost:5000/a:1
//   127.0.0.1:5000/a@sha256:...  -> 127.0.0.1:5000/a@sha256:... (no tag)
//   a:tag@sha256:...             -> docker.io/library/a:tag@sha256:...
// The first path component is the registry when it contains '.' or ':', is "localhost" or is
// a bracketed IPv6 address (with an optional port, 1 to 65535). Path components are
// [a-z0-9]+ joined by '.', '_', '__' or runs of '-', separated by '/'; a tag is
// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; the digest is checked by Digest::Parse; the name
// (domain/path) is at most 255 characters. Everything else is InvalidArgument naming what was
// wrong and showing the input: empty text, whitespace or control characters, a scheme
// ("https://"), an empty component ("a//b", "a/"), uppercase in the path ("repository name
// must be lowercase"). A bare image ID (64 hex digits, with or without "sha256:") is refused
// too, with a message saying it looks like an image ID: callers that accept IDs look them up
// before parsing a reference (Docker would take "sha256:<hex>" as the repository "sha256").
absl::StatusOr<Reference> ParseReference(absl::string_view text);

}  // namespace berth::images

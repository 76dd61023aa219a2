// The Kubernetes CRI container log format, as containerd writes it.
//
// Each record is "<timestamp> <stream> <tag> <content>\n": the timestamp is RFC3339 in UTC with
// exactly 9 fractional digits, the stream "stdout" or "stderr", the tag "F" for a full line (the
// line's '\n' is not part of the content) or "P" for a partial piece of a longer line.
//
// Line length: a line of up to max_line bytes (without its '\n') is one F record, so a line of
// exactly max_line bytes followed by '\n' is one F record, never a P plus an empty F. A longer
// line is cut into P records of max_line bytes each, the rest (1..max_line bytes) being the F
// record. This does not depend on how the bytes were split between Write calls.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace berth::runtime {

enum class LogStream { kStdout, kStderr };

class CriLogWriter {
 public:
  static constexpr size_t kDefaultMaxLine = 16 * 1024;

  // Opens `path` with O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640. An empty path gives a
  // writer that discards everything (no log requested). max_line 0 is taken as 1.
  static absl::StatusOr<std::unique_ptr<CriLogWriter>> Open(const std::string& path,
                                                            size_t max_line = kDefaultMaxLine);

  CriLogWriter(const CriLogWriter&) = delete;
  CriLogWriter& operator=(const CriLogWriter&) = delete;

  // Feeds bytes read from the container's stream. `now` stamps records completed by this call.
  // All of `data` is consumed even when a record cannot be written; the first error is returned.
  absl::Status Write(LogStream stream, absl::string_view data, absl::Time now);

  // The stream reached EOF: writes its buffered rest as an F record (nothing when empty).
  absl::Status EndStream(LogStream stream, absl::Time now);

  // Reopens the path (after the kubelet rotated the file: ReopenContainerLog). Buffered partial
  // data is kept. On failure the old file stays in use.
  absl::Status Reopen();

  const std::string& path() const { return path_; }

 private:
  CriLogWriter(std::string path, UniqueFd fd, size_t max_line);

  // Formats head+tail as one record and writes it with a single write(2) (plus continuations
  // after a short write). Keeps the first error in *first.
  void Emit(LogStream stream, bool partial, absl::string_view head, absl::string_view tail,
            absl::Time now, absl::Status* first);

  std::string path_;
  UniqueFd fd_;
  size_t max_line_;
  std::string pending_[2];  // per stream, at most max_line_ bytes
  std::string record_;      // scratch for formatting, reused
};

// Formats one record (exposed for tests): "<ts> <stdout|stderr> <F|P> <content>\n".
std::string FormatCriLogRecord(absl::Time ts, LogStream stream, bool partial,
                               absl::string_view content);

// RFC3339 with 9 fractional digits, UTC, 'Z': "2025-11-26T09:35:00.123456789Z".
std::string Rfc3339Nano(absl::Time t);

}  // namespace berth::runtime

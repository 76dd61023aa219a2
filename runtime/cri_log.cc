#include "runtime/cri_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth::runtime {
namespace {

constexpr int kOpenFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
constexpr mode_t kLogMode = 0640;

absl::string_view StreamName(LogStream stream) {
  return stream == LogStream::kStdout ? "stdout" : "stderr";
}

size_t Index(LogStream stream) {
  return stream == LogStream::kStdout ? 0 : 1;
}

void AppendRecord(std::string* out, absl::Time ts, LogStream stream, bool partial,
                  absl::string_view head, absl::string_view tail) {
  out->append(Rfc3339Nano(ts));
  out->push_back(' ');
  absl::string_view name = StreamName(stream);
  out->append(name.data(), name.size());
  out->append(partial ? " P " : " F ");
  out->append(head.data(), head.size());
  out->append(tail.data(), tail.size());
  out->push_back('\n');
}

absl::StatusOr<UniqueFd> OpenLog(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), kOpenFlags, kLogMode));
  if (!fd) return LastErrnoError(absl::StrCat("open ", path));
  return fd;
}

}  // namespace

std::string Rfc3339Nano(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", t, absl::UTCTimeZone());
}

std::string FormatCriLogRecord(absl::Time ts, LogStream stream, bool partial,
                               absl::string_view content) {
  std::string out;
  AppendRecord(&out, ts, stream, partial, content, absl::string_view());
  return out;
}

CriLogWriter::CriLogWriter(std::string path, UniqueFd fd, size_t max_line)
    : path_(std::move(path)), fd_(std::move(fd)), max_line_(max_line == 0 ? 1 : max_line) {
  // The longest record: timestamp (30) + " stdout P " + max_line + '\n'. Reserved once so that
  // formatting never reallocates (pages are touched only when a long line is written).
  if (fd_) record_.reserve(max_line_ + 64);
}

absl::StatusOr<std::unique_ptr<CriLogWriter>> CriLogWriter::Open(const std::string& path,
                                                                 size_t max_line) {
  UniqueFd fd;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(fd, OpenLog(path));
  }
  return std::unique_ptr<CriLogWriter>(new CriLogWriter(path, std::move(fd), max_line));
}

void CriLogWriter::Emit(LogStream stream, bool partial, absl::string_view head,
                        absl::string_view tail, absl::Time now, absl::Status* first) {
  record_.clear();
  AppendRecord(&record_, now, stream, partial, head, tail);
  const char* p = record_.data();
  size_t left = record_.size();
  while (left > 0) {
    ssize_t n = ::write(fd_.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (first->ok()) *first = LastErrnoError(absl::StrCat("write ", path_));
      break;
    }
    if (n == 0) {  // not expected for a regular file; avoid spinning
      if (first->ok()) *first = ErrnoError(EIO, absl::StrCat("write ", path_));
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

absl::Status CriLogWriter::Write(LogStream stream, absl::string_view data, absl::Time now) {
  if (!fd_) return absl::OkStatus();
  absl::Status first;
  std::string& pending = pending_[Index(stream)];
  while (!data.empty()) {
    size_t nl = data.find('\n');
    absl::string_view chunk = nl == absl::string_view::npos ? data : data.substr(0, nl);
    // Cut P pieces while the line so far is longer than max_line. A line of exactly max_line
    // bytes waits: the next byte decides between F (a '\n') and P (anything else).
    while (pending.size() + chunk.size() > max_line_) {
      size_t take = max_line_ - pending.size();
      Emit(stream, /*partial=*/true, pending, chunk.substr(0, take), now, &first);
      pending.clear();
      chunk.remove_prefix(take);
    }
    if (nl == absl::string_view::npos) {
      pending.append(chunk.data(), chunk.size());
      break;
    }
    Emit(stream, /*partial=*/false, pending, chunk, now, &first);
    pending.clear();
    data.remove_prefix(nl + 1);
  }
  return first;
}

absl::Status CriLogWriter::EndStream(LogStream stream, absl::Time now) {
  std::string& pending = pending_[Index(stream)];
  if (!fd_ || pending.empty()) return absl::OkStatus();
  absl::Status first;
  Emit(stream, /*partial=*/false, pending, absl::string_view(), now, &first);
  std::string().swap(pending);
  return first;
}

absl::Status CriLogWriter::Reopen() {
  if (path_.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(UniqueFd fd, OpenLog(path_));
  fd_ = std::move(fd);
  return absl::OkStatus();
}

}  // namespace berth::runtime

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace berth {

namespace {

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case 0: return absl::StatusCode::kUnknown;
    case ENOENT:
    case ESRCH:
    case ENXIO: return absl::StatusCode::kNotFound;
    case EEXIST: return absl::StatusCode::kAlreadyExists;
    case EPERM:
    case EACCES:
    case EROFS: return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
    case E2BIG:
    case EBADF: return absl::StatusCode::kInvalidArgument;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EDQUOT: return absl::StatusCode::kResourceExhausted;
    case EAGAIN:
    case EBUSY:
    case EINTR:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE: return absl::StatusCode::kUnavailable;
    case ETIMEDOUT: return absl::StatusCode::kDeadlineExceeded;
    case ENOSYS:
    case EOPNOTSUPP: return absl::StatusCode::kUnimplemented;
    case EXDEV:
    case ENOTEMPTY: return absl::StatusCode::kFailedPrecondition;
    default: return absl::StatusCode::kInternal;
  }
}

}  // namespace

std::string ErrnoString(int err) {
  char buf[256];
  // GNU strerror_r: returns a pointer to the message, which may or may not be `buf`.
  return std::string(strerror_r(err, buf, sizeof buf));
}

absl::Status ErrnoError(int err, absl::string_view what) {
  return absl::Status(CodeForErrno(err), absl::StrCat(what, ": ", ErrnoString(err)));
}

absl::Status LastErrnoError(absl::string_view what) {
  return ErrnoError(errno, what);
}

absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace berth

// Error helpers shared by every folder. Errors are values: absl::Status / absl::StatusOr<T>.
#pragma once

#include <string>
#include <string_view>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth {

// Builds a status from an errno value: the code follows the errno (ENOENT -> NotFound,
// EACCES/EPERM -> PermissionDenied, EEXIST -> AlreadyExists, ...) and the message carries
// what was attempted and strerror, e.g. "open /run/berth/x: No such file or directory".
absl::Status ErrnoError(int err, absl::string_view what);

// The same, for the current errno.
absl::Status LastErrnoError(absl::string_view what);

// strerror, thread-safe: "No such file or directory".
std::string ErrnoString(int err);

// Prefixes a status's message with context, keeping its code: "loading config: <msg>".
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace berth

#define BERTH_STATUS_CONCAT_INNER_(a, b) a##b
#define BERTH_STATUS_CONCAT_(a, b) BERTH_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status berth_status_ = (expr);         \
    if (!berth_status_.ok()) return berth_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());` declares x from an OK StatusOr, else returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  BERTH_ASSIGN_OR_RETURN_IMPL_(BERTH_STATUS_CONCAT_(berth_statusor_, __LINE__), lhs, expr)
#define BERTH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();     \
  lhs = std::move(tmp).value()

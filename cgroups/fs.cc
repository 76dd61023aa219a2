#include "cgroups/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cgroups/resources.h"

namespace berth::cgroups {

absl::Status WriteControl(const std::string& dir, absl::string_view file, absl::string_view value) {
  std::string path = absl::StrCat(dir, "/", file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return LastErrnoError(absl::StrCat("open ", path));
  // One write(2): the kernel parses the value as a whole.
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n != static_cast<ssize_t>(value.size())) {
    return LastErrnoError(absl::StrCat("write \"", value, "\" to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadControl(const std::string& dir, absl::string_view file) {
  return ReadFile(absl::StrCat(dir, "/", file), 4 << 20);
}

absl::StatusOr<uint64_t> ReadUint(const std::string& dir, absl::string_view file) {
  ASSIGN_OR_RETURN(std::string text, ReadControl(dir, file));
  absl::string_view v = absl::StripAsciiWhitespace(text);
  if (v == "max") return UINT64_MAX;
  uint64_t out = 0;
  if (!absl::SimpleAtoi(v, &out)) {
    int64_t neg = 0;  // v1 reports "-1"-like values for unlimited in a few files
    if (absl::SimpleAtoi(v, &neg) && neg < 0) return UINT64_MAX;
    return absl::DataLossError(absl::StrCat(dir, "/", file, ": \"", v, "\" is not a number"));
  }
  return out;
}

absl::StatusOr<std::map<std::string, uint64_t>> ReadKeyValues(const std::string& dir,
                                                              absl::string_view file) {
  ASSIGN_OR_RETURN(std::string text, ReadControl(dir, file));
  std::map<std::string, uint64_t> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t v = 0;
    if (kv.size() == 2 && absl::SimpleAtoi(kv[1], &v)) out[std::string(kv[0])] = v;
  }
  return out;
}

absl::Status WriteCpuset(const std::string& dir, const std::string& cpus, const std::string& mems) {
  if (!cpus.empty()) {
    RETURN_IF_ERROR(ValidateCpuList(cpus, "cpuset.cpus"));
    RETURN_IF_ERROR(WriteControl(dir, "cpuset.cpus", cpus));
  }
  if (!mems.empty()) {
    RETURN_IF_ERROR(ValidateCpuList(mems, "cpuset.mems"));
    RETURN_IF_ERROR(WriteControl(dir, "cpuset.mems", mems));
  }
  return absl::OkStatus();
}

absl::Status RemoveCgroupDir(const std::string& dir, absl::Time deadline) {
  absl::Duration backoff = absl::Microseconds(100);
  while (::rmdir(dir.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    if (errno != EBUSY || absl::Now() >= deadline) {
      return LastErrnoError(absl::StrCat("remove cgroup ", dir));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(50));
  }
  return absl::OkStatus();
}

bool ControlExists(const std::string& dir, absl::string_view file) {
  return ::access(absl::StrCat(dir, "/", file).c_str(), F_OK) == 0;
}

}  // namespace berth::cgroups

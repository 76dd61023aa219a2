#include "cgroups/resources.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace berth::cgroups {

uint64_t SharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  return 1 + ((shares - 2) * 9999) / 262142;
}

absl::StatusOr<std::optional<int64_t>> SwapForV2(std::optional<int64_t> swap,
                                                 std::optional<int64_t> limit) {
  // As runc: unlimited memory and no swap setting means unlimited swap too.
  if (limit && *limit == -1 && (!swap || *swap == 0)) return std::optional<int64_t>(-1);
  if (!swap || *swap == 0) return std::optional<int64_t>();
  if (*swap == -1) return std::optional<int64_t>(-1);
  if (!limit || *limit <= 0) {
    return absl::InvalidArgumentError(
        "memory.swap is set without a memory limit: on cgroup v2 swap needs a memory limit");
  }
  if (*swap < *limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory.swap (", *swap, ", memory+swap) is below memory.limit (", *limit, ")"));
  }
  return std::optional<int64_t>(*swap - *limit);
}

std::string LimitValue(int64_t v) {
  return v < 0 ? "max" : absl::StrCat(v);
}

std::string CpuMax(std::optional<int64_t> quota, std::optional<uint64_t> period) {
  std::string q = (quota && *quota > 0) ? absl::StrCat(*quota) : "max";
  return absl::StrCat(q, " ", period && *period > 0 ? *period : 100000);
}

absl::Status ValidateUnifiedKey(absl::string_view key) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("unified key \"", key, "\": ", why));
  };
  if (key.empty() || key.size() > 128) return bad("empty or too long");
  if (absl::StrContains(key, "/") || absl::StrContains(key, ".."))
    return bad("must be a file name");
  size_t dot = key.find('.');
  if (dot == absl::string_view::npos || dot == 0 || dot + 1 == key.size()) {
    return bad("must be <controller>.<file>");
  }
  for (char c : key) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return bad("has characters outside [A-Za-z0-9._-]");
    }
  }
  if (key == "cgroup.procs" || key == "cgroup.threads" || key == "cgroup.subtree_control" ||
      key == "cgroup.kill" || key == "cgroup.freeze" || key == "cgroup.type") {
    return bad("is managed by the runtime");
  }
  return absl::OkStatus();
}

absl::Status ValidateCpuList(absl::string_view list, absl::string_view what) {
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    std::vector<absl::string_view> range = absl::StrSplit(part, '-');
    uint32_t lo = 0, hi = 0;
    bool ok = (range.size() == 1 && absl::SimpleAtoi(range[0], &lo)) ||
              (range.size() == 2 && absl::SimpleAtoi(range[0], &lo) &&
               absl::SimpleAtoi(range[1], &hi) && lo <= hi);
    for (char c : part) ok = ok && (absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-');
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " \"", list, "\" is not a list like 0-3,5"));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::cgroups

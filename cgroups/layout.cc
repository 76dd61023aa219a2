#include "cgroups/layout.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace berth::cgroups {

absl::StatusOr<std::string> PodCgroupParent(QosClass qos, absl::string_view pod_uid) {
  if (pod_uid.empty() || pod_uid.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod UID \"", pod_uid, "\" is empty or too long"));
  }
  for (char c : pod_uid) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("pod UID \"", pod_uid, "\" may only hold letters, digits and '-'"));
    }
  }
  switch (qos) {
    case QosClass::kGuaranteed: return absl::StrCat("kubepods/pod", pod_uid);
    case QosClass::kBurstable: return absl::StrCat("kubepods/burstable/pod", pod_uid);
    case QosClass::kBestEffort: return absl::StrCat("kubepods/besteffort/pod", pod_uid);
  }
  return absl::InvalidArgumentError("unknown QoS class");
}

}  // namespace berth::cgroups

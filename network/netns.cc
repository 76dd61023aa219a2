#include "network/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::network {

namespace {

int CloneFlag(NsType type) {
  switch (type) {
    case NsType::kNet: return CLONE_NEWNET;
    case NsType::kIpc: return CLONE_NEWIPC;
    case NsType::kUts: return CLONE_NEWUTS;
  }
  return 0;
}

// Writes a sysctl through /proc/sys, which resolves net.* (and IPC sysctls) in the namespaces
// of the calling thread.
absl::Status WriteSysctl(const std::string& name, const std::string& value) {
  std::string path = absl::StrCat("/proc/sys/", absl::StrReplaceAll(name, {{".", "/"}}));
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return LastErrnoError(absl::StrCat("sysctl ", name, ": open ", path));
  ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n != static_cast<ssize_t>(value.size())) {
    return LastErrnoError(absl::StrCat("sysctl ", name, "=", value));
  }
  return absl::OkStatus();
}

absl::Status LoopbackUp() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return LastErrnoError("socket for loopback setup");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return LastErrnoError("get flags of lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return LastErrnoError("bring lo up");
  return absl::OkStatus();
}

// Creates the pin file (or reuses a stale, unmounted one) and bind-mounts the calling
// thread's namespace of `type` onto it.
absl::Status Pin(NsType type, const std::string& path) {
  if (IsPinnedNamespace(path)) {
    return absl::AlreadyExistsError(absl::StrCat("namespace pin ", path, " is already mounted"));
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444));
  if (!fd) return LastErrnoError(absl::StrCat("create namespace pin ", path));
  fd.reset();
  std::string source = absl::StrCat("/proc/thread-self/ns/", NsTypeName(type));
  if (::mount(source.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    absl::Status st = LastErrnoError(absl::StrCat("bind ", source, " to ", path));
    ::unlink(path.c_str());
    return st;
  }
  return absl::OkStatus();
}

// The body of the setup thread: unshare, configure, pin. Undoes its own pins on failure.
absl::Status CreateOnThisThread(const std::vector<NsPin>& pins, const NamespaceSetup& setup) {
  int flags = 0;
  bool have[3] = {false, false, false};
  for (const NsPin& p : pins) {
    int i = static_cast<int>(p.type);
    if (have[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("two pins for the ", NsTypeName(p.type), " namespace"));
    }
    have[i] = true;
    flags |= CloneFlag(p.type);
  }
  // Check everything before the first side effect.
  std::vector<std::pair<std::string, std::string>> sysctls;
  for (const auto& [name, value] : setup.sysctls) {
    ASSIGN_OR_RETURN(NsType ns, SysctlNamespace(name, value));
    if (!have[static_cast<int>(ns)]) {
      return absl::InvalidArgumentError(absl::StrCat("sysctl ", name, " belongs to the ",
                                                     NsTypeName(ns),
                                                     " namespace, which the pod does not own"));
    }
    sysctls.emplace_back(absl::StrReplaceAll(name, {{"/", "."}}), value);
  }
  if (!setup.hostname.empty() && !have[static_cast<int>(NsType::kUts)]) {
    return absl::InvalidArgumentError("a hostname needs a UTS namespace");
  }

  if (::unshare(flags) != 0) return LastErrnoError("unshare namespaces");
  if (have[static_cast<int>(NsType::kNet)] && setup.loopback_up) RETURN_IF_ERROR(LoopbackUp());
  if (!setup.hostname.empty() && ::sethostname(setup.hostname.data(), setup.hostname.size()) != 0) {
    return LastErrnoError(absl::StrCat("sethostname ", setup.hostname));
  }
  for (const auto& [name, value] : sysctls) RETURN_IF_ERROR(WriteSysctl(name, value));

  std::vector<std::string> done;
  for (const NsPin& p : pins) {
    absl::Status st = Pin(p.type, p.path);
    if (!st.ok()) {
      for (const std::string& d : done) (void)RemovePinnedNamespace(d);
      return st;
    }
    done.push_back(p.path);
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view NsTypeName(NsType type) {
  switch (type) {
    case NsType::kNet: return "net";
    case NsType::kIpc: return "ipc";
    case NsType::kUts: return "uts";
  }
  return "?";
}

absl::StatusOr<NsType> SysctlNamespace(absl::string_view name, absl::string_view value) {
  std::string n = absl::StrReplaceAll(name, {{"/", "."}});
  if (n.empty() || n.size() > 255) {
    return absl::InvalidArgumentError(absl::StrCat("invalid sysctl name \"", name, "\""));
  }
  for (absl::string_view part : absl::StrSplit(n, '.')) {
    if (part.empty() || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("invalid sysctl name \"", name, "\""));
    }
    for (char c : part) {
      if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
            c == '+' || c == ':')) {
        return absl::InvalidArgumentError(absl::StrCat("invalid sysctl name \"", name, "\""));
      }
    }
  }
  for (char c : value) {
    if (c == '\n' || c == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("sysctl ", name, ": value must be a single line"));
    }
  }
  if (absl::StartsWith(n, "net.")) return NsType::kNet;
  if (absl::StartsWith(n, "kernel.shm") || absl::StartsWith(n, "kernel.msg") || n == "kernel.sem" ||
      absl::StartsWith(n, "fs.mqueue.")) {
    return NsType::kIpc;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("sysctl ", name, " is not namespaced (it would change the whole node)"));
}

absl::Status CreatePinnedNamespaces(const std::vector<NsPin>& pins, const NamespaceSetup& setup) {
  if (pins.empty()) return absl::OkStatus();
  absl::Status result;
  // unshare() changes only this new thread; it ends right after, and the pins keep the
  // namespaces alive.
  std::thread worker([&] { result = CreateOnThisThread(pins, setup); });
  worker.join();
  return result;
}

absl::Status RemovePinnedNamespace(const std::string& pin_path) {
  if (::umount2(pin_path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("unmount namespace pin ", pin_path));
  }
  if (::unlink(pin_path.c_str()) != 0 && errno != ENOENT) {
    return LastErrnoError(absl::StrCat("remove namespace pin ", pin_path));
  }
  return absl::OkStatus();
}

bool IsPinnedNamespace(const std::string& path) {
  struct statfs sfs;
  return ::statfs(path.c_str(), &sfs) == 0 && sfs.f_type == NSFS_MAGIC;
}

absl::Status RunInNamespace(const std::string& pin_path, NsType type,
                            const std::function<absl::Status()>& fn) {
  absl::Status result;
  std::thread worker([&] {
    UniqueFd fd(::open(pin_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      result = LastErrnoError(absl::StrCat("open namespace ", pin_path));
      return;
    }
    if (::setns(fd.get(), CloneFlag(type)) != 0) {
      result = LastErrnoError(absl::StrCat("join ", NsTypeName(type), " namespace ", pin_path));
      return;
    }
    result = fn();
  });
  worker.join();
  return result;
}

}  // namespace berth::network

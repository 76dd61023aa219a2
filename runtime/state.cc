#include "runtime/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::runtime {

absl::string_view StatusName(Status status) {
  switch (status) {
    case Status::kCreating: return "creating";
    case Status::kCreated: return "created";
    case Status::kRunning: return "running";
    case Status::kPaused: return "paused";
    case Status::kStopped: return "stopped";
  }
  return "unknown";
}

absl::Status ValidateId(absl::string_view id) {
  if (id.empty() || id.size() > 1024 || id == "." || id == "..") {
    return absl::InvalidArgumentError(absl::StrCat("invalid container id \"", id, "\""));
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '+' && c != '-' &&
        c != '.') {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid container id \"", id, "\": only letters, digits and _+-. are allowed"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StateDir> StateDir::Create(const std::string& root, const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  RETURN_IF_ERROR(MkdirAll(root, 0700));
  std::string path = absl::StrCat(root, "/", id);
  if (::mkdir(path.c_str(), 0711) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat("container \"", id, "\" already exists"));
    }
    return LastErrnoError(absl::StrCat("mkdir ", path));
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return LastErrnoError(absl::StrCat("open ", path));
  return StateDir(std::move(path), std::move(fd));
}

absl::StatusOr<StateDir> StateDir::Open(const std::string& root, const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  std::string path = absl::StrCat(root, "/", id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist"));
    }
    return LastErrnoError(absl::StrCat("open ", path));
  }
  return StateDir(std::move(path), std::move(fd));
}

absl::Status StateDir::Lock() {
  while (::flock(fd_.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return LastErrnoError(absl::StrCat("lock ", path_));
  }
  return absl::OkStatus();
}

absl::StatusOr<ContainerState> StateDir::Load() const {
  std::string file = path_ + "/state.json";
  absl::StatusOr<std::string> text = ReadFile(file, 1 << 20);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      // The directory exists but the first record was never written: a create that died at
      // its very start. Treat it as a stopped container so that delete can clean it.
      ContainerState s;
      s.id = path_.substr(path_.find_last_of('/') + 1);
      return s;
    }
    return text.status();
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(file, ": not valid JSON"));
  }
  ContainerState s;
  try {
    s.id = j.value("id", "");
    s.bundle = j.value("bundle", "");
    s.rootfs = j.value("rootfs", "");
    s.pid = j.value("pid", 0);
    s.start_time = j.value("start_time", uint64_t{0});
    s.created = j.value("created", "");
    s.owner = j.value("owner", "");
    s.cgroup_path = j.value("cgroup_path", "");
    s.own_pid_namespace = j.value("own_pid_namespace", true);
    if (j.contains("annotations")) {
      s.annotations = j["annotations"].get<std::map<std::string, std::string>>();
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(file, ": ", e.what()));
  }
  return s;
}

absl::Status StateDir::Save(const ContainerState& s) const {
  nlohmann::json j = {{"id", s.id},
                      {"bundle", s.bundle},
                      {"rootfs", s.rootfs},
                      {"pid", s.pid},
                      {"start_time", s.start_time},
                      {"created", s.created},
                      {"owner", s.owner},
                      {"cgroup_path", s.cgroup_path},
                      {"own_pid_namespace", s.own_pid_namespace},
                      {"annotations", s.annotations}};
  // No fsync: the state dir is on tmpfs (/run) and dies with the machine anyway.
  return WriteFileAtomic(path_ + "/state.json", j.dump(), 0600, /*sync=*/false);
}

absl::Status StateDir::Remove() {
  std::string parent = path_.substr(0, path_.find_last_of('/'));
  std::string name = path_.substr(path_.find_last_of('/') + 1);
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoError(absl::StrCat("open ", parent));
  }
  return RemoveTreeAt(dir.get(), name);
}

absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"), 4096);
  if (!stat.ok()) {
    if (absl::IsNotFound(stat.status())) {
      return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
    }
    return stat.status();
  }
  // The command name is in parentheses and may contain anything: fields start after the last ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return absl::DataLossError("malformed /proc/PID/stat");
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ');
  // Field 3 (state) is fields[0]; field 22 (starttime) is fields[19].
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) {
    return absl::DataLossError("malformed /proc/PID/stat");
  }
  if (fields[0] == "Z" || fields[0] == "X") {
    return absl::NotFoundError(absl::StrCat("process ", pid, " has exited"));
  }
  return start;
}

absl::StatusOr<UniqueFd> OpenInit(const ContainerState& state) {
  if (state.pid <= 0) return absl::NotFoundError("the container has no process");
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, state.pid, 0)));
  if (!fd) {
    if (errno == ESRCH) return absl::NotFoundError("the container's process is gone");
    return LastErrnoError("pidfd_open");
  }
  // With the pidfd held the pid cannot be reused: checking the start time now is race-free.
  absl::StatusOr<uint64_t> start = ProcessStartTime(state.pid);
  if (!start.ok()) return start.status();
  if (*start != state.start_time) {
    return absl::NotFoundError("the container's process is gone (its pid was reused)");
  }
  return fd;
}

Status CurrentStatus(const ContainerState& state, bool fifo_exists, bool frozen) {
  if (state.pid <= 0) return Status::kCreating;
  absl::StatusOr<uint64_t> start = ProcessStartTime(state.pid);
  if (!start.ok() || *start != state.start_time) return Status::kStopped;
  if (fifo_exists) return Status::kCreated;
  if (frozen) return Status::kPaused;
  return Status::kRunning;
}

std::string StateJson(const ContainerState& s, Status status, bool pretty) {
  nlohmann::ordered_json j = {{"ociVersion", "1.1.0"},
                              {"id", s.id},
                              {"pid", status == Status::kStopped ? 0 : s.pid},
                              {"status", StatusName(status)},
                              {"bundle", s.bundle},
                              {"rootfs", s.rootfs},
                              {"created", s.created},
                              {"owner", s.owner}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return pretty ? j.dump(2) : j.dump();
}

std::string HookStateJson(const ContainerState& s, Status status) {
  nlohmann::ordered_json j = {{"ociVersion", "1.1.0"},
                              {"id", s.id},
                              {"status", StatusName(status)},
                              {"pid", s.pid},
                              {"bundle", s.bundle}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j.dump();
}

std::string NowRfc3339Nano() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

}  // namespace berth::runtime

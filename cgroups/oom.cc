#include "cgroups/oom.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cgroups/fs.h"

namespace berth::cgroups {

namespace {

// Both kernels keep a running oom_kill count; a watcher reports its growth.
class CountingWatcher final : public OomWatcher {
 public:
  CountingWatcher(UniqueFd fd, std::string dir, std::string file, uint64_t start)
      : fd_(std::move(fd)), dir_(std::move(dir)), file_(std::move(file)), last_(start) {}

  int fd() const override { return fd_.get(); }

  absl::StatusOr<uint64_t> Consume() override {
    char buf[4096];
    while (::read(fd_.get(), buf, sizeof buf) > 0) {
    }  // drain the eventfd counter / inotify events
    absl::StatusOr<std::map<std::string, uint64_t>> kv = ReadKeyValues(dir_, file_);
    if (!kv.ok()) {
      if (absl::IsNotFound(kv.status())) return 0;  // the cgroup is gone
      return kv.status();
    }
    uint64_t now = (*kv)["oom_kill"];
    uint64_t delta = now >= last_ ? now - last_ : 0;
    last_ = now;
    return delta;
  }

 private:
  UniqueFd fd_;
  std::string dir_, file_;
  uint64_t last_;
};

uint64_t CurrentKills(const std::string& dir, const std::string& file) {
  absl::StatusOr<std::map<std::string, uint64_t>> kv = ReadKeyValues(dir, file);
  return kv.ok() ? (*kv)["oom_kill"] : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OomWatcher>> WatchOomV1(const std::string& memory_dir) {
  UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!efd) return LastErrnoError("eventfd");
  std::string control = absl::StrCat(memory_dir, "/memory.oom_control");
  UniqueFd ocfd(::open(control.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ocfd) return LastErrnoError(absl::StrCat("open ", control));
  uint64_t start = CurrentKills(memory_dir, "memory.oom_control");
  // The registration lives as long as the eventfd; the oom_control fd may be closed after.
  RETURN_IF_ERROR(
      WriteControl(memory_dir, "cgroup.event_control", absl::StrCat(efd.get(), " ", ocfd.get())));
  return std::unique_ptr<OomWatcher>(
      new CountingWatcher(std::move(efd), memory_dir, "memory.oom_control", start));
}

absl::StatusOr<std::unique_ptr<OomWatcher>> WatchOomV2(const std::string& dir) {
  UniqueFd ifd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!ifd) return LastErrnoError("inotify_init1");
  std::string events = absl::StrCat(dir, "/memory.events");
  if (::inotify_add_watch(ifd.get(), events.c_str(), IN_MODIFY) < 0) {
    return LastErrnoError(absl::StrCat("watch ", events));
  }
  uint64_t start = CurrentKills(dir, "memory.events");
  return std::unique_ptr<OomWatcher>(
      new CountingWatcher(std::move(ifd), dir, "memory.events", start));
}

}  // namespace berth::cgroups

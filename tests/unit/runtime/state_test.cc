#include "runtime/state.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

std::string TempRoot() {
  char tmpl[] = "/tmp/berth-state-test.XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr);
  return std::string(dir) + "/root";
}

TEST(ValidateId, RuncsCharacterSet) {
  EXPECT_TRUE(ValidateId("abc-DEF_1.2+3").ok());
  for (const char* bad : {"", ".", "..", "a/b", "a b", "a\nb", "ä"}) {
    EXPECT_FALSE(ValidateId(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateId(std::string(1025, 'a')).ok());
}

TEST(StateDir, CreateSaveLoadRemove) {
  std::string root = TempRoot();
  absl::StatusOr<StateDir> dir = StateDir::Create(root, "c1");
  ASSERT_TRUE(dir.ok()) << dir.status();
  struct stat st {};
  ASSERT_EQ(::stat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);  // other users see no container ids

  EXPECT_EQ(StateDir::Create(root, "c1").status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<StateDir> missing = StateDir::Open(root, "nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  EXPECT_EQ(StateDir::Open(root, "../etc").status().code(), absl::StatusCode::kInvalidArgument);

  // Before the first record: a stopped container that delete can clean.
  absl::StatusOr<ContainerState> empty = dir->Load();
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->id, "c1");
  EXPECT_EQ(empty->pid, 0);

  ContainerState s;
  s.id = "c1";
  s.bundle = "/b";
  s.rootfs = "/b/rootfs";
  s.pid = 42;
  s.start_time = 7;
  s.created = "2026-11-26T00:00:00.000000001Z";
  s.cgroup_path = "x/c1";
  s.own_pid_namespace = false;
  s.annotations = {{"k", "v"}};
  ASSERT_TRUE(dir->Save(s).ok());
  absl::StatusOr<ContainerState> back = StateDir::Open(root, "c1")->Load();
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->bundle, "/b");
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->start_time, 7u);
  EXPECT_EQ(back->cgroup_path, "x/c1");
  EXPECT_FALSE(back->own_pid_namespace);
  EXPECT_EQ(back->annotations.at("k"), "v");

  ASSERT_TRUE(dir->Remove().ok());
  EXPECT_TRUE(dir->Remove().ok());  // idempotent
  EXPECT_EQ(StateDir::Open(root, "c1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(::rmdir(root.c_str()), 0);
  EXPECT_EQ(::rmdir(root.substr(0, root.rfind('/')).c_str()), 0);
}

TEST(ProcessIdentity, StartTimeTellsAReusedPid) {
  absl::StatusOr<uint64_t> mine = ProcessStartTime(::getpid());
  ASSERT_TRUE(mine.ok()) << mine.status();
  ContainerState s;
  s.pid = ::getpid();
  s.start_time = *mine;
  EXPECT_EQ(CurrentStatus(s, /*fifo_exists=*/true, false), Status::kCreated);
  EXPECT_EQ(CurrentStatus(s, false, false), Status::kRunning);
  EXPECT_EQ(CurrentStatus(s, false, true), Status::kPaused);
  EXPECT_TRUE(OpenInit(s).ok());
  s.start_time = *mine + 1;  // same pid, another process
  EXPECT_EQ(CurrentStatus(s, false, false), Status::kStopped);
  EXPECT_EQ(OpenInit(s).status().code(), absl::StatusCode::kNotFound);
  s.pid = 0;
  EXPECT_EQ(CurrentStatus(s, false, false), Status::kCreating);
}

TEST(ProcessIdentity, ZombiesAndReapedChildrenAreGone) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  // A zombie is not a live container process.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, child, &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(ProcessStartTime(child).status().code(), absl::StatusCode::kNotFound);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(ProcessStartTime(child).status().code(), absl::StatusCode::kNotFound);
}

TEST(StateJson, RuncsShape) {
  ContainerState s;
  s.id = "c";
  s.pid = 5;
  s.bundle = "/b";
  s.rootfs = "/b/r";
  s.created = "t";
  nlohmann::json j = nlohmann::json::parse(StateJson(s, Status::kRunning, true));
  EXPECT_EQ(j["ociVersion"], "1.1.0");
  EXPECT_EQ(j["id"], "c");
  EXPECT_EQ(j["pid"], 5);
  EXPECT_EQ(j["status"], "running");
  EXPECT_EQ(j["bundle"], "/b");
  EXPECT_EQ(j["rootfs"], "/b/r");
  EXPECT_EQ(j["created"], "t");
  EXPECT_EQ(j["owner"], "");
  EXPECT_FALSE(j.contains("annotations"));
  // A stopped container reports pid 0, as runc does.
  EXPECT_EQ(nlohmann::json::parse(StateJson(s, Status::kStopped, false))["pid"], 0);
  nlohmann::json hook = nlohmann::json::parse(HookStateJson(s, Status::kCreated));
  EXPECT_EQ(hook["status"], "created");
  EXPECT_EQ(hook["pid"], 5);
}

TEST(NowRfc3339Nano, Format) {
  std::string now = NowRfc3339Nano();
  ASSERT_EQ(now.size(), 30u) << now;
  EXPECT_EQ(now[4], '-');
  EXPECT_EQ(now[10], 'T');
  EXPECT_EQ(now[19], '.');
  EXPECT_EQ(now.back(), 'Z');
}

}  // namespace
}  // namespace berth::runtime

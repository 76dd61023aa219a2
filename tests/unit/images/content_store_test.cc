#include "images/content_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "gtest/gtest.h"

namespace berth::images {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Sets a file's atime and mtime `age` in the past.
void Age(const std::string& path, absl::Duration age) {
  struct timespec ts[2];
  ts[0] = ts[1] = absl::ToTimespec(absl::Now() - age);
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

void FlipByte(const std::string& path, off_t offset) {
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0) << path;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, offset), 1);
  c ^= 0x5a;
  ASSERT_EQ(::pwrite(fd, &c, 1, offset), 1);
  ASSERT_EQ(::close(fd), 0);
}

std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

int64_t RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

class ContentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/berth-content-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/content";
    absl::StatusOr<std::unique_ptr<ContentStore>> s = ContentStore::Open(root_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    // Blobs are 0444 in 0755 dirs: rm -rf copes.
    ASSERT_EQ(std::system(absl::StrCat("rm -rf ", dir_).c_str()), 0);
  }

  std::string Commit(absl::string_view data) {
    Digest d = Digest::Of(data);
    auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
    EXPECT_TRUE(w.ok()) << w.status();
    if (!w.ok()) return "";
    EXPECT_TRUE((*w)->Write(data).ok());
    auto path = (*w)->Commit();
    EXPECT_TRUE(path.ok()) << path.status();
    return path.ok() ? *path : "";
  }

  bool IngestEmpty() {
    return std::system(absl::StrCat("test -z \"$(ls -A ", root_, "/ingest)\"").c_str()) == 0;
  }

  std::string dir_, root_;
  std::unique_ptr<ContentStore> store_;
};

TEST_F(ContentStoreTest, WriteCommitReadBack) {
  std::string data = "{\"schemaVersion\":2}";
  Digest d = Digest::Of(data);
  EXPECT_FALSE(store_->Has(d));
  auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->offset(), 0);
  ASSERT_TRUE((*w)->Write(data.data(), 5).ok());
  ASSERT_TRUE((*w)->Write(data.substr(5)).ok());
  EXPECT_EQ((*w)->offset(), static_cast<int64_t>(data.size()));
  EXPECT_FALSE(store_->Has(d)) << "visible before commit";
  absl::StatusOr<std::string> path = (*w)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, root_ + "/blobs/sha256/" + d.hex());
  EXPECT_EQ(*path, store_->BlobPath(d));
  EXPECT_TRUE(IngestEmpty());

  struct stat st;
  ASSERT_EQ(::stat(path->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);

  EXPECT_TRUE(store_->Has(d));
  auto info = store_->Info(d);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, static_cast<int64_t>(data.size()));
  EXPECT_EQ(info->digest, d);
  EXPECT_LT(absl::Now() - info->modified, absl::Minutes(1));

  auto read = store_->ReadBlob(d);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, data);
  EXPECT_EQ(store_->ReadBlob(d, 4).status().code(), absl::StatusCode::kResourceExhausted);

  auto fd = store_->OpenBlob(d);
  ASSERT_TRUE(fd.ok()) << fd.status();
  char buf[64];
  EXPECT_EQ(::read(fd->get(), buf, sizeof buf), static_cast<ssize_t>(data.size()));
  EXPECT_EQ(std::string(buf, data.size()), data);
  int flags = ::fcntl(fd->get(), F_GETFD);
  EXPECT_TRUE(flags & FD_CLOEXEC);
  EXPECT_FALSE(::fcntl(fd->get(), F_GETFL) & O_NONBLOCK);

  EXPECT_TRUE(store_->Verify(d).ok());

  // A second writer finds it.
  EXPECT_EQ(store_->OpenWriter(d, static_cast<int64_t>(data.size())).status().code(),
            absl::StatusCode::kAlreadyExists);
  // Committing twice is refused; writing after commit too.
  EXPECT_EQ((*w)->Commit().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*w)->Write("x").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ContentStoreTest, UnknownSizeChecksOnlyTheDigest) {
  std::string data = Pattern(10000, 1);
  Digest d = Digest::Of(data);
  auto w = store_->OpenWriter(d, -1);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->expected_size(), -1);
  ASSERT_TRUE((*w)->Write(data).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE(store_->Has(d));
}

TEST_F(ContentStoreTest, Sha512) {
  std::string data = "sha512 content";
  Digest d = Digest::Of(data, Digest::Algorithm::kSha512);
  auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Write(data).ok());
  auto path = (*w)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, root_ + "/blobs/sha512/" + d.hex());
  EXPECT_EQ(*store_->ReadBlob(d), data);
}

TEST_F(ContentStoreTest, MissingBlob) {
  Digest d = Digest::Of("nothing");
  EXPECT_FALSE(store_->Has(d));
  EXPECT_EQ(store_->Info(d).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->OpenBlob(d).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadBlob(d).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Verify(d).code(), absl::StatusCode::kNotFound);
}

TEST_F(ContentStoreTest, DigestMismatchLeavesNothing) {
  std::string data = "the real content";
  Digest claimed = Digest::Of("something else entirely");
  auto w = store_->OpenWriter(claimed, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Write(data).ok());
  absl::StatusOr<std::string> path = (*w)->Commit();
  ASSERT_EQ(path.status().code(), absl::StatusCode::kDataLoss) << path.status();
  EXPECT_NE(path.status().message().find(claimed.ToString()), std::string::npos);
  EXPECT_NE(path.status().message().find(Digest::Of(data).ToString()), std::string::npos);
  EXPECT_FALSE(store_->Has(claimed));
  EXPECT_FALSE(Exists(store_->IngestPath(claimed)));
  EXPECT_TRUE(IngestEmpty());
}

TEST_F(ContentStoreTest, SizeMismatchLeavesNothing) {
  std::string data = "short";
  Digest d = Digest::Of(data);
  auto w = store_->OpenWriter(d, 100);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Write(data).ok());
  absl::StatusOr<std::string> path = (*w)->Commit();
  ASSERT_EQ(path.status().code(), absl::StatusCode::kDataLoss) << path.status();
  EXPECT_NE(path.status().message().find("expected 100 bytes, got 5"), std::string::npos)
      << path.status();
  EXPECT_FALSE(store_->Has(d));
  EXPECT_TRUE(IngestEmpty());
}

TEST_F(ContentStoreTest, OverlongWriteRefused) {
  std::string data = "0123456789";
  Digest d = Digest::Of(data);
  auto w = store_->OpenWriter(d, 10);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Write(data.substr(0, 8)).ok());
  absl::Status st = (*w)->Write("89X");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ((*w)->offset(), 8) << "nothing of a refused write is kept";
  struct stat sst;
  ASSERT_EQ(::stat((store_->IngestPath(d) + "/data").c_str(), &sst), 0);
  EXPECT_EQ(sst.st_size, 8);
  // A single huge write is refused too (no overflow in the check).
  EXPECT_EQ((*w)->Write(data.data(), SIZE_MAX / 2).code(), absl::StatusCode::kResourceExhausted);
  // The writer is still usable: the right bytes complete it.
  ASSERT_TRUE((*w)->Write("89").ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(*store_->ReadBlob(d), data);
}

TEST_F(ContentStoreTest, ResumeAfterCrash) {
  std::string data = Pattern(3 << 20, 7);  // several re-hash chunks
  Digest d = Digest::Of(data);
  size_t half = data.size() / 2 + 3;
  absl::Time started;
  {
    auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Write(data.substr(0, half)).ok());
    started = (*w)->started_at();
    // Destroyed without Commit: the ingest stays.
  }
  EXPECT_FALSE(store_->Has(d));
  EXPECT_TRUE(Exists(store_->IngestPath(d) + "/data"));
  auto ref = ReadFile(store_->IngestPath(d) + "/ref");
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_NE(ref->find(absl::StrCat("\"expected_size\":", data.size())), std::string::npos) << *ref;

  // A new store on the same root, as after a restart.
  auto reopened = ContentStore::Open(root_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto w = (*reopened)->OpenWriter(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->offset(), static_cast<int64_t>(half));
  EXPECT_EQ((*w)->started_at(), started);
  ASSERT_TRUE((*w)->Write(data.substr(half)).ok());
  auto path = (*w)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_TRUE(store_->Verify(d).ok());
  EXPECT_TRUE(IngestEmpty());
}

TEST_F(ContentStoreTest, AbortKeepsOrDiscards) {
  std::string data = "abcdefgh";
  Digest d = Digest::Of(data);
  {
    auto w = store_->OpenWriter(d, 8);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("abcd").ok());
    (*w)->Abort();
    (*w)->Abort();  // idempotent
    EXPECT_EQ((*w)->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  }
  {
    auto w = store_->OpenWriter(d, 8);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->offset(), 4);
    (*w)->Abort(/*discard=*/true);
  }
  EXPECT_FALSE(Exists(store_->IngestPath(d)));
  auto w = store_->OpenWriter(d, 8);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->offset(), 0);
}

TEST_F(ContentStoreTest, ResetWhenServerIgnoresRange) {
  std::string data = Pattern(1000, 3);
  Digest d = Digest::Of(data);
  {
    auto w = store_->OpenWriter(d, 1000);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(data.substr(0, 400)).ok());
  }
  auto w = store_->OpenWriter(d, 1000);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->offset(), 400);
  // The server answered 200 with the whole body: start over.
  ASSERT_TRUE((*w)->Reset().ok());
  EXPECT_EQ((*w)->offset(), 0);
  ASSERT_TRUE((*w)->Write(data).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_EQ(*store_->ReadBlob(d), data);
}

TEST_F(ContentStoreTest, TruncateRehashesThePrefix) {
  std::string data = Pattern(5000, 4);
  Digest d = Digest::Of(data);
  auto w = store_->OpenWriter(d, 5000);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(data.substr(0, 3000)).ok());
  EXPECT_EQ((*w)->Truncate(3001).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*w)->Truncate(1234).ok());
  EXPECT_EQ((*w)->offset(), 1234);
  ASSERT_TRUE((*w)->Write(data.substr(1234)).ok());
  ASSERT_TRUE((*w)->Commit().ok());
  EXPECT_TRUE(store_->Verify(d).ok());
}

TEST_F(ContentStoreTest, ExistingIngestLongerThanExpectedRestarts) {
  std::string data = "exact";
  Digest d = Digest::Of(data);
  {
    auto w = store_->OpenWriter(d, -1);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("far too many bytes").ok());
  }
  auto w = store_->OpenWriter(d, 5);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->offset(), 0);
  ASSERT_TRUE((*w)->Write(data).ok());
  ASSERT_TRUE((*w)->Commit().ok());
}

TEST_F(ContentStoreTest, ResumeOverCorruptedPartialFailsAndLeavesNothing) {
  std::string data = Pattern(200000, 9);
  Digest d = Digest::Of(data);
  size_t half = data.size() / 2;
  {
    auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(data.substr(0, half)).ok());
  }
  FlipByte(store_->IngestPath(d) + "/data", 1000);
  auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->offset(), static_cast<int64_t>(half));
  ASSERT_TRUE((*w)->Write(data.substr(half)).ok());
  auto path = (*w)->Commit();
  EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss) << path.status();
  EXPECT_FALSE(store_->Has(d));
  EXPECT_TRUE(IngestEmpty());
}

TEST_F(ContentStoreTest, TwoThreadsOneWriter) {
  std::string data = Pattern(100000, 5);
  Digest d = Digest::Of(data);
  auto first = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->Write(data.substr(0, 500)).ok());

  std::atomic<bool> second_returned{false};
  absl::Status second_status;
  std::thread second([&] {
    auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()), /*wait=*/true);
    second_status = w.status();
    second_returned = true;
  });
  // The second opener must be blocked while the first holds the digest.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(second_returned.load());
  // wait=false in the meantime fails fast.
  EXPECT_EQ(store_->OpenWriter(d, static_cast<int64_t>(data.size()), false).status().code(),
            absl::StatusCode::kUnavailable);

  ASSERT_TRUE((*first)->Write(data.substr(500)).ok());
  struct stat before;
  auto path = (*first)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  ASSERT_EQ(::stat(path->c_str(), &before), 0);
  second.join();
  EXPECT_EQ(second_status.code(), absl::StatusCode::kAlreadyExists) << second_status;
  // Written once: the same inode, nothing left in ingest/.
  struct stat after;
  ASSERT_EQ(::stat(path->c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_TRUE(IngestEmpty());
}

TEST_F(ContentStoreTest, ManyThreadsRaceForOneDigest) {
  std::string data = Pattern(300000, 6);
  Digest d = Digest::Of(data);
  std::atomic<int> committed{0}, existed{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
      if (w.status().code() == absl::StatusCode::kAlreadyExists) {
        ++existed;
        return;
      }
      if (!w.ok() || (*w)->offset() != 0) {
        ++other;
        return;
      }
      for (size_t off = 0; off < data.size(); off += 7000) {
        if (!(*w)->Write(data.substr(off, 7000)).ok()) {
          ++other;
          return;
        }
      }
      if ((*w)->Commit().ok()) {
        ++committed;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(committed.load(), 1);
  EXPECT_EQ(existed.load(), 7);
  EXPECT_EQ(other.load(), 0);
  EXPECT_TRUE(store_->Verify(d).ok());
  EXPECT_TRUE(IngestEmpty());
}

TEST_F(ContentStoreTest, WritersDiscardingAndCleanUpRacing) {
  // Writers that give up (discarding or keeping their ingest) race with one another and with
  // CleanIngests(0); whoever holds the lock must never lose its ingest under it.
  std::string data = Pattern(64 << 10, 11);
  Digest d = Digest::Of(data);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0}, commits{0};
  std::thread cleaner([&] {
    while (!stop) {
      if (!store_->CleanIngests(absl::ZeroDuration()).ok()) ++errors;
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
        if (!w.ok()) {
          if (w.status().code() != absl::StatusCode::kAlreadyExists) ++errors;
          return;
        }
        size_t off = static_cast<size_t>((*w)->offset());
        size_t end = std::min(data.size(), off + 4096);
        if (!(*w)->Write(data.substr(off, end - off)).ok()) ++errors;
        if (round == 49 && t == 0) {
          if (!(*w)->Write(data.substr(end)).ok()) ++errors;
          if ((*w)->Commit().ok()) ++commits;
          return;
        }
        (*w)->Abort(/*discard=*/round % 3 == 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  cleaner.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LE(commits.load(), 1);
  // Whether or not the planned commit happened first, the blob can be completed now.
  if (!store_->Has(d)) {
    auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Write(data.substr(static_cast<size_t>((*w)->offset()))).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  EXPECT_TRUE(store_->Verify(d).ok());
  ASSERT_TRUE(store_->CleanIngests(absl::ZeroDuration()).ok());
  EXPECT_TRUE(IngestEmpty());
}

TEST_F(ContentStoreTest, OtherProcessFailsFastWithoutWait) {
  std::string data = "held by the parent";
  Digest d = Digest::Of(data);
  auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Write("held").ok());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = ContentStore::Open(root_);
    if (!store.ok()) _exit(2);
    auto other = (*store)->OpenWriter(d, static_cast<int64_t>(data.size()), /*wait=*/false);
    _exit(other.status().code() == absl::StatusCode::kUnavailable ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The parent's writer is unaffected.
  ASSERT_TRUE((*w)->Write(data.substr(4)).ok());
  ASSERT_TRUE((*w)->Commit().ok());
}

TEST_F(ContentStoreTest, OtherProcessWaitsThenFindsTheBlob) {
  std::string data = "written by the child";
  Digest d = Digest::Of(data);
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    auto store = ContentStore::Open(root_);
    if (!store.ok()) _exit(2);
    auto w = (*store)->OpenWriter(d, static_cast<int64_t>(data.size()));
    if (!w.ok()) _exit(3);
    if (::write(pipefd[1], "x", 1) != 1) _exit(4);  // locked: the parent may try now
    ::usleep(200 * 1000);
    if (!(*w)->Write(data).ok() || !(*w)->Commit().ok()) _exit(5);
    _exit(0);
  }
  ::close(pipefd[1]);
  char c;
  ASSERT_EQ(::read(pipefd[0], &c, 1), 1);
  ::close(pipefd[0]);
  auto w = store_->OpenWriter(d, static_cast<int64_t>(data.size()), /*wait=*/true);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kAlreadyExists) << w.status();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(*store_->ReadBlob(d), data);
}

TEST_F(ContentStoreTest, CleanIngestsRemovesOldUnlockedOnly) {
  Digest old_d = Digest::Of("old orphan");
  Digest fresh_d = Digest::Of("fresh orphan");
  Digest locked_d = Digest::Of("old but in use");
  for (const Digest* d : {&old_d, &fresh_d}) {
    auto w = store_->OpenWriter(*d, 100);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("partial").ok());
  }
  auto locked = store_->OpenWriter(locked_d, 100);
  ASSERT_TRUE(locked.ok());
  ASSERT_TRUE((*locked)->Write("partial").ok());
  for (const Digest* d : {&old_d, &locked_d}) {
    Age(store_->IngestPath(*d) + "/data", absl::Hours(2));
    Age(store_->IngestPath(*d) + "/ref", absl::Hours(2));
  }
  // An orphan with no files at all (a crash right after mkdir): judged by the directory.
  Digest empty_d = Digest::Of("empty orphan");
  ASSERT_EQ(::mkdir(store_->IngestPath(empty_d).c_str(), 0755), 0);
  Age(store_->IngestPath(empty_d), absl::Hours(2));

  auto removed = store_->CleanIngests(absl::Hours(1));
  ASSERT_TRUE(removed.ok()) << removed.status();
  std::vector<Digest> got = *removed;
  std::sort(got.begin(), got.end());
  std::vector<Digest> want = {old_d, empty_d};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_FALSE(Exists(store_->IngestPath(old_d)));
  EXPECT_FALSE(Exists(store_->IngestPath(empty_d)));
  EXPECT_TRUE(Exists(store_->IngestPath(fresh_d) + "/data"));
  EXPECT_TRUE(Exists(store_->IngestPath(locked_d) + "/data"));

  // The locked writer carries on undisturbed.
  EXPECT_EQ((*locked)->offset(), 7);
  ASSERT_TRUE((*locked)->Write("more").ok());

  // Zero: every unlocked ingest goes.
  removed = store_->CleanIngests(absl::ZeroDuration());
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0], fresh_d);
  EXPECT_TRUE(Exists(store_->IngestPath(locked_d) + "/data"));
}

TEST_F(ContentStoreTest, JunkNamesAreNeverUsedAsPaths) {
  // Outside the store: must survive everything below.
  std::string outside = dir_ + "/outside";
  ASSERT_TRUE(MkdirAll(outside).ok());
  ASSERT_TRUE(WriteFileAtomic(outside + "/data", "precious").ok());
  ASSERT_TRUE(WriteFileAtomic(outside + "/lock", "precious").ok());
  ASSERT_TRUE(WriteFileAtomic(outside + "/precious", "precious").ok());

  // Digests with traversal never parse, so no path can be built from them.
  for (const char* bad : {"sha256:../../../etc/passwd", "sha256:..", "sha256:/etc/passwd",
                          "../sha256:abc", "sha256:ABCDEF"}) {
    EXPECT_FALSE(Digest::Parse(bad).ok()) << bad;
  }

  std::string ingest = root_ + "/ingest";
  Digest sym_d = Digest::Of("symlinked ingest");
  // A symlink named like a valid ingest, pointing outside.
  ASSERT_EQ(::symlink(outside.c_str(), store_->IngestPath(sym_d).c_str()), 0);
  // Junk names, some nearly valid.
  for (const std::string& name :
       {std::string("evil"), std::string("sha256-") + std::string(64, 'A'),
        std::string("sha256-") + Digest::Of("x").hex() + ".tmp", std::string("sha256-short"),
        std::string("md5-d41d8cd98f00b204e9800998ecf8427e"), std::string("-"),
        std::string("sha256:") + Digest::Of("y").hex()}) {
    ASSERT_TRUE(MkdirAll(ingest + "/" + name).ok()) << name;
    Age(ingest + "/" + name, absl::Hours(5));
  }
  auto removed = store_->CleanIngests(absl::ZeroDuration());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(removed->empty());
  EXPECT_TRUE(Exists(ingest + "/evil"));
  EXPECT_EQ(*ReadFile(outside + "/data"), "precious");
  EXPECT_EQ(*ReadFile(outside + "/lock"), "precious");
  EXPECT_EQ(*ReadFile(outside + "/precious"), "precious");

  // A writer refuses to follow the planted symlink.
  auto w = store_->OpenWriter(sym_d, 10);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(*ReadFile(outside + "/data"), "precious");

  // A symlinked "blob" is not a blob.
  Digest link_blob = Digest::Of("link blob");
  ASSERT_EQ(::symlink((outside + "/precious").c_str(), store_->BlobPath(link_blob).c_str()), 0);
  EXPECT_FALSE(store_->Has(link_blob));
  EXPECT_EQ(store_->OpenBlob(link_blob).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Info(link_blob).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ContentStoreTest, DeleteIsIdempotent) {
  Commit("to be deleted");
  Digest d = Digest::Of("to be deleted");
  ASSERT_TRUE(store_->Has(d));
  EXPECT_TRUE(store_->Delete(d).ok());
  EXPECT_FALSE(store_->Has(d));
  EXPECT_TRUE(store_->Delete(d).ok());
  EXPECT_TRUE(store_->Delete(Digest::Of("never existed")).ok());
}

TEST_F(ContentStoreTest, ListSkipsJunk) {
  Commit("one");
  Commit("two");
  std::string d512 = "in sha512";
  Digest d3 = Digest::Of(d512, Digest::Algorithm::kSha512);
  {
    auto w = store_->OpenWriter(d3, static_cast<int64_t>(d512.size()));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(d512).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  std::string sha256 = root_ + "/blobs/sha256";
  ASSERT_TRUE(WriteFileAtomic(sha256 + "/not-a-digest", "junk").ok());
  ASSERT_TRUE(WriteFileAtomic(sha256 + "/" + std::string(64, 'A'), "junk").ok());
  ASSERT_TRUE(MkdirAll(sha256 + "/" + Digest::Of("a dir").hex()).ok());
  ASSERT_EQ(::symlink("/etc/passwd", (sha256 + "/" + Digest::Of("a link").hex()).c_str()), 0);
  // A sha512-length name in the sha256 dir is not a sha256 digest.
  ASSERT_TRUE(WriteFileAtomic(sha256 + "/" + d3.hex(), "junk").ok());
  ASSERT_TRUE(MkdirAll(root_ + "/blobs/md5").ok());

  size_t skipped = 0;
  auto list = store_->List(&skipped);
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<Digest> want = {Digest::Of("one"), Digest::Of("two"), d3};
  std::sort(want.begin(), want.end());
  ASSERT_EQ(list->size(), 3u);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ((*list)[i].digest, want[i]);
  EXPECT_EQ((*list)[0].size, (*list)[0].digest == d3 ? 9 : 3);
  EXPECT_EQ(skipped, 6u);
}

TEST_F(ContentStoreTest, VerifyDetectsCorruption) {
  std::string data = Pattern(50000, 8);
  std::string path = Commit(data);
  Digest d = Digest::Of(data);
  ASSERT_TRUE(store_->Verify(d).ok());
  FlipByte(path, 12345);
  absl::Status st = store_->Verify(d);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find(d.ToString()), std::string::npos) << st;
  EXPECT_EQ(store_->ReadBlob(d).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ContentStoreTest, UsageCountsBytes) {
  auto empty = store_->Usage();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->bytes, 0);
  EXPECT_EQ(empty->inodes, 0);
  Commit(Pattern(1000, 1));
  Commit(Pattern(23456, 2));
  // In-progress downloads do not count.
  auto w = store_->OpenWriter(Digest::Of("pending"), 7);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("pending").ok());
  auto usage = store_->Usage();
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->bytes, 1000 + 23456);
  EXPECT_EQ(usage->inodes, 2);
}

TEST_F(ContentStoreTest, StreamsALargeBlob) {
  constexpr size_t kSize = 50 << 20;
  constexpr size_t kChunkSize = 64 << 10;
  // The digest first, from the same generator, so the blob never exists in memory.
  std::string chunk(kChunkSize, '\0');
  auto fill = [&chunk](size_t index) {
    uint32_t x = static_cast<uint32_t>(index) * 2654435761u + 17;
    for (char& c : chunk) {
      x = x * 1103515245u + 12345u;
      c = static_cast<char>(x >> 24);
    }
  };
  Hasher hasher;
  for (size_t i = 0; i < kSize / kChunkSize; ++i) {
    fill(i);
    hasher.Update(chunk);
  }
  Digest d = hasher.Finish();

  int64_t rss_before = RssKiB();
  auto w = store_->OpenWriter(d, static_cast<int64_t>(kSize));
  ASSERT_TRUE(w.ok()) << w.status();
  for (size_t i = 0; i < kSize / kChunkSize; ++i) {
    fill(i);
    ASSERT_TRUE((*w)->Write(chunk).ok());
  }
  auto path = (*w)->Commit();
  ASSERT_TRUE(path.ok()) << path.status();
  int64_t rss_after = RssKiB();
  auto info = store_->Info(d);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, static_cast<int64_t>(kSize));
  EXPECT_TRUE(store_->Verify(d).ok());
  // Nothing proportional to the blob is held (generous bound, sanitizers included).
  EXPECT_LT(rss_after - rss_before, 20 * 1024) << rss_before << " -> " << rss_after;
}

TEST_F(ContentStoreTest, OpenRejectsEmptyRootAndRootThatIsAFile) {
  EXPECT_EQ(ContentStore::Open("").status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/file", "x").ok());
  EXPECT_FALSE(ContentStore::Open(dir_ + "/file").ok());
}

}  // namespace
}  // namespace berth::images

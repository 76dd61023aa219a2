#include "runtime/cri_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace berth::runtime {
namespace {

// 2025-11-26T09:35:00.123456789Z
const absl::Time kT = absl::FromUnixNanos(1764149700123456789);
const char kTs[] = "2025-11-26T09:35:00.123456789Z";

std::string TempDir() {
  char tmpl[] = "/tmp/berth-cri-log-test.XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr);
  return dir ? std::string(dir) : std::string("/tmp");
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Rec(absl::string_view stream, absl::string_view tag, absl::string_view content) {
  return std::string(kTs) + " " + std::string(stream) + " " + std::string(tag) + " " +
         std::string(content) + "\n";
}

class CriLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    path_ = dir_ + "/0.log";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::remove_all(dir_ + "-moved", ec);
  }

  std::unique_ptr<CriLogWriter> Open(size_t max_line = CriLogWriter::kDefaultMaxLine) {
    absl::StatusOr<std::unique_ptr<CriLogWriter>> w = CriLogWriter::Open(path_, max_line);
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *std::move(w) : nullptr;
  }

  std::string dir_, path_;
};

TEST(Rfc3339Nano, ExactFormat) {
  EXPECT_EQ(Rfc3339Nano(kT), kTs);
  EXPECT_EQ(Rfc3339Nano(absl::FromUnixSeconds(1764149700)), "2025-11-26T09:35:00.000000000Z");
  EXPECT_EQ(Rfc3339Nano(absl::FromUnixNanos(1)), "1970-01-01T00:00:00.000000001Z");
}

TEST(FormatCriLogRecord, Fields) {
  EXPECT_EQ(FormatCriLogRecord(kT, LogStream::kStdout, false, "hello"),
            std::string(kTs) + " stdout F hello\n");
  EXPECT_EQ(FormatCriLogRecord(kT, LogStream::kStderr, true, "he"),
            std::string(kTs) + " stderr P he\n");
  EXPECT_EQ(FormatCriLogRecord(kT, LogStream::kStdout, false, ""),
            std::string(kTs) + " stdout F \n");
}

TEST_F(CriLogTest, OpenCreatesWithMode0640) {
  mode_t old = ::umask(0);
  auto w = Open();
  ::umask(old);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->path(), path_);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(CriLogTest, OpenErrorNamesPath) {
  auto w = CriLogWriter::Open("/nonexistent-dir/x.log");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("/nonexistent-dir/x.log"), absl::string_view::npos);
}

TEST_F(CriLogTest, FullLine) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "hello world\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "hello world"));
}

TEST_F(CriLogTest, EmptyLine) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", ""));
}

TEST_F(CriLogTest, SeveralLinesInOneWrite) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "a\nbb\n\nccc\ndd", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "a") + Rec("stdout", "F", "bb") +
                                Rec("stdout", "F", "") + Rec("stdout", "F", "ccc"));
  ASSERT_TRUE(w->Write(LogStream::kStdout, "\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "a") + Rec("stdout", "F", "bb") +
                                Rec("stdout", "F", "") + Rec("stdout", "F", "ccc") +
                                Rec("stdout", "F", "dd"));
}

TEST_F(CriLogTest, LineSplitAcrossWrites) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "hel", kT).ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "lo ", kT).ok());
  EXPECT_EQ(ReadAll(path_), "");
  const absl::Time later = kT + absl::Seconds(1);
  ASSERT_TRUE(w->Write(LogStream::kStdout, "world\nnext", later).ok());
  // The record is stamped by the call that completed it.
  EXPECT_EQ(ReadAll(path_), Rfc3339Nano(later) + " stdout F hello world\n");
}

TEST_F(CriLogTest, LongLineSplitIntoPartials) {
  auto w = Open(8);
  ASSERT_TRUE(w->Write(LogStream::kStdout, "0123456789abcdefghijK\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "P", "01234567") + Rec("stdout", "P", "89abcdef") +
                                Rec("stdout", "F", "ghijK"));
}

TEST_F(CriLogTest, LongLineWithoutNewlineWritesPiecesAsTheyFill) {
  auto w = Open(8);
  ASSERT_TRUE(w->Write(LogStream::kStdout, "0123", kT).ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "456789ab", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "P", "01234567"));
  ASSERT_TRUE(w->Write(LogStream::kStdout, "cdefghijklmnopqrstu", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "P", "01234567") + Rec("stdout", "P", "89abcdef") +
                                Rec("stdout", "P", "ghijklmn"));
  ASSERT_TRUE(w->EndStream(LogStream::kStdout, kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "P", "01234567") + Rec("stdout", "P", "89abcdef") +
                                Rec("stdout", "P", "ghijklmn") + Rec("stdout", "F", "opqrstu"));
}

// Chosen behaviour: a line of exactly max_line bytes is one F record (no P plus empty F),
// however the bytes arrive.
TEST_F(CriLogTest, ExactlyMaxLineThenNewlineIsOneFull) {
  auto w = Open(8);
  ASSERT_TRUE(w->Write(LogStream::kStdout, "01234567\n", kT).ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "abcdefgh", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "01234567"));
  ASSERT_TRUE(w->Write(LogStream::kStdout, "\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "01234567") + Rec("stdout", "F", "abcdefgh"));
  // Twice max_line: one P, one F.
  ASSERT_TRUE(w->Write(LogStream::kStdout, "ABCDEFGHIJKLMNOP\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "01234567") + Rec("stdout", "F", "abcdefgh") +
                                Rec("stdout", "P", "ABCDEFGH") + Rec("stdout", "F", "IJKLMNOP"));
}

TEST_F(CriLogTest, StreamsBufferedSeparately) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "out-", kT).ok());
  ASSERT_TRUE(w->Write(LogStream::kStderr, "err-", kT).ok());
  ASSERT_TRUE(w->Write(LogStream::kStderr, "line\n", kT).ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "line\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stderr", "F", "err-line") + Rec("stdout", "F", "out-line"));
}

TEST_F(CriLogTest, EndStreamFlushesAsFull) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "no newline", kT).ok());
  ASSERT_TRUE(w->Write(LogStream::kStderr, "err rest", kT).ok());
  ASSERT_TRUE(w->EndStream(LogStream::kStdout, kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "no newline"));
  ASSERT_TRUE(w->EndStream(LogStream::kStdout, kT).ok());  // nothing left: no record
  ASSERT_TRUE(w->EndStream(LogStream::kStderr, kT).ok());
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "no newline") + Rec("stderr", "F", "err rest"));
}

TEST_F(CriLogTest, AppendsToExistingFile) {
  { std::ofstream(path_) << "old\n"; }
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "x\n", kT).ok());
  EXPECT_EQ(ReadAll(path_), "old\n" + Rec("stdout", "F", "x"));
}

TEST(CriLogWriter, EmptyPathDiscards) {
  absl::StatusOr<std::unique_ptr<CriLogWriter>> w = CriLogWriter::Open("");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->path(), "");
  EXPECT_TRUE((*w)->Write(LogStream::kStdout, "hello\npartial", kT).ok());
  EXPECT_TRUE((*w)->EndStream(LogStream::kStdout, kT).ok());
  EXPECT_TRUE((*w)->Reopen().ok());
}

TEST_F(CriLogTest, ReopenAfterRotation) {
  auto w = Open();
  ASSERT_TRUE(w->Write(LogStream::kStdout, "before\npart", kT).ok());
  const std::string rotated = path_ + ".1";
  ASSERT_EQ(::rename(path_.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(w->Reopen().ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "ial\nafter\n", kT).ok());
  EXPECT_EQ(ReadAll(rotated), Rec("stdout", "F", "before"));
  // The buffered partial data was kept across the reopen.
  EXPECT_EQ(ReadAll(path_), Rec("stdout", "F", "partial") + Rec("stdout", "F", "after"));
}

TEST_F(CriLogTest, ReopenFailureKeepsOldFile) {
  const std::string dir = path_.substr(0, path_.rfind('/'));
  auto w = Open();
  const std::string moved = dir + "-moved";
  ASSERT_EQ(::rename(dir.c_str(), moved.c_str()), 0);
  EXPECT_FALSE(w->Reopen().ok());
  ASSERT_TRUE(w->Write(LogStream::kStdout, "still\n", kT).ok());
  EXPECT_EQ(ReadAll(moved + "/0.log"), Rec("stdout", "F", "still"));
}

}  // namespace
}  // namespace berth::runtime

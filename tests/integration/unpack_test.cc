// LayerUnpacker against real tars (GNU tar, hand-written headers for hostile entries), gzip and
// zstd streams, the `layers` fixture image (merged with a real overlay mount) and hostile
// layers. Needs root: chown, mknod, trusted.* xattrs, mount.
#include "images/unpack.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/process.h"

namespace berth::images {
namespace {

using berth::testing::CommandResult;
using berth::testing::RunCommand;
using berth::testing::TempDir;

std::string Sh(const std::string& script) {
  CommandResult r = RunCommand({"/bin/sh", "-c", script}, absl::Seconds(300));
  EXPECT_EQ(r.exit_code, 0) << script << "\n" << r.err;
  return r.out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
  ASSERT_TRUE(out.good()) << path;
}

// A tar writer for entries GNU tar will not produce.
class TarBuilder {
 public:
  struct Entry {
    std::string name;
    char type = '0';
    std::string data;
    std::string link;
    unsigned mode = 0644, uid = 0, gid = 0, major = 0, minor = 0;
    long mtime = 1700000000;
    std::vector<std::pair<std::string, std::string>> pax;
  };
  TarBuilder& Add(Entry e) {
    if (e.name.size() > 99) e.pax.push_back({"path", e.name});
    if (e.link.size() > 99) e.pax.push_back({"linkpath", e.link});
    if (!e.pax.empty()) {
      std::string records;
      for (const auto& [k, v] : e.pax) {
        std::string rest = " " + k + "=" + v + "\n";
        size_t len = rest.size() + 1;
        while (std::to_string(len).size() + rest.size() != len) ++len;
        records += std::to_string(len) + rest;
      }
      Header("PaxHeaders/x", 'x', records.size(), "", 0644, 0, 0, 0, 0, e.mtime);
      Data(records);
    }
    Header(e.name.substr(0, 99), e.type, e.data.size(), e.link.substr(0, 99), e.mode, e.uid, e.gid,
           e.major, e.minor, e.mtime);
    Data(e.data);
    return *this;
  }
  TarBuilder& File(const std::string& name, const std::string& data, unsigned mode = 0644) {
    return Add({.name = name, .type = '0', .data = data, .mode = mode});
  }
  TarBuilder& Dir(const std::string& name, unsigned mode = 0755) {
    return Add({.name = name, .type = '5', .mode = mode});
  }
  TarBuilder& Symlink(const std::string& name, const std::string& target) {
    return Add({.name = name, .type = '2', .link = target, .mode = 0777});
  }
  TarBuilder& Hardlink(const std::string& name, const std::string& target) {
    return Add({.name = name, .type = '1', .link = target});
  }
  std::string Finish() const { return out_ + std::string(1024, '\0'); }
  std::string Unterminated() const { return out_; }

 private:
  static void Octal(char* field, size_t width, unsigned long long v) {
    std::string s = absl::StrFormat("%0*llo", static_cast<int>(width - 1), v);
    memcpy(field, s.data(), width - 1);
  }
  void Header(const std::string& name, char type, size_t size, const std::string& link,
              unsigned mode, unsigned uid, unsigned gid, unsigned major, unsigned minor,
              long mtime) {
    char h[512] = {};
    memcpy(h, name.data(), name.size());
    Octal(h + 100, 8, mode);
    Octal(h + 108, 8, uid);
    Octal(h + 116, 8, gid);
    Octal(h + 124, 12, size);
    Octal(h + 136, 12, mtime);
    h[156] = type;
    memcpy(h + 157, link.data(), link.size());
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    Octal(h + 329, 8, major);
    Octal(h + 337, 8, minor);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::string s = absl::StrFormat("%06o", sum);
    memcpy(h + 148, s.data(), 6);
    h[154] = '\0';
    out_.append(h, 512);
  }
  void Data(const std::string& d) {
    out_ += d;
    out_.append((512 - d.size() % 512) % 512, '\0');
  }
  std::string out_;
};

// Streams `data` through a LayerUnpacker in chunks of `chunk` bytes.
absl::StatusOr<UnpackResult> Unpack(const std::string& dir, const std::string& data, Compression c,
                                    size_t chunk = 4096, UnpackOptions options = {}) {
  auto u = LayerUnpacker::Create(dir, c, options);
  if (!u.ok()) return u.status();
  for (size_t off = 0; off < data.size(); off += chunk) {
    absl::Status s = (*u)->Write(data.data() + off, std::min(chunk, data.size() - off));
    if (!s.ok()) return s;
  }
  return (*u)->Finish();
}

std::string Compress(const TempDir& tmp, const std::string& data, Compression c) {
  if (c == Compression::kNone) return data;
  std::string in = tmp / "to-compress";
  WriteAll(in, data);
  std::string out = tmp / "compressed";
  Sh(c == Compression::kGzip ? absl::StrCat("gzip -nc '", in, "' > '", out, "'")
                             : absl::StrCat("zstd -q -c '", in, "' > '", out, "'"));
  return ReadAll(out);
}

std::string Sha256(const std::string& path) {
  return "sha256:" + Sh(absl::StrCat("sha256sum '", path, "' | cut -d' ' -f1 | tr -d '\\n'"));
}

// Everything about a tree that an escape could change.
std::string Snapshot(const std::string& dir) {
  return Sh(absl::StrCat("cd '", dir,
                         "' && find . -printf '%p %y %m %U:%G %s %T@ %l\\n' | sort && "
                         "find . -type f -exec sha256sum {} + | sort"));
}

std::string Tree(const std::string& dir) {
  return Sh(absl::StrCat(BERTH_SOURCE_DIR, "/tests/fixtures/tree.sh '", dir, "'"));
}

std::string GetXattr(const std::string& path, const std::string& name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof(buf));
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<size_t>(n));
}

bool IsWhiteout(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// A source tree with every kind of entry, archived by GNU tar (pax, xattrs, numeric owners).
class GnuTarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = tmp_ / "src";
    Sh(absl::StrCat(
        "set -e; mkdir -p '", src_, "' && cd '", src_,
        "' && mkdir -p dir/sub empty && printf 'hello\\n' > dir/file && "
        "head -c 300000 /dev/urandom > dir/big && printf '#!/bin/sh\\n' > setuid && "
        "chmod 4755 setuid && printf 'secret' > private && chmod 0600 private && "
        "chown 1000:1000 private dir/sub && chmod 2775 dir/sub && "
        "ln -s ../dir/file dir/sub/rel && ln -s /etc/shadow abs && ln -s /nonexistent dangling && "
        "ln dir/file hard && mknod chardev c 1 3 && mkfifo fifo && chmod 0640 fifo && "
        "setfattr -n user.berth.test -v hello-xattr dir/file && "
        "touch -h -d @1600000000 abs dir/file private chardev && touch -d @1500000000 dir/sub && "
        "tar --format=pax --xattrs --xattrs-include='*' --numeric-owner --sort=name "
        "-cf ../layer.tar ."));
    tar_ = ReadAll(tmp_ / "layer.tar");
  }
  TempDir tmp_;
  std::string src_, tar_;
};

TEST_F(GnuTarTest, EveryCompressionAndChunkSizeGivesTheSameTree) {
  const std::string want = Tree(src_);
  const std::string diff_id = Sha256(tmp_ / "layer.tar");
  int n = 0;
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    std::string blob = Compress(tmp_, tar_, c);
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
      SCOPED_TRACE(absl::StrCat("compression ", static_cast<int>(c), " chunk ", chunk));
      std::string dir = tmp_ / absl::StrCat("out", n++);
      ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
      auto r = Unpack(dir, blob, c, chunk);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->diff_id.ToString(), diff_id);
      EXPECT_EQ(r->compressed_bytes, blob.size());
      EXPECT_EQ(r->uncompressed_bytes, tar_.size());
      EXPECT_EQ(Tree(dir), want);
      struct stat st;
      ASSERT_EQ(::lstat((dir + "/setuid").c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, 04755u);
      ASSERT_EQ(::lstat((dir + "/private").c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, 0600u);
      EXPECT_EQ(st.st_uid, 1000u);
      EXPECT_EQ(st.st_gid, 1000u);
      EXPECT_EQ(st.st_mtime, 1600000000);
      ASSERT_EQ(::lstat((dir + "/abs").c_str(), &st), 0);
      EXPECT_EQ(st.st_mtime, 1600000000);
      ASSERT_EQ(::lstat((dir + "/dir/sub").c_str(), &st), 0);
      EXPECT_EQ(st.st_mtime, 1500000000);  // a directory's time survives its children
      EXPECT_EQ(st.st_mode & 07777, 02775u);
      ASSERT_EQ(::lstat((dir + "/chardev").c_str(), &st), 0);
      EXPECT_TRUE(S_ISCHR(st.st_mode));
      EXPECT_EQ(st.st_rdev, makedev(1, 3));
      ASSERT_EQ(::lstat((dir + "/fifo").c_str(), &st), 0);
      EXPECT_TRUE(S_ISFIFO(st.st_mode));
      EXPECT_EQ(st.st_mode & 07777, 0640u);
      struct stat a, b;
      ASSERT_EQ(::lstat((dir + "/hard").c_str(), &a), 0);
      ASSERT_EQ(::lstat((dir + "/dir/file").c_str(), &b), 0);
      EXPECT_EQ(a.st_ino, b.st_ino);
      EXPECT_EQ(GetXattr(dir + "/dir/file", "user.berth.test"), "hello-xattr");
      // Symlinks are stored as written, never resolved.
      char buf[256];
      ssize_t len = ::readlink((dir + "/abs").c_str(), buf, sizeof(buf));
      EXPECT_EQ(std::string(buf, len > 0 ? len : 0), "/etc/shadow");
      Sh(absl::StrCat("rm -rf '", dir, "'"));
    }
  }
}

TEST_F(GnuTarTest, CancelMidStreamStopsTheExtractor) {
  std::string dir = tmp_ / "out";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  auto u = LayerUnpacker::Create(dir, Compression::kNone);
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE((*u)->Write(tar_.data(), tar_.size() / 2).ok());
  (*u)->Cancel();
  EXPECT_FALSE((*u)->Write("x", 1).ok());
  EXPECT_FALSE((*u)->Finish().ok());
  // And a destructor without Finish, with the extractor waiting for more.
  auto v = LayerUnpacker::Create(dir, Compression::kGzip);
  ASSERT_TRUE(v.ok());
}

TEST(UnpackTest, WhiteoutsBecomeOverlayWhiteouts) {
  TempDir tmp;
  std::string tar = TarBuilder()
                        .Dir("a/")
                        .File("a/x", "x in this layer")
                        .File("a/.wh.gone", "")
                        .File("a/.wh.x", "")
                        .Dir("o/")
                        .File("o/.wh..wh..opq", "")
                        .File("o/keep", "kept")
                        .File("o/.wh..wh.plnk", "")
                        .File("deep/missing/parent/.wh.y", "")
                        .Finish();
  auto r = Unpack(tmp.path(), tar, Compression::kNone);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 9u);
  EXPECT_TRUE(IsWhiteout(tmp / "a/gone"));
  EXPECT_TRUE(IsWhiteout(tmp / "a/x"));
  EXPECT_TRUE(IsWhiteout(tmp / "deep/missing/parent/y"));
  EXPECT_EQ(GetXattr(tmp / "o", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(GetXattr(tmp / "a", "trusted.overlay.opaque"), "<none>");
  EXPECT_EQ(ReadAll(tmp / "o/keep"), "kept");
  EXPECT_EQ(Sh(absl::StrCat("find '", tmp.path(), "' -name '.wh.*'")), "");
}

TEST(UnpackTest, OverlayXattrsFromTheTarAreDropped) {
  TempDir tmp;
  std::string tar = TarBuilder()
                        .Add({.name = "d/",
                              .type = '5',
                              .mode = 0755,
                              .pax = {{"SCHILY.xattr.trusted.overlay.redirect", "/etc"},
                                      {"SCHILY.xattr.trusted.berth", "kept"}}})
                        .Finish();
  auto r = Unpack(tmp.path(), tar, Compression::kNone);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(GetXattr(tmp / "d", "trusted.overlay.redirect"), "<none>");
  EXPECT_EQ(GetXattr(tmp / "d", "trusted.berth"), "kept");
}

TEST(UnpackTest, ReplacesExistingEntries) {
  TempDir tmp;
  std::string tar = TarBuilder()
                        .File("f", "file")
                        .Dir("f/")  // a directory replaces a file
                        .File("f/inside", "1")
                        .File("f", "file again")  // a file replaces a directory tree
                        .Symlink("s", "/etc/passwd")
                        .File("s", "not through the symlink")  // replaces the symlink
                        .Dir("d/", 0700)
                        .File("d/child", "c")
                        .Dir("d/", 0755)  // a directory over a directory: metadata only
                        .Finish();
  auto r = Unpack(tmp.path(), tar, Compression::kNone);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(tmp / "f"), "file again");
  EXPECT_EQ(ReadAll(tmp / "s"), "not through the symlink");
  EXPECT_EQ(ReadAll(tmp / "d/child"), "c");
  struct stat st;
  ASSERT_EQ(::lstat((tmp / "d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST(UnpackTest, Utf8AndLongNames) {
  TempDir tmp;
  const std::string utf8 = "d\xc3\xa9j\xc3\xa0/\xe6\x97\xa5\xe6\x9c\xac.txt";  // déjà/日本.txt
  const std::string long_name = "l/" + std::string(150, 'n') + "/" + std::string(200, 'm');
  std::string pax = TarBuilder()
                        .Add({.name = "x", .type = '0', .data = "utf8", .pax = {{"path", utf8}}})
                        .File(long_name, "long")
                        .Symlink("s", std::string(300, 't'))
                        .Finish();
  auto r = Unpack(tmp.path(), pax, Compression::kNone);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(tmp / utf8), "utf8");
  EXPECT_EQ(ReadAll(tmp / long_name), "long");
  // GNU long names ('L' and 'K' headers).
  std::string dir = tmp / "gnu";
  Sh(absl::StrCat("set -e; mkdir -p '", tmp.path(), "/src/", std::string(120, 'g'), "' && cd '",
                  tmp.path(), "/src' && echo hi > ", std::string(120, 'g'), "/",
                  std::string(120, 'h'), " && ln -s ", std::string(120, 'g'), "/",
                  std::string(120, 'h'), " ", std::string(120, 'k'),
                  " && tar --format=gnu -cf ../gnu.tar . && mkdir '", dir, "'"));
  r = Unpack(dir, ReadAll(tmp / "gnu.tar"), Compression::kNone, 7);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(dir + "/" + std::string(120, 'k')), "hi\n");
}

// ---- the `layers` fixture image ------------------------------------------------------------

TEST(UnpackFixtureTest, LayersImageMergedWithOverlayIsTheExpectedTree) {
  const std::string images = BERTH_FIXTURE_IMAGES;
  Sh(absl::StrCat(BERTH_SOURCE_DIR, "/tests/fixtures/build-images.sh '", images, "' >/dev/null"));
  const std::string layout = images + "/layers";
  auto blob = [&](const std::string& digest) {
    return ReadAll(layout + "/blobs/sha256/" + digest.substr(7));
  };
  auto index = nlohmann::json::parse(ReadAll(layout + "/index.json"));
  auto manifest = nlohmann::json::parse(blob(index["manifests"][0]["digest"]));
  auto config = nlohmann::json::parse(blob(manifest["config"]["digest"]));
  ASSERT_EQ(manifest["layers"].size(), 4u);
  TempDir tmp;
  std::vector<std::string> dirs;
  for (size_t i = 0; i < 4; ++i) {
    std::string dir = tmp / absl::StrCat("layer", i + 1);
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    std::string data = blob(manifest["layers"][i]["digest"]);
    auto r = Unpack(dir, data, Compression::kGzip, 65536);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->diff_id.ToString(), config["rootfs"]["diff_ids"][i].get<std::string>());
    dirs.push_back(dir);
  }
  // Layer by layer, the whiteouts and the opaque marker.
  EXPECT_TRUE(IsWhiteout(dirs[2] + "/etc/berth/deleted-file"));
  EXPECT_TRUE(IsWhiteout(dirs[2] + "/opt/deleted-dir"));
  EXPECT_TRUE(IsWhiteout(dirs[2] + "/opt/recreated"));
  EXPECT_EQ(GetXattr(dirs[2] + "/opt/opaque", "trusted.overlay.opaque"), "y");
  EXPECT_TRUE(IsWhiteout(dirs[3] + "/bin/yes"));
  EXPECT_FALSE(Exists(dirs[3] + "/bin/.wh.yes"));
  // Each layer holds what GNU tar lists, with .wh.X as X.
  for (size_t i = 0; i < 4; ++i) {
    std::string listed = Sh(absl::StrCat(
        "tar -tzf '", layout, "/blobs/sha256/",
        manifest["layers"][i]["digest"].get<std::string>().substr(7),
        "' | sed -e 's,/$,,' -e 's,\\.wh\\.\\.wh\\.\\.opq$,,' -e 's,/$,,' -e 's,\\.wh\\.,,' | "
        "grep -v '^$' | sort -u"));
    std::string found =
        Sh(absl::StrCat("cd '", dirs[i], "' && find . -mindepth 1 -printf '%P\\n' | sort"));
    EXPECT_EQ(found, listed) << "layer " << i + 1;
  }
  // The real merge: a read-only overlay mount of the four layers, compared with layers.tree.
  std::string merged = tmp / "merged";
  ASSERT_EQ(::mkdir(merged.c_str(), 0755), 0);
  CommandResult m = RunCommand(
      {"/bin/mount", "-t", "overlay", "overlay", "-o",
       absl::StrCat("ro,lowerdir=", dirs[3], ":", dirs[2], ":", dirs[1], ":", dirs[0]), merged});
  if (m.exit_code != 0) GTEST_SKIP() << "overlay mount failed: " << m.err;
  std::string tree =
      Sh(absl::StrCat(BERTH_SOURCE_DIR, "/tests/fixtures/tree.sh -x bin/busybox '", merged, "'"));
  CommandResult u = RunCommand({"/bin/umount", merged});
  EXPECT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(tree, ReadAll(absl::StrCat(BERTH_SOURCE_DIR, "/tests/fixtures/layers.tree")));
}

// ---- hostile layers ----------------------------------------------------------------------------

// The layer is extracted into <tmp>/a/b/layer; <tmp>/sentinel and <tmp>/a/sentinel must not
// change, nor /etc.
class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    layer_ = tmp_ / "a/b/layer";
    Sh(absl::StrCat("set -e; cd '", tmp_.path(),
                    "' && mkdir -p a/b/layer sentinel/etc a/sentinel && echo s > sentinel/file && "
                    "echo p > sentinel/etc/passwd && echo a > a/sentinel/file && "
                    "ln -s ../sentinel a/sentinel-link"));
    before_ = Snapshot(tmp_.path() + "/sentinel") + Snapshot(tmp_ / "a/sentinel");
    etc_ = Sh("sha256sum /etc/passwd /etc/shadow; stat -c '%i %Y %Z' /etc/passwd /etc/shadow");
  }
  void TearDown() override {
    EXPECT_EQ(Snapshot(tmp_.path() + "/sentinel") + Snapshot(tmp_ / "a/sentinel"), before_);
    EXPECT_EQ(Sh("sha256sum /etc/passwd /etc/shadow; stat -c '%i %Y %Z' /etc/passwd /etc/shadow"),
              etc_);
    EXPECT_FALSE(Exists("/etc/evil"));
    EXPECT_FALSE(Exists("/evil"));
    EXPECT_FALSE(Exists(tmp_ / "evil"));
    EXPECT_FALSE(Exists(tmp_ / "a/evil"));
    EXPECT_FALSE(Exists(tmp_ / "a/b/evil"));
  }
  absl::StatusOr<UnpackResult> Run(const std::string& tar, UnpackOptions o = {}) {
    return Unpack(layer_, tar, Compression::kNone, 4096, o);
  }
  TempDir tmp_;
  std::string layer_, before_, etc_;
};

TEST_F(HostileTest, DotDotIsRefused) {
  for (const char* name : {"../evil", "../../evil", "x/../../../evil", "a/..", "..",
                           "./../../../../../../../../../etc/evil"}) {
    auto r = Run(TarBuilder().File(name, "pwned").Finish());
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.status().message().find(absl::StrCat("layer entry \"", name, "\"")),
              absl::string_view::npos)
        << r.status();
    EXPECT_NE(r.status().message().find(".."), absl::string_view::npos);
  }
}

TEST_F(HostileTest, AbsolutePathsAreConfined) {
  auto r = Run(TarBuilder().File("/etc/evil", "pwned").File("//evil", "x").Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(layer_ + "/etc/evil"), "pwned");
  EXPECT_EQ(ReadAll(layer_ + "/evil"), "x");
}

TEST_F(HostileTest, SymlinkToRootIsConfined) {
  auto r = Run(TarBuilder()
                   .Symlink("x", "/")
                   .File("x/etc/evil", "pwned")
                   .Symlink("y", "/etc")
                   .File("y/evil2", "pwned")
                   .Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(layer_ + "/etc/evil"), "pwned");
  EXPECT_EQ(ReadAll(layer_ + "/etc/evil2"), "pwned");
}

TEST_F(HostileTest, SymlinkUpwardsIsConfined) {
  auto r = Run(TarBuilder()
                   .Symlink("up", "../../..")
                   .File("up/sentinel/evil", "pwned")
                   .File("up/evil", "pwned")
                   .Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(layer_ + "/sentinel/evil"), "pwned");
  EXPECT_EQ(ReadAll(layer_ + "/evil"), "pwned");
}

TEST_F(HostileTest, DirectoryReplacedBySymlinkThenWrittenThrough) {
  auto r = Run(TarBuilder()
                   .Dir("d/")
                   .File("d/ok", "ok")
                   .Symlink("d", "/")
                   .File("d/etc/evil", "pwned")
                   .Symlink("e", "../..")
                   .Dir("e/sentinel/")
                   .File("e/sentinel/evil", "pwned")
                   .Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(layer_ + "/etc/evil"), "pwned");
  EXPECT_EQ(ReadAll(layer_ + "/sentinel/evil"), "pwned");
  EXPECT_FALSE(Exists(layer_ + "/d/ok"));
}

TEST_F(HostileTest, SymlinkToAnOutsideAbsolutePathIsNotFollowed) {
  // The target does not exist inside the layer: the missing parent cannot be created
  // through a dangling symlink, so the entry fails.
  std::string outside = tmp_.path() + "/sentinel";
  auto r = Run(TarBuilder().Symlink("d", outside).File("d/evil", "pwned").Finish());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("layer entry \"d/evil\""), absl::string_view::npos)
      << r.status();
}

TEST_F(HostileTest, HardLinksOutsideAreRefused) {
  for (const char* target : {"../../etc/passwd", "/etc/shadow", "etc/passwd", "x/etc/passwd"}) {
    auto r = Run(TarBuilder().Symlink("x", "/").Hardlink("h", target).Finish());
    ASSERT_FALSE(r.ok()) << target;
    EXPECT_NE(r.status().message().find("layer entry \"h\""), absl::string_view::npos)
        << r.status();
    EXPECT_FALSE(Exists(layer_ + "/h"));
  }
  // A link to a symlink links the symlink itself.
  auto r = Run(TarBuilder().Symlink("p", "/etc/passwd").Hardlink("h", "p").Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st;
  ASSERT_EQ(::lstat((layer_ + "/h").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(HostileTest, BadNamesAndTypesAreRefused) {
  std::string long_name(PATH_MAX + 10, 'a');
  for (size_t i = 200; i < long_name.size(); i += 200) long_name[i] = '/';
  EXPECT_FALSE(Run(TarBuilder().File(long_name, "x").Finish()).ok());
  EXPECT_FALSE(Run(TarBuilder().Symlink("l", std::string(PATH_MAX + 10, 'a')).Finish()).ok());
  EXPECT_FALSE(Run(TarBuilder().File("./", "not a dir").Finish()).ok());
  EXPECT_FALSE(Run(TarBuilder().File("a/.wh.", "").Finish()).ok());
  EXPECT_FALSE(Run(TarBuilder().File("a/.wh...", "").Finish()).ok());
  EXPECT_FALSE(Run(TarBuilder().Symlink("l", "").Finish()).ok());
}

TEST_F(HostileTest, Limits) {
  UnpackOptions few;
  few.max_entries = 3;
  auto r = Run(TarBuilder().File("1", "").File("2", "").File("3", "").File("4", "").Finish(), few);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();

  // A gzip bomb: 64 MiB of zeros in a ~64 KiB blob, limit 16 MiB.
  Sh(absl::StrCat("cd '", tmp_.path(),
                  "' && truncate -s 64M zeros && tar cf - zeros | gzip -n > bomb.gz && rm zeros"));
  std::string bomb = ReadAll(tmp_ / "bomb.gz");
  EXPECT_LT(bomb.size(), 1u << 20);
  UnpackOptions small;
  small.max_uncompressed_bytes = 16 << 20;
  r = Unpack(layer_, bomb, Compression::kGzip, 1 << 20, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_NE(r.status().message().find("decompression bomb"), absl::string_view::npos);
}

TEST_F(HostileTest, TruncatedCorruptAndMislabelledStreams) {
  std::string tar = TarBuilder().File("f", std::string(100000, 'x')).File("g", "g").Finish();
  std::string gz = Compress(tmp_, tar, Compression::kGzip);
  std::string zst = Compress(tmp_, tar, Compression::kZstd);
  // Truncated compressed streams.
  for (size_t cut : {size_t{1}, size_t{4}, gz.size() / 2, size_t{10}}) {
    auto r = Unpack(layer_, gz.substr(0, gz.size() - cut), Compression::kGzip);
    EXPECT_FALSE(r.ok()) << "gzip cut " << cut;
  }
  for (size_t cut : {size_t{1}, zst.size() / 2}) {
    auto r = Unpack(layer_, zst.substr(0, zst.size() - cut), Compression::kZstd);
    EXPECT_FALSE(r.ok()) << "zstd cut " << cut;
  }
  EXPECT_FALSE(Unpack(layer_, "", Compression::kGzip).ok());
  EXPECT_FALSE(Unpack(layer_, "", Compression::kZstd).ok());
  // Corrupt: a flipped byte in the deflate data.
  std::string bad = gz;
  bad[bad.size() / 2] ^= 0x55;
  EXPECT_FALSE(Unpack(layer_, bad, Compression::kGzip).ok());
  // Garbage after a gzip member.
  EXPECT_FALSE(Unpack(layer_, gz + "garbage!", Compression::kGzip).ok());
  // Mislabelled.
  EXPECT_FALSE(Unpack(layer_, gz, Compression::kZstd).ok());
  EXPECT_FALSE(Unpack(layer_, zst, Compression::kGzip).ok());
  EXPECT_FALSE(Unpack(layer_, tar, Compression::kGzip).ok());
  EXPECT_FALSE(Unpack(layer_, gz, Compression::kNone).ok());
  // A tar cut inside an entry.
  auto r = Unpack(layer_, tar.substr(0, 50000), Compression::kNone);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  // A corrupt header checksum.
  bad = tar;
  bad[0] ^= 1;
  EXPECT_FALSE(Unpack(layer_, bad, Compression::kNone).ok());
}

TEST_F(HostileTest, TrailingDataAndConcatenatedMembers) {
  std::string tar = TarBuilder().File("f", "content").Finish();
  // Garbage after the tar's end is ignored but hashed.
  std::string with_garbage = tar + std::string(5000, 'G');
  WriteAll(tmp_ / "g.tar", with_garbage);
  auto r = Unpack(layer_, with_garbage, Compression::kNone, 7);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id.ToString(), Sha256(tmp_ / "g.tar"));
  // Without the end-of-archive blocks but cut at an entry boundary: accepted, as Go's
  // archive/tar (Docker, containerd) does; the caller checks the diff_id anyway.
  TarBuilder two;
  two.File("f", "content").File("g", std::string(600, 'g'));
  r = Unpack(layer_, two.Unterminated(), Compression::kNone);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadAll(layer_ + "/g"), std::string(600, 'g'));
  // Cut inside a header, or inside the data's padding: refused.
  for (size_t cut : {size_t{100}, size_t{1100}, size_t{1736}, size_t{2200}}) {
    r = Unpack(layer_, two.Unterminated().substr(0, cut), Compression::kNone);
    EXPECT_FALSE(r.ok()) << "cut at " << cut;
  }
  // Two gzip members, split inside the file's data.
  std::string gz = Compress(tmp_, tar.substr(0, 700), Compression::kGzip) +
                   Compress(tmp_, tar.substr(700), Compression::kGzip);
  r = Unpack(layer_, gz, Compression::kGzip, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, Digest::Of(tar));
  EXPECT_EQ(ReadAll(layer_ + "/f"), "content");
  // Two zstd frames.
  std::string zst = Compress(tmp_, tar.substr(0, 700), Compression::kZstd) +
                    Compress(tmp_, tar.substr(700), Compression::kZstd);
  r = Unpack(layer_, zst, Compression::kZstd, 5);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, Digest::Of(tar));
}

}  // namespace
}  // namespace berth::images

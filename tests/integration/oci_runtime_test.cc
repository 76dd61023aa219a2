// berth-oci, berth's runc-compatible OCI runtime, on the real kernel: bundles made from the
// busybox fixture image are run with namespaces, mounts, devices, capabilities, seccomp, hooks,
// a console socket and a user namespace, and checked from inside the container (its stdout) and
// from the host (state, cgroups, mounts). Needs root. The cgroup checks follow the host: v1
// controller hierarchies (hybrid or legacy) or pure cgroup v2 (tests/cg2/run-v2-tests.sh runs
// this binary in a cgroup v2 guest).
//
// Every test has its own --root and bundle (a TempDir), unique container ids and its own
// cgroupsPath under "berth-test-oci/"; TearDown deletes (-f) every container the test made and
// checks that none left a cgroup; the suite removes the (empty) "berth-test-oci" parents with
// rmdir at its end.
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cgroups/resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/process.h"

namespace berth::runtime {
namespace {

using berth::testing::Child;
using berth::testing::CommandResult;
using berth::testing::ReadFileOrEmpty;
using berth::testing::RunCommand;
using berth::testing::TempDir;
using berth::testing::WriteFileOrDie;
using ::testing::ContainerEq;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kBerthOci[] = BERTH_OCI_PATH;
constexpr char kCgroupParent[] = "berth-test-oci";
constexpr char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string Trim(absl::string_view s) {
  return std::string(absl::StripAsciiWhitespace(s));
}

std::vector<std::string> Lines(absl::string_view s) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(s, '\n', absl::SkipEmpty())) {
    out.push_back(Trim(l));
  }
  return out;
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) == nullptr ? path : std::string(buf);
}

std::string Sha256(const std::string& path) {
  CommandResult r = RunCommand({"/usr/bin/sha256sum", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, 64);
}

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

// Whether this host runs pure cgroup v2 (a cgroup2 mount at /sys/fs/cgroup itself, whose root
// has cgroup.controllers) rather than v1 controller hierarchies (hybrid or legacy). Checked here
// independently of the runtime's own detection (cgroups/mode.h).
bool UnifiedHost() {
  static const bool unified = Exists(absl::StrCat(kCgroupRoot, "/cgroup.controllers"));
  return unified;
}

// The hierarchies the runtime may make cgroups in: /sys/fs/cgroup itself on a unified host;
// otherwise every hierarchy mounted under it (v1 controllers, name=systemd, unified).
std::vector<std::string> CgroupHierarchies() {
  if (UnifiedHost()) return {kCgroupRoot};
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kCgroupRoot, ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) out.push_back(e.path().string());
  }
  return out;
}

// Every directory named by `cgroup_path` (relative) in any hierarchy.
std::vector<std::string> CgroupDirs(const std::string& cgroup_path) {
  std::vector<std::string> out;
  for (const std::string& h : CgroupHierarchies()) {
    std::string dir = absl::StrCat(h, "/", cgroup_path);
    if (Exists(dir)) out.push_back(dir);
  }
  return out;
}

// The directory of `cgroup_path` (relative) for a v1 `controller`'s files; on a unified host
// every controller's files are in the one cgroup2 directory.
std::string CgroupDir(absl::string_view controller, const std::string& cgroup_path) {
  return UnifiedHost() ? absl::StrCat(kCgroupRoot, "/", cgroup_path)
                       : absl::StrCat(kCgroupRoot, "/", controller, "/", cgroup_path);
}

// One line of /proc/PID/mountinfo.
struct MountEntry {
  std::string root, point, options, fstype, source, super_options;
};

std::vector<MountEntry> ParseMountInfo(absl::string_view text) {
  std::vector<MountEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    auto dash = std::find(f.begin() + std::min<size_t>(6, f.size()), f.end(), "-");
    if (f.size() < 10 || dash == f.end() || f.end() - dash < 4) continue;
    out.push_back(MountEntry{.root = f[3],
                             .point = f[4],
                             .options = f[5],
                             .fstype = *(dash + 1),
                             .source = *(dash + 2),
                             .super_options = *(dash + 3)});
  }
  return out;
}

// The topmost mount at `point`, or nullptr.
const MountEntry* FindMount(const std::vector<MountEntry>& mounts, absl::string_view point) {
  const MountEntry* found = nullptr;
  for (const MountEntry& m : mounts) {
    if (m.point == point) found = &m;
  }
  return found;
}

bool HasOption(absl::string_view options, absl::string_view option) {
  for (absl::string_view o : absl::StrSplit(options, ',')) {
    if (o == option) return true;
  }
  return false;
}

// "CapEff" -> the mask in /proc/self/status text.
uint64_t CapabilityMask(absl::string_view status, absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, name) || !absl::ConsumePrefix(&line, ":")) continue;
    uint64_t mask = 0;
    EXPECT_TRUE(absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line), &mask)) << line;
    return mask;
  }
  ADD_FAILURE() << name << " not in\n" << status;
  return ~uint64_t{0};
}

// The value of "Key:" in /proc/PID/status text, whitespace normalised.
std::string StatusField(absl::string_view status, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    return absl::StrJoin(absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty()), " ");
  }
  return "<missing>";
}

// A tmpfs mounted on the host by the test, unmounted at the end of the scope.
class HostTmpfs {
 public:
  explicit HostTmpfs(std::string path) : path_(std::move(path)) {
    ::mkdir(path_.c_str(), 0755);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, "size=1m,mode=755") == 0;
  }
  ~HostTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// A unix socket listening at a path, as a --console-socket.
class ConsoleSocket {
 public:
  explicit ConsoleSocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          ::listen(fd_, 4) == 0;
  }
  ~ConsoleSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return ok_; }

  // Accepts the runtime's connection and receives the pty master (SCM_RIGHTS) and the payload
  // sent with it; -1 on failure or after `timeout`.
  int ReceiveMaster(std::string* payload, absl::Duration timeout) {
    struct pollfd p = {.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return -1;
    int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return -1;
    struct pollfd c = {.fd = conn, .events = POLLIN, .revents = 0};
    int master = -1;
    if (::poll(&c, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1) {
      char buf[256];
      char control[CMSG_SPACE(sizeof(int))] = {};
      struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
      struct msghdr msg {};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
      struct cmsghdr* cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
      if (cmsg != nullptr && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&master, CMSG_DATA(cmsg), sizeof(int));
        payload->assign(buf, static_cast<size_t>(n));
      }
    }
    ::close(conn);
    return master;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

// Reads `fd` until EOF/EIO (a pty master whose slave is gone), `until` appears or `timeout`.
std::string ReadUntil(int fd, absl::string_view until, absl::Duration timeout) {
  std::string out;
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline && !absl::StrContains(out, until)) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (::poll(&p, 1, std::max(left, 1)) != 1) continue;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class OciRuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string layout = BERTH_FIXTURE_IMAGES "/busybox";
    // Built (or checked) by the fixture script. In the cgroup v2 guest only the build tree is
    // shared, and tests/cg2/run-v2-tests.sh built the images on the host beforehand: when the
    // script is out of sight, the images already there are used.
    const char* script = BERTH_SOURCE_DIR "/tests/fixtures/build-images.sh";
    if (::access(script, X_OK) == 0 || !Exists(layout + "/index.json")) {
      CommandResult build = RunCommand({script, BERTH_FIXTURE_IMAGES}, absl::Minutes(10));
      ASSERT_EQ(build.exit_code, 0) << build.err;
    }
    auto blob = [&](const std::string& digest) {
      return absl::StrCat(layout, "/blobs/sha256/", absl::StripPrefix(digest, "sha256:"));
    };
    json index = json::parse(ReadFileOrEmpty(layout + "/index.json"), nullptr, false);
    ASSERT_TRUE(index.is_object()) << layout;
    json manifest = json::parse(
        ReadFileOrEmpty(blob(index["manifests"][0]["digest"].get<std::string>())), nullptr, false);
    ASSERT_TRUE(manifest.is_object());
    ASSERT_EQ(manifest["layers"].size(), 1u);
    template_ = new TempDir;
    std::string rootfs = *template_ / "rootfs";
    ASSERT_EQ(::mkdir(rootfs.c_str(), 0755), 0);
    CommandResult tar =
        RunCommand({"/bin/tar", "-xzf", blob(manifest["layers"][0]["digest"].get<std::string>()),
                    "-C", rootfs});
    ASSERT_EQ(tar.exit_code, 0) << tar.err;
    ASSERT_TRUE(Exists(rootfs + "/bin/busybox"));
  }

  static void TearDownTestSuite() {
    delete template_;
    template_ = nullptr;
    // Only the (empty) parents; rmdir fails harmlessly while another run still uses them.
    for (const std::string& h : CgroupHierarchies()) {
      ::rmdir(absl::StrCat(h, "/", kCgroupParent).c_str());
    }
  }

  void SetUp() override {
    ASSERT_NE(template_, nullptr) << "the busybox rootfs could not be prepared";
    bundle_ = dir_ / "bundle";
    root_ = dir_ / "state";
    ASSERT_EQ(::mkdir(bundle_.c_str(), 0755), 0);
    CommandResult cp = RunCommand({"/bin/cp", "-a", *template_ / "rootfs", bundle_ + "/rootfs"});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
    CommandResult spec = Oci({"spec", "--bundle", bundle_});
    ASSERT_EQ(spec.exit_code, 0) << spec.err;
    config_ = json::parse(ReadFileOrEmpty(bundle_ + "/config.json"), nullptr, false);
    ASSERT_TRUE(config_.is_object());
    config_["process"]["terminal"] = false;
  }

  void TearDown() override {
    for (const std::string& id : ids_) {
      CommandResult r = Oci({"delete", "-f", id});
      EXPECT_EQ(r.exit_code, 0) << "delete -f " << id << ": " << r.err;
    }
    for (const std::string& id : ids_) {
      EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty()) << id;
    }
  }

  static std::string CgroupPath(const std::string& id) {
    return absl::StrCat(kCgroupParent, "/", id);
  }

  // berth-oci with this test's --root (and `globals` before the command).
  CommandResult Oci(const std::vector<std::string>& args,
                    const std::vector<std::string>& globals = {},
                    absl::Duration timeout = absl::Seconds(10)) {
    std::vector<std::string> argv = {kBerthOci, "--root", root_};
    argv.insert(argv.end(), globals.begin(), globals.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, timeout);
  }

  // A new container id, with its own cgroupsPath written to config.json with config_.
  std::string Prepare(absl::string_view tag) {
    std::string id = absl::StrCat("oci-", ::getpid(), "-", ++counter_, "-", tag);
    ids_.push_back(id);
    config_["linux"]["cgroupsPath"] = CgroupPath(id);
    WriteFileOrDie(bundle_ + "/config.json", config_.dump(2));
    return id;
  }

  // `berth-oci run` of the bundle with `args`: the container's stdout is the result's out.
  CommandResult Run(const std::vector<std::string>& args, std::string* id_out = nullptr,
                    const std::vector<std::string>& globals = {}) {
    config_["process"]["args"] = args;
    std::string id = Prepare("run");
    if (id_out != nullptr) *id_out = id;
    return Oci({"run", "--bundle", bundle_, id}, globals);
  }

  CommandResult Sh(const std::string& script, std::string* id_out = nullptr) {
    return Run({"sh", "-c", script}, id_out);
  }

  // create (+ start) of the bundle with `args`; fails the test on error. Returns the id.
  std::string Create(const std::vector<std::string>& args, absl::string_view tag = "c") {
    config_["process"]["args"] = args;
    std::string id = Prepare(tag);
    CommandResult r = Oci({"create", "--bundle", bundle_, id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return id;
  }
  std::string StartSleeping(absl::string_view tag = "sleep") {
    std::string id = Create({"sleep", "1000"}, tag);
    CommandResult r = Oci({"start", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return id;
  }

  json State(const std::string& id) {
    CommandResult r = Oci({"state", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j.is_object() ? j : json::object();
  }
  std::string Status(const std::string& id) { return State(id).value("status", "<none>"); }

  // Polls `state` until it says `status`; returns the last status seen.
  std::string WaitForStatus(const std::string& id, const std::string& status,
                            absl::Duration timeout = absl::Seconds(3)) {
    absl::Time deadline = absl::Now() + timeout;
    // The container need not exist yet.
    auto poll = [&] {
      CommandResult r = Oci({"state", id});
      json j = json::parse(r.out, nullptr, false);
      return r.exit_code == 0 && j.is_object() ? j.value("status", "<none>")
                                               : absl::StrCat("<state failed: ", r.err, ">");
    };
    std::string s;
    while ((s = poll()) != status && absl::Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return s;
  }

  void AddMount(const std::string& destination, const std::string& type, const std::string& source,
                const std::vector<std::string>& options) {
    config_["mounts"].push_back(
        {{"destination", destination}, {"type", type}, {"source", source}, {"options", options}});
  }

  static TempDir* template_;
  TempDir dir_;
  std::string bundle_, root_;
  json config_;
  std::vector<std::string> ids_;
  int counter_ = 0;
};

TempDir* OciRuntimeTest::template_ = nullptr;

// ---- the process's environment -----------------------------------------------------------------

TEST_F(OciRuntimeTest, ProcessIsPid1OfANewPidNamespace) {
  CommandResult r = Sh("echo $$; readlink /proc/self/ns/pid");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0], "1");
  char host_ns[256] = {};
  ASSERT_GT(::readlink("/proc/self/ns/pid", host_ns, sizeof host_ns - 1), 0);
  EXPECT_THAT(lines[1], ::testing::StartsWith("pid:["));
  EXPECT_NE(lines[1], host_ns);
}

TEST_F(OciRuntimeTest, HostnameIsSet) {
  config_["hostname"] = "oci-test-host";
  CommandResult r = Sh("hostname; cat /proc/sys/kernel/hostname");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("oci-test-host", "oci-test-host"));
}

TEST_F(OciRuntimeTest, CwdAndEnv) {
  config_["process"]["cwd"] = "/etc";
  config_["process"]["env"] = {kPath, "FOO=bar baz", "EMPTY="};
  CommandResult r =
      Sh("pwd; echo \"[$FOO]\"; echo \"[${EMPTY-unset}]\"; env | grep -c TERM || true");
  ASSERT_EQ(r.exit_code, 0) << r.err;  // only the configured environment: no TERM
  EXPECT_THAT(Lines(r.out), ElementsAre("/etc", "[bar baz]", "[]", "0"));
}

TEST_F(OciRuntimeTest, UserGroupsAndUmask) {
  config_["process"]["user"] = {
      {"uid", 1000}, {"gid", 1001}, {"additionalGids", {10, 2000}}, {"umask", 027}};
  CommandResult r = Sh("id -u; id -g; cat /proc/self/status; echo umask=$(umask)");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "1000");
  EXPECT_EQ(lines[1], "1001");
  EXPECT_EQ(StatusField(r.out, "Uid"), "1000 1000 1000 1000");
  EXPECT_EQ(StatusField(r.out, "Gid"), "1001 1001 1001 1001");
  EXPECT_EQ(StatusField(r.out, "Groups"), "10 2000");
  EXPECT_THAT(r.out, HasSubstr("umask=0027"));
}

TEST_F(OciRuntimeTest, RlimitsAreApplied) {
  config_["process"]["rlimits"] = {
      {{"type", "RLIMIT_NOFILE"}, {"soft", 321}, {"hard", 654}},
      {{"type", "RLIMIT_NPROC"}, {"soft", 4000}, {"hard", 5000}},
  };
  CommandResult r = Sh("ulimit -n; ulimit -Hn; grep -E 'open files|processes' /proc/self/limits");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0], "321");
  EXPECT_EQ(lines[1], "654");
  EXPECT_THAT(lines[2], ::testing::MatchesRegex("Max processes +4000 +5000 +processes"));
  EXPECT_THAT(lines[3], ::testing::MatchesRegex("Max open files +321 +654 +files"));
}

// As root with no_new_privs, the sets after exec are the configured ones (effective =
// permitted = bounding here: for root the kernel makes effective = permitted on exec).
TEST_F(OciRuntimeTest, CapabilitiesOfRoot) {
  std::vector<std::string> caps = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"};
  config_["process"]["capabilities"] = {
      {"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"inheritable", json::array()}};
  CommandResult r = Sh("cat /proc/self/status");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  constexpr uint64_t kMask = (1u << 0) | (1u << 5) | (1u << 13) | (1u << 18);
  EXPECT_EQ(CapabilityMask(r.out, "CapBnd"), kMask);
  EXPECT_EQ(CapabilityMask(r.out, "CapPrm"), kMask);
  EXPECT_EQ(CapabilityMask(r.out, "CapEff"), kMask);
  EXPECT_EQ(CapabilityMask(r.out, "CapInh"), 0u);
  EXPECT_EQ(CapabilityMask(r.out, "CapAmb"), 0u);
}

// A non-root process keeps across exec exactly its ambient set (in permitted and effective).
TEST_F(OciRuntimeTest, AmbientCapabilitiesOfANonRootUser) {
  config_["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  config_["process"]["capabilities"] = {
      {"bounding", {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}},
      {"effective", {"CAP_NET_BIND_SERVICE"}},
      {"permitted", {"CAP_KILL", "CAP_NET_BIND_SERVICE"}},
      {"inheritable", {"CAP_KILL", "CAP_NET_BIND_SERVICE"}},
      {"ambient", {"CAP_NET_BIND_SERVICE"}}};
  CommandResult r = Sh("cat /proc/self/status");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CapabilityMask(r.out, "CapBnd"), (1u << 0) | (1u << 5) | (1u << 10));
  EXPECT_EQ(CapabilityMask(r.out, "CapInh"), (1u << 5) | (1u << 10));
  EXPECT_EQ(CapabilityMask(r.out, "CapAmb"), 1u << 10);
  EXPECT_EQ(CapabilityMask(r.out, "CapPrm"), 1u << 10);
  EXPECT_EQ(CapabilityMask(r.out, "CapEff"), 1u << 10);
}

class SeccompTest : public OciRuntimeTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SeccompTest, ErrnoActionFromTheProfile) {
  config_["process"]["noNewPrivileges"] = GetParam();
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}}}}};
  CommandResult r = Sh("mkdir /dev/shm/d; echo rc=$?; touch /dev/shm/f && echo touched");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("Function not implemented"));
  EXPECT_THAT(Lines(r.out), ElementsAre("rc=1", "touched"));
}

INSTANTIATE_TEST_SUITE_P(NoNewPrivileges, SeccompTest, ::testing::Bool());

// Lowering oom_score_adj needs CAP_SYS_RESOURCE. A runtime that lacks it (this is decided by
// the bounding set: berth-oci is exec'd by root, so it gets the whole bounding set) keeps the
// current value, warns on stderr and in the --log, and still runs the container; one that has it
// applies the value and has nothing to warn about.
TEST_F(OciRuntimeTest, NegativeOomScoreAdjIsClampedWithAWarning) {
  int can_lower = ::prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0);
  ASSERT_GE(can_lower, 0) << std::strerror(errno);
  config_["process"]["oomScoreAdj"] = -500;
  std::string log = dir_ / "oci.log";
  config_["process"]["args"] = {"cat", "/proc/self/oom_score_adj"};
  std::string id = Prepare("oom");
  CommandResult r = Oci({"run", "--bundle", bundle_, id}, {"--log", log, "--log-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool logged = false;
  for (const std::string& line : Lines(ReadFileOrEmpty(log))) {
    json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    if (j.value("level", "") == "warning" &&
        absl::StrContains(j.value("msg", ""), "oom_score_adj")) {
      logged = true;
    }
  }
  if (can_lower == 1) {
    SCOPED_TRACE("CAP_SYS_RESOURCE is in the bounding set: -500 is applied");
    EXPECT_EQ(Trim(r.out), "-500");
    EXPECT_THAT(r.err, Not(HasSubstr("oom_score_adj")));
    EXPECT_FALSE(logged) << ReadFileOrEmpty(log);
  } else {
    SCOPED_TRACE("no CAP_SYS_RESOURCE in the bounding set: the current value is kept");
    EXPECT_EQ(Trim(r.out), Trim(ReadFileOrEmpty("/proc/self/oom_score_adj")));
    EXPECT_THAT(r.err, HasSubstr("oom_score_adj"));
    EXPECT_TRUE(logged) << ReadFileOrEmpty(log);
  }
}

TEST_F(OciRuntimeTest, OomScoreAdjIsApplied) {
  config_["process"]["oomScoreAdj"] = 500;
  CommandResult r = Run({"cat", "/proc/self/oom_score_adj"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Trim(r.out), "500");
  EXPECT_THAT(r.err, Not(HasSubstr("oom_score_adj")));
}

// ---- the filesystem ----------------------------------------------------------------------------

TEST_F(OciRuntimeTest, StandardMountsHaveTheirFlags) {
  CommandResult r = Run({"cat", "/proc/self/mountinfo"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<MountEntry> mounts = ParseMountInfo(r.out);
  const MountEntry* root = FindMount(mounts, "/");
  ASSERT_NE(root, nullptr) << r.out;
  EXPECT_TRUE(HasOption(root->options, "ro")) << "root.readonly";
  const MountEntry* proc = FindMount(mounts, "/proc");
  ASSERT_NE(proc, nullptr) << r.out;
  EXPECT_EQ(proc->fstype, "proc");
  const MountEntry* sys = FindMount(mounts, "/sys");
  ASSERT_NE(sys, nullptr) << r.out;
  EXPECT_EQ(sys->fstype, "sysfs");
  for (const char* o : {"ro", "nosuid", "nodev", "noexec"}) {
    EXPECT_TRUE(HasOption(sys->options, o)) << "/sys " << o << ": " << sys->options;
  }
  const MountEntry* dev = FindMount(mounts, "/dev");
  ASSERT_NE(dev, nullptr) << r.out;
  EXPECT_EQ(dev->fstype, "tmpfs");
  EXPECT_TRUE(HasOption(dev->options, "nosuid")) << dev->options;
  EXPECT_TRUE(HasOption(dev->super_options, "mode=755")) << dev->super_options;
  const MountEntry* pts = FindMount(mounts, "/dev/pts");
  ASSERT_NE(pts, nullptr) << r.out;
  EXPECT_EQ(pts->fstype, "devpts");
  EXPECT_TRUE(HasOption(pts->super_options, "ptmxmode=666")) << pts->super_options;
  const MountEntry* shm = FindMount(mounts, "/dev/shm");
  ASSERT_NE(shm, nullptr) << r.out;
  EXPECT_TRUE(HasOption(shm->options, "noexec")) << shm->options;
  // A cgroup2 mount (of the container's cgroup namespace) on a unified host; on a v1 host a
  // tmpfs holding one bind mount per hierarchy.
  const MountEntry* cgroup = FindMount(mounts, "/sys/fs/cgroup");
  ASSERT_NE(cgroup, nullptr) << r.out;
  EXPECT_EQ(cgroup->fstype, UnifiedHost() ? "cgroup2" : "tmpfs");
  EXPECT_TRUE(HasOption(cgroup->options, "ro")) << cgroup->options;
}

TEST_F(OciRuntimeTest, ReadOnlyBindMountFromTheHost) {
  std::string src = dir_ / "ro-src";
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  WriteFileOrDie(src + "/hello", "hello from the host\n");
  AddMount("/mnt/ro", "bind", src, {"bind", "ro"});
  CommandResult r =
      Sh("cat /mnt/ro/hello; touch /mnt/ro/new 2>&1 || echo touch-failed; "
         "grep ' /mnt/ro ' /proc/self/mountinfo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("hello from the host"));
  EXPECT_THAT(r.out, HasSubstr("Read-only file system"));
  EXPECT_THAT(r.out, HasSubstr("touch-failed"));
  std::vector<MountEntry> mounts = ParseMountInfo(r.out.substr(r.out.find("touch-failed")));
  ASSERT_EQ(mounts.size(), 1u) << r.out;
  EXPECT_TRUE(HasOption(mounts[0].options, "ro")) << mounts[0].options;
  EXPECT_FALSE(Exists(src + "/new"));
}

TEST_F(OciRuntimeTest, RecursiveBindMountCarriesSubmounts) {
  std::string src = dir_ / "rbind-src";
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  HostTmpfs sub(src + "/sub");
  ASSERT_TRUE(sub.mounted()) << std::strerror(errno);
  WriteFileOrDie(src + "/sub/inside", "on the submount\n");
  AddMount("/mnt/rbind", "bind", src, {"rbind"});
  AddMount("/mnt/bind", "bind", src, {"bind"});
  CommandResult r = Sh(
      "cat /mnt/rbind/sub/inside; ls -A /mnt/bind/sub | wc -l; touch /mnt/rbind/sub/w && echo ok; "
      "cat /proc/self/mountinfo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_GE(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], "on the submount");
  EXPECT_EQ(lines[1], "0") << "a plain bind does not carry the submount";
  EXPECT_EQ(lines[2], "ok");
  std::vector<MountEntry> mounts = ParseMountInfo(r.out);
  const MountEntry* m = FindMount(mounts, "/mnt/rbind/sub");
  ASSERT_NE(m, nullptr) << r.out;
  EXPECT_EQ(m->fstype, "tmpfs");
  EXPECT_TRUE(Exists(src + "/sub/w"));
}

// "rro" makes the bind and every mount below it read-only (mount_setattr AT_RECURSIVE).
TEST_F(OciRuntimeTest, RecursiveReadOnlyBindMount) {
  std::string src = dir_ / "rro-src";
  ASSERT_EQ(::mkdir(src.c_str(), 0755), 0);
  HostTmpfs sub(src + "/sub");
  ASSERT_TRUE(sub.mounted()) << std::strerror(errno);
  AddMount("/mnt/rro", "bind", src, {"rbind", "rro"});
  CommandResult r =
      Sh("touch /mnt/rro/top 2>/dev/null && echo top-writable; "
         "touch /mnt/rro/sub/deep 2>/dev/null && echo sub-writable; cat /proc/self/mountinfo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("writable")));
  std::vector<MountEntry> mounts = ParseMountInfo(r.out);
  for (const char* point : {"/mnt/rro", "/mnt/rro/sub"}) {
    const MountEntry* m = FindMount(mounts, point);
    ASSERT_NE(m, nullptr) << point << "\n" << r.out;
    EXPECT_TRUE(HasOption(m->options, "ro")) << point << ": " << m->options;
  }
  EXPECT_FALSE(Exists(src + "/top"));
  EXPECT_FALSE(Exists(src + "/sub/deep"));
}

TEST_F(OciRuntimeTest, TmpfsWithSizeAndNoexec) {
  AddMount("/mnt/tmp", "tmpfs", "tmpfs", {"nosuid", "noexec", "size=1m", "mode=1777"});
  CommandResult r =
      Sh("cp /bin/busybox /mnt/tmp/bb && /mnt/tmp/bb true 2>/dev/null || echo exec-refused; "
         "stat -c %a /mnt/tmp; grep ' /mnt/tmp ' /proc/self/mountinfo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], "exec-refused");
  EXPECT_EQ(lines[1], "1777");
  std::vector<MountEntry> mounts = ParseMountInfo(lines[2]);
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].fstype, "tmpfs");
  EXPECT_TRUE(HasOption(mounts[0].options, "noexec")) << mounts[0].options;
  EXPECT_TRUE(HasOption(mounts[0].options, "nosuid")) << mounts[0].options;
  EXPECT_TRUE(HasOption(mounts[0].super_options, "size=1024k")) << mounts[0].super_options;
}

TEST_F(OciRuntimeTest, MaskedAndReadOnlyPaths) {
  // This kernel may lack /proc/kcore (checked when present); /proc/version is masked too so
  // that a masked file is always checked.
  config_["linux"]["maskedPaths"].push_back("/proc/version");
  ASSERT_FALSE(std::filesystem::is_empty("/sys/firmware"));
  CommandResult r =
      Sh("wc -c < /proc/version; ls -A /sys/firmware | wc -l; "
         "if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo 0; fi; "
         "(echo x > /proc/sys/kernel/hostname) || echo write-failed; hostname");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("0", "0", "0", "write-failed", "berth"));
  EXPECT_THAT(r.err, HasSubstr("Read-only file system"));
}

TEST_F(OciRuntimeTest, DefaultDeviceNodes) {
  CommandResult r =
      Sh("for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a %u:%g' /dev/$d; "
         "done; for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done; "
         "echo hi > /dev/null && head -c 4 /dev/zero | wc -c");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("/dev/null character special file 1:3 666 0:0",
                                        "/dev/zero character special file 1:5 666 0:0",
                                        "/dev/full character special file 1:7 666 0:0",
                                        "/dev/random character special file 1:8 666 0:0",
                                        "/dev/urandom character special file 1:9 666 0:0",
                                        "/dev/tty character special file 5:0 666 0:0", "pts/ptmx",
                                        "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1",
                                        "/proc/self/fd/2", "4"));
}

// linux.devices are created and allowed; the device cgroup denies any other node, even one
// made with mknod (allowed: "c *:* m").
TEST_F(OciRuntimeTest, SpecDevicesAndTheDeviceCgroup) {
  config_["linux"]["devices"] = {{{"path", "/dev/fuse"},
                                  {"type", "c"},
                                  {"major", 10},
                                  {"minor", 229},
                                  {"fileMode", 0620},
                                  {"uid", 0},
                                  {"gid", 5}}};
  std::vector<std::string> caps = {"CAP_MKNOD", "CAP_CHOWN", "CAP_DAC_OVERRIDE"};
  config_["process"]["capabilities"] = {
      {"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  CommandResult r = Sh(
      "stat -c '%F %t:%T %a %u:%g' /dev/fuse; (: > /dev/fuse) && echo fuse-opened; "
      "busybox mknod /dev/null2 c 1 3 && (: > /dev/null2) && echo null2-opened; "
      "busybox mknod /dev/kmsg2 c 1 11 && echo kmsg2-made; (: > /dev/kmsg2) || echo kmsg2-denied; "
      "busybox mknod /dev/mem c 1 1 && echo mem-made; head -c 1 /dev/mem || echo mem-denied");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out),
              ElementsAre("character special file a:e5 620 0:5", "fuse-opened", "null2-opened",
                          "kmsg2-made", "kmsg2-denied", "mem-made", "mem-denied"));
  EXPECT_THAT(r.err, HasSubstr("Operation not permitted"));
}

// A mount destination that is a symlink in the image resolves inside the rootfs: the tmpfs
// lands on the rootfs's /etc, never on the host's.
class SymlinkEscapeTest : public OciRuntimeTest,
                          public ::testing::WithParamInterface<const char*> {};

TEST_P(SymlinkEscapeTest, MountOnASymlinkStaysInTheRootfs) {
  auto host_etc = [] {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator("/etc")) {
      names.insert(e.path().filename().string());
    }
    struct stat st {};
    ::stat("/etc", &st);
    return std::make_tuple(names, st.st_ino, st.st_dev, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  };
  auto before = host_etc();
  std::string rootfs = bundle_ + "/rootfs";
  ASSERT_EQ(::symlink(GetParam(), (rootfs + "/escape").c_str()), 0);
  AddMount("/escape", "tmpfs", "tmpfs", {"size=1m"});
  CommandResult r =
      Sh("grep -c ' /etc ' /proc/self/mountinfo; ls -A /etc | wc -l; "
         "touch /etc/escape-marker && echo touched");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("1", "0", "touched"));
  EXPECT_EQ(host_etc(), before);
  EXPECT_FALSE(Exists("/etc/escape-marker"));
  EXPECT_FALSE(Exists(rootfs + "/etc/escape-marker"));
  EXPECT_TRUE(Exists(rootfs + "/etc/passwd"));
}

INSTANTIATE_TEST_SUITE_P(Targets, SymlinkEscapeTest,
                         ::testing::Values("/etc", "../../../../etc", "../../../../../../etc"));

// ---- a user namespace --------------------------------------------------------------------------

TEST_F(OciRuntimeTest, UserNamespaceWithMappings) {
  // The init runs as host uid 100000: the rootfs is its, and the path to it is traversable.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  CommandResult chown =
      RunCommand({"/bin/chown", "-R", "100000:100000", bundle_ + "/rootfs"}, absl::Seconds(30));
  ASSERT_EQ(chown.exit_code, 0) << chown.err;
  config_["linux"]["namespaces"].push_back({{"type", "user"}});
  config_["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  config_["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  AddMount("/mnt/t", "tmpfs", "tmpfs", {"size=1m"});
  std::string id;
  CommandResult r = Sh(
      "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /mnt/t/f && stat -c %u:%g /mnt/t/f; "
      "stat -c %u:%g /bin/busybox; readlink /proc/self/ns/user",
      &id);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  auto words = [](const std::string& s) {
    return absl::StrJoin(absl::StrSplit(s, ' ', absl::SkipEmpty()), " ");
  };
  EXPECT_EQ(words(lines[0]), "0 100000 65536");
  EXPECT_EQ(words(lines[1]), "0 100000 65536");
  EXPECT_EQ(lines[2], "0");
  EXPECT_EQ(lines[3], "0:0");
  EXPECT_EQ(lines[4], "0:0");
  char host_ns[256] = {};
  ASSERT_GT(::readlink("/proc/self/ns/user", host_ns, sizeof host_ns - 1), 0);
  EXPECT_NE(lines[5], host_ns);
}

// ---- the terminal ------------------------------------------------------------------------------

// Without --console-socket a foreground `run` or `exec -t` relays the terminal itself (runc's
// behaviour): the container's stdio is a pty, its output reaches ours, its exit code is ours.
TEST_F(OciRuntimeTest, ForegroundRunAndExecRelayTheTerminal) {
  config_["process"]["terminal"] = true;
  config_["process"]["args"] = {"sh", "-c", "tty; echo out; exit 5"};
  std::string id = Prepare("relay");
  CommandResult r = Oci({"run", "--bundle", bundle_, id});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("/dev/pts/0", "out")) << r.out;
  EXPECT_FALSE(Exists(root_ + "/" + id));

  config_["process"]["terminal"] = false;
  std::string sleeper = StartSleeping("relay-exec");
  CommandResult e = Oci({"exec", "-t", sleeper, "sh", "-c", "tty; exit 4"});
  EXPECT_EQ(e.exit_code, 4) << e.err;
  EXPECT_THAT(e.out, HasSubstr("/dev/pts/")) << e.out;
  // The private console sockets are gone.
  for (const auto& entry : std::filesystem::directory_iterator(root_)) {
    EXPECT_FALSE(absl::StartsWith(entry.path().filename().string(), "console-")) << entry.path();
  }
}

TEST_F(OciRuntimeTest, TerminalThroughTheConsoleSocket) {
  std::string path = dir_ / "console.sock";
  ConsoleSocket socket(path);
  ASSERT_TRUE(socket.ok()) << std::strerror(errno);
  config_["process"]["terminal"] = true;
  config_["process"]["args"] = {"sh", "-c",
                                "busybox tty; [ -t 0 ] && echo stdin-is-a-tty; "
                                "stat -c 'console %t:%T' /dev/console $(busybox tty); echo end"};
  std::string id = Prepare("tty");
  CommandResult c = Oci({"create", "--bundle", bundle_, "--console-socket", path, id});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  std::string name;
  int master = socket.ReceiveMaster(&name, absl::Seconds(2));
  ASSERT_GE(master, 0) << "no pty master on the console socket";
  CommandResult s = Oci({"start", id});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::string out = ReadUntil(master, "end", absl::Seconds(3));
  ::close(master);
  EXPECT_THAT(name, ::testing::StartsWith("/dev/pts/"));
  EXPECT_THAT(out, HasSubstr(name + "\r\n"));
  EXPECT_THAT(out, HasSubstr("stdin-is-a-tty"));
  // /dev/console is the terminal (a bind mount of the pty's slave).
  std::vector<std::string> consoles;
  for (absl::string_view line : absl::StrSplit(out, "\r\n")) {
    if (absl::StartsWith(line, "console ")) consoles.emplace_back(line);
  }
  ASSERT_EQ(consoles.size(), 2u) << out;
  EXPECT_EQ(consoles[0], consoles[1]);
}

// Exec'd processes run in the foreground here (a background berth-oci exec): a detached one is
// reparented to the host's init (its parent is outside the container's pid namespace), and a
// dying container init waits in the kernel until that init reaps it, which this host's init does
// only every second or so.
TEST_F(OciRuntimeTest, ExecWithATerminal) {
  std::string id = StartSleeping("exec-tty");
  std::string path = dir_ / "exec-console.sock";
  ConsoleSocket socket(path);
  ASSERT_TRUE(socket.ok()) << std::strerror(errno);
  Child exec;
  exec.Start({kBerthOci, "--root", root_, "exec", "--tty", "--console-socket", path, id, "sh", "-c",
              "busybox tty; [ -t 1 ] && echo stdout-is-a-tty; read line; echo got-$line"},
             dir_ / "exec.log");
  std::string name;
  int master = socket.ReceiveMaster(&name, absl::Seconds(2));
  ASSERT_GE(master, 0) << "no pty master on the console socket: "
                       << ReadFileOrEmpty(dir_ / "exec.log");
  std::string out = ReadUntil(master, "stdout-is-a-tty", absl::Seconds(3));
  ASSERT_EQ(::write(master, "input\n", 6), 6);
  out += ReadUntil(master, "got-input", absl::Seconds(3));
  int status = exec.Wait(absl::Seconds(3));
  ::close(master);
  EXPECT_THAT(name, ::testing::StartsWith("/dev/pts/"));
  EXPECT_THAT(out, HasSubstr(name + "\r\n"));
  EXPECT_THAT(out, HasSubstr("stdout-is-a-tty"));
  EXPECT_THAT(out, HasSubstr("got-input"));
  ASSERT_NE(status, -1) << "exec did not return";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << status << ReadFileOrEmpty(dir_ / "exec.log");
}

// ---- lifecycle ---------------------------------------------------------------------------------

TEST_F(OciRuntimeTest, CreateDoesNotRunTheProcessUntilStart) {
  std::string shared = dir_ / "shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0755), 0);
  AddMount("/shared", "bind", shared, {"rbind", "rw"});
  std::string pid_file = dir_ / "pid";
  config_["process"]["args"] = {"sh", "-c", "touch /shared/marker; exec sleep 1000"};
  std::string id = Prepare("created");
  CommandResult c = Oci({"create", "--bundle", bundle_, "--pid-file", pid_file, id});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  json state = State(id);
  EXPECT_EQ(state["status"], "created");
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Trim(ReadFileOrEmpty(pid_file)), &pid));
  EXPECT_EQ(state["pid"], pid);
  EXPECT_EQ(::kill(pid, 0), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(Exists(shared + "/marker")) << "the process ran before start";
  EXPECT_EQ(Status(id), "created");

  CommandResult s = Oci({"start", id});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (!Exists(shared + "/marker") && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(Exists(shared + "/marker"));
  EXPECT_EQ(Status(id), "running");
  CommandResult again = Oci({"start", id});
  EXPECT_NE(again.exit_code, 0) << "a second start";

  ASSERT_EQ(Oci({"kill", id, "KILL"}).exit_code, 0);
  EXPECT_EQ(WaitForStatus(id, "stopped"), "stopped");
  EXPECT_EQ(State(id)["pid"], 0);
  CommandResult d = Oci({"delete", id});
  EXPECT_EQ(d.exit_code, 0) << d.err;
}

TEST_F(OciRuntimeTest, ExitCodeOfTheProcess) {
  CommandResult r = Sh("echo before; exit 3");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(Trim(r.out), "before");
}

// Without a pid namespace of its own the process can kill itself (a pid 1 could not).
TEST_F(OciRuntimeTest, SignalDeathIs128PlusTheSignal) {
  json namespaces = json::array();
  for (const json& ns : config_["linux"]["namespaces"]) {
    if (ns["type"] != "pid") namespaces.push_back(ns);
  }
  config_["linux"]["namespaces"] = namespaces;
  CommandResult r = Sh("kill -KILL $$; echo survived");
  EXPECT_EQ(r.exit_code, 137) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("survived")));
}

// `run` waits for the container; a SIGKILL from `kill` ends it with 137.
TEST_F(OciRuntimeTest, RunReportsAKillFromOutside) {
  config_["process"]["args"] = {"sleep", "1000"};
  std::string id = Prepare("run-killed");
  Child run;
  run.Start({kBerthOci, "--root", root_, "run", "--bundle", bundle_, id}, dir_ / "run.log");
  EXPECT_EQ(WaitForStatus(id, "running"), "running") << ReadFileOrEmpty(dir_ / "run.log");
  CommandResult k = Oci({"kill", id, "SIGKILL"});
  EXPECT_EQ(k.exit_code, 0) << k.err;
  int status = run.Wait(absl::Seconds(5));
  ASSERT_NE(status, -1) << "run did not return";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 137) << ReadFileOrEmpty(dir_ / "run.log");
  EXPECT_FALSE(Exists(root_ + "/" + id)) << "run deletes the container";
}

// pid 1 of a pid namespace only gets the signals it handles (the kernel's rule): the shell
// traps SIGTERM.
TEST_F(OciRuntimeTest, KillWithSigtermStopsTheContainer) {
  std::string id =
      Create({"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"}, "sigterm");
  ASSERT_EQ(Oci({"start", id}).exit_code, 0);
  EXPECT_EQ(Status(id), "running");
  CommandResult k = Oci({"kill", id});  // SIGTERM by default
  EXPECT_EQ(k.exit_code, 0) << k.err;
  EXPECT_EQ(WaitForStatus(id, "stopped"), "stopped");
  CommandResult again = Oci({"kill", id, "TERM"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("not running"));
}

TEST_F(OciRuntimeTest, KillAllSignalsEveryProcess) {
  std::string id = StartSleeping();
  std::string pid_file = dir_ / "exec.pid";
  Child exec;
  exec.Start({kBerthOci, "--root", root_, "exec", "--pid-file", pid_file, id, "sleep", "1000"},
             dir_ / "exec.log");
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (ReadFileOrEmpty(pid_file).empty() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CommandResult ps = Oci({"ps", "--format", "json", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_EQ(json::parse(ps.out).get<std::vector<int>>().size(), 2u) << ps.out;
  CommandResult k = Oci({"kill", "--all", id, "KILL"});
  EXPECT_EQ(k.exit_code, 0) << k.err;
  int status = exec.Wait(absl::Seconds(3));
  ASSERT_NE(status, -1) << "the exec'd process survived kill --all";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 137) << status;
  EXPECT_EQ(WaitForStatus(id, "stopped"), "stopped");
}

TEST_F(OciRuntimeTest, HooksRunInOrderWithTheState) {
  // One directory, the same path on the host and in the container (startContainer hooks run
  // in the container).
  std::string hooks = dir_ / "hooks";
  ASSERT_EQ(::mkdir(hooks.c_str(), 0755), 0);
  std::string log = hooks + "/log";
  WriteFileOrDie(log, "");
  std::string script = hooks + "/hook.sh";
  // Logs "NAME STATUS" (the status from the state on stdin) and keeps the state as NAME.json.
  WriteFileOrDie(script, absl::StrCat("state=$(cat)\n",                                       //
                                      "echo \"$state\" > ", hooks, "/\"$1\".json\n",          //
                                      "[ \"$1\" = startContainer ] && sleep 0.3\n",           //
                                      "status=$(echo \"$state\" | ",                          //
                                      "sed -n 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/p')\n",  //
                                      "echo \"$1 $status\" >> ", log, "\n"));
  // startContainer is slow (above): poststart must still come after it, once the process ran.
  auto hook = [&](const char* name) {
    return json::array({{{"path", "/bin/sh"},
                         {"args", {"sh", script, name}},
                         {"env", {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}}});
  };
  config_["hooks"] = {{"prestart", hook("prestart")},
                      {"createRuntime", hook("createRuntime")},
                      {"createContainer", hook("createContainer")},
                      {"startContainer", hook("startContainer")},
                      {"poststart", hook("poststart")},
                      {"poststop", hook("poststop")}};
  AddMount(hooks, "bind", hooks, {"rbind", "rw"});
  std::string pid_file = dir_ / "pid";
  config_["process"]["args"] = {"sh", "-c", absl::StrCat("echo process >> ", log)};
  std::string id = Prepare("hooks");
  CommandResult c = Oci({"create", "--bundle", bundle_, "--pid-file", pid_file, id});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_THAT(
      Lines(ReadFileOrEmpty(log)),
      ElementsAre("prestart creating", "createRuntime creating", "createContainer creating"));
  json prestart = json::parse(ReadFileOrEmpty(hooks + "/prestart.json"), nullptr, false);
  ASSERT_TRUE(prestart.is_object());
  EXPECT_EQ(prestart["id"], id);
  EXPECT_EQ(prestart["bundle"], RealPath(bundle_));
  EXPECT_EQ(absl::StrCat(prestart.value("pid", 0)), Trim(ReadFileOrEmpty(pid_file)));

  CommandResult s = Oci({"start", id});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(WaitForStatus(id, "stopped"), "stopped");
  EXPECT_THAT(Lines(ReadFileOrEmpty(log)),
              ElementsAre("prestart creating", "createRuntime creating", "createContainer creating",
                          "startContainer created", "process", "poststart running"));
  CommandResult d = Oci({"delete", id});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_THAT(
      Lines(ReadFileOrEmpty(log)),
      ElementsAre("prestart creating", "createRuntime creating", "createContainer creating",
                  "startContainer created", "process", "poststart running", "poststop stopped"));
}

// OCI runtime spec, lifecycle: "If any poststart hook fails, the runtime MUST log a warning,
// but the remaining hooks and lifecycle continue as if the hook had succeeded" (and the same for
// poststop hooks).
TEST_F(OciRuntimeTest, AFailingPoststartOrPoststopHookDoesNotSkipTheOthers) {
  std::string log = dir_ / "hooks.log";
  WriteFileOrDie(log, "");
  auto append = [&](const char* name) {
    return json{{"path", "/bin/sh"},
                {"args", {"sh", "-c", absl::StrCat("echo ", name, " >> ", log)}}};
  };
  json fail = {{"path", "/bin/sh"}, {"args", {"sh", "-c", "exit 1"}}};
  config_["hooks"] = {{"poststart", {fail, append("poststart-2")}},
                      {"poststop", {fail, append("poststop-2")}}};
  std::string id = StartSleeping("failing-hooks");
  EXPECT_THAT(Lines(ReadFileOrEmpty(log)), ElementsAre("poststart-2"));
  EXPECT_EQ(Status(id), "running");
  CommandResult d = Oci({"delete", "-f", id});
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_THAT(d.err, HasSubstr("poststop"));
  EXPECT_THAT(Lines(ReadFileOrEmpty(log)), ElementsAre("poststart-2", "poststop-2"));
}

TEST_F(OciRuntimeTest, DeleteLeavesNoMountCgroupOrState) {
  std::string before = ReadFileOrEmpty("/proc/self/mountinfo");
  std::string id = StartSleeping("delete");
  EXPECT_EQ(Status(id), "running");
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), Not(IsEmpty()));
  EXPECT_TRUE(Exists(root_ + "/" + id));
  ASSERT_EQ(Oci({"kill", id, "KILL"}).exit_code, 0);
  ASSERT_EQ(WaitForStatus(id, "stopped"), "stopped");
  CommandResult d = Oci({"delete", id});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::string after = ReadFileOrEmpty("/proc/self/mountinfo");
  EXPECT_EQ(before, after);
  EXPECT_THAT(after, Not(HasSubstr(bundle_)));
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty());
  EXPECT_FALSE(Exists(root_ + "/" + id));
  CommandResult state = Oci({"state", id});
  EXPECT_NE(state.exit_code, 0);
  EXPECT_THAT(state.err, HasSubstr("does not exist"));
}

TEST_F(OciRuntimeTest, DeleteOfARunningContainerNeedsForce) {
  std::string id = StartSleeping("delete-running");
  CommandResult d = Oci({"delete", id});
  EXPECT_NE(d.exit_code, 0);
  EXPECT_THAT(d.err, HasSubstr("not stopped"));
  EXPECT_EQ(Status(id), "running");
  int pid = State(id)["pid"];
  CommandResult f = Oci({"delete", "-f", id});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_FALSE(Exists(root_ + "/" + id));
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty());
  std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  EXPECT_TRUE(stat.empty() || absl::StrContains(stat, ") Z ")) << stat;
}

TEST_F(OciRuntimeTest, DeleteOfAnUnknownId) {
  CommandResult f = Oci({"delete", "-f", "no-such-container"});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  CommandResult d = Oci({"delete", "no-such-container"});
  EXPECT_NE(d.exit_code, 0);
  EXPECT_THAT(d.err, HasSubstr("does not exist"));
}

TEST_F(OciRuntimeTest, DeleteOfACreatedContainer) {
  std::string before = ReadFileOrEmpty("/proc/self/mountinfo");
  std::string id = Create({"sleep", "1000"}, "delete-created");
  EXPECT_EQ(Status(id), "created");
  int pid = State(id)["pid"];
  CommandResult d = Oci({"delete", id});
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_FALSE(Exists(root_ + "/" + id));
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty());
  std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  EXPECT_TRUE(stat.empty() || absl::StrContains(stat, ") Z ")) << stat;
  EXPECT_EQ(ReadFileOrEmpty("/proc/self/mountinfo"), before);
}

TEST_F(OciRuntimeTest, RunDetached) {
  config_["process"]["args"] = {"sleep", "1000"};
  std::string id = Prepare("run-detached");
  CommandResult r = Oci({"run", "--detach", "--bundle", bundle_, id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // It returned without waiting for the process (sleep 1000); the bound is loose for slow
  // machines (the emulated v2 guest).
  EXPECT_LT(r.elapsed, absl::Seconds(60));
  EXPECT_EQ(Status(id), "running");
}

TEST_F(OciRuntimeTest, CreateWithATakenIdFailsAndKeepsTheFirst) {
  std::string id = StartSleeping("taken");
  int pid = State(id)["pid"];
  CommandResult again = Oci({"create", "--bundle", bundle_, id});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
  EXPECT_EQ(Status(id), "running");
  EXPECT_EQ(State(id)["pid"], pid);
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), Not(IsEmpty()));
}

// A container can join the namespaces of another one (linux.namespaces[].path).
TEST_F(OciRuntimeTest, JoinsTheNamespacesOfAnotherContainer) {
  std::string first = StartSleeping("first");
  int pid = State(first)["pid"];
  json namespaces = json::array();
  for (json ns : config_["linux"]["namespaces"]) {
    if (ns["type"] == "pid" || ns["type"] == "network" || ns["type"] == "ipc") {
      std::string name = ns["type"] == "network" ? "net" : ns["type"].get<std::string>();
      ns["path"] = absl::StrCat("/proc/", pid, "/ns/", name);
    }
    namespaces.push_back(ns);
  }
  config_["linux"]["namespaces"] = namespaces;
  CommandResult r =
      Sh("echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; readlink /proc/self/ns/net; "
         "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_NE(lines[0], "1");
  EXPECT_EQ(lines[1], "sleep 1000");
  auto link = [&](const char* ns) {
    char buf[256] = {};
    return ::readlink(absl::StrCat("/proc/", pid, "/ns/", ns).c_str(), buf, sizeof buf - 1) > 0
               ? std::string(buf)
               : std::string("<unreadable>");
  };
  EXPECT_EQ(lines[2], link("net"));
  EXPECT_EQ(lines[3], link("pid"));
  EXPECT_EQ(lines[4], link("ipc"));
  // The runtime itself stays in its own pid namespace.
  char own[256] = {};
  ASSERT_GT(::readlink("/proc/self/ns/pid", own, sizeof own - 1), 0);
  EXPECT_NE(link("pid"), own);
}

// On a unified host cpu.shares becomes cpu.weight with the runtime's mapping (runc 1.1's).
TEST_F(OciRuntimeTest, ResourcesAreAppliedToTheCgroup) {
  config_["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  config_["linux"]["resources"]["pids"] = {{"limit", 50}};
  config_["linux"]["resources"]["cpu"] = {{"shares", 512}};
  std::string id = StartSleeping("resources");
  std::string cg = CgroupPath(id);
  const std::string memory = absl::StrCat(64 << 20);
  if (UnifiedHost()) {
    // 20: 1 + (512 - 2) * 9999 / 262142.
    const std::string weight = absl::StrCat(berth::cgroups::SharesToWeight(512));
    const std::string dir = absl::StrCat(kCgroupRoot, "/", cg);
    EXPECT_EQ(Trim(ReadFileOrEmpty(dir + "/memory.max")), memory);
    EXPECT_EQ(Trim(ReadFileOrEmpty(dir + "/pids.max")), "50");
    EXPECT_EQ(Trim(ReadFileOrEmpty(dir + "/cpu.weight")), weight);
    CommandResult e = Oci({"exec", id, "cat", "/sys/fs/cgroup/memory.max",
                           "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/cpu.weight"});
    ASSERT_EQ(e.exit_code, 0) << e.err;
    EXPECT_THAT(Lines(e.out), ElementsAre(memory, "50", weight));
    return;
  }
  EXPECT_EQ(Trim(ReadFileOrEmpty(CgroupDir("memory", cg) + "/memory.limit_in_bytes")), memory);
  EXPECT_EQ(Trim(ReadFileOrEmpty(CgroupDir("pids", cg) + "/pids.max")), "50");
  EXPECT_EQ(Trim(ReadFileOrEmpty(CgroupDir("cpu", cg) + "/cpu.shares")), "512");
  CommandResult e = Oci({"exec", id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/cpu/cpu.shares"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_THAT(Lines(e.out), ElementsAre(memory, "50", "512"));
}

// /sys/fs/cgroup in the container shows the container's own cgroups, never a host hierarchy's
// root (release_agent exists only at a v1 root; a cgroup2 root has no cgroup.events).
TEST_F(OciRuntimeTest, CgroupMountShowsNoHostHierarchyRoot) {
  CommandResult r =
      Sh("for d in /sys/fs/cgroup/*/; do [ -e \"$d/release_agent\" ] && echo \"host root: $d\"; "
         "done; for d in /sys/fs/cgroup/unified/ /sys/fs/cgroup/; do "
         "[ -e \"$d/cgroup.controllers\" ] && ! [ -e \"$d/cgroup.events\" ] && "
         "echo \"host root: $d\"; done; echo checked");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Trim(r.out), "checked");
}

// --preserve-fds 1 passes fd 3 and nothing else (CVE-2024-21626: no runtime fd leaks in).
TEST_F(OciRuntimeTest, PreserveFdsPassesOnlyThoseFds) {
  config_["process"]["args"] = {"sh", "-c",
                                // No pipe here: the shell would hold the pipe's fds
                                // while ls looks at its fd table.
                                "echo preserved >&3; ls /proc/$$/fd; "
                                "(echo x >&4) 2>/dev/null || echo no-fd-4"};
  std::string id = Prepare("preserve-fds");
  std::string fd3 = dir_ / "fd3", fd4 = dir_ / "fd4";
  CommandResult r =
      RunCommand({"/bin/sh", "-c",
                  absl::StrCat("exec 3>", fd3, " 4>", fd4, "; exec ", kBerthOci, " --root ", root_,
                               " run --preserve-fds 1 --bundle ", bundle_, " ", id)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("0", "1", "2", "3", "no-fd-4"));
  EXPECT_EQ(ReadFileOrEmpty(fd3), "preserved\n");
  EXPECT_EQ(ReadFileOrEmpty(fd4), "");
}

// ---- exec --------------------------------------------------------------------------------------

TEST_F(OciRuntimeTest, ExecSeesTheInitAsPid1AndSharesItsCgroup) {
  std::string id = StartSleeping("exec");
  CommandResult e = Oci({"exec", id, "sh", "-c",
                         "echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; echo =init; "
                         "cat /proc/1/cgroup; echo =self; cat /proc/self/cgroup; echo =end"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  std::vector<std::string> lines = Lines(e.out);
  ASSERT_GE(lines.size(), 4u) << e.out;
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(lines[0], &pid)) << e.out;
  EXPECT_GT(pid, 1);
  EXPECT_EQ(lines[1], "sleep 1000");
  EXPECT_EQ(lines[2], "berth");
  auto between = [&](const std::string& from, const std::string& to) {
    size_t a = e.out.find(from), b = e.out.find(to);
    return a == std::string::npos || b == std::string::npos
               ? std::string("<missing>")
               : e.out.substr(a + from.size(), b - a - from.size());
  };
  std::string init_cgroup = between("=init\n", "=self\n");
  EXPECT_THAT(init_cgroup, HasSubstr(":/\n"));
  EXPECT_EQ(between("=self\n", "=end\n"), init_cgroup);

  // From the host too: an exec'd process is in every cgroup of the init.
  std::string pid_file = dir_ / "exec.pid";
  Child exec;
  exec.Start({kBerthOci, "--root", root_, "exec", "--pid-file", pid_file, id, "sleep", "1000"},
             dir_ / "exec.log");
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (ReadFileOrEmpty(pid_file).empty() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int exec_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Trim(ReadFileOrEmpty(pid_file)), &exec_pid))
      << ReadFileOrEmpty(dir_ / "exec.log");
  int init_pid = State(id)["pid"];
  std::string host_init_cgroup = ReadFileOrEmpty(absl::StrCat("/proc/", init_pid, "/cgroup"));
  EXPECT_EQ(ReadFileOrEmpty(absl::StrCat("/proc/", exec_pid, "/cgroup")), host_init_cgroup);
  // "0::/berth-test-oci/<id>" on a unified host; "<n>:<controllers>:/berth-test-oci/<id>" lines.
  EXPECT_THAT(host_init_cgroup, HasSubstr(absl::StrCat(":/", CgroupPath(id), "\n")));
  CommandResult ps = Oci({"ps", "--format", "json", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_THAT(json::parse(ps.out).get<std::vector<int>>(),
              ::testing::UnorderedElementsAre(init_pid, exec_pid));
  ASSERT_EQ(::kill(exec_pid, SIGKILL), 0);
  int status = exec.Wait(absl::Seconds(3));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 137) << status;
}

TEST_F(OciRuntimeTest, ExecExitCodeAndFlags) {
  std::string id = StartSleeping("exec-flags");
  CommandResult e = Oci({"exec", "--cwd", "/etc", "--env", "FOO=bar", "--user", "1000:1001", id,
                         "sh", "-c", "pwd; echo $FOO; id -u; id -g; exit 7"});
  EXPECT_EQ(e.exit_code, 7) << e.err;
  EXPECT_THAT(Lines(e.out), ElementsAre("/etc", "bar", "1000", "1001"));
}

TEST_F(OciRuntimeTest, ExecWithAProcessFile) {
  std::string id = StartSleeping("exec-process");
  std::string file = dir_ / "process.json";
  WriteFileOrDie(file, json{{"terminal", false},
                            {"user", {{"uid", 0}, {"gid", 0}}},
                            {"args", {"sh", "-c", "echo from-process-file $FOO; pwd"}},
                            {"env", {kPath, "FOO=bar"}},
                            {"cwd", "/bin"}}
                           .dump());
  CommandResult e = Oci({"exec", "--process", file, id});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_THAT(Lines(e.out), ElementsAre("from-process-file bar", "/bin"));
}

// ---- inspection --------------------------------------------------------------------------------

TEST_F(OciRuntimeTest, StateHasRuncsShape) {
  std::string pid_file = dir_ / "pid";
  config_["process"]["args"] = {"sleep", "1000"};
  config_["annotations"] = {{"org.example.key", "value"}};
  std::string id = Prepare("state");
  absl::Time before = absl::Now();
  CommandResult c = Oci({"create", "--bundle", bundle_, "--pid-file", pid_file, id});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  CommandResult r = Oci({"state", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json s = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(s.is_object()) << r.out;
  std::vector<std::string> keys;
  for (const auto& [k, v] : s.items()) keys.push_back(k);
  EXPECT_THAT(keys, ::testing::IsSupersetOf({"ociVersion", "id", "pid", "status", "bundle",
                                             "rootfs", "created", "owner"}));
  EXPECT_TRUE(s["ociVersion"].is_string() && !s["ociVersion"].get<std::string>().empty());
  EXPECT_EQ(s["id"], id);
  EXPECT_EQ(absl::StrCat(s.value("pid", -1)), Trim(ReadFileOrEmpty(pid_file)));
  EXPECT_EQ(s["status"], "created");
  EXPECT_EQ(s["bundle"], RealPath(bundle_));
  EXPECT_EQ(s["rootfs"], RealPath(bundle_ + "/rootfs"));
  EXPECT_TRUE(s["owner"].is_string());
  EXPECT_EQ(s["annotations"], config_["annotations"]);
  absl::Time created;
  std::string err;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, s.value("created", ""), &created, &err))
      << s["created"] << ": " << err;
  EXPECT_GE(created, before - absl::Seconds(1));
  EXPECT_LE(created, absl::Now() + absl::Seconds(1));
  ASSERT_EQ(Oci({"start", id}).exit_code, 0);
  EXPECT_EQ(Status(id), "running");
}

TEST_F(OciRuntimeTest, ListInJson) {
  std::string created = Create({"sleep", "1000"}, "list-created");
  std::string running = StartSleeping("list-running");
  CommandResult r = Oci({"list", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json list = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << r.out;
  std::map<std::string, std::string> status;
  for (const json& c : list) {
    status[c.value("id", "")] = c.value("status", "");
    EXPECT_EQ(c.value("bundle", ""), RealPath(bundle_));
  }
  EXPECT_THAT(status, ContainerEq(std::map<std::string, std::string>{{created, "created"},
                                                                     {running, "running"}}));
  CommandResult q = Oci({"list", "-q"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_THAT(Lines(q.out), ::testing::UnorderedElementsAre(created, running));
}

TEST_F(OciRuntimeTest, PsListsTheInit) {
  std::string id = StartSleeping("ps");
  int pid = State(id)["pid"];
  CommandResult r = Oci({"ps", "--format", "json", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(json::parse(r.out).get<std::vector<int>>(), ElementsAre(pid));
  CommandResult table = Oci({"ps", id});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr(absl::StrCat(pid)));
  EXPECT_THAT(table.out, HasSubstr("sleep 1000"));
}

// v1: freezer.state; v2: cgroup.freeze, and "frozen 1" in cgroup.events once it took effect.
TEST_F(OciRuntimeTest, PauseAndResume) {
  std::string id = StartSleeping("pause");
  const std::string dir = CgroupDir("freezer", CgroupPath(id));
  const std::string control = dir + (UnifiedHost() ? "/cgroup.freeze" : "/freezer.state");
  ASSERT_TRUE(Exists(control)) << control;
  auto frozen_state = [&](bool frozen) -> std::vector<std::string> {
    if (!UnifiedHost()) return {frozen ? "FROZEN" : "THAWED"};
    return {frozen ? "1" : "0", frozen ? "frozen 1" : "frozen 0"};
  };
  auto state = [&]() -> std::vector<std::string> {
    if (!UnifiedHost()) return {Trim(ReadFileOrEmpty(control))};
    std::string events = "<no frozen line>";
    for (const std::string& line : Lines(ReadFileOrEmpty(dir + "/cgroup.events"))) {
      if (absl::StartsWith(line, "frozen ")) events = line;
    }
    return {Trim(ReadFileOrEmpty(control)), events};
  };
  EXPECT_EQ(state(), frozen_state(false));
  CommandResult p = Oci({"pause", id});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(Status(id), "paused");
  EXPECT_EQ(state(), frozen_state(true));
  CommandResult r = Oci({"resume", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Status(id), "running");
  EXPECT_EQ(state(), frozen_state(false));
  EXPECT_NE(Oci({"resume", id}).exit_code, 0) << "resume of a running container";
  // A paused container can be deleted with -f (it is thawed to die).
  ASSERT_EQ(Oci({"pause", id}).exit_code, 0);
  CommandResult d = Oci({"delete", id});
  EXPECT_NE(d.exit_code, 0);
  CommandResult f = Oci({"delete", "-f", id});
  EXPECT_EQ(f.exit_code, 0) << f.err;
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty());
}

// runc refuses to exec into a paused container; the exec'd process would join the frozen
// cgroup and never report back.
TEST_F(OciRuntimeTest, ExecIntoAPausedContainerFails) {
  std::string id = StartSleeping("exec-paused");
  ASSERT_EQ(Oci({"pause", id}).exit_code, 0);
  CommandResult e = Oci({"exec", id, "true"}, {}, absl::Seconds(3));
  EXPECT_FALSE(e.timed_out) << "exec into a paused container hangs";
  EXPECT_NE(e.exit_code, 0);
  EXPECT_THAT(e.err, HasSubstr("paused"));
}

TEST_F(OciRuntimeTest, FeaturesIsJson) {
  CommandResult r = Oci({"features"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json f = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(f.is_object()) << r.out;
  ASSERT_TRUE(f["linux"]["namespaces"].is_array());
  std::vector<std::string> ns = f["linux"]["namespaces"].get<std::vector<std::string>>();
  for (const char* n : {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}) {
    EXPECT_THAT(ns, Contains(n));
  }
  EXPECT_TRUE(f["ociVersionMax"].is_string());
  EXPECT_THAT(f["linux"]["capabilities"].get<std::vector<std::string>>(),
              Contains("CAP_SYS_ADMIN"));
}

TEST_F(OciRuntimeTest, LogFileGetsAJsonErrorLine) {
  std::string log = dir_ / "oci.log";
  CommandResult r = Oci({"start", "no-such-container"}, {"--log", log, "--log-format", "json"});
  EXPECT_EQ(r.exit_code, 1);
  std::vector<std::string> lines = Lines(ReadFileOrEmpty(log));
  ASSERT_FALSE(lines.empty());
  json j = json::parse(lines.back(), nullptr, false);
  ASSERT_TRUE(j.is_object()) << lines.back();
  EXPECT_EQ(j["level"], "error");
  EXPECT_THAT(j.value("msg", ""), HasSubstr("does not exist"));
  EXPECT_TRUE(j["time"].is_string());
}

// ---- failures leave nothing behind -------------------------------------------------------------

TEST_F(OciRuntimeTest, InvalidConfigNamesTheJsonPathAndLeavesNothing) {
  struct Case {
    std::function<void(json&)> edit;
    std::string path;
  };
  const Case cases[] = {
      {[](json& c) { c["process"]["user"]["uid"] = "root"; }, "process.user.uid"},
      {[](json& c) { c["mounts"][1]["options"] = "nosuid"; }, "mounts[1].options"},
      {[](json& c) { c["linux"]["namespaces"][0]["type"] = 7; }, "linux.namespaces[0].type"},
  };
  json original = config_;
  for (const Case& c : cases) {
    config_ = original;
    c.edit(config_);
    std::string id = Prepare("invalid");
    CommandResult r = Oci({"create", "--bundle", bundle_, id});
    EXPECT_EQ(r.exit_code, 1) << c.path;
    EXPECT_THAT(r.err, HasSubstr(c.path));
    EXPECT_FALSE(Exists(root_ + "/" + id)) << c.path;
    EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty()) << c.path;
  }
}

TEST_F(OciRuntimeTest, FailedSetupLeavesNothing) {
  std::string before = ReadFileOrEmpty("/proc/self/mountinfo");
  AddMount("/mnt/missing", "bind", dir_ / "does-not-exist", {"rbind"});
  config_["process"]["args"] = {"true"};
  std::string id = Prepare("failed");
  CommandResult r = Oci({"create", "--bundle", bundle_, id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("does-not-exist"));
  EXPECT_FALSE(Exists(root_ + "/" + id));
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty());
  EXPECT_EQ(ReadFileOrEmpty("/proc/self/mountinfo"), before);
  CommandResult list = Oci({"list", "-q"});
  EXPECT_EQ(Trim(list.out), "");
}

// A runtime killed in the middle of create (here while a createRuntime hook runs): the init
// dies with it (PDEATHSIG), `state` says stopped, and `delete` removes the cgroup and the
// state it recorded, leaving nothing.
TEST_F(OciRuntimeTest, CreateKilledMidwayIsCleanedByDelete) {
  std::string before = ReadFileOrEmpty("/proc/self/mountinfo");
  std::string hook = dir_ / "slow-hook.sh";
  WriteFileOrDie(hook, "#!/bin/sh\nsleep 1\n");
  ASSERT_EQ(::chmod(hook.c_str(), 0755), 0);
  config_["hooks"]["createRuntime"] = json::array({{{"path", hook}}});
  config_["process"]["args"] = {"true"};
  std::string id = Prepare("killed-create");
  Child create;
  create.Start({kBerthOci, "--root", root_, "create", "--bundle", bundle_, id},
               dir_ / "create.log");
  // Wait until the init exists and is recorded (the hook runs after that).
  pid_t init = 0;
  for (int i = 0; i < 200 && init == 0; ++i) {
    std::string text = ReadFileOrEmpty(root_ + "/" + id + "/state.json");
    json j = json::parse(text, nullptr, false);
    if (!j.is_discarded() && j.value("pid", 0) > 0) init = j.value("pid", 0);
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(init, 0) << ReadFileOrEmpty(dir_ / "create.log");
  EXPECT_NE(create.Stop(SIGKILL, absl::Seconds(5)), -1);
  // The init follows its runtime.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = ::kill(init, 0) != 0 ||
           ReadFileOrEmpty(absl::StrCat("/proc/", init, "/stat")).find(") Z") != std::string::npos;
    if (!gone) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(gone) << "the init outlived a killed create";
  CommandResult state = Oci({"state", id});
  EXPECT_EQ(state.exit_code, 0) << state.err;
  EXPECT_THAT(state.out, HasSubstr("\"stopped\""));
  CommandResult del = Oci({"delete", id});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  EXPECT_FALSE(Exists(root_ + "/" + id));
  EXPECT_THAT(CgroupDirs(CgroupPath(id)), IsEmpty());
  EXPECT_EQ(ReadFileOrEmpty("/proc/self/mountinfo"), before);
  absl::SleepFor(absl::Milliseconds(1100));  // the orphaned hook (sleep 1) ends by itself
}

// ---- the exec stub (CVE-2019-5736) -------------------------------------------------------------

TEST_F(OciRuntimeTest, ContainerProcessesSeeTheirOwnBinary) {
  CommandResult r = Sh("readlink /proc/self/exe; readlink /proc/1/exe");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Lines(r.out), ElementsAre("/bin/busybox", "/bin/busybox"));
}

TEST_F(OciRuntimeTest, ProcSelfExeDoesNotReachTheRuntime) {
  std::string before = Sha256(kBerthOci);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"/proc/self/exe"},
        std::vector<std::string>{"/proc/self/exe", "--version"},
        std::vector<std::string>{"/proc/self/exe", "spec"}}) {
    CommandResult r = Run(args);
    EXPECT_EQ(r.exit_code, 127) << args.back() << ": " << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("berth-oci")));
    EXPECT_FALSE(Exists(bundle_ + "/rootfs/config.json"));
  }
  EXPECT_EQ(Sha256(kBerthOci), before);
}

}  // namespace
}  // namespace berth::runtime

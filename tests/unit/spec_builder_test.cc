#include "cri/spec_builder.h"

#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/spec.h"

namespace berth::cri {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

void WriteText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void SetSeccompPath(v1::LinuxContainerSecurityContext* sc, const std::string& s) {
  sc->set_seccomp_profile_path(s);
}
#pragma GCC diagnostic pop

std::vector<std::string> Strings(const json& j) {
  return j.get<std::vector<std::string>>();
}

const json* FindMount(const json& spec, const std::string& destination) {
  for (const json& m : spec["mounts"]) {
    if (m["destination"] == destination) return &m;
  }
  return nullptr;
}

std::vector<std::string> Destinations(const json& spec) {
  std::vector<std::string> out;
  for (const json& m : spec["mounts"]) out.push_back(m["destination"]);
  return out;
}

bool HasNamespace(const json& spec, const std::string& type, const std::string& path) {
  for (const json& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) return ns.value("path", "") == path;
  }
  return false;
}

bool AnyNamespace(const json& spec, const std::string& type) {
  for (const json& ns : spec["linux"]["namespaces"]) {
    if (ns["type"] == type) return true;
  }
  return false;
}

// The syscall rules of a seccomp section naming `name`.
std::vector<json> RulesFor(const json& seccomp, const std::string& name) {
  std::vector<json> out;
  for (const json& r : seccomp["syscalls"]) {
    for (const json& n : r["names"]) {
      if (n == name) out.push_back(r);
    }
  }
  return out;
}

class SpecBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/spec_builder_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    rootfs_ = dir_ + "/rootfs";
    WriteText(rootfs_ + "/etc/passwd",
              "root:x:0:0:root:/root:/bin/sh\n"
              "daemon:x:1:1::/:/bin/false\n"
              "# a comment\n"
              "app:x:1000:1001:App:/home/app:/bin/sh\n"
              "nobody:x:65534:65534::/:/bin/false\n");
    WriteText(rootfs_ + "/etc/group",
              "root:x:0:\n"
              "wheel:x:10:app,other\n"
              "app:x:1001:\n"
              "video:x:44:app\n"
              "staff:x:50:someone\n"
              "nogroup:x:65534:\n");
    pod_dir_ = dir_ + "/pod";
    WriteText(pod_dir_ + "/hostname", "web-0\n");
    WriteText(pod_dir_ + "/hosts", "127.0.0.1 localhost\n");
    WriteText(pod_dir_ + "/resolv.conf", "nameserver 10.0.0.10\n");
    fs::create_directories(pod_dir_ + "/shm");
    fs::create_directories(dir_ + "/host/data");
    fs::create_directories(dir_ + "/host/data-sub");
    fs::create_directories(dir_ + "/host/shared");
    fs::create_directories(dir_ + "/seccomp/profiles");

    container_.mutable_metadata()->set_name("web");
    container_.mutable_image()->set_image("docker.io/library/busybox:latest");
    sandbox_.mutable_metadata()->set_name("web-0");
    sandbox_.mutable_metadata()->set_namespace_("default");
    sandbox_.mutable_metadata()->set_uid("uid-123");
    sandbox_.set_hostname("web-0");

    in_.container = &container_;
    in_.sandbox = &sandbox_;
    in_.image.entrypoint = {"/bin/sh"};
    in_.image.cmd = {"-c", "sleep 1"};
    in_.image_name = "docker.io/library/busybox:latest";
    in_.container_id = "c0ffee";
    in_.sandbox_id = "5a4db0";
    in_.rootfs = rootfs_;
    in_.pod_dir = pod_dir_;
    in_.shm_path = pod_dir_ + "/shm";
    in_.netns_path = "/run/berth/netns/5a4db0";
    in_.ipc_ns_path = "/proc/100/ns/ipc";
    in_.uts_ns_path = "/proc/100/ns/uts";
    in_.cgroups_path = "kubepods/burstable/poduid-123/c0ffee";
    in_.volumes_dir = dir_ + "/volumes";
    in_.seccomp_profile_root = dir_ + "/seccomp";
  }

  void TearDown() override { fs::remove_all(dir_); }

  v1::LinuxContainerSecurityContext* sc() {
    return container_.mutable_linux()->mutable_security_context();
  }
  v1::LinuxContainerResources* res() { return container_.mutable_linux()->mutable_resources(); }

  // Builds, and checks that berth's runtime takes the result.
  BuiltSpec Build() {
    absl::StatusOr<BuiltSpec> built = BuildSpec(in_);
    EXPECT_TRUE(built.ok()) << built.status();
    if (!built.ok()) return BuiltSpec{};
    absl::StatusOr<runtime::Spec> parsed = runtime::ParseSpec(built->spec.dump());
    EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << built->spec.dump(2);
    return *std::move(built);
  }

  absl::Status BuildError() {
    absl::StatusOr<BuiltSpec> built = BuildSpec(in_);
    EXPECT_FALSE(built.ok());
    return built.status();
  }

  std::string dir_, rootfs_, pod_dir_;
  v1::ContainerConfig container_;
  v1::PodSandboxConfig sandbox_;
  SpecInputs in_;
};

// ---- ParseImageConfig --------------------------------------------------------------------------

TEST(ParseImageConfigTest, ReadsTheFields) {
  absl::StatusOr<ImageConfig> c = ParseImageConfig(R"({
    "architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": ["/ep"], "Cmd": ["a", "b"], "Env": ["PATH=/bin", "X=1"],
               "WorkingDir": "/w", "User": "app:staff", "StopSignal": "SIGQUIT",
               "Volumes": {"/var/lib/z": {}, "/data": {}}},
    "rootfs": {"type": "layers", "diff_ids": []}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->entrypoint, ElementsAre("/ep"));
  EXPECT_THAT(c->cmd, ElementsAre("a", "b"));
  EXPECT_THAT(c->env, ElementsAre("PATH=/bin", "X=1"));
  EXPECT_EQ(c->working_dir, "/w");
  EXPECT_EQ(c->user, "app:staff");
  EXPECT_EQ(c->stop_signal, "SIGQUIT");
  EXPECT_THAT(c->volumes, ElementsAre("/data", "/var/lib/z"));
}

TEST(ParseImageConfigTest, MissingAndNullFieldsAreEmpty) {
  absl::StatusOr<ImageConfig> c = ParseImageConfig(R"({"config": {"Cmd": null}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->cmd, IsEmpty());
  c = ParseImageConfig("{}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->entrypoint, IsEmpty());
}

TEST(ParseImageConfigTest, WrongTypesAreRefused) {
  for (const char* doc :
       {R"({"config": {"Cmd": "sh"}})", R"({"config": {"Env": [1]}})", R"({"config": {"User": 0}})",
        R"({"config": {"Volumes": ["/a"]}})", R"({"config": []})", "[]", "{"}) {
    absl::StatusOr<ImageConfig> c = ParseImageConfig(doc);
    EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << doc;
  }
  EXPECT_THAT(ParseImageConfig(R"({"config": {"Env": ["A=1", 2]}})").status().message(),
              HasSubstr("config.Env[1]"));
}

// ---- process ---------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, CommandAndArgsFollowKubernetes) {
  in_.image.entrypoint = {"/ep", "-x"};
  in_.image.cmd = {"c1", "c2"};
  EXPECT_THAT(Strings(Build().spec["process"]["args"]), ElementsAre("/ep", "-x", "c1", "c2"));

  container_.add_args("a1");
  EXPECT_THAT(Strings(Build().spec["process"]["args"]), ElementsAre("/ep", "-x", "a1"));

  container_.add_command("/bin/run");
  EXPECT_THAT(Strings(Build().spec["process"]["args"]), ElementsAre("/bin/run", "a1"));

  container_.clear_args();
  EXPECT_THAT(Strings(Build().spec["process"]["args"]), ElementsAre("/bin/run"));

  container_.clear_command();
  in_.image.entrypoint.clear();
  EXPECT_THAT(Strings(Build().spec["process"]["args"]), ElementsAre("c1", "c2"));

  in_.image.cmd.clear();
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("no command specified"));
}

TEST_F(SpecBuilderTest, EnvMergesImageAndRequest) {
  in_.image.env = {"A=1", "PATH=/img/bin", "B=2", "BROKEN"};
  auto add = [&](const char* k, const char* v) {
    v1::KeyValue* kv = container_.add_envs();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("B", "3");
  add("C", "x=y");
  BuiltSpec b = Build();
  EXPECT_THAT(Strings(b.spec["process"]["env"]),
              ElementsAre("PATH=/img/bin", "HOSTNAME=web-0", "A=1", "B=3", "C=x=y"));
  EXPECT_THAT(b.warnings, Contains(HasSubstr("BROKEN")));

  in_.image.env.clear();
  EXPECT_THAT(Strings(Build().spec["process"]["env"]),
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "HOSTNAME=web-0", "B=3", "C=x=y"));

  add("D=E", "1");
  absl::Status st = BuildError();
  EXPECT_THAT(st.message(), HasSubstr("envs[2].key"));
  container_.mutable_envs(2)->set_key("");
  EXPECT_THAT(BuildError().message(), HasSubstr("envs[2].key"));
}

TEST_F(SpecBuilderTest, WorkingDirAndTerminal) {
  json p = Build().spec["process"];
  EXPECT_EQ(p["cwd"], "/");
  EXPECT_EQ(p["terminal"], false);
  in_.image.working_dir = "/srv";
  container_.set_tty(true);
  p = Build().spec["process"];
  EXPECT_EQ(p["cwd"], "/srv");
  EXPECT_EQ(p["terminal"], true);
  container_.set_working_dir("/work");
  EXPECT_EQ(Build().spec["process"]["cwd"], "/work");
  container_.set_working_dir("relative");
  EXPECT_THAT(BuildError().message(), HasSubstr("working_dir"));
}

TEST_F(SpecBuilderTest, UserDefaultsToRoot) {
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 0);
  EXPECT_EQ(u["gid"], 0);
  EXPECT_FALSE(u.contains("additionalGids"));
}

TEST_F(SpecBuilderTest, ImageUserByName) {
  in_.image.user = "app";
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 1000);
  EXPECT_EQ(u["gid"], 1001);
  EXPECT_EQ(u["additionalGids"], json({10, 44}));
}

TEST_F(SpecBuilderTest, ImageUserNumericForms) {
  in_.image.user = "1000";
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 1000);
  EXPECT_EQ(u["gid"], 1001);  // the passwd entry's
  EXPECT_EQ(u["additionalGids"], json({10, 44}));

  in_.image.user = "1000:50";
  u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 1000);
  EXPECT_EQ(u["gid"], 50);

  in_.image.user = "4242";  // not in /etc/passwd
  u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 4242);
  EXPECT_EQ(u["gid"], 0);
  EXPECT_FALSE(u.contains("additionalGids"));
}

TEST_F(SpecBuilderTest, ImageUserNameAndGroup) {
  in_.image.user = "app:staff";
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 1000);
  EXPECT_EQ(u["gid"], 50);
  in_.image.user = "app:nosuchgroup";
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("nosuchgroup"));
}

TEST_F(SpecBuilderTest, UnknownUserNameIsAnError) {
  in_.image.user = "ghost";
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("ghost"));
  in_.image.user.clear();
  sc()->set_run_as_username("phantom");
  st = BuildError();
  EXPECT_THAT(st.message(), HasSubstr("run_as_username"));
  EXPECT_THAT(st.message(), HasSubstr("phantom"));
}

TEST_F(SpecBuilderTest, RunAsUserOverridesTheImage) {
  in_.image.user = "app";
  sc()->mutable_run_as_user()->set_value(65534);
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 65534);
  EXPECT_EQ(u["gid"], 65534);
  sc()->mutable_run_as_group()->set_value(7);
  u = Build().spec["process"]["user"];
  EXPECT_EQ(u["gid"], 7);

  sc()->clear_run_as_user();
  sc()->set_run_as_username("nobody");
  u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 65534);
  EXPECT_EQ(u["gid"], 7);
}

TEST_F(SpecBuilderTest, RunAsGroupAloneIsAnError) {
  sc()->mutable_run_as_group()->set_value(7);
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("run_as_group"));
  // With a user from the image it only replaces the group.
  in_.image.user = "app";
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 1000);
  EXPECT_EQ(u["gid"], 7);
}

TEST_F(SpecBuilderTest, SupplementalGroups) {
  sc()->mutable_run_as_user()->set_value(1000);
  sc()->add_supplemental_groups(5);
  sc()->add_supplemental_groups(44);
  EXPECT_EQ(Build().spec["process"]["user"]["additionalGids"], json({5, 10, 44}));
  sc()->set_supplemental_groups_policy(v1::Strict);
  EXPECT_EQ(Build().spec["process"]["user"]["additionalGids"], json({5, 44}));
  sc()->add_supplemental_groups(-1);
  EXPECT_THAT(BuildError().message(), HasSubstr("supplemental_groups[2]"));
}

TEST_F(SpecBuilderTest, WithoutEtcOnlyNumericUsers) {
  fs::remove_all(rootfs_ + "/etc");
  in_.image.user = "123:456";
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 123);
  EXPECT_EQ(u["gid"], 456);
  in_.image.user = "app";
  EXPECT_TRUE(absl::IsInvalidArgument(BuildError()));
}

TEST_F(SpecBuilderTest, PasswdIsReadInsideTheRootfs) {
  // A symlink climbing out of the rootfs stays inside it (and finds nothing there).
  WriteText(dir_ + "/outside/etc/passwd", "evil:x:666:666::/:/bin/sh\n");
  fs::remove(rootfs_ + "/etc/passwd");
  fs::create_symlink("../../outside/etc/passwd", rootfs_ + "/etc/passwd");
  in_.image.user = "evil";
  EXPECT_TRUE(absl::IsInvalidArgument(BuildError()));
  // An absolute link resolves inside the rootfs too.
  fs::remove(rootfs_ + "/etc/passwd");
  WriteText(rootfs_ + "/real/passwd", "evil:x:777:778::/:/bin/sh\n");
  fs::create_symlink("/real/passwd", rootfs_ + "/etc/passwd");
  json u = Build().spec["process"]["user"];
  EXPECT_EQ(u["uid"], 777);
  EXPECT_EQ(u["gid"], 778);
}

TEST_F(SpecBuilderTest, DefaultCapabilities) {
  json caps = Build().spec["process"]["capabilities"];
  std::vector<std::string> eff = Strings(caps["effective"]);
  std::vector<std::string> want = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  std::sort(eff.begin(), eff.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(eff, want);
  EXPECT_EQ(caps["bounding"], caps["effective"]);
  EXPECT_EQ(caps["permitted"], caps["effective"]);
  EXPECT_THAT(Strings(caps["inheritable"]), IsEmpty());
  EXPECT_THAT(Strings(caps["ambient"]), IsEmpty());
}

TEST_F(SpecBuilderTest, AddAndDropCapabilities) {
  v1::Capability* c = sc()->mutable_capabilities();
  c->add_add_capabilities("NET_ADMIN");
  c->add_add_capabilities("cap_sys_time");
  c->add_drop_capabilities("chown");
  c->add_add_ambient_capabilities("CAP_NET_BIND_SERVICE");
  json caps = Build().spec["process"]["capabilities"];
  std::vector<std::string> eff = Strings(caps["effective"]);
  EXPECT_THAT(eff, Contains("CAP_NET_ADMIN"));
  EXPECT_THAT(eff, Contains("CAP_SYS_TIME"));
  EXPECT_THAT(eff, Not(Contains("CAP_CHOWN")));
  EXPECT_THAT(Strings(caps["ambient"]), ElementsAre("CAP_NET_BIND_SERVICE"));
  EXPECT_THAT(Strings(caps["inheritable"]), ElementsAre("CAP_NET_BIND_SERVICE"));

  c->add_add_capabilities("CAP_NOT_A_THING");
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("add_capabilities[2]"));
}

// The capabilities in this process' bounding set: what "all" means for a container.
size_t CapabilitiesInBoundingSet() {
  size_t n = 0;
  for (const std::string& name : runtime::KnownCapabilityNames()) {
    absl::StatusOr<int> cap = runtime::CapabilityFromName(name);
    if (cap.ok() && ::prctl(PR_CAPBSET_READ, *cap, 0, 0, 0) == 1) ++n;
  }
  return n;
}

TEST_F(SpecBuilderTest, AllCapabilities) {
  size_t known = CapabilitiesInBoundingSet();
  v1::Capability* c = sc()->mutable_capabilities();
  c->add_add_capabilities("ALL");
  c->add_drop_capabilities("KILL");
  std::vector<std::string> eff = Strings(Build().spec["process"]["capabilities"]["effective"]);
  EXPECT_EQ(eff.size(), known - 1);
  EXPECT_THAT(eff, Not(Contains("CAP_KILL")));

  c->Clear();
  c->add_drop_capabilities("all");
  c->add_add_capabilities("NET_RAW");
  EXPECT_THAT(Strings(Build().spec["process"]["capabilities"]["effective"]),
              ElementsAre("CAP_NET_RAW"));
}

TEST_F(SpecBuilderTest, PrivilegedContainer) {
  sandbox_.mutable_linux()->mutable_security_context()->set_privileged(true);
  sc()->set_privileged(true);
  sc()->set_no_new_privs(true);
  sc()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  json spec = Build().spec;
  EXPECT_EQ(spec["process"]["capabilities"]["effective"].size(), CapabilitiesInBoundingSet());
  EXPECT_EQ(spec["process"]["noNewPrivileges"], false);
  EXPECT_FALSE(spec["linux"].contains("seccomp"));
  EXPECT_FALSE(spec["linux"].contains("maskedPaths"));
  EXPECT_FALSE(spec["linux"].contains("readonlyPaths"));
  EXPECT_THAT(Strings((*FindMount(spec, "/sys"))["options"]), Not(Contains("ro")));
  EXPECT_THAT(Strings((*FindMount(spec, "/sys/fs/cgroup"))["options"]), Contains("rw"));
  EXPECT_THAT(spec["linux"]["resources"]["devices"],
              Contains(json{{"allow", true}, {"access", "rwm"}}));
  // The host's device nodes are in its devices list (here: /dev/null, 1:3).
  bool null = false;
  for (const json& d : spec["linux"]["devices"]) {
    null = null ||
           (d["path"] == "/dev/null" && d["type"] == "c" && d["major"] == 1 && d["minor"] == 3);
    EXPECT_NE(d["path"], "/dev/console");
    EXPECT_FALSE(absl::StartsWith(d["path"].get<std::string>(), "/dev/pts/")) << d;
  }
  EXPECT_TRUE(null) << spec["linux"]["devices"];
}

TEST_F(SpecBuilderTest, PrivilegedNeedsAPrivilegedSandbox) {
  sc()->set_privileged(true);
  EXPECT_THAT(BuildError().message(), HasSubstr("privileged"));
}

TEST_F(SpecBuilderTest, NoNewPrivsAndOomScore) {
  sc()->set_no_new_privs(true);
  res()->set_oom_score_adj(999);
  json p = Build().spec["process"];
  EXPECT_EQ(p["noNewPrivileges"], true);
  EXPECT_EQ(p["oomScoreAdj"], 999);
  res()->set_oom_score_adj(5000);
  BuiltSpec b = Build();
  EXPECT_EQ(b.spec["process"]["oomScoreAdj"], 1000);
  EXPECT_THAT(b.warnings, Contains(HasSubstr("oom_score_adj")));
}

TEST_F(SpecBuilderTest, UnsupportedSecurityFeatures) {
  sc()->mutable_selinux_options()->set_type("spc_t");
  EXPECT_THAT(BuildError().message(), HasSubstr("SELinux"));
  sc()->clear_selinux_options();
  sc()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Localhost);
  sc()->mutable_apparmor()->set_localhost_ref("k8s-nginx");
  EXPECT_THAT(BuildError().message(), HasSubstr("AppArmor"));
  sc()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  Build();
  sc()->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Unconfined);
  Build();
}

// ---- mounts ----------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, DefaultMounts) {
  json spec = Build().spec;
  EXPECT_THAT(Destinations(spec),
              ElementsAre("/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
                          "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev/shm"));
  const json& shm = *FindMount(spec, "/dev/shm");
  EXPECT_EQ(shm["source"], pod_dir_ + "/shm");
  EXPECT_THAT(Strings(shm["options"]), Contains("rw"));
  const json& hosts = *FindMount(spec, "/etc/hosts");
  EXPECT_EQ(hosts["source"], pod_dir_ + "/hosts");
  EXPECT_EQ(hosts["type"], "bind");
  EXPECT_THAT(Strings(hosts["options"]), ElementsAre("rbind", "rprivate", "rw"));
  EXPECT_EQ((*FindMount(spec, "/sys"))["type"], "sysfs");
  EXPECT_THAT(Strings((*FindMount(spec, "/sys/fs/cgroup"))["options"]), Contains("ro"));
  EXPECT_EQ(spec["root"]["path"], rootfs_);
  EXPECT_EQ(spec["root"]["readonly"], false);

  // Read-only rootfs: the pod's files too. Host network and ipc: the host's /sys and /dev/shm.
  sc()->set_readonly_rootfs(true);
  in_.netns_path.clear();
  in_.shm_path.clear();
  spec = Build().spec;
  EXPECT_EQ(spec["root"]["readonly"], true);
  EXPECT_THAT(Strings((*FindMount(spec, "/etc/resolv.conf"))["options"]), Contains("ro"));
  const json& sys = *FindMount(spec, "/sys");
  EXPECT_EQ(sys["source"], "/sys");
  EXPECT_THAT(Strings(sys["options"]), Contains("rbind"));
  EXPECT_THAT(Strings(sys["options"]), Contains("ro"));
  EXPECT_EQ((*FindMount(spec, "/dev/shm"))["source"], "/dev/shm");
}

TEST_F(SpecBuilderTest, MissingPodFilesAreSkippedWithAWarning) {
  fs::remove(pod_dir_ + "/hostname");
  BuiltSpec b = Build();
  EXPECT_EQ(FindMount(b.spec, "/etc/hostname"), nullptr);
  EXPECT_THAT(b.warnings, Contains(HasSubstr("/etc/hostname")));
}

TEST_F(SpecBuilderTest, RequestMounts) {
  auto add = [&](const std::string& container_path, const std::string& host_path) {
    v1::Mount* m = container_.add_mounts();
    m->set_container_path(container_path);
    m->set_host_path(host_path);
    return m;
  };
  add("/data/sub", dir_ + "/host/data-sub")->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  v1::Mount* data = add("/data", dir_ + "/host/data");
  data->set_readonly(true);
  data->set_recursive_read_only(true);
  add("/shared", dir_ + "/host/shared")->set_propagation(v1::PROPAGATION_BIDIRECTIONAL);
  add("/etc/hosts", dir_ + "/host/data")->set_selinux_relabel(true);

  BuiltSpec b = Build();
  const json& spec = b.spec;
  std::vector<std::string> dests = Destinations(spec);
  auto pos = [&](const std::string& d) {
    return std::find(dests.begin(), dests.end(), d) - dests.begin();
  };
  EXPECT_LT(pos("/data"), pos("/data/sub"));  // parents first
  EXPECT_EQ(std::count(dests.begin(), dests.end(), "/etc/hosts"), 1);
  EXPECT_EQ((*FindMount(spec, "/etc/hosts"))["source"], dir_ + "/host/data");
  EXPECT_THAT(Strings((*FindMount(spec, "/data"))["options"]),
              ElementsAre("rbind", "rprivate", "ro", "rro"));
  EXPECT_THAT(Strings((*FindMount(spec, "/data/sub"))["options"]),
              ElementsAre("rbind", "rslave", "rw"));
  EXPECT_THAT(Strings((*FindMount(spec, "/shared"))["options"]),
              ElementsAre("rbind", "rshared", "rw"));
  EXPECT_EQ(spec["linux"]["rootfsPropagation"], "rshared");
  EXPECT_THAT(b.warnings, Contains(HasSubstr("selinux_relabel")));
}

TEST_F(SpecBuilderTest, RequestMountOverridesShm) {
  v1::Mount* m = container_.add_mounts();
  m->set_container_path("/dev/shm");
  m->set_host_path(dir_ + "/host/data");
  json spec = Build().spec;
  EXPECT_EQ((*FindMount(spec, "/dev/shm"))["source"], dir_ + "/host/data");
  std::vector<std::string> dests = Destinations(spec);
  EXPECT_EQ(std::count(dests.begin(), dests.end(), "/dev/shm"), 1);
}

TEST_F(SpecBuilderTest, BadRequestMounts) {
  v1::Mount* ok = container_.add_mounts();
  ok->set_container_path("/ok");
  ok->set_host_path(dir_ + "/host/data");
  v1::Mount* m = container_.add_mounts();
  m->set_container_path("/x");
  m->set_host_path(dir_ + "/host/missing");
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("mounts[1].host_path"));
  EXPECT_THAT(st.message(), HasSubstr("missing"));

  m->set_host_path(dir_ + "/host/data");
  m->set_container_path("relative");
  EXPECT_THAT(BuildError().message(),
              HasSubstr("mounts[1].container_path: \"relative\": must be absolute"));

  m->set_container_path("/x");
  m->set_recursive_read_only(true);  // without readonly
  EXPECT_THAT(BuildError().message(), HasSubstr("mounts[1].recursive_read_only"));
  m->set_readonly(true);
  m->set_propagation(v1::PROPAGATION_HOST_TO_CONTAINER);
  EXPECT_THAT(BuildError().message(), HasSubstr("mounts[1].recursive_read_only"));
  m->set_propagation(v1::PROPAGATION_PRIVATE);
  Build();

  m->set_container_path(std::string("/x\0y", 4));
  EXPECT_THAT(BuildError().message(), HasSubstr("NUL"));
  m->set_container_path("/ok/");
  EXPECT_THAT(BuildError().message(), HasSubstr("twice"));
}

TEST_F(SpecBuilderTest, ImageVolumes) {
  in_.image.volumes = {"/cache", "/data"};
  v1::Mount* m = container_.add_mounts();
  m->set_container_path("/data");
  m->set_host_path(dir_ + "/host/data");
  json spec = Build().spec;
  const json* cache = FindMount(spec, "/cache");
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ((*cache)["source"], in_.volumes_dir + "/0");
  EXPECT_THAT(Strings((*cache)["options"]), Contains("rw"));
  struct stat st {};
  ASSERT_EQ(::stat((in_.volumes_dir + "/0").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ((*FindMount(spec, "/data"))["source"], dir_ + "/host/data");
  EXPECT_FALSE(fs::exists(in_.volumes_dir + "/1"));
}

TEST_F(SpecBuilderTest, ImageVolumesGetTheImageContentConfined) {
  // /cache has content (a file, a subdirectory, a symlink pointing out of the rootfs);
  // /escape is a symlink climbing out of the rootfs to a directory with a secret.
  WriteText(rootfs_ + "/cache/sub/file", "cached\n");
  ASSERT_EQ(::chmod((rootfs_ + "/cache").c_str(), 0750), 0);
  ASSERT_EQ(::chmod((rootfs_ + "/cache/sub/file").c_str(), 0604), 0);
  fs::create_symlink("../../../outside/secret", rootfs_ + "/cache/link");
  WriteText(dir_ + "/outside/secret", "host secret\n");
  fs::create_symlink("../../outside", rootfs_ + "/escape");
  in_.image.volumes = {"/cache", "/escape"};
  json spec = Build().spec;
  const std::string cache = in_.volumes_dir + "/0";
  EXPECT_EQ((*FindMount(spec, "/cache"))["source"], cache);
  std::ifstream copied(cache + "/sub/file");
  std::string text((std::istreambuf_iterator<char>(copied)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "cached\n");
  struct stat st {};
  ASSERT_EQ(::stat(cache.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);  // the image directory's mode
  ASSERT_EQ(::stat((cache + "/sub/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  // The symlink is copied as a link, not followed.
  ASSERT_EQ(::lstat((cache + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(fs::read_symlink(cache + "/link"), "../../../outside/secret");
  // /escape resolves inside the rootfs (where there is nothing): an empty volume.
  const std::string escape = in_.volumes_dir + "/1";
  EXPECT_EQ((*FindMount(spec, "/escape"))["source"], escape);
  EXPECT_TRUE(fs::is_empty(escape));
}

// ---- linux -----------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, Namespaces) {
  v1::NamespaceOption* ns = sc()->mutable_namespace_options();
  ns->set_pid(v1::CONTAINER);
  json spec = Build().spec;
  EXPECT_TRUE(HasNamespace(spec, "pid", ""));
  EXPECT_TRUE(HasNamespace(spec, "network", in_.netns_path));
  EXPECT_TRUE(HasNamespace(spec, "ipc", in_.ipc_ns_path));
  EXPECT_TRUE(HasNamespace(spec, "uts", in_.uts_ns_path));
  EXPECT_TRUE(HasNamespace(spec, "mount", ""));
  EXPECT_FALSE(AnyNamespace(spec, "cgroup"));
  EXPECT_FALSE(spec.contains("hostname"));
  EXPECT_EQ(spec["linux"]["cgroupsPath"], in_.cgroups_path);

  ns->set_pid(v1::POD);
  in_.pod_pid_ns_path = "/proc/100/ns/pid";
  EXPECT_TRUE(HasNamespace(Build().spec, "pid", "/proc/100/ns/pid"));
  in_.pod_pid_ns_path.clear();
  BuiltSpec b = Build();
  EXPECT_TRUE(HasNamespace(b.spec, "pid", ""));
  EXPECT_THAT(b.warnings, Contains(HasSubstr("namespace_options.pid")));

  ns->set_pid(v1::TARGET);
  ns->set_target_id("other");
  EXPECT_THAT(BuildError().message(), HasSubstr("other"));
  in_.target_pid_ns_path = "/proc/200/ns/pid";
  EXPECT_TRUE(HasNamespace(Build().spec, "pid", "/proc/200/ns/pid"));

  ns->set_pid(v1::NODE);
  in_.netns_path.clear();
  in_.ipc_ns_path.clear();
  in_.uts_ns_path.clear();
  in_.cgroup_v2 = true;
  spec = Build().spec;
  for (const char* type : {"pid", "network", "ipc", "uts"}) {
    EXPECT_FALSE(AnyNamespace(spec, type)) << type;
  }
  EXPECT_TRUE(HasNamespace(spec, "cgroup", ""));
  EXPECT_TRUE(HasNamespace(spec, "mount", ""));

  ns->mutable_userns_options()->set_mode(v1::POD);
  EXPECT_THAT(BuildError().message(), HasSubstr("user namespaces"));
}

TEST_F(SpecBuilderTest, Resources) {
  res()->set_cpu_shares(512);
  res()->set_cpu_quota(50000);
  res()->set_cpu_period(100000);
  res()->set_cpuset_cpus("0-1");
  res()->set_cpuset_mems("0");
  res()->set_memory_limit_in_bytes(256 << 20);
  res()->set_memory_swap_limit_in_bytes(512 << 20);
  v1::HugepageLimit* h = res()->add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(4 << 20);
  json r = Build().spec["linux"]["resources"];
  EXPECT_EQ(
      r["cpu"],
      json(
          {{"shares", 512}, {"quota", 50000}, {"period", 100000}, {"cpus", "0-1"}, {"mems", "0"}}));
  EXPECT_EQ(r["memory"], json({{"limit", 256 << 20}, {"swap", 512 << 20}}));
  EXPECT_EQ(r["hugepageLimits"], json::array({json{{"pageSize", "2MB"}, {"limit", 4 << 20}}}));
  EXPECT_EQ(r["devices"][0], json({{"allow", false}, {"access", "rwm"}}));
  EXPECT_FALSE(r.contains("unified"));

  (*res()->mutable_unified())["memory.high"] = "1000000";
  EXPECT_THAT(BuildError().message(), HasSubstr("unified"));
  in_.cgroup_v2 = true;
  EXPECT_EQ(Build().spec["linux"]["resources"]["unified"], json({{"memory.high", "1000000"}}));
  (*res()->mutable_unified())["../escape"] = "1";
  EXPECT_TRUE(absl::IsInvalidArgument(BuildError()));
  res()->mutable_unified()->erase("../escape");

  res()->set_cpuset_cpus("3-1");
  EXPECT_THAT(BuildError().message(), HasSubstr("cpuset_cpus"));
  res()->set_cpuset_cpus("");
  h->set_page_size("huge");
  EXPECT_THAT(BuildError().message(), HasSubstr("hugepage_limits[0].page_size"));
}

TEST_F(SpecBuilderTest, EmptyResourcesAreUnset) {
  json r = Build().spec["linux"]["resources"];
  EXPECT_FALSE(r.contains("cpu"));
  EXPECT_FALSE(r.contains("memory"));
}

TEST_F(SpecBuilderTest, Devices) {
  v1::Device* d = container_.add_devices();
  d->set_host_path("/dev/null");
  d->set_container_path("/dev/mynull");
  d->set_permissions("rw");
  json linux_section = Build().spec["linux"];
  ASSERT_EQ(linux_section["devices"].size(), 1u);
  const json& dev = linux_section["devices"][0];
  EXPECT_EQ(dev["path"], "/dev/mynull");
  EXPECT_EQ(dev["type"], "c");
  EXPECT_EQ(dev["major"], 1);
  EXPECT_EQ(dev["minor"], 3);
  EXPECT_THAT(
      linux_section["resources"]["devices"],
      Contains(json{{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rw"}}));

  d->set_permissions("rwx");
  EXPECT_THAT(BuildError().message(), HasSubstr("devices[0].permissions"));
  d->set_permissions("r");
  d->set_host_path("/dev/does-not-exist");
  EXPECT_THAT(BuildError().message(), HasSubstr("devices[0].host_path"));
  d->set_host_path(dir_);
  EXPECT_THAT(BuildError().message(), HasSubstr("not a device"));
}

TEST_F(SpecBuilderTest, SysctlsMaskedAndReadonlyPaths) {
  (*sandbox_.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "0";
  json l = Build().spec["linux"];
  EXPECT_EQ(l["sysctl"], json({{"net.ipv4.ip_unprivileged_port_start", "0"}}));
  EXPECT_THAT(Strings(l["maskedPaths"]), Contains("/proc/kcore"));
  EXPECT_THAT(Strings(l["maskedPaths"]), Contains("/sys/devices/virtual/powercap"));
  EXPECT_THAT(Strings(l["readonlyPaths"]), Contains("/proc/sys"));

  sc()->add_masked_paths("/proc/foo");
  sc()->add_readonly_paths("/proc/bar");
  l = Build().spec["linux"];
  EXPECT_THAT(Strings(l["maskedPaths"]), ElementsAre("/proc/foo"));
  EXPECT_THAT(Strings(l["readonlyPaths"]), ElementsAre("/proc/bar"));
  sc()->add_masked_paths("proc/rel");
  EXPECT_THAT(BuildError().message(), HasSubstr("masked_paths[1]"));
  sc()->clear_masked_paths();

  (*sandbox_.mutable_linux()->mutable_sysctls())["../../etc"] = "1";
  EXPECT_THAT(BuildError().message(), HasSubstr("sysctls"));
}

// ---- seccomp ---------------------------------------------------------------------------------

TEST_F(SpecBuilderTest, SeccompRuntimeDefault) {
  sc()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::RuntimeDefault);
  json s = Build().spec["linux"]["seccomp"];
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(s["defaultErrnoRet"], 1);
#if defined(__x86_64__)
  EXPECT_THAT(Strings(s["architectures"]),
              ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"));
  EXPECT_THAT(RulesFor(s, "arch_prctl"), Not(IsEmpty()));
#endif
  EXPECT_THAT(RulesFor(s, "read"), Not(IsEmpty()));
  EXPECT_THAT(RulesFor(s, "mount"), IsEmpty());
  EXPECT_THAT(RulesFor(s, "reboot"), IsEmpty());
  // clone without namespace flags; clone3 ENOSYS; socket without AF_VSOCK.
  std::vector<json> clone = RulesFor(s, "clone");
  ASSERT_EQ(clone.size(), 1u);
  EXPECT_EQ(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(clone[0]["args"][0]["value"], 2114060288u);
  std::vector<json> clone3 = RulesFor(s, "clone3");
  ASSERT_EQ(clone3.size(), 1u);
  EXPECT_EQ(clone3[0]["action"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(clone3[0]["errnoRet"], 38);
  std::vector<json> socket = RulesFor(s, "socket");
  ASSERT_EQ(socket.size(), 1u);
  EXPECT_EQ(socket[0]["args"][0], json({{"index", 0}, {"value", 40}, {"op", "SCMP_CMP_NE"}}));
  EXPECT_EQ(RulesFor(s, "personality").size(), 5u);

  // CAP_SYS_ADMIN unlocks mount and plain clone; CAP_SYS_BOOT reboot.
  sc()->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  sc()->mutable_capabilities()->add_add_capabilities("SYS_BOOT");
  s = Build().spec["linux"]["seccomp"];
  EXPECT_THAT(RulesFor(s, "mount"), Not(IsEmpty()));
  EXPECT_THAT(RulesFor(s, "reboot"), Not(IsEmpty()));
  clone = RulesFor(s, "clone");
  ASSERT_EQ(clone.size(), 1u);
  EXPECT_FALSE(clone[0].contains("args"));
  for (const json& r : RulesFor(s, "clone3")) EXPECT_EQ(r["action"], "SCMP_ACT_ALLOW");
}

TEST_F(SpecBuilderTest, SeccompDefaultProfileParsesStandalone) {
  json doc = {{"root", {{"path", "/"}}},
              {"linux", {{"seccomp", DefaultSeccompProfile({"CAP_SYS_ADMIN"})}}}};
  absl::StatusOr<runtime::Spec> parsed = runtime::ParseSpec(doc.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->linux.seccomp.has_value());
  EXPECT_EQ(parsed->linux.seccomp->default_errno_ret, 1u);
}

TEST_F(SpecBuilderTest, SeccompUnconfinedAndEmpty) {
  EXPECT_FALSE(Build().spec["linux"].contains("seccomp"));  // nothing set
  sc()->mutable_seccomp()->set_profile_type(v1::SecurityProfile::Unconfined);
  EXPECT_FALSE(Build().spec["linux"].contains("seccomp"));
  sc()->clear_seccomp();
  SetSeccompPath(sc(), "unconfined");
  EXPECT_FALSE(Build().spec["linux"].contains("seccomp"));
}

TEST_F(SpecBuilderTest, SeccompDeprecatedStrings) {
  for (const char* s : {"runtime/default", "docker/default"}) {
    SetSeccompPath(sc(), s);
    EXPECT_EQ(Build().spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO") << s;
  }
  SetSeccompPath(sc(), "foo/bar");
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("seccomp_profile_path"));

  WriteText(dir_ + "/seccomp/profiles/allow.json",
            R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []})");
  SetSeccompPath(sc(), absl::StrCat("localhost/", dir_, "/seccomp/profiles/allow.json"));
  EXPECT_EQ(Build().spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
}

TEST_F(SpecBuilderTest, SeccompLocalhostProfile) {
  WriteText(dir_ + "/seccomp/profiles/audit.json", R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
      {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
      {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"name": "mkdir", "action": "SCMP_ACT_LOG"},
      {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}], "comment": "x"},
      {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "1.0"}}]})");
  v1::SecurityProfile* p = sc()->mutable_seccomp();
  p->set_profile_type(v1::SecurityProfile::Localhost);
  p->set_localhost_ref("profiles/audit.json");  // relative to seccomp_profile_root
  json s = Build().spec["linux"]["seccomp"];
  EXPECT_EQ(s["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(s["defaultErrnoRet"], 1);
#if defined(__x86_64__)
  EXPECT_THAT(Strings(s["architectures"]), ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"));
#endif
  EXPECT_THAT(RulesFor(s, "read"), Not(IsEmpty()));
  EXPECT_EQ(RulesFor(s, "mkdir").at(0)["action"], "SCMP_ACT_LOG");
  EXPECT_THAT(RulesFor(s, "mount"), IsEmpty());
  EXPECT_THAT(RulesFor(s, "kill"), IsEmpty());
  EXPECT_EQ(RulesFor(s, "personality").at(0)["args"][0]["value"], 8);

  p->set_localhost_ref(dir_ + "/seccomp/profiles/audit.json");  // absolute
  Build();

  p->set_localhost_ref("profiles/missing.json");
  absl::Status st = BuildError();
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(st.message(), HasSubstr("missing.json"));

  WriteText(dir_ + "/seccomp/profiles/bad.json",
            R"({"defaultAction": "SCMP_ACT_NOPE", "syscalls": []})");
  p->set_localhost_ref("profiles/bad.json");
  EXPECT_THAT(BuildError().message(), HasSubstr("SCMP_ACT_NOPE"));
  WriteText(dir_ + "/seccomp/profiles/broken.json", "{");
  p->set_localhost_ref("profiles/broken.json");
  EXPECT_TRUE(absl::IsInvalidArgument(BuildError()));
  p->set_localhost_ref("../escape.json");
  EXPECT_THAT(BuildError().message(), HasSubstr("climbs out"));
}

TEST_F(SpecBuilderTest, SeccompOfPrivilegedIsIgnored) {
  sandbox_.mutable_linux()->mutable_security_context()->set_privileged(true);
  sc()->set_privileged(true);
  SetSeccompPath(sc(), "runtime/default");
  EXPECT_FALSE(Build().spec["linux"].contains("seccomp"));
}

// ---- annotations and the stop signal -----------------------------------------------------------

TEST_F(SpecBuilderTest, Annotations) {
  (*container_.mutable_annotations())["io.kubernetes.container.hash"] = "abc";
  json a = Build().spec["annotations"];
  EXPECT_EQ(a["io.kubernetes.container.hash"], "abc");
  EXPECT_EQ(a["io.kubernetes.cri.container-type"], "container");
  EXPECT_EQ(a["io.kubernetes.cri.container-name"], "web");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-id"], "5a4db0");
  EXPECT_EQ(a["io.kubernetes.cri.image-name"], "docker.io/library/busybox:latest");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-name"], "web-0");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-namespace"], "default");
  EXPECT_EQ(a["io.kubernetes.cri.sandbox-uid"], "uid-123");
}

TEST_F(SpecBuilderTest, StopSignal) {
  EXPECT_EQ(Build().stop_signal, "SIGTERM");
  in_.image.stop_signal = "SIGQUIT";
  EXPECT_EQ(Build().stop_signal, "SIGQUIT");
  in_.image.stop_signal = "3";
  EXPECT_EQ(Build().stop_signal, "3");
  in_.image.stop_signal = "SIGNOPE";
  BuiltSpec b = Build();
  EXPECT_EQ(b.stop_signal, "SIGTERM");
  EXPECT_THAT(b.warnings, Contains(HasSubstr("SIGNOPE")));
  v1::Signal sig{};
  ASSERT_TRUE(v1::Signal_Parse("SIGRTMINPLUS1", &sig));
  container_.set_stop_signal(sig);
  EXPECT_EQ(Build().stop_signal, "SIGRTMIN+1");
  ASSERT_TRUE(v1::Signal_Parse("SIGUSR1", &sig));
  container_.set_stop_signal(sig);
  EXPECT_EQ(Build().stop_signal, "SIGUSR1");
}

TEST_F(SpecBuilderTest, MissingConfigsAndRootfs) {
  in_.container = nullptr;
  EXPECT_TRUE(absl::IsInvalidArgument(BuildSpec(in_).status()));
  in_.container = &container_;
  in_.rootfs = "relative";
  EXPECT_THAT(BuildError().message(), HasSubstr("rootfs"));
}

}  // namespace
}  // namespace berth::cri

#include "runtime/spec.h"

#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace berth::runtime {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Shaped like the config.json containerd's CRI plugin writes for a Kubernetes container (with
// the values a Burstable pod with a seccomp RuntimeDefault profile gets), plus the fields it
// never sets (hooks, devices, personality, timeOffsets) and some it does not know (intelRdt).
constexpr char kFullConfig[] = R"json({
  "ociVersion": "1.1.0",
  "process": {
    "terminal": false,
    "consoleSize": {"height": 40, "width": 120},
    "user": {"uid": 1000, "gid": 3000, "umask": 18, "additionalGids": [3000, 4000]},
    "args": ["/pause", "-v"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=web-0", "EMPTY=", "A=b=c"],
    "cwd": "/srv",
    "capabilities": {
      "bounding": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
      "effective": ["CAP_NET_BIND_SERVICE", "cap_kill"],
      "inheritable": [],
      "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
      "ambient": ["CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1024},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 0}
    ],
    "noNewPrivileges": true,
    "oomScoreAdj": 999,
    "apparmorProfile": "cri-containerd.apparmor.d",
    "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
    "scheduler": {"policy": "SCHED_OTHER"}
  },
  "root": {"path": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
           "readonly": true},
  "hostname": "web-0",
  "domainname": "example.org",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    {"destination": "/etc/hosts", "type": "bind",
     "source": "/var/lib/kubelet/pods/123/etc-hosts", "options": ["rbind", "rprivate", "rw"]},
    {"destination": "/dev/shm", "type": "bind",
     "source": "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm",
     "options": ["rbind", "ro", "rnosuid", "tmpcopyup"]}
  ],
  "hooks": {
    "createContainer": [
      {"path": "/usr/bin/nvidia-hook", "args": ["nvidia-hook", "prestart"],
       "env": ["DEBUG=1"], "timeout": 5}
    ],
    "poststop": [{"path": "/bin/true"}]
  },
  "annotations": {
    "io.kubernetes.cri.container-type": "container",
    "io.kubernetes.cri.sandbox-id": "abc",
    "io.kubernetes.cri.container-name": "web",
    "nulled": null
  },
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0", "net/ipv4/ping_group_range": "0 1"},
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "minor": -1, "access": "r"}
      ],
      "memory": {"limit": 134217728, "reservation": 67108864, "swap": 268435456,
                 "kernel": 1, "kernelTCP": 2, "swappiness": 60, "disableOOMKiller": false},
      "cpu": {"shares": 102, "quota": 20000, "period": 100000, "realtimeRuntime": 950000,
              "realtimePeriod": 1000000, "cpus": "0-1,3", "mems": "0", "idle": 0},
      "pids": {"limit": 1024},
      "blockIO": {
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 700},
                         {"major": 8, "minor": 16, "leafWeight": 200}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 104857600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 52428800}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 1000}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 500}]
      },
      "hugepageLimits": [{"pageSize": "2MB", "limit": 0}, {"pageSize": "1GB", "limit": 1073741824}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
      "rdma": {"mlx5_1": {"hcaHandles": 3}},
      "unified": {"memory.high": "100000000", "io.max": "8:0 rbps=max"}
    },
    "cgroupsPath": "kubepods-burstable-pod123.slice:cri-containerd:abc",
    "namespaces": [
      {"type": "pid"},
      {"type": "ipc", "path": "/proc/4242/ns/ipc"},
      {"type": "uts", "path": "/proc/4242/ns/uts"},
      {"type": "mount"},
      {"type": "network", "path": "/var/run/netns/cni-1234"},
      {"type": "user"},
      {"type": "cgroup"},
      {"type": "time"}
    ],
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
       "uid": 0, "gid": 0},
      {"path": "/dev/pipe", "type": "p"}
    ],
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      "listenerPath": "/run/seccomp-agent.sock",
      "listenerMetadata": "pod=web-0",
      "syscalls": [
        {"names": ["accept", "accept4", "read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/acpi", "/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2",
    "personality": {"domain": "LINUX32", "flags": []},
    "timeOffsets": {"monotonic": {"secs": -3600, "nanosecs": 500}, "boottime": {"secs": 86400}},
    "intelRdt": {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f0"}
  }
})json";

TEST(ParseSpec, FullConfig) {
  absl::StatusOr<Spec> parsed = ParseSpec(kFullConfig);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const Spec& spec = *parsed;
  EXPECT_EQ(spec.oci_version, "1.1.0");

  ASSERT_TRUE(spec.process.has_value());
  const Process& p = *spec.process;
  EXPECT_FALSE(p.terminal);
  ASSERT_TRUE(p.console_size.has_value());
  EXPECT_EQ(p.console_size->height, 40);
  EXPECT_EQ(p.console_size->width, 120);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 3000u);
  EXPECT_EQ(p.user.umask, 022u);
  EXPECT_THAT(p.user.additional_gids, ElementsAre(3000u, 4000u));
  EXPECT_THAT(p.args, ElementsAre("/pause", "-v"));
  EXPECT_THAT(p.env,
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "HOSTNAME=web-0", "EMPTY=", "A=b=c"));
  EXPECT_EQ(p.cwd, "/srv");
  ASSERT_TRUE(p.capabilities.has_value());
  EXPECT_THAT(p.capabilities->bounding,
              ElementsAre(CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_NET_BIND_SERVICE, CAP_KILL));
  EXPECT_THAT(p.capabilities->effective, ElementsAre(CAP_NET_BIND_SERVICE, CAP_KILL));
  EXPECT_THAT(p.capabilities->inheritable, IsEmpty());
  EXPECT_THAT(p.capabilities->permitted, ElementsAre(CAP_NET_BIND_SERVICE, CAP_KILL));
  EXPECT_THAT(p.capabilities->ambient, ElementsAre(CAP_NET_BIND_SERVICE));
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(p.rlimits[0].name, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_EQ(p.rlimits[0].hard, 1048576u);
  EXPECT_EQ(p.rlimits[1].resource, RLIMIT_CORE);
  EXPECT_EQ(p.rlimits[1].hard, UINT64_MAX);  // RLIM_INFINITY as Go writes it
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.oom_score_adj, 999);
  EXPECT_EQ(p.apparmor_profile, "cri-containerd.apparmor.d");
  EXPECT_EQ(p.selinux_label, "system_u:system_r:container_t:s0:c1,c2");

  EXPECT_EQ(spec.root.path, "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs");
  EXPECT_TRUE(spec.root.readonly);
  EXPECT_EQ(spec.hostname, "web-0");
  EXPECT_EQ(spec.domainname, "example.org");

  ASSERT_EQ(spec.mounts.size(), 8u);
  EXPECT_EQ(spec.mounts[0].destination, "/proc");
  EXPECT_EQ(spec.mounts[0].type, "proc");
  EXPECT_EQ(spec.mounts[0].source, "proc");
  EXPECT_THAT(spec.mounts[0].options, ElementsAre("nosuid", "noexec", "nodev"));
  EXPECT_EQ(spec.mounts[6].destination, "/etc/hosts");
  EXPECT_EQ(spec.mounts[6].type, "bind");
  EXPECT_EQ(spec.mounts[6].source, "/var/lib/kubelet/pods/123/etc-hosts");
  EXPECT_THAT(spec.mounts[6].options, ElementsAre("rbind", "rprivate", "rw"));
  EXPECT_THAT(spec.mounts[7].uid_mappings, IsEmpty());

  ASSERT_EQ(spec.hooks.create_container.size(), 1u);
  const Hook& hook = spec.hooks.create_container[0];
  EXPECT_EQ(hook.path, "/usr/bin/nvidia-hook");
  EXPECT_THAT(hook.args, ElementsAre("nvidia-hook", "prestart"));
  EXPECT_THAT(hook.env, ElementsAre("DEBUG=1"));
  EXPECT_EQ(hook.timeout, 5);
  ASSERT_EQ(spec.hooks.poststop.size(), 1u);
  EXPECT_EQ(spec.hooks.poststop[0].path, "/bin/true");
  EXPECT_FALSE(spec.hooks.poststop[0].timeout.has_value());
  EXPECT_THAT(spec.hooks.prestart, IsEmpty());
  EXPECT_THAT(spec.hooks.create_runtime, IsEmpty());
  EXPECT_THAT(spec.hooks.start_container, IsEmpty());
  EXPECT_THAT(spec.hooks.poststart, IsEmpty());

  EXPECT_EQ(spec.annotations.size(), 4u);
  EXPECT_EQ(spec.annotations.at("io.kubernetes.cri.container-name"), "web");
  EXPECT_EQ(spec.annotations.at("nulled"), "");

  const Linux& linux_spec = spec.linux;
  ASSERT_EQ(linux_spec.uid_mappings.size(), 1u);
  EXPECT_EQ(linux_spec.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(linux_spec.uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(linux_spec.uid_mappings[0].size, 65536u);
  ASSERT_EQ(linux_spec.gid_mappings.size(), 1u);
  EXPECT_EQ(linux_spec.gid_mappings[0].host_id, 100000u);
  EXPECT_EQ(linux_spec.sysctl.size(), 2u);
  EXPECT_EQ(linux_spec.sysctl.at("net.ipv4.ip_unprivileged_port_start"), "0");
  EXPECT_EQ(linux_spec.sysctl.at("net/ipv4/ping_group_range"), "0 1");

  ASSERT_TRUE(linux_spec.resources.has_value());
  const cgroups::Resources& r = *linux_spec.resources;
  ASSERT_EQ(r.devices.size(), 4u);
  EXPECT_FALSE(r.devices[0].allow);
  EXPECT_EQ(r.devices[0].type, 'a');
  EXPECT_EQ(r.devices[0].major, -1);
  EXPECT_EQ(r.devices[0].minor, -1);
  EXPECT_EQ(r.devices[0].access, "rwm");
  EXPECT_TRUE(r.devices[1].allow);
  EXPECT_EQ(r.devices[1].type, 'c');
  EXPECT_EQ(r.devices[1].major, 1);
  EXPECT_EQ(r.devices[1].minor, 3);
  EXPECT_EQ(r.devices[2].major, 136);
  EXPECT_EQ(r.devices[2].minor, -1);
  EXPECT_EQ(r.devices[2].access, "rw");
  EXPECT_EQ(r.devices[3].type, 'b');
  EXPECT_EQ(r.devices[3].minor, -1);
  EXPECT_EQ(r.memory.limit, 134217728);
  EXPECT_EQ(r.memory.reservation, 67108864);
  EXPECT_EQ(r.memory.swap, 268435456);
  EXPECT_EQ(r.memory.swappiness, 60u);
  EXPECT_EQ(r.memory.disable_oom_killer, false);
  EXPECT_EQ(r.cpu.shares, 102u);
  EXPECT_EQ(r.cpu.quota, 20000);
  EXPECT_EQ(r.cpu.period, 100000u);
  EXPECT_EQ(r.cpu.realtime_runtime, 950000);
  EXPECT_EQ(r.cpu.realtime_period, 1000000u);
  EXPECT_EQ(r.cpu.cpus, "0-1,3");
  EXPECT_EQ(r.cpu.mems, "0");
  EXPECT_EQ(r.cpu.idle, 0);
  EXPECT_EQ(r.pids_limit, 1024);
  EXPECT_EQ(r.block_io.weight, 500);
  EXPECT_EQ(r.block_io.leaf_weight, 300);
  ASSERT_EQ(r.block_io.weight_device.size(), 2u);
  EXPECT_EQ(r.block_io.weight_device[0].major, 8);
  EXPECT_EQ(r.block_io.weight_device[0].minor, 0);
  EXPECT_EQ(r.block_io.weight_device[0].weight, 700);
  EXPECT_FALSE(r.block_io.weight_device[0].leaf_weight.has_value());
  EXPECT_EQ(r.block_io.weight_device[1].minor, 16);
  EXPECT_FALSE(r.block_io.weight_device[1].weight.has_value());
  EXPECT_EQ(r.block_io.weight_device[1].leaf_weight, 200);
  ASSERT_EQ(r.block_io.read_bps.size(), 1u);
  EXPECT_EQ(r.block_io.read_bps[0].major, 8);
  EXPECT_EQ(r.block_io.read_bps[0].rate, 104857600u);
  ASSERT_EQ(r.block_io.write_bps.size(), 1u);
  EXPECT_EQ(r.block_io.write_bps[0].rate, 52428800u);
  ASSERT_EQ(r.block_io.read_iops.size(), 1u);
  EXPECT_EQ(r.block_io.read_iops[0].rate, 1000u);
  ASSERT_EQ(r.block_io.write_iops.size(), 1u);
  EXPECT_EQ(r.block_io.write_iops[0].rate, 500u);
  EXPECT_EQ(r.hugepage_limits.size(), 2u);
  EXPECT_EQ(r.hugepage_limits.at("2MB"), 0u);
  EXPECT_EQ(r.hugepage_limits.at("1GB"), 1073741824u);
  EXPECT_EQ(r.unified.size(), 2u);
  EXPECT_EQ(r.unified.at("memory.high"), "100000000");
  EXPECT_EQ(r.unified.at("io.max"), "8:0 rbps=max");

  EXPECT_EQ(linux_spec.cgroups_path, "kubepods-burstable-pod123.slice:cri-containerd:abc");
  ASSERT_EQ(linux_spec.namespaces.size(), 8u);
  EXPECT_EQ(linux_spec.namespaces[0].type, NamespaceType::kPid);
  EXPECT_EQ(linux_spec.namespaces[0].path, "");
  EXPECT_EQ(linux_spec.namespaces[1].type, NamespaceType::kIpc);
  EXPECT_EQ(linux_spec.namespaces[1].path, "/proc/4242/ns/ipc");
  EXPECT_EQ(linux_spec.namespaces[4].type, NamespaceType::kNetwork);
  EXPECT_EQ(linux_spec.namespaces[7].type, NamespaceType::kTime);
  ASSERT_NE(linux_spec.Find(NamespaceType::kNetwork), nullptr);
  EXPECT_EQ(linux_spec.Find(NamespaceType::kNetwork)->path, "/var/run/netns/cni-1234");
  EXPECT_EQ(linux_spec.Find(NamespaceType::kUser), &linux_spec.namespaces[5]);

  ASSERT_EQ(linux_spec.devices.size(), 2u);
  EXPECT_EQ(linux_spec.devices[0].path, "/dev/fuse");
  EXPECT_EQ(linux_spec.devices[0].type, 'c');
  EXPECT_EQ(linux_spec.devices[0].major, 10);
  EXPECT_EQ(linux_spec.devices[0].minor, 229);
  EXPECT_EQ(linux_spec.devices[0].file_mode, 0666u);
  EXPECT_EQ(linux_spec.devices[0].uid, 0u);
  EXPECT_EQ(linux_spec.devices[0].gid, 0u);
  EXPECT_EQ(linux_spec.devices[1].type, 'p');
  EXPECT_FALSE(linux_spec.devices[1].file_mode.has_value());

  ASSERT_TRUE(linux_spec.seccomp.has_value());
  const Seccomp& s = *linux_spec.seccomp;
  EXPECT_EQ(s.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(s.default_errno_ret, 1u);
  EXPECT_THAT(s.architectures, ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"));
  EXPECT_THAT(s.flags, ElementsAre("SECCOMP_FILTER_FLAG_SPEC_ALLOW"));
  EXPECT_EQ(s.listener_path, "/run/seccomp-agent.sock");
  EXPECT_EQ(s.listener_metadata, "pod=web-0");
  ASSERT_EQ(s.syscalls.size(), 5u);
  EXPECT_THAT(s.syscalls[0].names, ElementsAre("accept", "accept4", "read", "write"));
  EXPECT_EQ(s.syscalls[0].action, "SCMP_ACT_ALLOW");
  EXPECT_FALSE(s.syscalls[0].errno_ret.has_value());
  EXPECT_THAT(s.syscalls[0].args, IsEmpty());
  ASSERT_EQ(s.syscalls[1].args.size(), 1u);
  EXPECT_EQ(s.syscalls[1].args[0].index, 0u);
  EXPECT_EQ(s.syscalls[1].args[0].op, "SCMP_CMP_EQ");
  ASSERT_EQ(s.syscalls[2].args.size(), 1u);
  EXPECT_EQ(s.syscalls[2].args[0].value, 2114060288u);
  EXPECT_EQ(s.syscalls[2].args[0].value_two, 0u);
  EXPECT_EQ(s.syscalls[2].args[0].op, "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(s.syscalls[3].action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(s.syscalls[3].errno_ret, 38u);
  EXPECT_EQ(s.syscalls[4].action, "SCMP_ACT_KILL_PROCESS");

  EXPECT_EQ(linux_spec.rootfs_propagation, "rslave");
  EXPECT_THAT(linux_spec.masked_paths, ElementsAre("/proc/acpi", "/proc/kcore", "/sys/firmware"));
  EXPECT_THAT(linux_spec.readonly_paths, ElementsAre("/proc/bus", "/proc/sys"));
  EXPECT_EQ(linux_spec.mount_label, "system_u:object_r:container_file_t:s0:c1,c2");
  EXPECT_EQ(linux_spec.personality, "LINUX32");
  ASSERT_EQ(linux_spec.time_offsets.size(), 2u);
  EXPECT_EQ(linux_spec.time_offsets.at("monotonic").secs, -3600);
  EXPECT_EQ(linux_spec.time_offsets.at("monotonic").nanosecs, 500u);
  EXPECT_EQ(linux_spec.time_offsets.at("boottime").secs, 86400);
  EXPECT_EQ(linux_spec.time_offsets.at("boottime").nanosecs, 0u);
}

// The smallest config that parses; each error case below changes one value in it.
json Minimal() {
  return json::parse(R"({"ociVersion": "1.1.0", "root": {"path": "rootfs"},
                         "process": {"args": ["sh"], "cwd": "/"}})");
}

TEST(ParseSpec, MinimalAndDefaults) {
  absl::StatusOr<Spec> spec = ParseSpec(Minimal().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->root.path, "rootfs");
  EXPECT_FALSE(spec->root.readonly);
  ASSERT_TRUE(spec->process.has_value());
  EXPECT_EQ(spec->process->user.uid, 0u);
  EXPECT_FALSE(spec->process->user.umask.has_value());
  EXPECT_FALSE(spec->process->capabilities.has_value());
  EXPECT_FALSE(spec->process->oom_score_adj.has_value());
  EXPECT_FALSE(spec->linux.resources.has_value());
  EXPECT_FALSE(spec->linux.seccomp.has_value());
  EXPECT_FALSE(spec->linux.personality.has_value());
  EXPECT_THAT(spec->linux.namespaces, IsEmpty());
  EXPECT_EQ(spec->linux.Find(NamespaceType::kPid), nullptr);

  // "process" is optional in config.json (create checks for it); "root" is not.
  json no_process = Minimal();
  no_process.erase("process");
  spec = ParseSpec(no_process.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->process.has_value());
}

TEST(ParseSpec, NullIsAbsent) {
  json j = Minimal();
  j["hostname"] = nullptr;
  j["linux"] = {{"resources", nullptr}, {"seccomp", nullptr}, {"namespaces", nullptr}};
  j["process"]["user"] = nullptr;
  j["process"]["oomScoreAdj"] = nullptr;
  absl::StatusOr<Spec> spec = ParseSpec(j.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->linux.resources.has_value());
  EXPECT_FALSE(spec->process->oom_score_adj.has_value());
}

TEST(ParseSpec, UnknownFieldsAreIgnored) {
  json j = Minimal();
  j["x-future"] = {{"deep", {{"er", json::array({1, 2, {{"x", nullptr}}})}}}};
  j["process"]["ioPriority"] = {{"class", "IOPRIO_CLASS_IDLE"}};
  j["process"]["user"] = {{"uid", 5}, {"username", "ContainerUser"}};
  j["root"]["x"] = 1;
  j["mounts"] = {{{"destination", "/x"}, {"x", true}}};
  j["linux"] = {
      {"namespaces", {{{"type", "pid"}, {"x", 1}}}},
      {"resources",
       {{"memory", {{"kernel", "ignored even with the wrong type"}}},
        {"network", "ignored"},
        {"rdma", 42}}},
      {"seccomp", {{"defaultAction", "SCMP_ACT_ALLOW"}, {"x", {1}}}},
      {"memoryPolicy", {{"mode", "MPOL_BIND"}}},
      {"netDevices", {{"eth1", json::object()}}},
  };
  absl::StatusOr<Spec> spec = ParseSpec(j.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->process->user.uid, 5u);
  ASSERT_EQ(spec->mounts.size(), 1u);
  EXPECT_EQ(spec->mounts[0].destination, "/x");
  EXPECT_TRUE(spec->linux.resources.has_value());
}

TEST(ParseSpec, MessageNamesDocumentPathAndValue) {
  json j = Minimal();
  j["process"]["user"] = {{"uid", "x"}};
  absl::StatusOr<Spec> spec = ParseSpec(j.dump());
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(),
            "config.json: process.user.uid: expected an unsigned 32-bit integer, got \"x\"");

  j = Minimal();
  j["linux"]["namespaces"] = {{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "foo"}}};
  spec = ParseSpec(j.dump());
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "config.json: linux.namespaces[2].type: unknown namespace \"foo\"");

  // Values in messages are quoted and made printable.
  j = Minimal();
  j["process"]["cwd"] = "rel\x1b[31m";
  spec = ParseSpec(j.dump());
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "config.json: process.cwd: \"rel\\u001b[31m\" is not an absolute path");
}

struct ErrorCase {
  const char* pointer;  // JSON pointer into Minimal() to set
  const char* value;    // JSON text of the value to set there
  const char* message;  // expected in the error, after "config.json: "
};

const ErrorCase kErrors[] = {
    {"/ociVersion", R"(2)", "ociVersion: expected a string, got 2"},
    {"/ociVersion", R"("2.0.0")", "ociVersion: \"2.0.0\" is not a 1.x version"},
    // process
    {"/process", R"([])", "process: expected an object, got an array"},
    {"/process/terminal", R"("yes")", "process.terminal: expected a boolean, got \"yes\""},
    {"/process/consoleSize", R"({"height": 70000, "width": 1})",
     "process.consoleSize.height: expected an unsigned 16-bit integer, got 70000"},
    {"/process/consoleSize", R"({"height": 1})", "process.consoleSize.width: missing"},
    {"/process/user", R"("root")", "process.user: expected an object, got \"root\""},
    {"/process/user", R"({"uid": -1})",
     "process.user.uid: expected an unsigned 32-bit integer, got -1"},
    {"/process/user", R"({"uid": 4294967296})",
     "process.user.uid: expected an unsigned 32-bit integer, got 4294967296"},
    {"/process/user", R"({"gid": 1.0})",
     "process.user.gid: expected an unsigned 32-bit integer, got 1.0"},
    {"/process/user", R"({"umask": 512})", "process.user.umask: 512 is not a umask"},
    {"/process/user", R"({"additionalGids": [1, "a"]})",
     "process.user.additionalGids[1]: expected an unsigned 32-bit integer, got \"a\""},
    {"/process/args", R"(null)", "process.args: missing"},
    {"/process/args", R"([])", "process.args: empty"},
    {"/process/args", R"("sh")", "process.args: expected an array, got \"sh\""},
    {"/process/args", R"(["sh", 1])", "process.args[1]: expected a string, got 1"},
    {"/process/args", R"([""])", "process.args[0]: empty program name"},
    {"/process/args", R"(["a\u0000b"])", "process.args[0]: \"a\\u0000b\" contains a NUL"},
    {"/process/env", R"(["PATH=/bin", "FOO"])", "process.env[1]: \"FOO\" has no '='"},
    {"/process/env", R"(["=x"])", "process.env[0]: \"=x\" has an empty variable name"},
    {"/process/cwd", R"(null)", "process.cwd: missing"},
    {"/process/cwd", R"("srv")", "process.cwd: \"srv\" is not an absolute path"},
    {"/process/capabilities", R"({"ambient": "CAP_KILL"})",
     "process.capabilities.ambient: expected an array, got \"CAP_KILL\""},
    {"/process/capabilities", R"({"effective": ["CAP_KILL", "CAP_NOPE"]})",
     "process.capabilities.effective[1]: unknown capability \"CAP_NOPE\""},
    {"/process/capabilities", R"({"bounding": ["21"]})",
     "process.capabilities.bounding[0]: unknown capability \"21\""},
    {"/process/rlimits", R"([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])",
     "process.rlimits[0].type: unknown resource limit \"RLIMIT_BOGUS\""},
    {"/process/rlimits", R"([{"type": "rlimit_nofile", "soft": 1, "hard": 1}])",
     "process.rlimits[0].type: unknown resource limit"},
    {"/process/rlimits",
     R"([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
         {"type": "RLIMIT_NOFILE", "soft": 2, "hard": 2}])",
     "process.rlimits[1].type: duplicate resource limit \"RLIMIT_NOFILE\""},
    {"/process/rlimits", R"([{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}])",
     "process.rlimits[0]: soft limit 2 is above the hard limit 1"},
    {"/process/rlimits", R"([{"type": "RLIMIT_NOFILE", "soft": 2}])",
     "process.rlimits[0].hard: missing"},
    {"/process/rlimits", R"([1])", "process.rlimits[0]: expected an object, got 1"},
    {"/process/noNewPrivileges", R"(1)", "process.noNewPrivileges: expected a boolean, got 1"},
    {"/process/oomScoreAdj", R"(1001)", "process.oomScoreAdj: 1001 is outside -1000..1000"},
    {"/process/oomScoreAdj", R"(-1001)", "process.oomScoreAdj: -1001 is outside -1000..1000"},
    {"/process/oomScoreAdj", R"(4294967296)",
     "process.oomScoreAdj: expected a 32-bit integer, got 4294967296"},
    {"/process/apparmorProfile", R"(5)", "process.apparmorProfile: expected a string, got 5"},
    {"/process/selinuxLabel", R"({})", "process.selinuxLabel: expected a string, got an object"},
    // root, names
    {"/root", R"(null)", "root: missing"},
    {"/root", R"({})", "root.path: missing"},
    {"/root/path", R"("")", "root.path: empty"},
    {"/root/readonly", R"("true")", "root.readonly: expected a boolean, got \"true\""},
    {"/domainname", R"(["x"])", "domainname: expected a string, got an array"},
    // mounts
    {"/mounts", R"({"a": 1})", "mounts: expected an array, got an object"},
    {"/mounts", R"(["x"])", "mounts[0]: expected an object, got \"x\""},
    {"/mounts", R"([{"destination": "/a"}, {"type": "tmpfs"}])", "mounts[1].destination: missing"},
    {"/mounts", R"([{"destination": "dev"}])", "mounts[0].destination: \"dev\" is not an absolute"},
    {"/mounts", R"([{"destination": "/a", "options": ["ro", 7]}])",
     "mounts[0].options[1]: expected a string, got 7"},
    {"/mounts", R"([{"destination": "/a", "options": ["idmap"]}])",
     "mounts[0].options: mount option \"idmap\": idmapped mounts are not supported"},
    {"/mounts",
     R"([{"destination": "/a", "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
          "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}])",
     "mounts[0]: idmapped mounts (uidMappings/gidMappings) are not supported"},
    {"/mounts", R"([{"destination": "/a", "uidMappings": [{"containerID": 0, "hostID": 1}]}])",
     "mounts[0].uidMappings[0].size: missing"},
    // hooks
    {"/hooks", R"([])", "hooks: expected an object, got an array"},
    {"/hooks", R"({"prestart": [{"path": "hook"}]})",
     "hooks.prestart[0].path: \"hook\" is not an absolute path"},
    {"/hooks", R"({"createRuntime": [{"args": ["x"]}]})", "hooks.createRuntime[0].path: missing"},
    {"/hooks", R"({"startContainer": [{"path": "/x", "env": ["A"]}]})",
     "hooks.startContainer[0].env[0]: \"A\" has no '='"},
    {"/hooks", R"({"poststop": [{"path": "/x", "timeout": 0}]})",
     "hooks.poststop[0].timeout: 0 is not a positive number of seconds"},
    {"/hooks", R"({"poststart": [{"path": "/x", "timeout": "5s"}]})",
     "hooks.poststart[0].timeout: expected a 32-bit integer, got \"5s\""},
    {"/hooks", R"({"createContainer": [{"path": "/x", "args": "x"}]})",
     "hooks.createContainer[0].args: expected an array"},
    // annotations
    {"/annotations", R"({"a": 1})", "annotations[\"a\"]: expected a string, got 1"},
    {"/annotations", R"(["a"])", "annotations: expected an object, got an array"},
    // linux
    {"/linux", R"(true)", "linux: expected an object, got true"},
    {"/linux/namespaces", R"([{"type": "pid"}, {"type": "pid"}])",
     "linux.namespaces[1].type: duplicate namespace \"pid\""},
    {"/linux/namespaces", R"([{"path": "/proc/1/ns/net"}])", "linux.namespaces[0].type: missing"},
    {"/linux/namespaces", R"([{"type": "net"}])", "linux.namespaces[0].type: unknown namespace"},
    {"/linux/namespaces", R"([{"type": "network", "path": "netns"}])",
     "linux.namespaces[0].path: \"netns\" is not an absolute path"},
    {"/linux/uidMappings", R"([{"containerID": 0, "hostID": 1000, "size": 0}])",
     "linux.uidMappings[0].size: 0: a mapping maps at least one id"},
    {"/linux/gidMappings", R"([{"containerID": 0, "hostID": 4294967295, "size": 2}])",
     "linux.gidMappings[0]: the range of 2 ids does not fit in 32 bits"},
    {"/linux/uidMappings", R"([{"containerID": 0, "size": 1}])",
     "linux.uidMappings[0].hostID: missing"},
    {"/linux/devices", R"([{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}])",
     "linux.devices[0].type: \"x\" is not c, u, b or p"},
    {"/linux/devices", R"([{"path": "/dev/x", "type": "c", "minor": 1}])",
     "linux.devices[0].major: missing"},
    {"/linux/devices", R"([{"path": "dev/x", "type": "p"}])",
     "linux.devices[0].path: \"dev/x\" is not an absolute path"},
    {"/linux/devices", R"([{"path": "/dev/x", "type": "b", "major": -1, "minor": 0}])",
     "linux.devices[0].major: negative"},
    {"/linux/devices", R"([{"path": "/dev/x", "type": "p", "fileMode": 4096}])",
     "linux.devices[0].fileMode: 4096 is not a permission mode"},
    {"/linux/cgroupsPath", R"("/kubepods/../../etc")",
     "linux.cgroupsPath: \"/kubepods/../../etc\" contains \"..\""},
    {"/linux/resources", R"([])", "linux.resources: expected an object, got an array"},
    {"/linux/resources", R"({"devices": [{"access": "rwm"}]})",
     "linux.resources.devices[0].allow: missing"},
    {"/linux/resources", R"({"devices": [{"allow": true, "access": "rwx"}]})",
     "linux.resources.devices[0].access: \"rwx\" is not made of r, w and m"},
    {"/linux/resources", R"({"devices": [{"allow": true, "type": "u"}]})",
     "linux.resources.devices[0].type: \"u\" is not a, b or c"},
    {"/linux/resources", R"({"devices": [{"allow": true, "major": -2}]})",
     "linux.resources.devices[0].major: negative"},
    {"/linux/resources", R"({"memory": {"limit": -2}})",
     "linux.resources.memory.limit: -2 is negative"},
    {"/linux/resources", R"({"memory": {"limit": "1G"}})",
     "linux.resources.memory.limit: expected a 64-bit integer, got \"1G\""},
    {"/linux/resources", R"({"memory": {"swap": 9223372036854775808}})",
     "linux.resources.memory.swap: expected a 64-bit integer, got 9223372036854775808"},
    {"/linux/resources", R"({"memory": {"swappiness": 101}})",
     "linux.resources.memory.swappiness: 101 is above 100"},
    {"/linux/resources", R"({"memory": {"disableOOMKiller": "no"}})",
     "linux.resources.memory.disableOOMKiller: expected a boolean"},
    {"/linux/resources", R"({"cpu": {"cpus": "0-"}})",
     "linux.resources.cpu.cpus: \"0-\" is not a list like 0-3,5"},
    {"/linux/resources", R"({"cpu": {"mems": "1-0"}})", "linux.resources.cpu.mems: \"1-0\""},
    {"/linux/resources", R"({"cpu": {"quota": 1.5}})",
     "linux.resources.cpu.quota: expected a 64-bit integer, got 1.5"},
    {"/linux/resources", R"({"cpu": {"shares": -1}})",
     "linux.resources.cpu.shares: expected an unsigned 64-bit integer, got -1"},
    {"/linux/resources", R"({"pids": {}})", "linux.resources.pids.limit: missing"},
    {"/linux/resources", R"({"pids": {"limit": -5}})",
     "linux.resources.pids.limit: -5 is negative"},
    {"/linux/resources", R"({"blockIO": {"weight": 70000}})",
     "linux.resources.blockIO.weight: expected an unsigned 16-bit integer, got 70000"},
    {"/linux/resources", R"({"blockIO": {"weightDevice": [{"major": 8, "weight": 10}]}})",
     "linux.resources.blockIO.weightDevice[0].minor: missing"},
    {"/linux/resources", R"({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}})",
     "linux.resources.blockIO.throttleReadBpsDevice[0].rate: missing"},
    {"/linux/resources",
     R"({"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": -1}]}})",
     "linux.resources.blockIO.throttleWriteIOPSDevice[0].rate: expected an unsigned 64-bit"},
    {"/linux/resources", R"({"hugepageLimits": [{"pageSize": "../2MB", "limit": 1}]})",
     "linux.resources.hugepageLimits[0].pageSize: \"../2MB\" is not a page size like 2MB"},
    {"/linux/resources",
     R"({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "2MB", "limit": 2}]})",
     "linux.resources.hugepageLimits[1].pageSize: duplicate page size \"2MB\""},
    {"/linux/resources", R"({"hugepageLimits": [{"pageSize": "2MB"}]})",
     "linux.resources.hugepageLimits[0].limit: missing"},
    {"/linux/resources", R"({"unified": {"cgroup.procs": "1"}})",
     "linux.resources.unified[\"cgroup.procs\"]: is managed by the runtime"},
    {"/linux/resources", R"({"unified": {"../memory.max": "1"}})",
     "linux.resources.unified[\"../memory.max\"]: must be a file name"},
    {"/linux/resources", R"({"unified": {"memory.max": 1}})",
     "linux.resources.unified[\"memory.max\"]: expected a string, got 1"},
    {"/linux/rootfsPropagation", R"("rprivatex")",
     "linux.rootfsPropagation: \"rprivatex\" is not [r]shared"},
    {"/linux/rootfsPropagation", R"("rr")", "linux.rootfsPropagation: \"rr\""},
    {"/linux/maskedPaths", R"(["proc/kcore"])",
     "linux.maskedPaths[0]: \"proc/kcore\" is not an absolute path"},
    {"/linux/readonlyPaths", R"([null])", "linux.readonlyPaths[0]: expected a string, got null"},
    {"/linux/mountLabel", R"(1)", "linux.mountLabel: expected a string, got 1"},
    {"/linux/sysctl", R"({"../../etc/shadow": "x"})",
     "linux.sysctl[\"../../etc/shadow\"]: not a sysctl name"},
    {"/linux/sysctl", R"({"net..x": "x"})", "linux.sysctl[\"net..x\"]: not a sysctl name"},
    {"/linux/sysctl", R"({"/proc/sys/x": "x"})", "linux.sysctl[\"/proc/sys/x\"]: not a sysctl"},
    {"/linux/sysctl", R"({"net.ipv4.ip_forward": 1})",
     "linux.sysctl[\"net.ipv4.ip_forward\"]: expected a string, got 1"},
    {"/linux/seccomp", R"({})", "linux.seccomp.defaultAction: missing"},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_BOGUS"})",
     "linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_BOGUS\""},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1})",
     "linux.seccomp.defaultErrnoRet: expected an unsigned 32-bit integer, got -1"},
    {"/linux/seccomp", R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": "x86"})",
     "linux.seccomp.architectures: expected an array"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ERRNO",
         "syscalls": [{"names": ["read"], "action": "ALLOW"}]})",
     "linux.seccomp.syscalls[0].action: unknown seccomp action \"ALLOW\""},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ERRNO",
         "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]})",
     "linux.seccomp.syscalls[0].names: empty"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]})",
     "linux.seccomp.syscalls[0].names: missing"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ERRNO",
         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]})",
     "linux.seccomp.syscalls[0].args[0].index: 6 is not an argument index (0..5)"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ERRNO",
         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_XX"}]}]})",
     "linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator \"SCMP_CMP_XX\""},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ERRNO",
         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]})",
     "linux.seccomp.syscalls[0].args[0].value: missing"},
    {"/linux/seccomp",
     R"({"defaultAction": "SCMP_ACT_ERRNO",
         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": "EPERM"}]})",
     "linux.seccomp.syscalls[0].errnoRet: expected an unsigned 32-bit integer, got \"EPERM\""},
    {"/linux/personality", R"({"domain": "LINUX64"})",
     "linux.personality.domain: \"LINUX64\" is not LINUX or LINUX32"},
    {"/linux/personality", R"({})", "linux.personality.domain: missing"},
    {"/linux/timeOffsets", R"({"realtime": {"secs": 1}})",
     "linux.timeOffsets[\"realtime\"]: unknown clock"},
    {"/linux/timeOffsets", R"({"monotonic": {"nanosecs": 1000000000}})",
     "linux.timeOffsets[\"monotonic\"].nanosecs: 1000000000 is not below 1e9"},
    {"/linux/timeOffsets", R"({"boottime": 5})",
     "linux.timeOffsets[\"boottime\"]: expected an object, got 5"},
};

TEST(ParseSpec, EachErrorNamesItsPath) {
  for (const ErrorCase& c : kErrors) {
    json value = json::parse(c.value, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(value.is_discarded()) << c.value;
    json j = Minimal();
    j[json::json_pointer(c.pointer)] = value;
    absl::StatusOr<Spec> spec = ParseSpec(j.dump());
    ASSERT_FALSE(spec.ok()) << c.pointer << " = " << c.value;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << spec.status();
    EXPECT_THAT(spec.status().message(), HasSubstr(absl::StrCat("config.json: ", c.message)))
        << c.pointer << " = " << c.value;
  }
}

TEST(ParseSpec, BadDocuments) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "config.json: not valid JSON"},
      {"{", "config.json: not valid JSON"},
      {"{\"a\": \"\xff\"}", "config.json: not valid JSON"},  // invalid UTF-8
      {"[]", "config.json: expected a JSON object, got an array"},
      {"\"x\"", "config.json: expected a JSON object, got \"x\""},
      {std::string(100000, '[') + std::string(100000, ']'), "config.json: JSON nested deeper"},
  };
  for (const auto& [text, message] : cases) {
    absl::StatusOr<Spec> spec = ParseSpec(text);
    ASSERT_FALSE(spec.ok()) << text.substr(0, 20);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr(message));
  }
}

TEST(ParseSpec, BoundaryValuesAccepted) {
  json j = Minimal();
  j["process"]["oomScoreAdj"] = -1000;
  j["process"]["user"] = {{"uid", 4294967295u}, {"umask", 0777}};
  j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 4294967295u}, {"size", 1}}};
  j["linux"]["resources"] = {{"memory", {{"limit", -1}, {"swap", -1}, {"swappiness", 100}}},
                             {"cpu", {{"quota", -1}, {"cpus", ""}}},
                             {"pids", {{"limit", -1}}},
                             {"devices", {{{"allow", true}, {"type", ""}, {"access", ""}}}}};
  j["linux"]["rootfsPropagation"] = "unbindable";
  j["hostname"] = std::string(64, 'a');
  j["mounts"] = {{{"destination", "/a"}, {"options", {""}}}};
  absl::StatusOr<Spec> spec = ParseSpec(j.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->process->oom_score_adj, -1000);
  EXPECT_EQ(spec->process->user.uid, 4294967295u);
  EXPECT_EQ(spec->linux.resources->memory.limit, -1);
  EXPECT_EQ(spec->linux.resources->cpu.quota, -1);
  EXPECT_EQ(spec->linux.resources->pids_limit, -1);
  EXPECT_EQ(spec->linux.resources->devices[0].type, 'a');  // "" means all, as in runc
}

TEST(ParseSpec, UtsNamesFitTheKernel) {
  // sethostname(2) and setdomainname(2) take 64 bytes at most.
  for (const char* key : {"hostname", "domainname"}) {
    json j = Minimal();
    j[key] = std::string(65, 'a');
    absl::StatusOr<Spec> spec = ParseSpec(j.dump());
    ASSERT_FALSE(spec.ok()) << key;
    EXPECT_THAT(spec.status().message(), HasSubstr(absl::StrCat("config.json: ", key, ": \"aaa")));
    EXPECT_THAT(spec.status().message(), HasSubstr("is longer than 64 bytes"));
  }
}

TEST(ParseProcess, SameRulesOwnDocument) {
  absl::StatusOr<Process> p = ParseProcess(R"({
    "terminal": true, "user": {"uid": 33, "gid": 33}, "args": ["/bin/sh", "-c", "id"],
    "env": ["TERM=xterm"], "cwd": "/var/www",
    "capabilities": {"bounding": ["CAP_SYS_ADMIN"]},
    "rlimits": [{"type": "RLIMIT_NPROC", "soft": 10, "hard": 20}], "x": 1})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->terminal);
  EXPECT_EQ(p->user.uid, 33u);
  EXPECT_THAT(p->args, ElementsAre("/bin/sh", "-c", "id"));
  EXPECT_EQ(p->cwd, "/var/www");
  EXPECT_THAT(p->capabilities->bounding, ElementsAre(CAP_SYS_ADMIN));
  ASSERT_EQ(p->rlimits.size(), 1u);
  EXPECT_EQ(p->rlimits[0].resource, RLIMIT_NPROC);

  p = ParseProcess(R"({"args": ["sh"], "cwd": "/", "user": {"uid": "x"}})");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "process.json: user.uid: expected an unsigned 32-bit integer, got \"x\"");
  p = ParseProcess(R"({"cwd": "/"})");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "process.json: args: missing (required)");
  p = ParseProcess(R"({"args": ["sh"]})");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "process.json: cwd: missing (required)");
  p = ParseProcess("[1]");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "process.json: expected a JSON object, got an array");
}

TEST(Namespaces, NamesAndCloneFlags) {
  EXPECT_EQ(NamespaceName(NamespaceType::kPid), "pid");
  EXPECT_EQ(NamespaceName(NamespaceType::kNetwork), "network");
  EXPECT_EQ(NamespaceName(NamespaceType::kMount), "mount");
  EXPECT_EQ(NamespaceName(NamespaceType::kIpc), "ipc");
  EXPECT_EQ(NamespaceName(NamespaceType::kUts), "uts");
  EXPECT_EQ(NamespaceName(NamespaceType::kUser), "user");
  EXPECT_EQ(NamespaceName(NamespaceType::kCgroup), "cgroup");
  EXPECT_EQ(NamespaceName(NamespaceType::kTime), "time");
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kPid), CLONE_NEWPID);
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kNetwork), CLONE_NEWNET);
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kMount), CLONE_NEWNS);
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kIpc), CLONE_NEWIPC);
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kUts), CLONE_NEWUTS);
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kUser), CLONE_NEWUSER);
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kCgroup), 0x02000000);
  EXPECT_EQ(NamespaceCloneFlag(NamespaceType::kTime), 0x80);
}

// ---- mount options ---------------------------------------------------------------------------

MountOptions Options(const std::vector<std::string>& options) {
  absl::StatusOr<MountOptions> parsed = ParseMountOptions(options);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : MountOptions{};
}

TEST(ParseMountOptions, EachFlagOption) {
  struct Case {
    const char* option;
    unsigned long flags, clear_flags;
  };
  const Case cases[] = {
      {"ro", MS_RDONLY, 0},
      {"rw", 0, MS_RDONLY},
      {"nosuid", MS_NOSUID, 0},
      {"suid", 0, MS_NOSUID},
      {"nodev", MS_NODEV, 0},
      {"dev", 0, MS_NODEV},
      {"noexec", MS_NOEXEC, 0},
      {"exec", 0, MS_NOEXEC},
      {"sync", MS_SYNCHRONOUS, 0},
      {"async", 0, MS_SYNCHRONOUS},
      {"dirsync", MS_DIRSYNC, 0},
      {"remount", MS_REMOUNT, 0},
      {"mand", MS_MANDLOCK, 0},
      {"nomand", 0, MS_MANDLOCK},
      {"noatime", MS_NOATIME, 0},
      {"atime", 0, MS_NOATIME},
      {"nodiratime", MS_NODIRATIME, 0},
      {"diratime", 0, MS_NODIRATIME},
      {"relatime", MS_RELATIME, 0},
      {"norelatime", 0, MS_RELATIME},
      {"strictatime", MS_STRICTATIME, 0},
      {"nostrictatime", 0, MS_STRICTATIME},
      {"bind", MS_BIND, 0},
      {"rbind", MS_BIND | MS_REC, 0},
      {"acl", MS_POSIXACL, 0},
      {"noacl", 0, MS_POSIXACL},
      {"iversion", MS_I_VERSION, 0},
      {"noiversion", 0, MS_I_VERSION},
      {"lazytime", MS_LAZYTIME, 0},
      {"nolazytime", 0, MS_LAZYTIME},
      {"silent", MS_SILENT, 0},
      {"loud", 0, MS_SILENT},
      {"nosymfollow", MS_NOSYMFOLLOW, 0},
      {"symfollow", 0, MS_NOSYMFOLLOW},
      {"defaults", 0, 0},
  };
  for (const Case& c : cases) {
    MountOptions o = Options({c.option});
    EXPECT_EQ(o.flags, c.flags) << c.option;
    EXPECT_EQ(o.clear_flags, c.clear_flags) << c.option;
    EXPECT_EQ(o.propagation, 0u) << c.option;
    EXPECT_EQ(o.recursive_set, 0u) << c.option;
    EXPECT_EQ(o.recursive_clear, 0u) << c.option;
    EXPECT_EQ(o.data, "") << c.option;
  }
}

TEST(ParseMountOptions, FlagsCombineAndDataKeepsTheRest) {
  MountOptions o = Options({"nosuid", "strictatime", "mode=755", "size=65536k"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(o.data, "mode=755,size=65536k");

  o = Options({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC));
  EXPECT_EQ(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");

  // The last of a pair wins, and the clear set records what was turned off.
  o = Options({"ro", "rw"});
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.clear_flags, static_cast<unsigned long>(MS_RDONLY));
  o = Options({"rw", "ro", "nodev", "dev", "nosuid"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_RDONLY | MS_NOSUID));
  EXPECT_EQ(o.clear_flags, static_cast<unsigned long>(MS_NODEV));

  o = Options({"rbind", "rprivate", "ro"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
  EXPECT_EQ(o.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));

  o = Options({"", "defaults", ""});
  EXPECT_EQ(o.flags, 0u);
  EXPECT_EQ(o.data, "");

  o = Options({"tmpcopyup", "mode=1777"});
  EXPECT_TRUE(o.tmpcopyup);
  EXPECT_EQ(o.data, "mode=1777");
  EXPECT_FALSE(Options({"ro"}).tmpcopyup);
}

TEST(ParseMountOptions, Propagation) {
  const std::pair<const char*, unsigned long> cases[] = {
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  for (const auto& [option, flag] : cases) {
    MountOptions o = Options({option});
    EXPECT_EQ(o.propagation, flag) << option;
    EXPECT_EQ(o.flags, 0u) << option;
  }
  // One propagation type at a time: the last wins.
  EXPECT_EQ(Options({"rshared", "slave"}).propagation, static_cast<unsigned long>(MS_SLAVE));
}

TEST(ParseMountOptions, RecursiveAttributes) {
  const std::tuple<const char*, uint64_t, uint64_t> cases[] = {
      {"rro", MOUNT_ATTR_RDONLY, 0},
      {"rrw", 0, MOUNT_ATTR_RDONLY},
      {"rnosuid", MOUNT_ATTR_NOSUID, 0},
      {"rsuid", 0, MOUNT_ATTR_NOSUID},
      {"rnodev", MOUNT_ATTR_NODEV, 0},
      {"rdev", 0, MOUNT_ATTR_NODEV},
      {"rnoexec", MOUNT_ATTR_NOEXEC, 0},
      {"rexec", 0, MOUNT_ATTR_NOEXEC},
      {"rnodiratime", MOUNT_ATTR_NODIRATIME, 0},
      {"rdiratime", 0, MOUNT_ATTR_NODIRATIME},
      {"rnosymfollow", MOUNT_ATTR_NOSYMFOLLOW, 0},
      {"rsymfollow", 0, MOUNT_ATTR_NOSYMFOLLOW},
      // The access-time mode is set whole: mount_setattr wants all of MOUNT_ATTR__ATIME cleared.
      {"rnoatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME},
      {"rstrictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME},
      {"rrelatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
      // Turning noatime or strictatime off goes back to the default mode, relatime.
      {"ratime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
      {"rnostrictatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME},
      // relatime is the default: "rnorelatime" alone changes nothing.
      {"rnorelatime", 0, 0},
  };
  for (const auto& [option, set, clear] : cases) {
    MountOptions o = Options({option});
    EXPECT_EQ(o.recursive_set, set) << option;
    EXPECT_EQ(o.recursive_clear, clear) << option;
    EXPECT_EQ(o.flags, 0u) << option;
    EXPECT_EQ(o.data, "") << option;
  }

  MountOptions o = Options({"rro", "rnosuid", "rrw", "rnodev"});
  EXPECT_EQ(o.recursive_set, uint64_t{MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
  EXPECT_EQ(o.recursive_clear, uint64_t{MOUNT_ATTR_RDONLY});

  o = Options({"rnoatime", "rstrictatime", "rnodiratime"});
  EXPECT_EQ(o.recursive_set, uint64_t{MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_NODIRATIME});
  EXPECT_EQ(o.recursive_clear, uint64_t{MOUNT_ATTR__ATIME});

  o = Options({"rnoatime", "ratime"});
  EXPECT_EQ(o.recursive_set, 0u);
  EXPECT_EQ(o.recursive_clear, uint64_t{MOUNT_ATTR__ATIME});

  o = Options({"rrelatime", "rnorelatime"});  // takes back the rrelatime
  EXPECT_EQ(o.recursive_set, 0u);
  EXPECT_EQ(o.recursive_clear, 0u);

  o = Options({"rnoatime", "rnorelatime"});  // noatime stays
  EXPECT_EQ(o.recursive_set, uint64_t{MOUNT_ATTR_NOATIME});
  EXPECT_EQ(o.recursive_clear, uint64_t{MOUNT_ATTR__ATIME});

  // mount(2) flags and mount_setattr(2) attributes are kept apart.
  o = Options({"rbind", "ro", "rro", "nosuid"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID));
  EXPECT_EQ(o.recursive_set, uint64_t{MOUNT_ATTR_RDONLY});
}

TEST(ParseMountOptions, IdmapRefused) {
  for (const char* option : {"idmap", "ridmap"}) {
    absl::StatusOr<MountOptions> o = ParseMountOptions({"rbind", option});
    ASSERT_FALSE(o.ok()) << option;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(o.status().message(), HasSubstr(absl::StrCat("\"", option, "\"")));
    EXPECT_THAT(o.status().message(), HasSubstr("not supported"));
  }
}

// ---- signals and capabilities ----------------------------------------------------------------

TEST(ParseSignal, NamesAndNumbers) {
  for (const char* name : {"SIGKILL", "KILL", "kill", "SigKill", "9"}) {
    absl::StatusOr<int> sig = ParseSignal(name);
    ASSERT_TRUE(sig.ok()) << name << ": " << sig.status();
    EXPECT_EQ(*sig, SIGKILL) << name;
  }
  EXPECT_EQ(*ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(*ParseSignal("hup"), SIGHUP);
  EXPECT_EQ(*ParseSignal("SIGUSR1"), SIGUSR1);
  EXPECT_EQ(*ParseSignal("SIGWINCH"), SIGWINCH);
  EXPECT_EQ(*ParseSignal("SIGCHLD"), SIGCHLD);
  EXPECT_EQ(*ParseSignal("SIGCLD"), SIGCHLD);
  EXPECT_EQ(*ParseSignal("SIGIOT"), SIGABRT);
  EXPECT_EQ(*ParseSignal("SIGSYS"), SIGSYS);
  EXPECT_EQ(*ParseSignal("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(*ParseSignal("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(*ParseSignal("rtmin+0"), SIGRTMIN);
  EXPECT_EQ(*ParseSignal("SIGRTMAX"), SIGRTMAX);
  EXPECT_EQ(*ParseSignal("RTMAX-2"), SIGRTMAX - 2);
  EXPECT_EQ(*ParseSignal("1"), 1);
  EXPECT_EQ(*ParseSignal(std::to_string(SIGRTMAX)), SIGRTMAX);
}

TEST(ParseSignal, Refused) {
  const std::string too_big = std::to_string(SIGRTMAX + 1);
  const std::string past_rtmax = absl::StrCat("SIGRTMIN+", SIGRTMAX - SIGRTMIN + 1);
  for (const std::string& name :
       {std::string(""), std::string("0"), too_big, std::string("99999999999999999999"),
        std::string("-9"), std::string("+9"), std::string(" 9"), std::string("9 "),
        std::string("SIG"), std::string("SIGFOO"), std::string("SIGKILLX"), past_rtmax,
        std::string("SIGRTMIN+"), std::string("SIGRTMIN-1"), std::string("SIGRTMAX+1"),
        std::string("SIGRTMIN+x"), std::string("RTMIN++1"), std::string("SIGSIGKILL")}) {
    absl::StatusOr<int> sig = ParseSignal(name);
    EXPECT_FALSE(sig.ok()) << "\"" << name << "\" -> " << (sig.ok() ? *sig : 0);
    if (!sig.ok()) {
      EXPECT_EQ(sig.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(CapabilityFromName, AnyCase) {
  EXPECT_EQ(*CapabilityFromName("CAP_SYS_ADMIN"), CAP_SYS_ADMIN);
  EXPECT_EQ(*CapabilityFromName("cap_sys_admin"), CAP_SYS_ADMIN);
  EXPECT_EQ(*CapabilityFromName("Cap_Sys_Admin"), CAP_SYS_ADMIN);
  EXPECT_EQ(*CapabilityFromName("CAP_CHOWN"), CAP_CHOWN);
  EXPECT_EQ(*CapabilityFromName("CAP_NET_BIND_SERVICE"), CAP_NET_BIND_SERVICE);
  EXPECT_EQ(*CapabilityFromName("CAP_AUDIT_WRITE"), CAP_AUDIT_WRITE);
}

TEST(CapabilityFromName, Refused) {
  // libcap's cap_from_name would take the numbers and the trailing blank.
  for (const char* name : {"", "CAP_", "CAP_NOPE", "SYS_ADMIN", "21", "0", "all", "CAP_SYS_ADMIN ",
                           " CAP_SYS_ADMIN", "CAP_SYS_ADMIN,CAP_KILL"}) {
    absl::StatusOr<int> cap = CapabilityFromName(name);
    EXPECT_FALSE(cap.ok()) << "\"" << name << "\"";
    if (!cap.ok()) {
      EXPECT_EQ(cap.status().code(), absl::StatusCode::kNotFound);
    }
  }
}

TEST(CapabilityFromName, KnownNamesRoundTrip) {
  std::vector<std::string> names = KnownCapabilityNames();
  ASSERT_GT(names.size(), static_cast<size_t>(CAP_AUDIT_CONTROL));  // every kernel since 2.6.11
  EXPECT_EQ(names[CAP_CHOWN], "CAP_CHOWN");
  EXPECT_EQ(names[CAP_SYS_ADMIN], "CAP_SYS_ADMIN");
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StatusOr<int> cap = CapabilityFromName(names[i]);
    ASSERT_TRUE(cap.ok()) << names[i] << ": " << cap.status();
    EXPECT_EQ(*cap, static_cast<int>(i)) << names[i];
  }
  // A capability libcap knows but this kernel does not is refused, not passed to capset.
  if (names.size() <= static_cast<size_t>(CAP_CHECKPOINT_RESTORE)) {
    EXPECT_EQ(CapabilityFromName("CAP_CHECKPOINT_RESTORE").status().code(),
              absl::StatusCode::kNotFound);
  }
}

// ---- the default config ----------------------------------------------------------------------

TEST(DefaultSpecJson, RoundTrip) {
  std::string text = DefaultSpecJson(/*rootless=*/false, 1000, 1000);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << text;
  EXPECT_EQ(j["ociVersion"], "1.1.0");
  // runc's field order and indentation.
  EXPECT_TRUE(absl::StartsWith(
      text, "{\n\t\"ociVersion\": \"1.1.0\",\n\t\"process\": {\n\t\t\"terminal\": true,"))
      << text;

  absl::StatusOr<Spec> spec = ParseSpec(text);
  ASSERT_TRUE(spec.ok()) << spec.status() << "\n" << text;
  EXPECT_EQ(spec->oci_version, "1.1.0");
  ASSERT_TRUE(spec->process.has_value());
  const Process& p = *spec->process;
  EXPECT_TRUE(p.terminal);
  EXPECT_EQ(p.user.uid, 0u);
  EXPECT_EQ(p.user.gid, 0u);
  EXPECT_THAT(p.args, ElementsAre("sh"));
  EXPECT_THAT(p.env,
              ElementsAre("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "TERM=xterm"));
  EXPECT_EQ(p.cwd, "/");
  ASSERT_TRUE(p.capabilities.has_value());
  for (const std::vector<int>* set :
       {&p.capabilities->bounding, &p.capabilities->effective, &p.capabilities->permitted}) {
    EXPECT_THAT(*set, ElementsAre(CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE));
  }
  EXPECT_THAT(p.capabilities->inheritable, IsEmpty());
  EXPECT_THAT(p.capabilities->ambient, IsEmpty());
  ASSERT_EQ(p.rlimits.size(), 1u);
  EXPECT_EQ(p.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_EQ(p.rlimits[0].hard, 1024u);
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(spec->root.path, "rootfs");
  EXPECT_TRUE(spec->root.readonly);
  EXPECT_EQ(spec->hostname, "berth");

  ASSERT_EQ(spec->mounts.size(), 7u);
  std::vector<std::string> destinations;
  for (const Mount& m : spec->mounts) destinations.push_back(m.destination);
  EXPECT_THAT(destinations, ElementsAre("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                        "/sys", "/sys/fs/cgroup"));
  EXPECT_EQ(spec->mounts[0].type, "proc");
  EXPECT_THAT(spec->mounts[0].options, IsEmpty());
  EXPECT_THAT(spec->mounts[1].options,
              ElementsAre("nosuid", "strictatime", "mode=755", "size=65536k"));
  EXPECT_EQ(spec->mounts[2].type, "devpts");
  EXPECT_THAT(spec->mounts[2].options, ElementsAre("nosuid", "noexec", "newinstance",
                                                   "ptmxmode=0666", "mode=0620", "gid=5"));
  EXPECT_EQ(spec->mounts[3].source, "shm");
  EXPECT_THAT(spec->mounts[3].options,
              ElementsAre("nosuid", "noexec", "nodev", "mode=1777", "size=65536k"));
  EXPECT_EQ(spec->mounts[4].type, "mqueue");
  EXPECT_EQ(spec->mounts[5].type, "sysfs");
  EXPECT_THAT(spec->mounts[5].options, ElementsAre("nosuid", "noexec", "nodev", "ro"));
  EXPECT_EQ(spec->mounts[6].type, "cgroup");
  EXPECT_THAT(spec->mounts[6].options, ElementsAre("nosuid", "noexec", "nodev", "relatime", "ro"));

  const Linux& l = spec->linux;
  std::vector<NamespaceType> types;
  for (const Namespace& ns : l.namespaces) {
    types.push_back(ns.type);
    EXPECT_EQ(ns.path, "");
  }
  EXPECT_THAT(types,
              ElementsAre(NamespaceType::kPid, NamespaceType::kNetwork, NamespaceType::kIpc,
                          NamespaceType::kUts, NamespaceType::kMount, NamespaceType::kCgroup));
  EXPECT_THAT(l.uid_mappings, IsEmpty());
  ASSERT_TRUE(l.resources.has_value());
  ASSERT_EQ(l.resources->devices.size(), 1u);
  EXPECT_FALSE(l.resources->devices[0].allow);
  EXPECT_EQ(l.resources->devices[0].type, 'a');
  EXPECT_EQ(l.resources->devices[0].access, "rwm");
  EXPECT_THAT(l.masked_paths,
              ElementsAre("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                          "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                          "/proc/sched_debug", "/sys/firmware", "/proc/scsi"));
  EXPECT_THAT(l.readonly_paths, ElementsAre("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                            "/proc/sysrq-trigger"));
}

TEST(DefaultSpecJson, Rootless) {
  std::string text = DefaultSpecJson(/*rootless=*/true, 1234, 5678);
  absl::StatusOr<Spec> spec = ParseSpec(text);
  ASSERT_TRUE(spec.ok()) << spec.status() << "\n" << text;
  const Linux& l = spec->linux;
  std::vector<NamespaceType> types;
  for (const Namespace& ns : l.namespaces) types.push_back(ns.type);
  EXPECT_THAT(types, ElementsAre(NamespaceType::kPid, NamespaceType::kIpc, NamespaceType::kUts,
                                 NamespaceType::kMount, NamespaceType::kUser));
  ASSERT_EQ(l.uid_mappings.size(), 1u);
  EXPECT_EQ(l.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(l.uid_mappings[0].host_id, 1234u);
  EXPECT_EQ(l.uid_mappings[0].size, 1u);
  ASSERT_EQ(l.gid_mappings.size(), 1u);
  EXPECT_EQ(l.gid_mappings[0].host_id, 5678u);
  EXPECT_FALSE(l.resources.has_value());

  ASSERT_EQ(spec->mounts.size(), 7u);
  EXPECT_EQ(spec->mounts[2].destination, "/dev/pts");
  EXPECT_THAT(spec->mounts[2].options,
              ElementsAre("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"));
  const Mount& sys = spec->mounts[5];
  EXPECT_EQ(sys.destination, "/sys");
  EXPECT_EQ(sys.type, "none");
  EXPECT_EQ(sys.source, "/sys");
  EXPECT_THAT(sys.options, ElementsAre("rbind", "nosuid", "noexec", "nodev", "ro"));
  MountOptions o = Options(sys.options);
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_NOSUID | MS_NOEXEC |
                                                MS_NODEV | MS_RDONLY));
  EXPECT_EQ(o.data, "");

  // The rest is the same as the rootful default.
  ASSERT_TRUE(spec->process.has_value());
  EXPECT_THAT(spec->process->args, ElementsAre("sh"));
  EXPECT_EQ(spec->hostname, "berth");
  EXPECT_EQ(l.masked_paths.size(), 10u);
}

}  // namespace
}  // namespace berth::runtime

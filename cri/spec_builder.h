// CRI -> OCI: the config.json of a Kubernetes container, from its CreateContainer request, its
// pod's config and its image's config, with containerd's CRI plugin as the reference for what
// each field means. Everything taken from the request, the image and the rootfs is validated
// here, with the field named in the message ("mounts[2].container_path: must be absolute"), so
// the result always passes runtime::ParseSpec.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cri/api/cri.h"
#include "nlohmann/json.hpp"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// The parts of an OCI image config a container needs.
struct ImageConfig {
  std::vector<std::string> entrypoint, cmd, env;
  std::string working_dir, user, stop_signal;
  std::vector<std::string> volumes;  // sorted keys of config.Volumes
};

// From the image config JSON ({"config": {"Entrypoint":..,"Cmd":..,"Env":..,"WorkingDir":..,
// "User":..,"StopSignal":..,"Volumes":{..}}}); missing (or null) fields are empty; wrong types
// are InvalidArgument.
absl::StatusOr<ImageConfig> ParseImageConfig(absl::string_view config_json);

struct SpecInputs {
  const v1::ContainerConfig* container = nullptr;  // required
  const v1::PodSandboxConfig* sandbox = nullptr;   // required
  ImageConfig image;
  std::string image_name;  // what the CRI asked for (annotation io.kubernetes.cri.image-name)
  std::string container_id, sandbox_id;
  // Absolute path of the container's mounted rootfs (merged overlay); /etc/passwd and
  // /etc/group are read from inside it, confined (openat2 RESOLVE_IN_ROOT).
  std::string rootfs;
  std::string pod_dir;   // holds hostname, hosts, resolv.conf files and the shm dir
  std::string shm_path;  // the pod's /dev/shm source, or empty for host ipc (host /dev/shm)
  std::string netns_path, ipc_ns_path, uts_ns_path;  // pinned pod namespaces; empty = host's
  std::string pod_pid_ns_path;     // "/proc/<holder>/ns/pid" for pid POD; empty otherwise
  std::string target_pid_ns_path;  // for namespace_options.pid == TARGET
  std::string cgroups_path;        // e.g. "kubepods/burstable/pod<uid>/<container id>"
  // Image VOLUMEs get dirs <volumes_dir>/<n>, filled with the image's content at that path
  // (from `rootfs`).
  std::string volumes_dir;
  bool cgroup_v2 = false;  // unified hierarchy (`unified` resources are refused on v1)
  // The host's device directory: a privileged container gets every node in it.
  std::string host_dev = "/dev";
  // Base for Localhost seccomp profiles given as relative paths (absolute ones used as is).
  std::string seccomp_profile_root = "/var/lib/kubelet/seccomp";
};

struct BuiltSpec {
  nlohmann::json spec;                // the OCI config.json
  std::vector<std::string> warnings;  // things clamped/ignored, one line each
  std::string stop_signal;            // the request's, else the image's STOPSIGNAL, else SIGTERM
};

absl::StatusOr<BuiltSpec> BuildSpec(const SpecInputs& in);

// The built-in RuntimeDefault seccomp profile, as OCI linux.seccomp JSON: the Docker/containerd
// default (defaultAction SCMP_ACT_ERRNO with errno 1, the host's architecture family
// (x86_64/x86/x32 or aarch64/arm), its allow-list with the capability-conditional rules
// evaluated against `caps` ("CAP_SYS_ADMIN", ...) and its argument conditions).
nlohmann::json DefaultSeccompProfile(const std::vector<std::string>& caps);

// A seccomp profile file in Docker's format (defaultAction, defaultErrnoRet, architectures or
// archMap, syscalls[{name|names, action, errnoRet, args, includes, excludes}]; plain OCI
// linux.seccomp JSON is a subset) -> OCI linux.seccomp, with includes/excludes evaluated for
// this host and `caps`. InvalidArgument for anything malformed or that ParseSpec would refuse.
absl::StatusOr<nlohmann::json> SeccompFromDockerProfile(absl::string_view profile_json,
                                                        const std::vector<std::string>& caps);

}  // namespace berth::cri

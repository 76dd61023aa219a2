#!/bin/sh
# Runs the tests that need a pure cgroup v2 host inside a throw-away QEMU guest with a pure
# cgroup v2 kernel (the cg2vm tool), because this host is hybrid (cgroup v1): in one guest boot,
#   1. cgroups_v2_integration_test  (the cgroup v2 driver), then
#   2. oci_runtime_integration_test (berth-oci, the OCI runtime, on a unified host), then
#   3. pod_integration_test          (pods through the real berthd: the cgroup v2 paths of the
#                                     monitor, the eBPF device filter, OOM kills, live updates;
#                                     a subset, BERTH_V2_POD_FILTER, as the guest is slow).
#
#   tests/cg2/run-v2-tests.sh [BUILD_DIR] [gtest args...]
#
# BUILD_DIR defaults to <repo>/build; both binaries and cmd/berth-oci must already be built there
# (ninja -C BUILD_DIR cgroups_v2_integration_test oci_runtime_integration_test; all three are in
# the default build). The gtest args go to both binaries (a --gtest_filter that matches nothing
# in one of them runs no test there, which passes). The OCI tests' fixture images
# (tests/fixtures/build-images.sh into BUILD_DIR/fixtures/images) are built or validated here on
# the host first, so that inside the guest the tests only find them up to date.
#
# Both binaries always run. Each one's status is printed ("run-v2-tests: NAME: exit N after S s
# in the guest"), then the overall one ("run-v2-tests: exit N after S s in the cg2vm guest").
# Exit status:
#   0    both passed
#   N    the status of the first binary that failed (cgroups_v2 before oci_runtime; gtest
#        exits 1 when a test failed, 128+N if the binary was killed by signal N)
#   2    nothing was run: no cg2vm tool, a binary is not built, or the fixture images could
#        not be built
#   124  CG2VM_TIMEOUT expired; 125 the guest failed (see cg2vm's NOTES.md)
# Environment: CG2VM (path of run-in-cg2vm.sh), CG2VM_CACHE (default /var/cache/cg2vm),
# CG2VM_TIMEOUT (default 1200: both binaries take about 4 minutes under TCG) and the other
# CG2VM_* knobs.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build}
[ $# -gt 0 ] && shift
build=$(cd "$build" && pwd)
tests="cgroups_v2_integration_test oci_runtime_integration_test pod_integration_test"
export BERTH_V2_POD_FILTER="${BERTH_V2_POD_FILTER:-*OnePod*:*Oom*/berth:*UpdateContainerResources*/berth:*SharedPid*/berth}"
vm=${CG2VM:-$repo/../shared/tools/cg2vm/run-in-cg2vm.sh}
if [ ! -x "$vm" ]; then
  echo "run-v2-tests: no cg2vm tool (run-in-cg2vm.sh) found; set CG2VM=/path/to/run-in-cg2vm.sh" >&2
  exit 2
fi
for bin in $tests cmd/berth-oci cmd/berthd cmd/berthctl cmd/berth-monitor; do
  case $bin in */*) ;; *) bin=tests/integration/$bin ;; esac
  bin=$build/$bin
  if [ ! -x "$bin" ]; then
    echo "run-v2-tests: $bin is not built (ninja -C $build $(basename "$bin"))" >&2
    exit 2
  fi
done
# The OCI tests run build-images.sh themselves; up to date it only validates (seconds, even in
# the guest), but a build there would be far too slow (openssl, tar and gzip under TCG over 9p).
images=$build/fixtures/images
if ! "$repo/tests/fixtures/build-images.sh" "$images"; then
  echo "run-v2-tests: the fixture images could not be built in $images (tests/fixtures/build-images.sh)" >&2
  exit 2
fi
export CG2VM_CACHE="${CG2VM_CACHE:-/var/cache/cg2vm}"
export CG2VM_TIMEOUT="${CG2VM_TIMEOUT:-1200}"
# A scratch virtio disk (/dev/vda) for the io.max test.
export CG2VM_DISK_MB="${CG2VM_DISK_MB:-64}"
if [ ! -d "$CG2VM_CACHE" ] || [ -z "$(ls -A "$CG2VM_CACHE" 2>/dev/null)" ]; then
  mkdir -p "$CG2VM_CACHE"
  "$vm" --setup
fi
# In the guest: every binary, each one's status, and the first failure's status as the result.
# $1 is the build dir, $2 the binaries' names, the rest are the gtest args.
# shellcheck disable=SC2016  # expanded by the guest's sh
guest_script='
set -f  # the stars of the gtest filter are not globs
build=$1 tests=$2; shift 2
rc=0
for t in $tests; do
  t0=$(date +%s)
  extra=
  [ "$t" != pod_integration_test ] || extra="--gtest_filter=$BERTH_V2_POD_FILTER"
  "$build/tests/integration/$t" $extra "$@"
  r=$?
  echo "run-v2-tests: $t: exit $r after $(( $(date +%s) - t0 )) s in the guest"
  [ "$rc" -ne 0 ] || rc=$r
done
exit $rc'
# The guest shares the current directory read-write: run from the build tree so the binaries,
# berth-oci, the fixture images (and anything the tests write) are reachable at the same paths.
cd "$build"
start=$(date +%s)
set +e
"$vm" /bin/sh -c "$guest_script" run-v2-tests "$build" "$tests" --gtest_color=no "$@"
rc=$?
set -e
echo "run-v2-tests: exit $rc after $(( $(date +%s) - start )) s in the cg2vm guest"
exit $rc

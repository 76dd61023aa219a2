#!/bin/sh
# Runs the cgroup v2 driver's integration tests inside a throw-away QEMU guest with a pure
# cgroup v2 kernel (the cg2vm tool), because this host is hybrid (cgroup v1).
#
#   tests/cg2/run-v2-tests.sh [BUILD_DIR] [gtest args...]
#
# BUILD_DIR defaults to <repo>/build; the binary must already be built there
# (ninja -C BUILD_DIR cgroups_v2_integration_test). Exits with the test binary's status
# (124: CG2VM_TIMEOUT expired, 125: the guest failed; see cg2vm's NOTES.md).
# Environment: CG2VM (path of run-in-cg2vm.sh), CG2VM_CACHE (default /var/cache/cg2vm),
# CG2VM_TIMEOUT (default 900) and the other CG2VM_* knobs.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build}
[ $# -gt 0 ] && shift
build=$(cd "$build" && pwd)
bin=$build/tests/integration/cgroups_v2_integration_test
vm=${CG2VM:-$repo/../shared/tools/cg2vm/run-in-cg2vm.sh}
if [ ! -x "$vm" ]; then
  echo "run-v2-tests: no cg2vm tool (run-in-cg2vm.sh) found; set CG2VM=/path/to/run-in-cg2vm.sh" >&2
  exit 2
fi
if [ ! -x "$bin" ]; then
  echo "run-v2-tests: $bin is not built (ninja -C $build cgroups_v2_integration_test)" >&2
  exit 2
fi
export CG2VM_CACHE=${CG2VM_CACHE:-/var/cache/cg2vm}
export CG2VM_TIMEOUT=${CG2VM_TIMEOUT:-900}
# A scratch virtio disk (/dev/vda) for the io.max test.
export CG2VM_DISK_MB=${CG2VM_DISK_MB:-64}
if [ ! -d "$CG2VM_CACHE" ] || [ -z "$(ls -A "$CG2VM_CACHE" 2>/dev/null)" ]; then
  mkdir -p "$CG2VM_CACHE"
  "$vm" --setup
fi
# The guest shares the current directory read-write: run from the build tree so the binary
# (and anything it writes) is reachable at the same path.
cd "$build"
start=$(date +%s)
set +e
"$vm" "$bin" --gtest_color=no "$@"
rc=$?
set -e
echo "run-v2-tests: exit $rc after $(( $(date +%s) - start )) s in the cg2vm guest"
exit $rc

#!/usr/bin/env bash
# bench/oci-bench.sh [RUNS]   (root)
#
# OCI runtime start-up benchmark: `run` (create + start + wait + delete) of /bin/true from one
# busybox bundle, berth-oci against runc and crun (Debian packages), RUNS alternating runs each
# (default 100), medians, p90, per-step medians and peak RSS. See bench/oci_bench.py.
#
# crun refuses hybrid cgroup hosts, so the comparison runs for all three runtimes in a private
# mount namespace where a tmpfs hides /sys/fs/cgroup/unified: the host's mounts are untouched.
# Expects a Release build: cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release &&
# ninja -C build-release berth-oci  (BERTH_OCI=path overrides the binary; RUNTIMES="berth-oci
# crun" compares with crun alone).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-100}"
export BERTH_OCI="${BERTH_OCI:-$PWD/build-release/cmd/berth-oci}"
packaging/deps.sh --bench >/dev/null  # runc, crun, GNU time, python3
command -v runc >/dev/null || { echo "oci-bench: runc is not installed" >&2; exit 1; }
command -v crun >/dev/null || echo "oci-bench: crun is not installed; comparing with runc only" >&2
hide=""
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
  hide="mount -t tmpfs none /sys/fs/cgroup/unified &&"
fi
exec unshare -m --propagation private sh -c "$hide exec python3 bench/oci_bench.py $RUNS"

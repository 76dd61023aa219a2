#!/usr/bin/env bash
# bench/pull-bench.sh [RUNS]   (root)
#
# Image pull benchmark (issue: pull + unpack of the large fixture image from the local
# registry, cold store, N runs, median MB/s; containerd 1.6 measured in the same run).
# Builds nothing; expects a Release build with berthd and berth-pull-bench:
#
#   cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release
#   ninja -C build-release berthd berth-pull-bench
#
# What it does (everything private: temp dirs under /var/tmp, a registry on 127.0.0.1):
#   1. builds the fixture images (tests/fixtures/build-images.sh BUILD/fixtures/images; quick
#      when they are up to date) and pushes them to a private registry (registry.sh);
#   2. berthd with its own root/state/socket; RUNS cold PullImage calls of
#      <registry>/berth-test/large:latest through the CRI (berth-pull-bench: RemoveImage between
#      runs, then a check that the blob and snapshot directories are empty, then `sync`; all
#      untimed). berthd is started just before the runs, so its VmHWM covers only pulls; VmRSS is
#      also sampled every 10 ms during the timed pulls;
#   3. containerd (Debian's 1.6) with its own root/state/socket and a registry mirror entry so
#      that its CRI pulls the local registry over plain http: RUNS cold CRI pulls the same way
#      (its RemoveImage deletes synchronously, which garbage-collects content and snapshots;
#      the check above makes sure of it), then RUNS `ctr images pull --plain-http` timed by this
#      script, each on a fresh containerd (new root: `ctr images rm --sync` leaves the blobs
#      and snapshots of a ctr pull behind);
#   4. prints one table and stops everything it started (only the pids it started), removing
#      its temp dirs.
#
# Environment: BERTH_BUILD_DIR (default build-release), WARMUP (untimed pulls before the timed
# ones, per runtime; default 1), FIXTURE_IMAGES (default BUILD/fixtures/images), KEEP=1 keeps
# the temp dir (logs).
set -euo pipefail
export LC_ALL=C

prog=pull-bench.sh
die() { echo "$prog: error: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

RUNS=${1:-5}
case "$RUNS" in '' | *[!0-9]* | 0) die "usage: $prog [RUNS]  (RUNS >= 1)" ;; esac
WARMUP=${WARMUP:-1}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BERTH_BUILD_DIR:-$SRC/build-release}
BERTHD=$BUILD/cmd/berthd
BENCH=$BUILD/bench/berth-pull-bench
CONTAINERD=${CONTAINERD:-/usr/bin/containerd}
CTR=${CTR:-/usr/bin/ctr}

[ "$(id -u)" = 0 ] || die "run as root"
for b in "$BERTHD" "$BENCH"; do
  [ -x "$b" ] || die "$b not found: cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-release berthd berth-pull-bench"
done
for b in "$CONTAINERD" "$CTR"; do [ -x "$b" ] || die "$b not found (Debian package containerd)"; done
command -v curl >/dev/null || die "curl not found"

TMP=$(mktemp -d /var/tmp/berth-pull-bench.XXXXXX)
REGSTATE=$TMP/registry
BERTHD_PID=""
CONTAINERD_PID=""

# stop PID NAME: SIGTERM, then SIGKILL after 20 s; only the pid this script started.
stop_pid() {
  local pid=$1 name=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not stop on SIGTERM, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  stop_pid "$BERTHD_PID" berthd
  stop_pid "$CONTAINERD_PID" containerd
  "$SRC/tests/fixtures/registry.sh" stop "$REGSTATE" >/dev/null 2>&1 || true
  # Nothing is mounted by pulls; unmount defensively anything left under TMP.
  awk -v t="$TMP" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    log "kept $TMP (logs)"
    # The large blobs are not worth keeping.
    rm -rf "$TMP/registry/storage" "$TMP"/*/root 2>/dev/null || true
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_socket() {
  local sock=$1 pid=$2 logf=$3
  for _ in $(seq 1 300); do
    [ -S "$sock" ] && return 0
    kill -0 "$pid" 2>/dev/null || { tail -20 "$logf" >&2; die "daemon $pid exited; log $logf"; }
    sleep 0.1
  done
  tail -20 "$logf" >&2
  die "no socket $sock after 30 s; log $logf"
}

# A check run (untimed) after every removal: the store's blob and snapshot directories must be
# empty (waits up to 10 s for an asynchronous garbage collector), then `sync` so that the
# writeback of one run does not fall into the next.
cat > "$TMP/cold-check.sh" <<'EOF'
#!/bin/sh
for _ in $(seq 1 100); do
  busy=""
  for d in "$@"; do [ -n "$(ls -A "$d" 2>/dev/null)" ] && busy="$busy $d"; done
  [ -z "$busy" ] && { sync; exit 0; }
  sleep 0.1
done
echo "cold-check: not empty after removal:$busy" >&2
for d in $busy; do ls -la "$d" >&2; done
exit 1
EOF
chmod +x "$TMP/cold-check.sh"

# status_kib PID FIELD: a /proc/PID/status field in KiB (VmRSS, VmHWM)
status_kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }
# field LINE KEY: the value of KEY=value in a "result:" line
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# ---- 1. images and registry ------------------------------------------------------------------
IMAGES=${FIXTURE_IMAGES:-$BUILD/fixtures/images}
log "building fixture images in $IMAGES (skipped when up to date)"
"$SRC/tests/fixtures/build-images.sh" "$IMAGES" >"$TMP/build-images.log" 2>&1 ||
  { tail -20 "$TMP/build-images.log" >&2; die "build-images.sh failed"; }
"$SRC/tests/fixtures/registry.sh" start "$REGSTATE" 2>>"$TMP/registry-script.log" ||
  die "registry.sh start failed (see $TMP/registry-script.log)"
log "pushing the fixture images"
"$SRC/tests/fixtures/registry.sh" push "$REGSTATE" "$IMAGES" 2>>"$TMP/registry-script.log" ||
  die "registry.sh push failed (see $TMP/registry-script.log)"
# shellcheck disable=SC1091
. "$REGSTATE/registry.env"
REG=$BERTH_TEST_REGISTRY
IMAGE=$REG/berth-test/large:latest

# The bytes a pull moves: manifest + config + layers (what ImageStatus reports as the size).
curl --noproxy '*' -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  -o "$TMP/manifest.json" "http://$REG/v2/berth-test/large/manifests/latest" ||
  die "cannot fetch the manifest of $IMAGE"
BYTES=$(($(wc -c <"$TMP/manifest.json") + $(grep -o '"size": *[0-9]*' "$TMP/manifest.json" |
  grep -o '[0-9]*$' | paste -sd+ | bc)))
NLAYERS=$(grep -o '"digest"' "$TMP/manifest.json" | wc -l)
NLAYERS=$((NLAYERS - 1))
log "image $IMAGE: $BYTES bytes, $NLAYERS layers"

# ---- 2. berthd -------------------------------------------------------------------------------
B=$TMP/berth
mkdir -p "$B/net.d"
cat >"$B/berth.toml" <<EOF
root = "$B/root"
state = "$B/state"
[grpc]
address = "unix://$B/berth.sock"
[log]
level = "info"
file = "$B/berthd.log"
[cni]
conf_dir = "$B/net.d"
EOF
"$BERTHD" --config "$B/berth.toml" </dev/null >>"$B/berthd.out" 2>&1 &
BERTHD_PID=$!
wait_socket "$B/berth.sock" "$BERTHD_PID" "$B/berthd.out"
log "berthd pid $BERTHD_PID: $RUNS cold CRI pulls (+$WARMUP warm-up)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BERTH_OUT=$("$BENCH" --endpoint "unix://$B/berth.sock" --image "$IMAGE" --runs "$RUNS" \
  --warmup "$WARMUP" --remove-between --bytes "$BYTES" --rss-pid "$BERTHD_PID" \
  --between "$TMP/cold-check.sh $B/root/content/blobs/sha256 $B/root/snapshots/sha256") ||
  { tail -20 "$B/berthd.log" >&2; die "berth-pull-bench against berthd failed"; }
echo "$BERTH_OUT" >"$TMP/berth.txt"
BERTH_RES=$(grep '^result:' <<<"$BERTH_OUT")
stop_pid "$BERTHD_PID" berthd
BERTHD_PID=""

# ---- 3. containerd ---------------------------------------------------------------------------
C=$TMP/containerd
mkdir -p "$C/net.d"
CSOCK=$C/containerd.sock
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$C/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOF
CCHECK="$TMP/cold-check.sh $C/root/io.containerd.content.v1.content/blobs/sha256 $C/root/io.containerd.snapshotter.v1.overlayfs/snapshots"
start_containerd() {
  "$CONTAINERD" --config "$C/config.toml" </dev/null >>"$C/containerd.log" 2>&1 &
  CONTAINERD_PID=$!
  wait_socket "$CSOCK" "$CONTAINERD_PID" "$C/containerd.log"
  # The CRI plugin may answer a moment after the socket appears.
  for _ in $(seq 1 50); do
    "$CTR" -a "$CSOCK" plugins ls 2>/dev/null | grep -q 'io.containerd.grpc.v1 *cri *linux/[a-z0-9]* *ok' && break
    sleep 0.1
  done
}
start_containerd
log "containerd pid $CONTAINERD_PID: $RUNS cold CRI pulls (+$WARMUP warm-up)"
CTRD_OUT=$("$BENCH" --endpoint "unix://$CSOCK" --image "$IMAGE" --runs "$RUNS" \
  --warmup "$WARMUP" --remove-between --bytes "$BYTES" --rss-pid "$CONTAINERD_PID" \
  --between "$CCHECK") ||
  { tail -20 "$C/containerd.log" >&2; die "berth-pull-bench against containerd failed"; }
echo "$CTRD_OUT" >"$TMP/containerd-cri.txt"
CTRD_RES=$(grep '^result:' <<<"$CTRD_OUT")
CTRD_HWM_CRI=$(status_kib "$CONTAINERD_PID" VmHWM)
$CCHECK || die "containerd's store is not empty after the CRI runs"

# `ctr images rm --sync REF` does not leave the store cold after a ctr pull into k8s.io: the CRI
# plugin sees the new image and adds its own reference, sha256:<image ID>, which keeps the blobs
# and snapshots (checked once below, CTR_NOTE). So every ctr run gets a fresh containerd:
# stopped, root and state deleted, started again (untimed).
log "containerd: $RUNS cold 'ctr images pull --plain-http' (+$WARMUP warm-up), fresh root per run"
CTR_TIMES=()
CTR_NOTE=""
for i in $(seq 1 $((WARMUP + RUNS))); do
  t0=$(date +%s%N)
  "$CTR" -a "$CSOCK" -n k8s.io images pull --plain-http "$IMAGE" >"$TMP/ctr-pull.log" 2>&1 ||
    { cat "$TMP/ctr-pull.log" >&2; die "ctr images pull failed"; }
  t1=$(date +%s%N)
  if [ "$i" -gt "$WARMUP" ]; then
    CTR_TIMES+=("$(echo "scale=4; ($t1 - $t0) / 1000000000" | bc)")
    log "ctr run $((i - WARMUP))/$RUNS: ${CTR_TIMES[-1]} s"
  fi
  if [ "$i" = 1 ]; then
    # Once: does `ctr images rm --sync` leave it cold? (reported, not relied upon)
    "$CTR" -a "$CSOCK" -n k8s.io images rm --sync "$IMAGE" >/dev/null || die "ctr images rm failed"
    sleep 1
    nblobs=$(ls -A "$C/root/io.containerd.content.v1.content/blobs/sha256" | wc -l)
    nsnaps=$(ls -A "$C/root/io.containerd.snapshotter.v1.overlayfs/snapshots" | wc -l)
    {
      echo "after ctr images rm --sync: $nblobs blobs, $nsnaps snapshots left"
      echo "images (k8s.io):"; "$CTR" -a "$CSOCK" -n k8s.io images ls -q
      echo "leases (k8s.io):"; "$CTR" -a "$CSOCK" -n k8s.io leases ls
      echo "leases (default):"; "$CTR" -a "$CSOCK" leases ls
    } >"$TMP/ctr-rm-check.txt" 2>&1
    CTR_NOTE="after a ctr pull, 'ctr images rm --sync REF' left $nblobs blobs and $nsnaps snapshots (images left: $("$CTR" -a "$CSOCK" -n k8s.io images ls -q | tr '\n' ' '))"
  fi
  if [ "$i" = 1 ]; then CTRD_HWM=$(status_kib "$CONTAINERD_PID" VmHWM); fi
  stop_pid "$CONTAINERD_PID" containerd
  CONTAINERD_PID=""
  rm -rf "$C/root" "$C/state" "$C/opt"
  sync
  if [ "$i" -lt $((WARMUP + RUNS)) ]; then start_containerd; fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
CTR_MEDIAN=$(printf '%s\n' "${CTR_TIMES[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR - 1) / 2 + 0.5) + 1] }')

# ---- 4. the table ----------------------------------------------------------------------------
B_MED=$(field "$BERTH_RES" median_s)
C_MED=$(field "$CTRD_RES" median_s)
mbps() { echo "scale=1; $BYTES / 1000000 / $1" | bc; }
B_MBPS=$(mbps "$B_MED")
C_MBPS=$(mbps "$C_MED")
T_MBPS=$(mbps "$CTR_MEDIAN")
mib() { echo "scale=1; $1 / 1024" | bc; }
echo
echo "pull + unpack of $IMAGE ($BYTES bytes, $NLAYERS layers), cold store, $RUNS runs (+$WARMUP warm-up), medians"
echo "load average before / after: $LOAD_BEFORE / $LOAD_AFTER (nproc $(nproc))"
printf '%-44s %10s %10s   %s\n' "what" "median s" "MB/s" "all runs (s)"
printf '%-44s %10s %10s   %s\n' "berthd, CRI PullImage" "$B_MED" "$B_MBPS" "$(field "$BERTH_RES" times_s)"
printf '%-44s %10s %10s   %s\n' "containerd 1.6, CRI PullImage" "$C_MED" "$C_MBPS" "$(field "$CTRD_RES" times_s)"
printf '%-44s %10s %10s   %s\n' "containerd 1.6, ctr images pull --plain-http" "$CTR_MEDIAN" "$T_MBPS" "$(
  IFS=,
  echo "${CTR_TIMES[*]}"
)"
echo "ratio berthd / containerd CRI:  $(echo "scale=2; $C_MED / $B_MED" | bc)x   (target >= 1.5x)"
echo "ratio berthd / ctr images pull: $(echo "scale=2; $CTR_MEDIAN / $B_MED" | bc)x"
[ -z "$CTR_NOTE" ] || echo "note: $CTR_NOTE (details: $TMP/ctr-rm-check.txt with KEEP=1)"
echo "berthd peak RSS during the pulls: VmHWM $(mib "$(field "$BERTH_RES" hwm_kib)") MiB, sampled VmRSS max $(mib "$(field "$BERTH_RES" peak_rss_kib)") MiB   (target < 64 MiB)"
echo "containerd (reference): VmHWM $(mib "$CTRD_HWM_CRI") MiB after the CRI pulls ($(mib "$CTRD_HWM") MiB for a fresh containerd after one ctr pull), sampled VmRSS max during the CRI pulls $(mib "$(field "$CTRD_RES" peak_rss_kib)") MiB"

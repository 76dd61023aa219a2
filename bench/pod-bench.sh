#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup and cri_cleanup run from the EXIT trap
# bench/pod-bench.sh [RUNS]   (root)
#
# Pod start-up benchmark (issue: RunPodSandbox .. RemovePodSandbox and the whole pod start —
# sandbox + create + start of a busybox `sleep` — RUNS runs (default 50), median and p99,
# against containerd 1.6 with runc and the same CNI config in the same run; targets: pod start
# <= 0.4x containerd's median, berthd idle RSS < 20 MiB, monitor < 1 MiB RSS per pod).
# Builds nothing; expects a Release build:
#
#   cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release
#   ninja -C build-release berthd berth-monitor berth-oci berth-pod-bench
#
# What it does. Everything runs in a private network and mount namespace (the script re-runs
# itself under `unshare --net --mount --propagation private`): the registry on 127.0.0.1, the
# CNI bridge, pod traffic and every mount stay in there; files go to a temp dir under /var/tmp.
#   1. builds the fixture images (tests/fixtures/build-images.sh; quick when up to date), makes
#      a pause image for containerd (the busybox layout with Entrypoint
#      ["/bin/sleep","infinity"]) and pushes them to a private registry (registry.sh);
#   2. writes ONE CNI conflist used by both runtimes: bridge berthbench0, host-local
#      10.198.0.0/24 (dataDir in the temp dir), portmap, no ipMasq;
#   3. berthd (log level debug: one line per CRI call with its server-side duration) with its
#      own root/state/socket: berth-pod-bench pulls busybox through the CRI, runs WARMUP + RUNS
#      pods, then KEEP_PODS pods at once for the memory figures (berth-monitor per pod); then
#      the same with the runc RuntimeClass handler (BERTH_RUNC=1, the default; timing only);
#   4. containerd (Debian's 1.6) with its own root/state/socket, runc, the same CNI dir,
#      sandbox_image = the pause image: the same (containerd-shim per pod);
#   5. prints one table, stops what it started (only its pids), removes pods a failed run left
#      (through the CRI), the bridge, the cgroups under berth-bench (leaf first) and the temp dir.
#
# Streaming exec (issue #8): in one running pod, EXEC_RUNS (default RUNS) execs of `echo hi`
# over SPDY, timed from the Exec RPC to the first stdout byte and to the end of the session,
# and 3 execs of `head -c EXEC_MIB MiB /dev/zero` (default 100) for stdout throughput.
#
# Environment: BERTH_BUILD_DIR (default build-release), WARMUP (default 3), KEEP_PODS (default
# 10; 0 skips the memory figures), SETTLE_MS (wait before the memory is sampled with KEEP_PODS
# pods running; default 2000), POLL_S (then that many seconds of a kubelet's steady calls with
# the pods running: relist every second, stats every 10 s; the daemon's memory again; default
# 15, 0 skips), BERTH_RUNC (default 1), FIXTURE_IMAGES (default
# BUILD/fixtures/images), KEEP=1 keeps the temp dir (logs, JSON).
set -euo pipefail
export LC_ALL=C

prog=pod-bench.sh
die() { echo "$prog: error: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

RUNS=${1:-50}
case "$RUNS" in '' | *[!0-9]* | 0) die "usage: $prog [RUNS]  (RUNS >= 1)" ;; esac
WARMUP=${WARMUP:-3}
KEEP_PODS=${KEEP_PODS:-10}
EXEC_RUNS=${EXEC_RUNS:-$RUNS}
EXEC_MIB=${EXEC_MIB:-100}
SETTLE_MS=${SETTLE_MS:-2000}
POLL_S=${POLL_S:-15}
BERTH_RUNC=${BERTH_RUNC:-1}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SELF=$SRC/bench/$(basename "$0")
BUILD=${BERTH_BUILD_DIR:-$SRC/build-release}
BERTHD=$BUILD/cmd/berthd
BENCH=$BUILD/bench/berth-pod-bench
CONTAINERD=${CONTAINERD:-/usr/bin/containerd}
CGROUP_ROOT=berth-bench   # every pod's cgroup is below /berth-bench in every hierarchy
BRIDGE=berthbench0

[ "$(id -u)" = 0 ] || die "run as root"
for b in "$BERTHD" "$BUILD/cmd/berth-monitor" "$BUILD/cmd/berth-oci" "$BENCH"; do
  [ -x "$b" ] || die "$b not found: cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-release berthd berth-monitor berth-oci berth-pod-bench"
done
for b in "$CONTAINERD" /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc /usr/lib/cni/bridge \
  /usr/lib/cni/host-local /usr/lib/cni/portmap /usr/lib/cni/loopback; do
  [ -x "$b" ] || die "$b not found (Debian packages containerd, runc, containernetworking-plugins)"
done
for t in curl jq umoci skopeo unshare ip; do command -v "$t" >/dev/null || die "$t not found"; done

# ---- 0. a private network and mount namespace ------------------------------------------------
if [ "${BERTH_POD_BENCH_INNER:-0}" != 1 ]; then
  export BERTH_POD_BENCH_INNER=1
  exec unshare --net --mount --propagation private -- bash "$SELF" "$@"
fi
ip link set lo up

TMP=$(mktemp -d /var/tmp/berth-pod-bench.XXXXXX)
chmod 0755 "$TMP"
REGSTATE=$TMP/registry
B=$TMP/berth
C=$TMP/containerd
CSOCK=$C/containerd.sock
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

# The cgroup dirs of the pods, in every hierarchy: removed leaf first, only below berth-bench.
cgroup_dirs() {
  local h
  for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -d "$h/$CGROUP_ROOT" ] && echo "$h/$CGROUP_ROOT"
  done
}
remove_cgroups() {
  local top d
  for top in $(cgroup_dirs); do
    find "$top" -depth -type d 2>/dev/null | while read -r d; do
      case "$d" in "$top" | "$top"/*) rmdir "$d" 2>/dev/null || log "cgroup $d not removed (busy?)" ;; esac
    done
  done
}

# Pods a failed run left: removed through the CRI, while the runtime still runs.
cri_cleanup() {
  local sock=$1 pid=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -S "$sock" ] || return 0
  timeout 300 "$BENCH" --endpoint "unix://$sock" --cleanup >&2 || log "cleanup of $sock failed"
}

cleanup() {
  local rc=$?
  cri_cleanup "$B/berth.sock" "$BERTHD_PID"
  cri_cleanup "$CSOCK" "$CONTAINERD_PID"
  stop_pid "$BERTHD_PID" berthd
  stop_pid "$CONTAINERD_PID" containerd
  "$SRC/tests/fixtures/registry.sh" stop "$REGSTATE" >/dev/null 2>&1 || true
  ip link del "$BRIDGE" 2>/dev/null || true
  remove_cgroups
  # Mounts are in this namespace only; unmount anything left under TMP before deleting it.
  awk -v t="$TMP" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
    log "kept $TMP (logs, JSON)"
    rm -rf --one-file-system "$TMP/registry/storage" "$B/root" "$C/root" 2>/dev/null || true
  else
    rm -rf --one-file-system "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A cgroup tree left by an earlier run is removed if empty; one with processes stops us.
remove_cgroups
for d in $(cgroup_dirs); do
  [ -z "$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] ||
    die "$d has processes (another pod-bench running?)"
done

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

# ---- 1. images and registry ------------------------------------------------------------------
IMAGES=${FIXTURE_IMAGES:-$BUILD/fixtures/images}
log "building fixture images in $IMAGES (skipped when up to date)"
"$SRC/tests/fixtures/build-images.sh" "$IMAGES" >"$TMP/build-images.log" 2>&1 ||
  { tail -20 "$TMP/build-images.log" >&2; die "build-images.sh failed"; }
"$SRC/tests/fixtures/registry.sh" start "$REGSTATE" 2>>"$TMP/registry-script.log" ||
  die "registry.sh start failed (see $TMP/registry-script.log)"
"$SRC/tests/fixtures/registry.sh" push "$REGSTATE" "$IMAGES" 2>>"$TMP/registry-script.log" ||
  die "registry.sh push failed (see $TMP/registry-script.log)"
# shellcheck disable=SC1091
. "$REGSTATE/registry.env"
REG=$BERTH_TEST_REGISTRY
IMAGE=$REG/berth-test/busybox:latest
PAUSE=$REG/berth-test/pause:1
# containerd's sandbox image: busybox, `sleep infinity` as its only process (berthd needs none).
cp -a "$IMAGES/busybox" "$TMP/pause-layout"
umoci config --image "$TMP/pause-layout:latest" --clear=config.cmd \
  --config.entrypoint /bin/sleep --config.entrypoint infinity >"$TMP/umoci.log" 2>&1 ||
  { cat "$TMP/umoci.log" >&2; die "umoci config of the pause image failed"; }
skopeo --insecure-policy copy --quiet --dest-tls-verify=false --dest-no-creds \
  "oci:$TMP/pause-layout:latest" "docker://$PAUSE" >"$TMP/skopeo.log" 2>&1 ||
  { cat "$TMP/skopeo.log" >&2; die "pushing $PAUSE failed"; }
log "registry $REG: $IMAGE, $PAUSE"

# ---- 2. one CNI config for both runtimes -----------------------------------------------------
mkdir -p "$TMP/net.d" "$TMP/ipam"
cat >"$TMP/net.d/10-berthbench.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "berthbench",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "$TMP/ipam",
              "ranges": [[{"subnet": "10.198.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

# run_bench NAME ARGS...: berth-pod-bench, its JSON in $TMP/NAME.json, output in $TMP/NAME.out.
run_bench() {
  local name=$1
  shift
  mkdir -p "$TMP/logs-$name"
  "$BENCH" --image "$IMAGE" --runs "$RUNS" --warmup "$WARMUP" --json "$TMP/$name.json" \
    --log-dir "$TMP/logs-$name" --settle-ms "$SETTLE_MS" --cgroup-root "/$CGROUP_ROOT" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" ||
    { tail -20 "$TMP/$name.err" >&2; return 1; }
  cat "$TMP/$name.out" >&2
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# ---- 3. berthd -------------------------------------------------------------------------------
mkdir -p "$B"
cat >"$B/berth.toml" <<EOF
root = "$B/root"
state = "$B/state"
[grpc]
address = "unix://$B/berth.sock"
[log]
level = "debug"
file = "$B/berthd.log"
[cni]
conf_dir = "$TMP/net.d"
bin_dirs = ["/usr/lib/cni"]
EOF
"$BERTHD" --config "$B/berth.toml" </dev/null >>"$B/berthd.out" 2>&1 &
BERTHD_PID=$!
wait_socket "$B/berth.sock" "$BERTHD_PID" "$B/berthd.out"
sleep 1 # idle: let it settle before the benchmark samples its memory
log "berthd pid $BERTHD_PID: $RUNS pods (+$WARMUP warm-up), then $KEEP_PODS at once"
run_bench berth --endpoint "unix://$B/berth.sock" --pull --daemon-pid "$BERTHD_PID" \
  --exec-runs "$EXEC_RUNS" --exec-mib "$EXEC_MIB" \
  --keep-pods "$KEEP_PODS" --poll-s "$POLL_S" --per-pod-process berth-monitor --per-pod-match "$B/" ||
  { tail -20 "$B/berthd.log" >&2; die "berth-pod-bench against berthd failed"; }
BLOG_LINES=$(wc -l <"$B/berthd.log") # the log of the runc-handler runs follows
if [ "$BERTH_RUNC" = 1 ]; then
  log "berthd, runc handler: $RUNS pods (+$WARMUP warm-up)"
  run_bench berth-runc --endpoint "unix://$B/berth.sock" --handler runc ||
    { tail -20 "$B/berthd.log" >&2; die "berth-pod-bench against berthd (runc) failed"; }
fi
stop_pid "$BERTHD_PID" berthd
BERTHD_PID=""

# ---- 4. containerd ---------------------------------------------------------------------------
mkdir -p "$C"
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
  sandbox_image = "$PAUSE"
  restrict_oom_score_adj = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$TMP/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$C/runc"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOF
"$CONTAINERD" --config "$C/config.toml" </dev/null >>"$C/containerd.log" 2>&1 &
CONTAINERD_PID=$!
wait_socket "$CSOCK" "$CONTAINERD_PID" "$C/containerd.log"
sleep 1
log "containerd pid $CONTAINERD_PID: $RUNS pods (+$WARMUP warm-up), then $KEEP_PODS at once"
run_bench containerd --endpoint "unix://$CSOCK" --pull --pull-extra "$PAUSE" \
  --exec-runs "$EXEC_RUNS" --exec-mib "$EXEC_MIB" \
  --daemon-pid "$CONTAINERD_PID" --keep-pods "$KEEP_PODS" --poll-s "$POLL_S" --per-pod-process containerd-shim \
  --per-pod-match "$CSOCK" ||
  { grep -i 'level=error' "$C/containerd.log" | tail -20 >&2; die "berth-pod-bench against containerd failed"; }
stop_pid "$CONTAINERD_PID" containerd
CONTAINERD_PID=""
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- 5. the table ----------------------------------------------------------------------------
BJ=$TMP/berth.json
RJ=$TMP/berth-runc.json
CJ=$TMP/containerd.json
q() { jq -r "$2" "$1"; }
ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }
RPCS="RunPodSandbox CreateContainer StartContainer StopContainer RemoveContainer StopPodSandbox RemovePodSandbox PodStart"

# berthd's own view: the median server-side duration of each RPC (debug log "rpc" lines) of
# the default-handler runs (warm-up and the memory pods included).
server_median() {
  head -n "$BLOG_LINES" "$B/berthd.log" | grep " rpc .*method=/runtime.v1.RuntimeService/$1 .*code=OK" |
    sed -n 's/.*duration_ms=\([0-9.]*\).*/\1/p' | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int((NR + 1) / 2)]; else printf "-" }'
}

echo
echo "pod start-up: $RUNS runs (+$WARMUP warm-up) per runtime, sequential, image $IMAGE, ms"
echo "berthd $(q "$BJ" .runtime.version) ($(basename "$BUILD")); containerd $(q "$CJ" .runtime.version) + runc $(/usr/sbin/runc --version | sed -n 's/^runc version //p')"
echo "load average before / after: $LOAD_BEFORE / $LOAD_AFTER (nproc $(nproc))"
# row NAME BERTHD CONTAINERD RATIO [BERTHD+RUNC]
row() {
  if [ "$BERTH_RUNC" = 1 ]; then
    printf '%-17s %15s %15s %8s %15s\n' "$@"
  else
    printf '%-17s %15s %15s %8s\n' "$1" "$2" "$3" "$4"
  fi
}
row "median / p99" "berthd" "containerd" "ratio" "berthd+runc"
for r in $RPCS; do
  bm=$(q "$BJ" ".summary.$r.median") bp=$(q "$BJ" ".summary.$r.p99")
  cm=$(q "$CJ" ".summary.$r.median") cp=$(q "$CJ" ".summary.$r.p99")
  rm_=""
  [ "$BERTH_RUNC" = 1 ] && rm_=$(printf '%.1f / %.1f' "$(q "$RJ" ".summary.$r.median")" "$(q "$RJ" ".summary.$r.p99")")
  row "$r" "$(printf '%.1f / %.1f' "$bm" "$bp")" "$(printf '%.1f / %.1f' "$cm" "$cp")" "$(ratio "$bm" "$cm")" "$rm_"
done
PS_RATIO=$(ratio "$(q "$BJ" .summary.PodStart.median)" "$(q "$CJ" .summary.PodStart.median)")
echo "pod start (sandbox + create + start) median, berthd / containerd: ${PS_RATIO}x   (target <= 0.4x)"
printf 'berthd server-side medians (its debug log, default handler):'
for r in RunPodSandbox CreateContainer StartContainer StopContainer RemoveContainer StopPodSandbox RemovePodSandbox; do
  printf ' %s %s' "$r" "$(server_median "$r")"
done
echo
if [ "$EXEC_RUNS" -gt 0 ]; then
  echo
  echo "streaming exec over SPDY in a running pod: $EXEC_RUNS runs (+$WARMUP warm-up) of 'echo hi', 3 of $EXEC_MIB MiB"
  printf '%-44s %15s %15s %8s\n' "median / p99" berthd containerd ratio
  for m in first_byte_ms total_ms; do
    bm=$(q "$BJ" ".exec.summary.$m.median") bp=$(q "$BJ" ".exec.summary.$m.p99")
    cm=$(q "$CJ" ".exec.summary.$m.median") cp=$(q "$CJ" ".exec.summary.$m.p99")
    label="Exec RPC to first stdout byte, ms"
    [ "$m" = total_ms ] && label="Exec RPC to end of session, ms"
    printf '%-44s %15s %15s %8s\n' "$label" "$(printf '%.1f / %.1f' "$bm" "$bp")" \
      "$(printf '%.1f / %.1f' "$cm" "$cp")" "$(ratio "$bm" "$cm")"
  done
  bt=$(q "$BJ" .exec.summary.throughput_mib_s.median) ct=$(q "$CJ" .exec.summary.throughput_mib_s.median)
  printf '%-44s %15.0f %15.0f %8s\n' "stdout throughput, MiB/s (median of 3)" "$bt" "$ct" "$(ratio "$bt" "$ct")"
  echo "targets: exec round trip <= 0.5x containerd's; throughput >= containerd's"
fi
if [ "$KEEP_PODS" -gt 0 ]; then
  mib() { echo "scale=2; $1 / 1024" | bc | sed 's/^\./0./'; }
  echo
  printf '%-58s %10s %12s\n' "memory (MiB), $KEEP_PODS pods (sandbox + sleep) at once" berthd containerd
  printf '%-58s %10s %12s\n' "daemon RSS idle (before any call)" \
    "$(mib "$(q "$BJ" .memory.daemon_idle.rss_kib)")" "$(mib "$(q "$CJ" .memory.daemon_idle.rss_kib)")"
  printf '%-58s %10s %12s\n' "daemon RSS after the runs" \
    "$(mib "$(q "$BJ" .memory.daemon_after_runs.rss_kib)")" "$(mib "$(q "$CJ" .memory.daemon_after_runs.rss_kib)")"
  printf '%-58s %10s %12s\n' "daemon RSS with $KEEP_PODS pods" \
    "$(mib "$(q "$BJ" .memory.daemon_with_pods.rss_kib)")" "$(mib "$(q "$CJ" .memory.daemon_with_pods.rss_kib)")"
  if [ "$POLL_S" -gt 0 ]; then
    printf '%-58s %10s %12s\n' "daemon RSS with the pods, polled ${POLL_S} s as by a kubelet" \
      "$(mib "$(q "$BJ" .memory.daemon_polled.rss_kib)")" "$(mib "$(q "$CJ" .memory.daemon_polled.rss_kib)")"
    printf '%-58s %10s %12s\n' "  largest seen while polled" \
      "$(mib "$(q "$BJ" .memory.daemon_polled_max_rss_kib)")" "$(mib "$(q "$CJ" .memory.daemon_polled_max_rss_kib)")"
  fi
  printf '%-58s %10s %12s\n' "per-pod process (berth-monitor / shim): count" \
    "$(q "$BJ" .memory.per_pod_processes)" "$(q "$CJ" .memory.per_pod_processes)"
  printf '%-58s %10s %12s\n' "per-pod process RSS, median" \
    "$(mib "$(q "$BJ" .memory.per_pod_rss_kib.median)")" "$(mib "$(q "$CJ" .memory.per_pod_rss_kib.median)")"
  printf '%-58s %10s %12s\n' "per-pod process PSS, median" \
    "$(mib "$(q "$BJ" .memory.per_pod_pss_kib.median)")" "$(mib "$(q "$CJ" .memory.per_pod_pss_kib.median)")"
  printf '%-58s %10s %12s\n' "added per pod, PSS (per-pod procs + pod cgroups + daemon)" \
    "$(mib "$(q "$BJ" .memory.added_pss_kib_per_pod)")" "$(mib "$(q "$CJ" .memory.added_pss_kib_per_pod)")"
  echo "targets: berthd idle RSS < 20 MiB; berth-monitor < 1 MiB RSS per pod"
fi
[ "${KEEP:-0}" = 1 ] && echo "JSON and logs: $TMP"
exit 0

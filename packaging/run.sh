#!/usr/bin/env bash
# berth's main job on a fresh Debian bookworm machine (as root): install the dependencies,
# build a release, install it under /usr/local, (re)start berthd with its defaults and show
# what it answers. Under systemd berthd runs as berthd.service; elsewhere (containers, CI
# sandboxes) it runs in the background with its log in /var/log/berthd.log.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "packaging/run.sh: must run as root" >&2
  exit 1
fi
packaging/deps.sh
build=${BUILD_DIR:-build-release}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBERTH_BUILD_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX=/usr/local
cmake --build "$build" -j "$(nproc)"
cmake --install "$build"

# A default pod network (bridge berth0 on 10.88.0.0/16, host-local, portmap, loopback) when
# the node has no CNI config yet; an existing one (Calico, Cilium, Flannel...) is left alone.
if ! ls /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist /etc/cni/net.d/*.json >/dev/null 2>&1; then
  install -D -m 0644 packaging/10-berth.conflist /etc/cni/net.d/10-berth.conflist
  echo "installed the default CNI network /etc/cni/net.d/10-berth.conflist"
fi

sock=/run/berth/berth.sock
lock=/run/berth/berthd.lock
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
  systemctl enable berthd.service >/dev/null 2>&1 || true
  systemctl restart berthd.service
else
  # Stop a berthd this script started before (its pid is in the lock file), then start anew.
  if [ -s "$lock" ]; then
    old=$(cat "$lock")
    if [ -n "$old" ] && [ "$(cat /proc/"$old"/comm 2>/dev/null)" = berthd ]; then
      kill -TERM "$old"
      for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  setsid /usr/local/bin/berthd >>/var/log/berthd.log 2>&1 < /dev/null &
fi

for _ in $(seq 100); do
  [ -S "$sock" ] && /usr/local/bin/berthctl version >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== berthctl version"
/usr/local/bin/berthctl version
echo
echo "== berthctl info"
/usr/local/bin/berthctl info
echo
# A demo pod: busybox's httpd in a pod on the default network. No registry is reachable from
# here, so the image is built locally from Debian's busybox-static (tests/fixtures) and
# imported; the pod is removed again unless KEEP_DEMO=1.
ctl=/usr/local/bin/berthctl
if [ "${DEMO:-1}" = 1 ]; then
  echo
  echo "== demo pod"
  images=$(mktemp -d /var/tmp/berth-demo.XXXXXX)
  tests/fixtures/build-images.sh "$images" busybox >/dev/null
  $ctl image import "$images/busybox" --tag localhost/berth/busybox:demo
  rm -rf "$images"
  # A demo pod left by an earlier run goes first.
  for old in $($ctl pods -q --label app=berth-demo); do $ctl stopp "$old" >/dev/null; $ctl rmp "$old" >/dev/null; done
  ctr=$($ctl run packaging/demo/container.json packaging/demo/pod.json)
  pod=$($ctl pods -q --label app=berth-demo | head -n1)
  for _ in $(seq 50); do $ctl logs "$ctr" 2>/dev/null | grep -q serving && break; sleep 0.1; done
  echo "-- berthctl pods"; $ctl pods
  echo "-- berthctl ps"; $ctl ps
  ip=$($ctl inspectp "$pod" | grep -o '"ip": *"[0-9a-f.:]*"' | head -n1 | sed 's/.*"\([0-9a-f.:]*\)"$/\1/')
  echo "-- the pod's address: $ip; GET http://$ip:8080/ from the node:"
  curl -s --max-time 5 "http://$ip:8080/" || echo "(no answer)"
  echo "-- berthctl exec $ctr cat /etc/hostname"; $ctl exec "$ctr" cat /etc/hostname
  echo "-- berthctl logs $ctr"; $ctl logs "$ctr"
  if [ "${KEEP_DEMO:-0}" != 1 ]; then
    $ctl stopp "$pod" >/dev/null && $ctl rmp "$pod" >/dev/null && echo "-- demo pod removed (KEEP_DEMO=1 keeps it)"
  fi
fi
echo
echo "berthd is serving on unix://$sock (log: $( [ -d /run/systemd/system ] && echo 'journalctl -u berthd' || echo /var/log/berthd.log ))"

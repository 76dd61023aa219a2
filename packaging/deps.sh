#!/usr/bin/env bash
# Installs everything berth needs to build and test on Debian bookworm, from Debian's
# repository only. Used by the README, .ci/run and packaging. Idempotent.
#
#   packaging/deps.sh           build + test dependencies (default)
#   packaging/deps.sh --build   only what building berth needs
#   packaging/deps.sh --bench   all of it plus the benchmarks' peers and tools (crun, GNU time)
#   packaging/deps.sh --print   print the package list and exit
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  protobuf-compiler libprotobuf-dev protobuf-compiler-grpc libgrpc++-dev libabsl-dev
  libseccomp-dev libcap-dev libcurl4-openssl-dev libssl-dev zlib1g-dev libzstd-dev
  libarchive-dev libsqlite3-dev nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libboost-dev
)
# Real peers and fixtures for the integration tests: a local registry, image tools,
# busybox for test images, CNI plugins, runc/containerd as reference CRI/OCI peers.
test_pkgs=(
  docker-registry skopeo umoci busybox-static containernetworking-plugins
  runc containerd iproute2 iptables procps util-linux curl openssl attr tar gzip
)

# Only for the benchmarks under bench/ (peers and measuring tools), not for building or tests.
bench_pkgs=(crun time python3)

mode=${1:-all}
case "$mode" in
  --build) pkgs=("${build_pkgs[@]}") ;;
  all|--all) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  --bench) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  --print) printf '%s\n' "${build_pkgs[@]}" "${test_pkgs[@]}"; exit 0 ;;
  *) echo "usage: $0 [--build|--all|--bench|--print]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: must run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps.sh: all ${#pkgs[@]} packages present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages' own services (containerd, docker-registry) must not be started on install:
# tests start private instances of them on their own sockets and ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; created_policy=1
fi
trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps.sh: installed ${#missing[@]} package(s)"

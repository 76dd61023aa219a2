#!/usr/bin/env bash
# berth's test command, for a fresh Debian bookworm machine (as root):
#
#   tests/run.sh            install deps, build (RelWithDebInfo), run every test: unit + integration
#   tests/run.sh --asan     build the unit tests with AddressSanitizer + UBSan and run them
#
# BUILD_DIR overrides the build directory; extra arguments after `--` go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
if [ "${1:-}" = "--asan" ]; then mode=asan; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: the integration tests need root (namespaces, mounts, daemons)" >&2
  exit 1
fi
packaging/deps.sh

jobs=$(nproc)
if [ "$mode" = asan ]; then
  build=${BUILD_DIR:-build-asan}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBERTH_SANITIZE=address,undefined
  cmake --build "$build" -j "$jobs" --target berth_unit_tests
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  ctest --test-dir "$build" -L unit --output-on-failure "$@"
else
  build=${BUILD_DIR:-build}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$build" -j "$jobs"
  ctest --test-dir "$build" --output-on-failure "$@"
fi

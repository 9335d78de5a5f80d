#!/usr/bin/env bash
# Installs dependencies, builds, and runs the test suite with ctest.
#   scripts/test.sh              default build (RelWithDebInfo, benchmarks too) in build/
#   scripts/test.sh --release    Release build (benchmarks too) in build-release/
#   scripts/test.sh --sanitize   ASan + UBSan build in build-asan/
#   scripts/test.sh --tsan       ThreadSanitizer build in build-tsan/
# Every mode builds with warnings as errors (RMON_WERROR).
# Extra arguments after the mode go to ctest (e.g. -R Codec).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="default"
case "${1:-}" in
  --release) mode="release"; shift ;;
  --sanitize) mode="asan"; shift ;;
  --tsan) mode="tsan"; shift ;;
esac

bash scripts/setup-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
type=RelWithDebInfo
case "$mode" in
  default) dir=build;         flags=(-DRMON_BUILD_BENCH=ON) ;;
  release) dir=build-release; flags=(-DRMON_BUILD_BENCH=ON); type=Release ;;
  asan)    dir=build-asan;    flags=(-DRMON_SANITIZE=ON -DRMON_BUILD_BENCH=OFF) ;;
  tsan)    dir=build-tsan;    flags=(-DRMON_TSAN=ON -DRMON_BUILD_BENCH=OFF) ;;
esac
# Sanitizer builds keep assert() (no -DNDEBUG): invariants are checked where
# state machines change state. At -O1 with line tables only (-g1: reports
# still name file and line): an ASan+UBSan object compiles about 3x faster than at -O2 -g
# (29 s against 10 s for tests/monitor/outbox_test.cpp on this 2-core
# machine), TSan about 2x.
case "$mode" in
  asan | tsan) flags+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1") ;;
esac

cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DRMON_WERROR=ON -DBUILD_TESTING=ON \
  "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$jobs"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/.ci/lsan.supp:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/.ci/tsan.supp:${TSAN_OPTIONS:-}"
echo "== ctest ($mode build in $dir)"
ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 300 "$@"

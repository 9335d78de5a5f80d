#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/, seeds
# fuzz/corpus-decoders/ (git-ignored) with valid encodings and fuzzes every
# protocol decoder.
#   scripts/fuzz.sh [seconds]      run for that long (default 60)
# Further arguments go to libFuzzer (e.g. -jobs=4 -workers=4).
# Crashing inputs land in build-fuzz/artifacts/; replay one with
#   build-fuzz/fuzz/fuzz_decoders <file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
[ $# -gt 0 ] && shift
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [seconds] [libFuzzer flags...]" >&2; exit 2 ;;
esac

command -v clang++ >/dev/null || bash scripts/setup-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

export CC=clang CXX=clang++
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DRMON_BUILD_FUZZ=ON -DRMON_BUILD_TESTS=OFF -DRMON_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz --target fuzz_decoders -j"$jobs"

corpus=fuzz/corpus-decoders
artifacts=build-fuzz/artifacts
mkdir -p "$corpus" "$artifacts"
RMON_FUZZ_WRITE_SEEDS="$corpus" build-fuzz/fuzz/fuzz_decoders

# 9000 bytes: room for an 8 KiB heartbeat plus its topic, so the size limits
# are reachable too. A decoder that allocates over 512 MiB for one input is a
# finding, not noise.
echo "== fuzzing the decoders for ${seconds}s (corpus: $corpus)"
build-fuzz/fuzz/fuzz_decoders -max_total_time="$seconds" -max_len=9000 -malloc_limit_mb=512 \
  -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$corpus"

#!/usr/bin/env bash
# The fault suite of issue #9 in one command: builds the suite and the three
# services in build-fault/ (RelWithDebInfo), runs every fault against the real
# executables at full scale, then fuzzes every protocol decoder
# (scripts/fuzz.sh), and prints one report of what each fault staged and
# checked, and the fuzzer's figures.
#   scripts/fault-suite.sh            10,000 runners, 10 minutes of fuzzing
#   scripts/fault-suite.sh --short    1,000 runners (the ctest scale), 30 s of fuzzing
# Further arguments go to the fault_suite binary (e.g. --gtest_filter='Hostile*').
# Exit status: 0 when every fault passed and the fuzzer found nothing.
# Missing tools are installed by scripts/setup-deps.sh (nothing else is).
set -euo pipefail
cd "$(dirname "$0")/.."

runners=10000 fuzz_seconds=600 mode=full
if [ "${1:-}" = --short ]; then
  runners=1000 fuzz_seconds=30 mode=short
  shift
fi

bash scripts/setup-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
dir=build-fault
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON \
  -DRMON_BUILD_BENCH=OFF >/dev/null
cmake --build "$dir" --target fault_suite -j"$jobs"

report="$dir/fault-report.txt"
: >"$report"
echo "== fault suite ($mode: RMON_FAULT_RUNNERS=$runners)"
start=$(date +%s)
suite_status=0
RMON_FAULT_RUNNERS=$runners RMON_FAULT_REPORT="$PWD/$report" "$dir/tests/fault_suite" "$@" ||
  suite_status=$?
suite_seconds=$(($(date +%s) - start))

echo "== decoder fuzzing (${fuzz_seconds}s)"
fuzz_log="$dir/fuzz.log"
artifacts=build-fuzz/artifacts
# Files in a folder, 0 when it does not exist yet (a fresh clone).
count_files() { if [ -d "$1" ]; then find "$1" -maxdepth 1 -type f | wc -l; else echo 0; fi; }
before=$(count_files "$artifacts")
fuzz_status=0
bash scripts/fuzz.sh "$fuzz_seconds" 2>&1 | tee "$fuzz_log" || fuzz_status=$?
after=$(count_files "$artifacts")

echo
echo "================ fault suite report ($mode) ================"
cat "$report"
echo "fault suite: $([ $suite_status = 0 ] && echo PASSED || echo "FAILED (status $suite_status)") in ${suite_seconds}s"
# libFuzzer's final line ("#N DONE cov: ... corp: ...") and -print_final_stats.
done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$fuzz_log" | tail -1 || true)
fuzz_stat() { grep -E "^stat::$1:" "$fuzz_log" | tail -1 | awk '{print $2}'; }
echo "fuzz: ${fuzz_seconds}s, $(fuzz_stat number_of_executed_units) executions" \
  "($(fuzz_stat average_exec_per_sec)/s), $(fuzz_stat new_units_added) new units, peak RSS $(fuzz_stat peak_rss_mb) MB"
echo "fuzz: ${done_line:-no final line (see $fuzz_log)}"
echo "fuzz: corpus fuzz/corpus-decoders holds $(count_files fuzz/corpus-decoders) inputs;" \
  "crashes: $((after - before)) new in $artifacts; exit status $fuzz_status"
if [ $suite_status = 0 ] && [ $fuzz_status = 0 ] && [ "$after" = "$before" ]; then
  echo "fault suite and fuzzing: PASSED"
else
  echo "fault suite and fuzzing: FAILED"
  exit 1
fi

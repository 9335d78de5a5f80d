#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole stack as local processes
# (the same stack docker-compose.yml describes, for machines without Docker):
#   runner-monitor                 heartbeats in on :5555, events out on :5556/:5557
#   task-queue                     API on :5560, consumes the task-queue group
#   pool-manager                   API on :5561, consumes the pool-manager group
#   runner-sim                     a demo fleet; 20% of it falls silent after 10 s
# Each run keeps its data in a fresh folder ($logs/data-<time>).
# Ctrl-C stops everything. Logs go to $RMON_LOG_DIR (default .run/).
#   scripts/run-stack.sh [--no-sim]
set -euo pipefail
cd "$(dirname "$0")/.."

with_sim=1
[ "${1:-}" = "--no-sim" ] && with_sim=0

bash scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" \
  --target runner-monitor task-queue pool-manager runner-sim rmon-ctl

logs=${RMON_LOG_DIR:-.run}
mkdir -p "$logs"
data="$logs/data-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$data"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "stopping the stack"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

build/services/runner-monitor/runner-monitor >"$logs/runner-monitor.log" 2>&1 &
pids+=($!)
# Wait until the monitor answers on its control socket.
for _ in $(seq 1 50); do
  build/tools/rmon-ctl --timeout-ms 200 ping >/dev/null 2>&1 && break
  sleep 0.1
done
build/tools/rmon-ctl ping

build/services/task-queue/task-queue --data-dir "$data" >"$logs/task-queue.log" 2>&1 &
pids+=($!)
build/services/pool-manager/pool-manager --data-dir "$data" >"$logs/pool-manager.log" 2>&1 &
pids+=($!)
if [ "$with_sim" = 1 ]; then
  build/tools/runner-sim --runners 50 --interval-ms 1000 --timeout-ms 3000 \
    --die-after-ms 10000 --die-fraction 0.2 >"$logs/runner-sim.log" 2>&1 &
  pids+=($!)
fi

cat <<MSG
The stack is running (logs in $logs/):
  build/tools/rmon-ctl stats                  counters
  build/tools/rmon-ctl list --state failed    runners that timed out
  curl -s localhost:9464/metrics              Prometheus metrics
  curl -s localhost:9465/metrics              task-queue metrics (pool-manager: 9466)
  tail -f $logs/task-queue.log                timeout events as the task-queue applies them
Ctrl-C stops it.
MSG
wait -n "${pids[@]}"
echo "a process of the stack exited; see $logs/" >&2

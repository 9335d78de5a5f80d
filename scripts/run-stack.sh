#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole stack as local processes
# (the stack docker-compose.yml describes, for machines without Docker):
#   runner-monitor   heartbeats in on 127.0.0.1:5555, control :5559, events to both groups
#   task-queue       API :5560, takes back the tasks of lost runners
#   pool-manager     API :5561, frees the slots of lost runners
#   runner-sim       the demo: submits a workload, then N runners lease tasks,
#                    hold slots, heartbeat and work; a share of them crash and
#                    some come back as zombies
# Each run gets a fresh folder (.run/<time>/) with the data and every log.
# It prints a status line per second, and at the end a summary whose last
# line is one JSON object. Ctrl-C ends it early (the summary still prints).
#
# rmon-console, the web console, listens on http://127.0.0.1:8080/ (printed at
# the start; with --secure it uses the admin key).
#
# Prometheus (Debian's, installed by setup-deps) scrapes the three services on
# 127.0.0.1:9490 with the alert rules of deploy/prometheus (its /alerts page
# shows them); --no-prometheus leaves it out. (9490, not Prometheus' usual
# 9090, which Debian's own prometheus service takes where systemd runs.)
#
# With --secure every socket is CURVE (--security curve): a stack's keys are
# written into the run folder (keys/, by rmon-keygen init), the runners use a
# runner key for ids starting with "sim-", and rmon-ctl needs the flags printed.
#
#   scripts/run-stack.sh [--duration SECONDS] [--tasks N] [--runners N]
#                        [--crash-fraction F] [--zombie-fraction F] [--no-sim]
#                        [--secure] [--no-prometheus]
set -euo pipefail
cd "$(dirname "$0")/.."

duration=0 tasks=500 runners=50 crash=0.2 zombie=0.3 sim=1 secure=0 prometheus=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --runners) runners=$2; shift 2 ;;
    --crash-fraction) crash=$2; shift 2 ;;
    --zombie-fraction) zombie=$2; shift 2 ;;
    --no-sim) sim=0; shift ;;
    --secure) secure=1; shift ;;
    --no-prometheus) prometheus=0; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "run-stack: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

bash scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" \
  --target runner-monitor task-queue pool-manager runner-sim rmon-ctl rmon-keygen rmon-console
bin=build

run=${RMON_RUN_DIR:-.run/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$run"
echo "run folder: $run"
source scripts/lib/stack.sh
stack_endpoints default
if [ $secure = 1 ]; then
  stack_secure "$bin" "$run/keys" sim-
  echo "security: curve, keys in $run/keys"
fi
trap 'stack_stop || true' EXIT
trap 'echo; echo "interrupted: ending the run"' INT
# Pools big enough that the demo's runners rarely wait for a slot.
stack_start "$bin" "$run" \
  --pool local=local-process:24 --pool docker=docker:24 --pool kubernetes=kubernetes:24
stack_wait_ready
stack_console "$bin" 127.0.0.1:8080
echo "console: $(stack_console_url)"
if [ $prometheus = 1 ]; then
  stack_prometheus 127.0.0.1:9490
  if stack_prometheus_ready 127.0.0.1:9490; then
    echo "Prometheus: http://127.0.0.1:9490 (alerts: http://127.0.0.1:9490/alerts), rules of deploy/prometheus/alerts.yml"
  fi
fi

if [ $sim = 0 ]; then
  cat <<MSG
The stack is running (logs in $run/):
  $bin/tools/rmon-ctl ${SEC_CTL[*]} runners stats    the monitor's counters
  $bin/tools/rmon-ctl ${SEC_CTL[*]} tasks stats      the queue's counters
  $bin/tools/rmon-ctl ${SEC_CTL[*]} pools status     slots and their holders
  curl -s localhost:9464/metrics       Prometheus metrics (task-queue 9465, pool-manager 9466)
Ctrl-C stops it.
MSG
  wait -n "${STACK_PIDS[@]}" || true
  exit 0
fi

summary="$run/summary.json"
set +e
"$bin/tools/runner-sim" --submit "$tasks" --runners "$runners" --duration-s "$duration" \
  --crash-fraction "$crash" --zombie-fraction "$zombie" --summary-file "$summary" "${SEC_SIM[@]}" \
  --log-level warn 2> >(tee "$run/runner-sim.log" >&2)
sim_status=$?
set -e
if stack_stop; then echo "every process of the stack stopped cleanly; logs in $run/"; fi
[ -s "$summary" ] || { echo "run-stack: runner-sim wrote no summary (status $sim_status)" >&2; exit 1; }
tail -n 1 "$summary"

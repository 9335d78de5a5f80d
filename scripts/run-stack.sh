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
# With --ha the stack outgrows one box, on this one: a throwaway PostgreSQL
# (initdb + pg_ctl in a temp folder), a monitor pair (mon-a, mon-b), and two
# replicas each of the task-queue (tq-1, tq-2) and the pool-manager (pm-1,
# pm-2) on it; the runners publish to both monitors and list both replicas.
# Mid-run it kills -9 mon-b, tq-1 and pm-1 (the replicas every client uses
# first), restarts PostgreSQL once, then starts mon-b again (a supervisor's
# restart: a lease whose answer was lost needs both monitors' answers before
# reconciliation calls its runner gone). The final JSON adds events_duplicate,
# failovers and store_outage_ms to the usual invariants, and the run fails
# unless they hold. (No console or Prometheus in this mode.)
#
# RMON_BIN=<build folder> skips the setup and the build (the tests use it);
# RMON_RUN_DIR=<folder> sets the run folder.
#
#   scripts/run-stack.sh [--duration SECONDS] [--tasks N] [--runners N]
#                        [--crash-fraction F] [--zombie-fraction F] [--no-sim]
#                        [--secure] [--no-prometheus] [--ha]
set -euo pipefail
cd "$(dirname "$0")/.."

duration=0 tasks=500 runners=50 crash=0.2 zombie=0.3 sim=1 secure=0 prometheus=1 ha=0
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
    --ha) ha=1; shift ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "run-stack: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "${RMON_BIN:-}" ]; then
  bin=$RMON_BIN  # a build folder already built (the tests): no setup, no build
else
  bash scripts/setup-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc 2>/dev/null || echo 2)" \
    --target runner-monitor task-queue pool-manager runner-sim rmon-ctl rmon-keygen rmon-console
  bin=build
fi

if [ $ha = 1 ] && [ $sim = 0 ]; then
  echo "run-stack: --ha runs the demo and its faults; it does not take --no-sim" >&2
  exit 2
fi
run=${RMON_RUN_DIR:-.run/$(date +%Y%m%d-%H%M%S)}
# A run folder given again (the tests') starts without the last run's state.
rm -rf "$run"/data* "$run"/killed "$run"/chaos.json "$run"/summary*.json
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
if [ $ha = 1 ]; then
  stack_postgres "$run" 54329
  echo "PostgreSQL: $PG_URL"
  stack_start_ha "$bin" "$run" \
    --pool local=local-process:24 --pool docker=docker:24 --pool kubernetes=kubernetes:24
  echo "monitors $HA_CONTROL; task-queue replicas $HA_TQ; pool-manager replicas $HA_PM"
  summary="$run/summary.json"
  "$bin/tools/runner-sim" --submit "$tasks" --runners "$runners" --duration-s "$duration" \
    --crash-fraction "$crash" --zombie-fraction "$zombie" --summary-file "$summary" \
    --heartbeat-endpoint "$HA_HB" --monitor-endpoint "$HA_CONTROL" \
    --task-queue-endpoint "$HA_TQ" --pool-manager-endpoint "$HA_PM" "${SEC_SIM[@]}" \
    --log-level warn 2> >(tee "$run/runner-sim.log" >&2) &
  sim_pid=$!
  # The faults, 1.5 s apart, while the workload runs: each only if the
  # demo still runs (chaos.json records them all, or the run fails). Then
  # mon-b comes back (whether the demo still runs or not: a recovery, not a
  # fault), as its supervisor (Kubernetes, compose) would bring it:
  # while one monitor of the pair is down, reconciliation cannot call a
  # runner gone (PROTOCOL.md: undecided), so a lease whose answer was lost
  # (a replica killed, or PostgreSQL restarted, after its commit) waits for it.
  fault() {  # what, command...
    sleep 1.5
    kill -0 $sim_pid 2>/dev/null || { echo "chaos: the demo ended before: $1" >&2; return 1; }
    "${@:2}"
  }
  set +e
  fault "kill -9 mon-b" stack_kill mon-b && echo "chaos: kill -9 mon-b" &&
    fault "kill -9 tq-1" stack_kill tq-1 && echo "chaos: kill -9 tq-1" &&
    fault "kill -9 pm-1" stack_kill pm-1 && echo "chaos: kill -9 pm-1" &&
    fault "restart PostgreSQL" true &&
    ms=$(stack_postgres_restart) && echo "chaos: PostgreSQL restarted, down $ms ms" &&
    { sleep 1.5; stack_restart mon-b runner-monitor; } && echo "chaos: mon-b restarted" &&
    echo "{\"store_outage_ms\": $ms, \"killed\": [\"mon-b\", \"tq-1\", \"pm-1\"], \"restarted\": [\"mon-b\"]}" >"$run/chaos.json"
  wait "$sim_pid"
  sim_status=$?
  set -e
  if stack_stop; then
    echo "every surviving process of the stack stopped cleanly; logs in $run/"
  else
    echo "run-stack: a process that was not killed exited badly (see above)" >&2
    exit 1
  fi
  [ -s "$summary" ] || { echo "run-stack: runner-sim wrote no summary (status $sim_status)" >&2; exit 1; }
  [ -s "$run/chaos.json" ] || { echo "run-stack: the faults did not all happen (the run ended first?)" >&2; exit 1; }
  # The usual invariants, checked: every task ended, none completed twice,
  # no slot held, nothing pending.
  python3 - "$summary" "$run/chaos.json" "$run/summary-ha.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s.update(json.load(open(sys.argv[2])))
s["invariants_hold"] = (s["tasks_completed"] + s["tasks_dead"] == s["tasks_submitted"]
                        and s["tasks_completed_twice"] == 0 and s["slots_in_use"] == 0
                        and s["events_pending"] == 0)
line = json.dumps(s)
open(sys.argv[3], "w").write(line + "\n")
print(line)
sys.exit(0 if s["invariants_hold"] else 1)
PY
  exit $sim_status
fi
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

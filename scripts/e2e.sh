#!/usr/bin/env bash
# End-to-end: the real binaries as processes (ipc:// endpoints in a temp
# folder, so it runs beside anything else), a few hundred tasks, about a
# fifth of the runners crashing and some of them coming back as zombies.
# Checks, from runner-sim's JSON summary:
#   every task completed exactly once, zombie completions refused,
#   reassignments == crashes == timeouts detected, all slots free,
#   no event pending at the monitor; and every process stops cleanly.
# With --secure, the same run with every socket CURVE (keys by rmon-keygen
# init; the runners' key covers only ids starting with "sim-").
#   scripts/e2e.sh [--secure] [BUILD_DIR] [TASKS] [RUNNERS]
set -euo pipefail
cd "$(dirname "$0")/.."
secure=0
if [ "${1:-}" = --secure ]; then secure=1; shift; fi
build=${1:-build} tasks=${2:-300} runners=${3:-40}
source scripts/lib/stack.sh
tmp=$(mktemp -d)
trap 'stack_stop || true; rm -rf "$tmp"' EXIT
stack_endpoints ipc "$tmp"
if [ $secure = 1 ]; then stack_secure "$build" "$tmp/keys" sim-; fi
stack_start "$build" "$tmp" --pool local=local-process:20 --pool docker=docker:20 \
  --pool kubernetes=kubernetes:20
stack_wait_ready

# Runners announce 3 s timeouts (heartbeats every 200 ms): "every crash
# detected once" must not depend on a sanitizer-slowed runner-sim keeping a
# 1 s timeout while other tests load both cores (a TSan CI run saw 8 live
# runners convicted so).
"$build/tools/runner-sim" --heartbeat-endpoint "$(stack_client "$HB")" \
  --monitor-endpoint "$CONTROL" --task-queue-endpoint "$TQ_API" \
  --pool-manager-endpoint "$PM_API" --submit "$tasks" --runners "$runners" \
  --crash-fraction 0.2 --zombie-fraction 0.5 --timeout-ms 3000 --summary-file "$tmp/summary.json" \
  --no-status --log-level warn "${SEC_SIM[@]}"
if [ $secure = 1 ]; then
  # rmon-ctl as each kind of key, against the real executables.
  ctl() {  # key, args...: rmon-ctl with keys/clients/KEY.key_secret; prints stdout+stderr
    local key=$1; shift
    "$build/tools/rmon-ctl" --monitor "$CONTROL" --task-queue "$TQ_API" --pool-manager "$PM_API" \
      --timeout-ms 2000 --security curve --curve-secret-file "$tmp/keys/clients/$key.key_secret" \
      --curve-servers-dir "$tmp/keys/servers" "$@" 2>&1
  }
  expect() {  # name, wanted status, pattern, key, args...
    local name=$1 want=$2 pattern=$3; shift 3
    local out rc=0
    out=$(ctl "$@") || rc=$?
    if [ "$rc" = "$want" ] && grep -q -- "$pattern" <<<"$out"; then
      echo "PASS $name"
    else
      echo "FAIL $name (status $rc, wanted $want and '$pattern'):"; echo "$out"; exit 1
    fi
  }
  "$build/tools/rmon-keygen" stranger --role admin --dir "$tmp/keys/clients" >/dev/null
  expect "an admin pings all three" 0 "ok" admin ping
  expect "a reader reads" 0 "queued" reader tasks stats
  expect "a reader may not remove a runner" 1 "forbidden" reader runners remove sim-0001
  expect "a reader may not submit" 1 "forbidden" reader tasks submit --payload-json '{}'
  expect "a submitter is not admitted to the pool-manager" 1 "not_enrolled" submitter pools status
  expect "an unenrolled key is refused at the handshake" 1 "not_enrolled" stranger ping
fi
stack_stop
echo "e2e: every process stopped cleanly"

/usr/bin/python3 - "$tmp/summary.json" "$tasks" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
tasks = int(sys.argv[2])
checks = [
    ("every task submitted", s["tasks_submitted"] == tasks),
    ("every task completed", s["tasks_completed"] == tasks and s["tasks_dead"] == 0),
    ("none completed twice", s["tasks_completed_twice"] == 0),
    ("zombie completions refused, none accepted",
     s["stale_completions_refused"] > 0 and s["zombie_completions_accepted"] == 0),
    ("runners crashed", s["runner_crashes"] > 0),
    ("every crash detected once", s["timeouts_detected"] == s["runner_crashes"]),
    ("reassignments equal the crashes detected", s["reassignments"] == s["timeouts_detected"]),
    ("all slots free", s["slots_in_use"] == 0),
    ("no event pending", s["events_pending"] == 0),
]
for name, ok in checks:
    print(("PASS " if ok else "FAIL ") + name)
print(json.dumps(s))
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY

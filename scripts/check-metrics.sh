#!/usr/bin/env bash
# Starts runner-monitor, task-queue and pool-manager from a build folder on
# ipc:// endpoints in a temp folder, scrapes each /metrics once and checks the
# text with `promtool check metrics` (Debian package prometheus).
#   scripts/check-metrics.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
command -v promtool >/dev/null || { echo "check-metrics: promtool missing (apt-get install prometheus)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ep() { echo "ipc://$tmp/$1"; }

"$build/services/runner-monitor/runner-monitor" --heartbeat-endpoint "$(ep hb)" \
  --group "task-queue=$(ep tq-events),pool-manager=$(ep pm-events)" --ack-endpoint "$(ep acks)" \
  --control-endpoint "$(ep control)" --metrics-address 127.0.0.1:0 >"$tmp/runner-monitor.log" 2>&1 &
pids+=($!)
for svc in task-queue pool-manager; do
  events=$([ $svc = task-queue ] && ep tq-events || ep pm-events)
  "$build/services/$svc/$svc" --data-dir "$tmp/data" --api-endpoint "$(ep $svc)" \
    --events-endpoint "$events" --ack-endpoint "$(ep acks)" --monitor-endpoint "$(ep control)" \
    --metrics-address 127.0.0.1:0 >"$tmp/$svc.log" 2>&1 &
  pids+=($!)
done

status=0
for svc in runner-monitor task-queue pool-manager; do
  port=""
  for _ in $(seq 1 100); do
    port=$(grep -o 'metrics_port=[0-9]*' "$tmp/$svc.log" 2>/dev/null | head -1 | cut -d= -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "check-metrics: $svc did not start"; cat "$tmp/$svc.log"; status=1; continue
  fi
  curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/$svc.prom"
  if promtool check metrics <"$tmp/$svc.prom"; then
    echo "check-metrics: $svc /metrics ok ($(grep -c '^# TYPE' "$tmp/$svc.prom") families)"
  else
    echo "check-metrics: $svc /metrics FAILED"; status=1
  fi
done
exit $status

#!/usr/bin/env bash
# Starts runner-monitor, task-queue and pool-manager from a build folder on
# ipc:// endpoints in a temp folder, scrapes each /metrics once and checks the
# text with `promtool check metrics` (Debian package prometheus).
#   scripts/check-metrics.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
command -v promtool >/dev/null || { echo "check-metrics: promtool missing (apt-get install prometheus)" >&2; exit 1; }
source scripts/lib/stack.sh
tmp=$(mktemp -d)
trap 'stack_stop || true; rm -rf "$tmp"' EXIT
stack_endpoints ipc "$tmp"
stack_start "$build" "$tmp"
stack_wait_ready

status=0
for svc in runner-monitor task-queue pool-manager; do
  port=$(stack_metrics_port $svc)
  curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/$svc.prom"
  if promtool check metrics <"$tmp/$svc.prom"; then
    echo "check-metrics: $svc /metrics ok ($(grep -c '^# TYPE' "$tmp/$svc.prom") families)"
  else
    echo "check-metrics: $svc /metrics FAILED"; status=1
  fi
done
exit $status

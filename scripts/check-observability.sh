#!/usr/bin/env bash
# The observability kit checked with real tools (Debian packages prometheus
# and python3-yaml):
#   1. deploy/prometheus: `promtool check config` (the compose stack's config
#      and its rules) and `promtool test rules` (every alert's unit tests);
#   2. runner-monitor, task-queue and pool-manager started from a build folder
#      on ipc:// endpoints in a temp folder, each /metrics scraped once and
#      checked with `promtool check metrics`;
#   3. every query of the alert rules and of the Grafana dashboard
#      (deploy/grafana/dashboards/rmon.json) names only metrics, labels and
#      label values those scrapes hold (scripts/lib/check_queries.py);
#   4. Debian's Prometheus started on the stack with those rules: every target
#      up, every rule loaded and evaluated without error, every dashboard
#      query answered without error.
#   scripts/check-observability.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
command -v promtool >/dev/null || { echo "check-observability: promtool missing (apt-get install prometheus)" >&2; exit 1; }
python=/usr/bin/python3  # Debian's, with python3-yaml (scripts/setup-deps.sh)

promtool check config deploy/prometheus/prometheus.yml
promtool test rules deploy/prometheus/alerts_test.yml

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
    echo "check-observability: $svc /metrics ok ($(grep -c '^# TYPE' "$tmp/$svc.prom") families)"
  else
    echo "check-observability: $svc /metrics FAILED"; status=1
  fi
done
# A free loopback port for Prometheus (it cannot report one it chose itself).
prom=127.0.0.1:$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stack_prometheus "$prom" 1s
stack_prometheus_ready "$prom"
"$python" scripts/lib/check_queries.py "$tmp"/*.prom -- deploy/prometheus/alerts.yml \
  deploy/grafana/dashboards/rmon.json --live "http://$prom" || status=1
exit $status

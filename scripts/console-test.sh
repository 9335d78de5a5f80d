#!/usr/bin/env bash
# rmon-console's browser tests (tests/console, Playwright driving Debian's
# chromium) against the real stack: the three services, the console, and
# runner-sim running a workload (with crashes), plus 100,000 idle runners for
# the paging test. Then the same with --security curve on every socket (the
# tests tagged @secure). Screenshots go to BUILD_DIR/console-screenshots/.
#   scripts/console-test.sh [BUILD_DIR]
# Needs chromium, nodejs and npm (scripts/setup-deps.sh installs them) and the
# npm registry once, for @playwright/test (tests/console/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
for tool in chromium node npm; do
  command -v $tool >/dev/null || { echo "console-test: $tool missing (scripts/setup-deps.sh)" >&2; exit 1; }
done
(cd tests/console && { [ -d node_modules/@playwright/test ] || npm ci --no-audit --no-fund; })

run_once() {  # secure(0|1)
  local secure=$1 tmp
  tmp=$(mktemp -d)
  (
    source scripts/lib/stack.sh
    trap 'kill $SIM 2>/dev/null; wait $SIM 2>/dev/null; stack_stop || true; rm -rf "$tmp"' EXIT
    stack_endpoints ipc "$tmp"
    [ "$secure" = 1 ] && stack_secure "$build" "$tmp/keys" sim-
    stack_start "$build" "$tmp" --pool local=local-process:8 --pool docker=docker:8 \
      --pool console-test=local-process:2
    stack_wait_ready
    stack_console "$build" 127.0.0.1:0 --history-interval-ms 500
    # A workload that keeps going through the tests: 20 runners, a fifth of
    # them crash once.
    "$build/tools/runner-sim" --heartbeat-endpoint "$(stack_client "$HB")" \
      --monitor-endpoint "$(stack_client "$CONTROL")" --task-queue-endpoint "$(stack_client "$TQ_API")" \
      --pool-manager-endpoint "$(stack_client "$PM_API")" --submit 5000 --runners 20 \
      --pool local:local-process,docker:docker --duration-s 600 --log-level warn "${SEC_SIM[@]}" \
      >"$tmp/runner-sim.log" 2>&1 &
    SIM=$!
    local ctl=("$build/tools/rmon-ctl" --monitor "$(stack_client "$CONTROL")"
               --task-queue "$(stack_client "$TQ_API")" --pool-manager "$(stack_client "$PM_API")"
               "${SEC_CTL[@]}")
    local fleet=""
    if [ "$secure" = 0 ]; then
      fleet=100000
      /usr/bin/python3 tests/console/fleet.py "$(stack_client "$HB")" $fleet fleet-
      # Until the monitor holds them all (ingest has drained), so the tests'
      # time bounds do not measure the fleet's arrival.
      local held=0
      for _ in $(seq 1 600); do
        held=$("${ctl[@]}" --json runners stats | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["runners"])')
        [ "$held" -ge $fleet ] && break
        sleep 0.1
      done
      [ "$held" -ge $fleet ] || { echo "console-test: the monitor holds $held of $fleet runners" >&2; exit 1; }
    fi
    CTL_JSON=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${ctl[@]}")
    echo "console-test: $(stack_console_url) (security $([ "$secure" = 1 ] && echo curve || echo off))"
    cd tests/console
    CONSOLE_URL=$(cd ../.. && stack_console_url) CTL_JSON=$CTL_JSON SECURE=$secure FLEET=$fleet \
      HB_ENDPOINT=$(stack_client "$HB") TQ_ENDPOINT=$(stack_client "$TQ_API") \
      PYTHONPATH="$PWD/../../clients/python" SCREENSHOT_DIR="$build/console-screenshots" \
      RESULTS_FILE="$build/console-screenshots/paging.json" PW_OUTPUT_DIR="$build/console-test-results" \
      npx playwright test
  )
}

run_once 0
run_once 1

# Sourced by the scripts that run the stack as local processes (run-stack.sh,
# e2e.sh, check-observability.sh): endpoints, start, readiness, clean stop.
#
#   stack_endpoints default|ipc DIR   the contract's default ports on loopback, or ipc://
#                                      sockets in DIR (tests: no fixed ports)
#   stack_secure BIN KEYS [PREFIX]    --security curve from here on: writes a
#                                      stack's keys into KEYS (rmon-keygen init,
#                                      runner key for runner ids starting with
#                                      PREFIX) and sets SEC_SIM, the flags a
#                                      runner-sim needs (runner and admin keys)
#   stack_start BIN RUN [pool flags]  starts the three services from build
#                                      folder BIN, data and logs in RUN
#   stack_wait_ready                  until each service has logged its start
#   stack_stop                        SIGTERM to each, wait, report exit codes
#   stack_prometheus ADDR [INTERVAL]  Debian's Prometheus on ADDR scraping the three
#                                      services every INTERVAL (2s) with the alert rules
#                                      of deploy/prometheus, data in RUN/prometheus (1 day)
#   stack_prometheus_ready ADDR       until it has the rules and every target is up
#   stack_console BIN ADDR [FLAGS]    rmon-console on ADDR (with the admin key under
#                                      --security curve); stack_console_url after it started

stack_endpoints() {
  if [ "$1" = ipc ]; then
    local d=$2
    HB="ipc://$d/hb" TQ_EVENTS="ipc://$d/tq-events" PM_EVENTS="ipc://$d/pm-events"
    ACKS="ipc://$d/acks" CONTROL="ipc://$d/control" TQ_API="ipc://$d/task-queue"
    PM_API="ipc://$d/pool-manager"
    METRICS_MON=127.0.0.1:0 METRICS_TQ=127.0.0.1:0 METRICS_PM=127.0.0.1:0
  else
    # The contract's ports on loopback: with --security off (the default) a
    # service refuses to bind anything reachable from other hosts.
    local h=tcp://127.0.0.1
    HB="$h:5555" TQ_EVENTS="$h:5556" PM_EVENTS="$h:5557" ACKS="$h:5558"
    CONTROL="$h:5559" TQ_API="$h:5560" PM_API="$h:5561"
    METRICS_MON=127.0.0.1:9464 METRICS_TQ=127.0.0.1:9465 METRICS_PM=127.0.0.1:9466
  fi
}

# The address a client connects to for an endpoint a service binds.
stack_client() { echo "${1/\*/127.0.0.1}"; }

SEC_MON=() SEC_TQ=() SEC_PM=() SEC_SIM=() SEC_CTL=()
stack_secure() {
  local bin=$1 keys=$2 prefix=${3:-}
  "$bin/tools/rmon-keygen" init "$keys" --runner-prefix "$prefix" --force >/dev/null
  SEC_MON=(--security curve --curve-secret-file "$keys/runner-monitor/runner-monitor.key_secret"
           --curve-clients-dir "$keys/runner-monitor/clients")
  _stack_consumer_keys() {  # service
    echo --security curve --curve-secret-file "$keys/$1/$1.key_secret" \
      --curve-clients-dir "$keys/$1/clients" \
      --monitor-curve-secret-file "$keys/$1/consumer-$1.key_secret" \
      --monitor-public-key-file "$keys/$1/runner-monitor.key"
  }
  read -r -a SEC_TQ <<<"$(_stack_consumer_keys task-queue)"
  read -r -a SEC_PM <<<"$(_stack_consumer_keys pool-manager)"
  SEC_SIM=(--security curve --curve-secret-file "$keys/clients/runner.key_secret"
           --curve-operator-secret-file "$keys/clients/admin.key_secret"
           --curve-servers-dir "$keys/servers")
  SEC_CTL=(--security curve --curve-secret-file "$keys/clients/admin.key_secret"
           --curve-servers-dir "$keys/servers")
}

STACK_NAMES=() STACK_PIDS=() STACK_RUN=""
_stack_spawn() {  # name, command...
  local name=$1; shift
  "$@" >"$STACK_RUN/$name.log" 2>&1 &
  STACK_NAMES+=("$name"); STACK_PIDS+=($!)
}

stack_start() {
  local bin=$1 run=$2; shift 2
  STACK_RUN=$run
  mkdir -p "$run/data"
  _stack_spawn runner-monitor "$bin/services/runner-monitor/runner-monitor" \
    --heartbeat-endpoint "$HB" --group "task-queue=$TQ_EVENTS,pool-manager=$PM_EVENTS" \
    --ack-endpoint "$ACKS" --control-endpoint "$CONTROL" --metrics-address "$METRICS_MON" \
    --data-dir "$run/data" "${SEC_MON[@]}"
  local common=(--data-dir "$run/data" --ack-endpoint "$(stack_client "$ACKS")"
                --monitor-endpoint "$(stack_client "$CONTROL")")
  _stack_spawn task-queue "$bin/services/task-queue/task-queue" "${common[@]}" \
    --api-endpoint "$TQ_API" --events-endpoint "$(stack_client "$TQ_EVENTS")" \
    --metrics-address "$METRICS_TQ" "${SEC_TQ[@]}"
  _stack_spawn pool-manager "$bin/services/pool-manager/pool-manager" "${common[@]}" \
    --api-endpoint "$PM_API" --events-endpoint "$(stack_client "$PM_EVENTS")" \
    --metrics-address "$METRICS_PM" "${SEC_PM[@]}" "$@"
}

stack_wait_ready() {
  local name
  for name in "${STACK_NAMES[@]}"; do
    for _ in $(seq 1 200); do
      grep -q "$name started" "$STACK_RUN/$name.log" 2>/dev/null && break
      sleep 0.05
    done
    grep -q "$name started" "$STACK_RUN/$name.log" 2>/dev/null ||
      { echo "stack: $name did not start; see $STACK_RUN/$name.log" >&2; return 1; }
  done
}

STACK_STOPPED=0
stack_stop() {
  [ "$STACK_STOPPED" = 1 ] && return 0
  STACK_STOPPED=1
  local status=0 i
  for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${STACK_PIDS[$i]}" 2>/dev/null || true; done
  for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
    local rc=0
    wait "${STACK_PIDS[$i]}" || rc=$?
    if [ "$rc" != 0 ]; then
      echo "stack: ${STACK_NAMES[$i]} exited with status $rc (see $STACK_RUN/${STACK_NAMES[$i]}.log)" >&2
      status=1
    fi
  done
  return $status
}

# Debian's Prometheus (package prometheus) for the stack as processes: the
# job names and rules of deploy/prometheus, the targets the ports the services
# logged. Stopped with the rest by stack_stop.
stack_prometheus() {
  local addr=$1 interval=${2:-2s} rules
  rules="$(pwd)/deploy/prometheus/alerts.yml"
  {
    echo "global: {scrape_interval: $interval, evaluation_interval: $interval}"
    echo "rule_files: ['$rules']"
    echo "scrape_configs:"
    local svc
    for svc in runner-monitor task-queue pool-manager; do
      echo "  - {job_name: $svc, static_configs: [{targets: ['127.0.0.1:$(stack_metrics_port $svc)']}]}"
    done
  } >"$STACK_RUN/prometheus.yml"
  _stack_spawn prometheus prometheus --config.file="$STACK_RUN/prometheus.yml" \
    --storage.tsdb.path="$STACK_RUN/prometheus" --storage.tsdb.retention.time=1d \
    --web.listen-address="$addr"
}

stack_prometheus_ready() {
  local addr=$1
  for _ in $(seq 1 300); do
    if curl -sf "http://$addr/api/v1/targets" 2>/dev/null |
      /usr/bin/python3 -c 'import json,sys; t=json.load(sys.stdin)["data"]["activeTargets"]; sys.exit(not (len(t) == 3 and all(x["health"] == "up" for x in t)))' 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "stack: Prometheus on $addr has not scraped every service up; see $STACK_RUN/prometheus.log" >&2
  return 1
}

# The web console, a client of the three services (admin key with curve: its
# actions are cancel, retry and releasing the brake).
stack_console() {
  local bin=$1 addr=$2
  shift 2
  local sec=("$@")
  [ ${#SEC_CTL[@]} -gt 0 ] && sec+=("${SEC_CTL[@]}")
  _stack_spawn rmon-console "$bin/services/console/rmon-console" --listen "$addr" \
    --monitor-endpoint "$(stack_client "$CONTROL")" --task-queue-endpoint "$(stack_client "$TQ_API")" \
    --pool-manager-endpoint "$(stack_client "$PM_API")" "${sec[@]}"
  for _ in $(seq 1 200); do
    grep -q "rmon-console started" "$STACK_RUN/rmon-console.log" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "stack: rmon-console did not start; see $STACK_RUN/rmon-console.log" >&2
  return 1
}
stack_console_url() {
  echo "http://127.0.0.1:$(grep -o 'port=[0-9]*' "$STACK_RUN/rmon-console.log" | head -1 | cut -d= -f2)/"
}

# The port a service bound for /metrics, from its start line.
stack_metrics_port() { grep -o 'metrics_port=[0-9]*' "$STACK_RUN/$1.log" | head -1 | cut -d= -f2; }

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
declare -A STACK_CMDS=()
_stack_spawn() {  # name, command...
  local name=$1; shift
  "$@" >"$STACK_RUN/$name.log" 2>&1 &
  STACK_NAMES+=("$name"); STACK_PIDS+=($!)
  STACK_CMDS[$name]=$(printf '%q ' "$@")
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

# Until process NAME has logged "SERVICE started" (15 s at most), COUNT times
# in all (a restarted process logs it again).
_stack_wait_started() {  # name, service [count]
  for _ in $(seq 1 300); do
    [ "$(grep -c "$2 started" "$STACK_RUN/$1.log" 2>/dev/null)" -ge "${3:-1}" ] && return 0
    sleep 0.05
  done
  echo "stack: $1 did not start; see $STACK_RUN/$1.log" >&2
  return 1
}

stack_wait_ready() {
  local name
  for name in "${STACK_NAMES[@]}"; do _stack_wait_started "$name" "$name" || return 1; done
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
    if [ "$rc" != 0 ] && ! grep -qx "${STACK_NAMES[$i]}" "$STACK_RUN/killed" 2>/dev/null; then
      echo "stack: ${STACK_NAMES[$i]} exited with status $rc (see $STACK_RUN/${STACK_NAMES[$i]}.log)" >&2
      status=1
    fi
  done
  _stack_postgres_stop
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

# ---- The stack outgrown one box (run-stack.sh --ha) ----
#   stack_postgres RUN PORT           a throwaway PostgreSQL 15 (initdb, then pg_ctl on a
#                                      Unix socket in a temp folder, as `postgres` when
#                                      root); sets PG_URL, PG_DIR; stack_stop stops it
#   stack_postgres_restart            pg_ctl stop -m fast, then start; prints the ms it was down
#   stack_start_ha BIN RUN [pool flags]  two monitors (a, b) and two replicas each of the
#                                      task-queue (tq-1, tq-2) and the pool-manager (pm-1,
#                                      pm-2) on PG_URL, each consumer listing both monitors
#   stack_kill NAME                   kill -9 (its exit status is expected at stack_stop)
#   stack_restart NAME SERVICE        NAME started again as before (a supervisor's restart)
# The newest installed server (Debian's postgresql: 15 on Debian 12).
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PG_DIR="" PG_URL="" PG_PORT=""
_stack_pg() {  # pg_ctl or initdb arguments, as the server's owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stack_postgres() {
  local run=$1
  PG_PORT=$2
  PG_DIR=$(mktemp -d /tmp/rmon-pg.XXXXXX)  # where the postgres user can reach it
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  _stack_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 >"$run/postgres-initdb.log" 2>&1
  _stack_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses='' -k $PG_DIR -p $PG_PORT" start >/dev/null
  PG_URL="postgresql:///postgres?host=$PG_DIR&port=$PG_PORT&user=postgres"
}
stack_postgres_restart() {
  local t0 t1
  t0=$(date +%s%3N)
  _stack_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
  _stack_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses='' -k $PG_DIR -p $PG_PORT" start >/dev/null
  t1=$(date +%s%3N)
  echo $((t1 - t0))
}
_stack_postgres_stop() {
  [ -n "$PG_DIR" ] || return 0
  _stack_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  cp "$PG_DIR/server.log" "$STACK_RUN/postgres.log" 2>/dev/null || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}

# Recorded in RUN/killed (stack_kill may run in a subshell), read by stack_stop.
stack_kill() {
  local i
  for i in "${!STACK_NAMES[@]}"; do
    if [ "${STACK_NAMES[$i]}" = "$1" ]; then
      echo "$1" >>"$STACK_RUN/killed"
      kill -KILL "${STACK_PIDS[$i]}"
      # Reaped here when this shell started it: no job notice ("Killed") later.
      wait "${STACK_PIDS[$i]}" 2>/dev/null || true
    fi
  done
}

# Starts NAME again with the command it was first started with (its log goes
# on), as a supervisor would after stack_kill NAME; waits for its start line.
# In the shell that started the stack (it replaces the process stack_stop waits for).
stack_restart() {  # name, service
  local i
  for i in "${!STACK_NAMES[@]}"; do
    [ "${STACK_NAMES[$i]}" = "$1" ] || continue
    wait "${STACK_PIDS[$i]}" 2>/dev/null || true
    sed -i "/^$1\$/d" "$STACK_RUN/killed"
    local starts
    starts=$(grep -c "$2 started" "$STACK_RUN/$1.log" || true)
    echo "---- restarted" >>"$STACK_RUN/$1.log"
    eval "${STACK_CMDS[$1]}" '>>"$STACK_RUN/$1.log" 2>&1 &'
    STACK_PIDS[$i]=$!
    _stack_wait_started "$1" "$2" $((starts + 1))
    return
  done
  echo "stack: no process named $1" >&2
  return 1
}

stack_start_ha() {
  local bin=$1 run=$2; shift 2
  STACK_RUN=$run
  local h=tcp://127.0.0.1 m
  # Monitor a on the contract's ports, b on 20 above (metrics 10 above).
  for m in a b; do
    local o=0 mo=0
    [ $m = b ] && o=20 mo=10
    mkdir -p "$run/data-mon-$m"
    _stack_spawn "mon-$m" "$bin/services/runner-monitor/runner-monitor" --instance "mon-$m" \
      --heartbeat-endpoint "$h:$((5555 + o))" \
      --group "task-queue=$h:$((5556 + o)),pool-manager=$h:$((5557 + o))" \
      --ack-endpoint "$h:$((5558 + o))" --control-endpoint "$h:$((5559 + o))" \
      --metrics-address "127.0.0.1:$((9464 + mo))" --data-dir "$run/data-mon-$m" "${SEC_MON[@]}"
  done
  HA_HB="$h:5555,$h:5575" HA_CONTROL="$h:5559,$h:5579"
  local acks="$h:5558,$h:5578"
  local i
  for i in 1 2; do
    local mo=$(((i - 1) * 10)) api=$(((i - 1) * 2))
    mkdir -p "$run/data-tq-$i" "$run/data-pm-$i"
    _stack_spawn "tq-$i" "$bin/services/task-queue/task-queue" --store "$PG_URL" \
      --data-dir "$run/data-tq-$i" --api-endpoint "$h:$((5560 + api))" \
      --events-endpoint "$h:5556,$h:5576" --ack-endpoint "$acks" --monitor-endpoint "$HA_CONTROL" \
      --metrics-address "127.0.0.1:$((9465 + mo))" "${SEC_TQ[@]}"
    _stack_spawn "pm-$i" "$bin/services/pool-manager/pool-manager" --store "$PG_URL" \
      --data-dir "$run/data-pm-$i" --api-endpoint "$h:$((5561 + api))" \
      --events-endpoint "$h:5557,$h:5577" --ack-endpoint "$acks" --monitor-endpoint "$HA_CONTROL" \
      --metrics-address "127.0.0.1:$((9466 + mo))" "${SEC_PM[@]}" "$@"
  done
  HA_TQ="$h:5560,$h:5562" HA_PM="$h:5561,$h:5563"
  # Started: each logs "<service> started".
  local name service
  for name in "${STACK_NAMES[@]}"; do
    case "$name" in mon-*) service=runner-monitor ;; tq-*) service=task-queue ;; *) service=pool-manager ;; esac
    _stack_wait_started "$name" "$service" || return 1
  done
}

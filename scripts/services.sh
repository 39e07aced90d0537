# Sourced by run-all.sh and demo.sh: build the service binaries and run each as its own
# process (the real deployment shape), logs under .run/, stopped by stop_services.
# Needs KAFKA_BROKERS (scripts/brokers.sh start provides a broker). SKIP_BUILD=1 uses the
# binaries already in target/debug.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${SWITCHBOARD_RUN_DIR:-$ROOT/.run}"
# Where the service binaries are (bench.sh uses target/release).
BIN_DIR="${SWITCHBOARD_BIN_DIR:-$ROOT/target/debug}"
: "${GATEWAY_ADDR:=127.0.0.1:8080}"
: "${PROCESSOR_ADDR:=127.0.0.1:50051}"
: "${CONSOLE_ADDR:=127.0.0.1:8090}"
export GATEWAY_ADDR PROCESSOR_ADDR CONSOLE_ADDR
SERVICE_PIDS=()
# NAME → pid of its current process (kill9_service / restart_service).
declare -gA SERVICE_PID_OF=()

build_services() {
    [[ "${SKIP_BUILD:-0}" == 1 ]] && return 0
    (cd "$ROOT" && cargo build -q -p switchboard-gateway -p switchboard-relay -p switchboard-processor -p switchboard-worker \
        -p switchboard-console --bins)
}

# admin_env NAME: `SWITCHBOARD_ADMIN_ADDR=…` from SWITCHBOARD_ADMIN_ADDR_<NAME> when set, so two
# sets of services (e.g. a demo and the kill test) do not fight over the admin ports.
admin_env() { local v="SWITCHBOARD_ADMIN_ADDR_$1"; [[ -n "${!v:-}" ]] && echo "SWITCHBOARD_ADMIN_ADDR=${!v}"; true; }

# start_service NAME: runs target/debug/NAME in the background, logging to .run/NAME.log.
start_service() {
    local name="$1"
    mkdir -p "$RUN_DIR"
    env $(admin_env "$name") "$BIN_DIR/$name" >"$RUN_DIR/$name.log" 2>&1 &
    SERVICE_PIDS+=("$!")
    SERVICE_PID_OF["$name"]=$!
    echo "services: $name started (pid $!, log $RUN_DIR/$name.log)" >&2
}

# wait_for_log NAME PATTERN SECS: waits until NAME's log shows PATTERN; fails if it exits.
wait_for_log() {
    local name="$1" pattern="$2" secs="$3" i
    for ((i = 0; i < secs * 10; i++)); do
        grep -q "$pattern" "$RUN_DIR/$name.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "services: $name did not log '$pattern' within ${secs}s; its log:" >&2
    tail -n 20 "$RUN_DIR/$name.log" >&2
    return 1
}

start_services() {
    rm -f "$RUN_DIR"/{processor,relay,gateway,worker}.log
    start_service processor
    wait_for_log processor "processor listening" 30
    # Jobs need RabbitMQ: the worker (and the gateway's /jobs) only run with AMQP_URL set.
    if [[ -n "${AMQP_URL:-}${AMQP_URL_FILE:-}" ]]; then
        start_service worker
        wait_for_log worker "worker consuming" 30
    else
        echo "services: no AMQP_URL: worker not started, /jobs off" >&2
    fi
    start_service relay
    start_service gateway
    wait_for_log gateway "gateway listening" 60
    # A Kafka group join takes a few seconds; the relay logs once it has partitions.
    wait_for_log relay "relay consuming" 60
}

# admin_addr NAME DEFAULT: the admin address NAME was started with.
admin_addr() { local v="SWITCHBOARD_ADMIN_ADDR_$1"; echo "${!v:-$2}"; }

# start_console (after start_services): the console beside the services, scraping each one started here and reading
# the same brokers (KAFKA_BROKERS, AMQP_URL). Optional: the chain works without it, so a
# console that does not come up is reported, not fatal.
start_console() {
    local scrape="gateway=$GATEWAY_ADDR,relay=$(admin_addr relay 127.0.0.1:9101),processor=$(admin_addr processor 127.0.0.1:9102)"
    [[ -n "${SERVICE_PID_OF[worker]:-}" ]] && scrape+=",worker=$(admin_addr worker 127.0.0.1:9103)"
    rm -f "$RUN_DIR/console.log"
    CONSOLE_SCRAPE="$scrape" start_service console
    wait_for_log console "console on" 30 || echo "services: the console did not come up; the chain runs without it" >&2
}

stop_services() {
    local pid
    for pid in "${SERVICE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SERVICE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    SERVICE_PIDS=()
}

# kill9_service NAME: SIGKILL, as a crash would: no flush, no commit, no group leave.
kill9_service() {
    local name="$1" pid="${SERVICE_PID_OF[$1]:-}"
    [[ -n "$pid" ]] || { echo "services: $name was not started here" >&2; return 1; }
    kill -9 "$pid" 2>/dev/null || echo "services: $name (pid $pid) was already gone" >&2
    wait "$pid" 2>/dev/null || true
    unset 'SERVICE_PID_OF[$name]'
    echo "services: $name killed with SIGKILL (pid $pid)" >&2
}

# restart_service NAME: starts target/debug/NAME again, appending to its log.
restart_service() {
    local name="$1"
    mkdir -p "$RUN_DIR"
    echo "---- restarted $(date +%T.%N) ----" >>"$RUN_DIR/$name.log"
    env $(admin_env "$name") "$BIN_DIR/$name" >>"$RUN_DIR/$name.log" 2>&1 &
    SERVICE_PIDS+=("$!")
    SERVICE_PID_OF["$name"]=$!
    echo "services: $name restarted (pid $!, log $RUN_DIR/$name.log)" >&2
}

STARTED_BROKERS=0

# use_brokers: starts tansu (and checks RabbitMQ) unless KAFKA_BROKERS points at a broker.
# Brokers are ours to stop only when none answered before: a tansu another run (or `make
# brokers`) started stays up. Marked before the start, so a start that fails halfway is cleaned up.
use_brokers() {
    if [[ -z "${KAFKA_BROKERS:-}" ]]; then
        timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9092' 2>/dev/null || STARTED_BROKERS=1
        bash "$ROOT/scripts/brokers.sh" start
        export KAFKA_BROKERS=127.0.0.1:9092
    fi
}

# stop_all: the services, then the brokers use_brokers started (nothing else).
stop_all() {
    stop_services
    if [[ $STARTED_BROKERS == 1 ]]; then bash "$ROOT/scripts/brokers.sh" stop; fi
    STARTED_BROKERS=0
}

# start_all: builds and starts every service and the console, the services exporting their
# spans to that console (unless OTEL_EXPORTER_OTLP_ENDPOINT names another collector).
start_all() {
    build_services
    export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://$CONSOLE_ADDR}"
    start_services
    start_console
}

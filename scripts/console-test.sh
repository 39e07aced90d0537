#!/usr/bin/env bash
# The console in a real browser (`make console-test`): Debian's chromium driven headless by
# playwright-core (npm, pinned by scripts/console-test/package-lock.json) through
# scripts/console-test.mjs, against running services. Screenshots of every page land in
# target/console-test/. Fails (never skips) when chromium, Node.js, a broker or a service is
# missing.
#
#   0. the console alone with a tokens file: pages and API refused without the token, the
#      sign-in form refuses a wrong one and lets the right one in;
#   1. the all-in-one (`switchboard run`, embedded brokers, its console): a message appears in
#      the list without a reload, its waterfall has the 7 hops on gateway, relay and processor
#      and the upper-cased hello string; a job shows done; `<script>alert(1)</script>` shows as
#      text and no dialog opens;
#   2. every service as its own process on tansu (scripts/brokers.sh) and RabbitMQ, with the
#      console beside them: the processor stopped, the relay's breaker turns open and failed
#      transactions are marked at the gRPC hop; restarted, the breaker closes; an undecodable
#      record on the requests topic shows under dead letters with its reason.
#
# SKIP_BUILD=1 uses the binaries already in target/debug. CONSOLE_TEST_BROWSER names another
# chromium binary. The separate services use their own topics, group and queue (prefix
# CONSOLE_TEST_PREFIX, default console-test) so a broker shared with other runs does not mix in.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OUT="$ROOT/target/console-test"
NODE_DIR="$OUT/node"

# ---- prerequisites: chromium, Node.js, playwright-core ----
bash "$ROOT/scripts/prereqs.sh" chromium node npm || die "prerequisites missing (see above)"
BROWSER="${CONSOLE_TEST_BROWSER:-$(command -v chromium || true)}"
[[ -x "$BROWSER" ]] || die "no chromium (install Debian's chromium: bash scripts/prereqs.sh chromium)"
command -v node >/dev/null || die "no node (bash scripts/prereqs.sh node)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "Node.js $(node --version) is too old: playwright-core needs 18 or newer"
mkdir -p "$NODE_DIR"
# Installed from the committed lock, again only when the lock changed.
if ! cmp -s "$ROOT/scripts/console-test/package-lock.json" "$NODE_DIR/package-lock.json" \
    || [[ ! -d "$NODE_DIR/node_modules/playwright-core" ]]; then
    say "installing playwright-core into $NODE_DIR"
    cp "$ROOT/scripts/console-test/package.json" "$ROOT/scripts/console-test/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci of playwright-core failed"
fi
export CONSOLE_TEST_NODE_MODULES="$NODE_DIR/node_modules" CONSOLE_TEST_BROWSER="$BROWSER" CONSOLE_TEST_OUT="$OUT"
rm -f "$OUT"/*.png

browser_step() {
    say "browser: $1"
    node "$ROOT/scripts/console-test.mjs" "$1" || die "browser step '$1' (screenshots and logs in $OUT)"
}

# wait_http URL SECS PID NAME: until URL answers 2xx; fails at the deadline or if PID exits.
wait_http() {
    local url="$1" secs="$2" pid="$3" name="$4" i
    for ((i = 0; i < secs * 5; i++)); do
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || die "$name exited before $url answered (log: $(log_of "$name"))"
        sleep 0.2
    done
    die "$url did not answer within ${secs}s (log: $(log_of "$name"))"
}
log_of() { echo "$OUT/$1.log"; }

# Every span kept, so each transaction the test sends shows (the default sampler keeps a share).
export OTEL_TRACES_SAMPLER=always_on RUST_LOG="${RUST_LOG:-info}"

# ---- build ----
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "building"
    # One workspace build (the feature set `make test` already built), not one per package.
    cargo build -q --workspace --bins --examples || die "cargo build of the binaries failed"
fi
BIN="$ROOT/target/debug"
for b in switchboard gateway relay processor worker console examples/interop; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing (build it, or run without SKIP_BUILD)"
done

PIDS=()
cleanup() {
    stop_pids "${PIDS[@]}"
    PIDS=()
}
trap 'cleanup; stop_all_quietly' EXIT
stop_all_quietly() { declare -F stop_all >/dev/null && stop_all; true; }

# ---- 0. sign-in: the console alone, requiring a token ----
LOGIN_CONSOLE="${CONSOLE_TEST_LOGIN_CONSOLE:-127.0.0.1:18495}"
token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf %s "$token" | sha256sum | cut -d' ' -f1 >"$OUT/tokens.sha256"
say "0/2: console with a tokens file ($LOGIN_CONSOLE)"
(
    unset KAFKA_BROKERS AMQP_URL AMQP_URL_FILE
    exec env CONSOLE_ADDR="$LOGIN_CONSOLE" SWITCHBOARD_AUTH_TOKENS_FILE="$OUT/tokens.sha256" "$BIN/console"
) >"$(log_of console-login)" 2>&1 &
PIDS+=("$!")
wait_http "http://$LOGIN_CONSOLE/healthz" 60 "$!" console-login
CONSOLE_URL="http://$LOGIN_CONSOLE" GATEWAY_URL="http://$LOGIN_CONSOLE" CONSOLE_TEST_TOKEN="$token" browser_step sign-in
cleanup

# ---- 1. the all-in-one on the embedded brokers ----
AIO_GATEWAY="${CONSOLE_TEST_AIO_GATEWAY:-127.0.0.1:18480}"
AIO_CONSOLE="${CONSOLE_TEST_AIO_CONSOLE:-127.0.0.1:18490}"
say "1/2: switchboard run (gateway $AIO_GATEWAY, console $AIO_CONSOLE)"
(
    unset KAFKA_BROKERS AMQP_URL AMQP_URL_FILE
    exec env GATEWAY_ADDR="$AIO_GATEWAY" PROCESSOR_ADDR="${CONSOLE_TEST_AIO_PROCESSOR:-127.0.0.1:18451}" \
        CONSOLE_ADDR="$AIO_CONSOLE" "$BIN/switchboard" run
) >"$(log_of switchboard)" 2>&1 &
aio=$!
PIDS+=("$aio")
wait_http "http://$AIO_CONSOLE/healthz" 60 "$aio" switchboard
wait_http "http://$AIO_GATEWAY/readyz" 60 "$aio" switchboard
export CONSOLE_URL="http://$AIO_CONSOLE" GATEWAY_URL="http://$AIO_GATEWAY"
browser_step all-in-one
cleanup

# ---- 2. every service as its own process on tansu and RabbitMQ ----
export SWITCHBOARD_RUN_DIR="$OUT" SWITCHBOARD_BIN_DIR="$BIN" SKIP_BUILD=1
export GATEWAY_ADDR="${CONSOLE_TEST_GATEWAY:-127.0.0.1:18580}" PROCESSOR_ADDR="${CONSOLE_TEST_PROCESSOR:-127.0.0.1:18551}"
source "$ROOT/scripts/services.sh"
use_brokers || die "no Kafka broker (scripts/brokers.sh start failed)"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null || [[ "$AMQP_URL" != *127.0.0.1:5672* ]] \
    || die "RabbitMQ does not answer on 127.0.0.1:5672 (scripts/brokers.sh start starts it when installed)"
P="${CONSOLE_TEST_PREFIX:-console-test}"
export SWITCHBOARD_REQUESTS_TOPIC="$P.requests" SWITCHBOARD_REPLIES_TOPIC="$P.replies" \
    SWITCHBOARD_REQUESTS_DLQ="$P.requests.dlq" SWITCHBOARD_RELAY_GROUP="$P-relay" \
    SWITCHBOARD_JOBS_QUEUE="$P.jobs" SWITCHBOARD_JOB_EVENTS_EXCHANGE="$P.job-events"
export SWITCHBOARD_ADMIN_ADDR_relay="${CONSOLE_TEST_RELAY_ADMIN:-127.0.0.1:18601}" \
    SWITCHBOARD_ADMIN_ADDR_processor="${CONSOLE_TEST_PROCESSOR_ADMIN:-127.0.0.1:18602}" \
    SWITCHBOARD_ADMIN_ADDR_worker="${CONSOLE_TEST_WORKER_ADMIN:-127.0.0.1:18603}"
CONSOLE="${CONSOLE_TEST_CONSOLE:-127.0.0.1:18590}"
# A breaker that opens after a few failed calls and probes again soon, so the outage shows in
# seconds; the request budget short enough that the calls of the outage end quickly.
export SWITCHBOARD_RELAY_BREAKER_MIN_CALLS=4 SWITCHBOARD_RELAY_BREAKER_WINDOW=10 \
    SWITCHBOARD_RELAY_BREAKER_WAIT_OPEN_MS=3000 SWITCHBOARD_RELAY_BREAKER_HALF_OPEN_CALLS=2 \
    SWITCHBOARD_REQUEST_TIMEOUT_MS=3000
export OTEL_EXPORTER_OTLP_ENDPOINT="http://$CONSOLE"
say "2/2: separate services on $KAFKA_BROKERS and RabbitMQ (gateway $GATEWAY_ADDR, console $CONSOLE)"
env CONSOLE_ADDR="$CONSOLE" OTEL_SERVICE_NAME=console \
    CONSOLE_SCRAPE="gateway=$GATEWAY_ADDR,relay=$SWITCHBOARD_ADMIN_ADDR_relay,processor=$SWITCHBOARD_ADMIN_ADDR_processor,worker=$SWITCHBOARD_ADMIN_ADDR_worker" \
    "$BIN/console" >"$(log_of console)" 2>&1 &
console_pid=$!
PIDS+=("$console_pid")
wait_http "http://$CONSOLE/healthz" 60 "$console_pid" console
start_services || die "the services did not start (logs in $OUT)"
wait_http "http://$GATEWAY_ADDR/readyz" 60 "${SERVICE_PID_OF[gateway]}" gateway
export CONSOLE_URL="http://$CONSOLE" GATEWAY_URL="http://$GATEWAY_ADDR"
browser_step separate-up

say "stopping the processor"
pid="${SERVICE_PID_OF[processor]}"
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
browser_step processor-down

say "restarting the processor"
restart_service processor
# The log holds the first start's line too: wait for the second.
for ((i = 0; i < 300; i++)); do
    (($(grep -c "processor listening" "$(log_of processor)") >= 2)) && break
    kill -0 "${SERVICE_PID_OF[processor]}" 2>/dev/null || die "the restarted processor exited (log: $(log_of processor))"
    sleep 0.2
done
(($(grep -c "processor listening" "$(log_of processor)") >= 2)) || die "the processor did not listen again within 60 s"
browser_step processor-back

marker="poison-$(date +%s%N)"
export CONSOLE_TEST_POISON="$marker"
say "publishing an undecodable record to $SWITCHBOARD_REQUESTS_TOPIC"
# '?' starts a protobuf field with wire type 7, which does not exist: never an envelope.
"$BIN/examples/interop" publish "$SWITCHBOARD_REQUESTS_TOPIC" "$marker" "?$marker <i>not an envelope</i>" \
    x-console-test=poison >/dev/null || die "publishing the poison record failed"
browser_step dead-letters

shopt -s nullglob
shots=("$OUT"/*.png)
((${#shots[@]} > 0)) || die "no screenshots in $OUT"
say "passed; ${#shots[@]} screenshots in $OUT:"
printf '  %s\n' "${shots[@]##*/}" >&2

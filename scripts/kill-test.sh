#!/usr/bin/env bash
# Kill test (`make kill-test`): every service as its own process on real brokers; while
# KILL_TEST_REQUESTS verified requests (default 10 000 at KILL_TEST_RATE, default 300/s) and
# KILL_TEST_JOBS jobs (default 1 000) flow, `kill -9` the relay and restart it, then the
# processor, then the worker, KILL_TEST_GAP seconds apart (default 6).
#
# Pass: no request lost (every one answered within its deadline + margin, 200 or a clear
# 503/504), none delivered to the wrong caller or twice, every accepted job finished.
# Prints `kill-test: requests sent=… ok=… failed_503=… failed_504=… lost=… cross_delivered=…
# duplicated=…` and `kill-test: jobs …`; exits non-zero on any loss or cross-delivery.
#
# Starts tansu via scripts/brokers.sh unless KAFKA_BROKERS is set; RabbitMQ must answer on
# 127.0.0.1:5672 (brokers.sh starts it when installed). GATEWAY_ADDR / PROCESSOR_ADDR default to
# ports of their own so a running demo is not disturbed; logs go to .run/kill-test/.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${GATEWAY_ADDR:=127.0.0.1:18480}"
: "${PROCESSOR_ADDR:=127.0.0.1:18451}"
: "${SWITCHBOARD_RUN_DIR:=$ROOT/.run/kill-test}"
export GATEWAY_ADDR PROCESSOR_ADDR SWITCHBOARD_RUN_DIR
# Topics, queue and admin ports of its own: a shared broker may hold another run's backlog.
stamp="$(date +%s)"
: "${SWITCHBOARD_REQUESTS_TOPIC:=kill-test.$stamp.requests}"
: "${SWITCHBOARD_REPLIES_TOPIC:=kill-test.$stamp.replies}"
: "${SWITCHBOARD_REQUESTS_DLQ:=kill-test.$stamp.requests.dlq}"
: "${SWITCHBOARD_RELAY_GROUP:=kill-test.$stamp.relay}"
: "${SWITCHBOARD_JOBS_QUEUE:=switchboard.jobs.kill-test}"
: "${SWITCHBOARD_JOB_EVENTS_EXCHANGE:=switchboard.job-events.kill-test}"
SWITCHBOARD_DLQ_TOPIC="$SWITCHBOARD_REQUESTS_DLQ" # the name scripts/brokers.sh reads
export SWITCHBOARD_REQUESTS_TOPIC SWITCHBOARD_REPLIES_TOPIC SWITCHBOARD_REQUESTS_DLQ SWITCHBOARD_DLQ_TOPIC SWITCHBOARD_RELAY_GROUP \
    SWITCHBOARD_JOBS_QUEUE SWITCHBOARD_JOB_EVENTS_EXCHANGE
export SWITCHBOARD_ADMIN_ADDR_gateway="${SWITCHBOARD_ADMIN_ADDR_gateway:-127.0.0.1:18490}"
export SWITCHBOARD_ADMIN_ADDR_relay="${SWITCHBOARD_ADMIN_ADDR_relay:-127.0.0.1:18491}"
export SWITCHBOARD_ADMIN_ADDR_processor="${SWITCHBOARD_ADMIN_ADDR_processor:-127.0.0.1:18492}"
export SWITCHBOARD_ADMIN_ADDR_worker="${SWITCHBOARD_ADMIN_ADDR_worker:-127.0.0.1:18493}"
source "$ROOT/scripts/services.sh"

REQUESTS="${KILL_TEST_REQUESTS:-10000}"
RATE="${KILL_TEST_RATE:-300}"
JOBS="${KILL_TEST_JOBS:-1000}"
JOBS_RATE="${KILL_TEST_JOBS_RATE:-30}"
CONNECTIONS="${KILL_TEST_CONNECTIONS:-512}"
GAP="${KILL_TEST_GAP:-6}"
DEADLINE_MS="${SWITCHBOARD_REQUEST_TIMEOUT_MS:-5000}"
export SWITCHBOARD_REQUEST_TIMEOUT_MS="$DEADLINE_MS"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RUST_LOG="${RUST_LOG:-info}"


loadgen_pid=""
cleanup() {
    [[ -n "$loadgen_pid" ]] && kill "$loadgen_pid" 2>/dev/null
    stop_all || true # the services, then the brokers this run started
}
trap cleanup EXIT

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    use_brokers # starts tansu unless one answers, creates the topics
else
    bash "$ROOT/scripts/brokers.sh" start # uses KAFKA_BROKERS; checks RabbitMQ; creates topics
fi

say "building services (debug) and loadgen (release)"
build_services
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build -q -p switchboard-worker --bins 2>/dev/null \
    || say "switchboard-worker does not build (yet)"
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build -q --release -p switchboard-bench --bin loadgen
LOADGEN="$ROOT/target/release/loadgen"

start_services
# The worker: started by start_services once it knows it, else here.
jobs_problem=""
if [[ -z "${SERVICE_PID_OF[worker]:-}" ]]; then
    if [[ -x "$ROOT/target/debug/worker" ]]; then
        start_service worker
        sleep 2
    else
        jobs_problem="target/debug/worker does not exist: the worker service is not built"
    fi
fi
if [[ -z "$jobs_problem" ]]; then
    code="$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"message":"kill-test probe"}' "http://$GATEWAY_ADDR/jobs" || true)"
    [[ "$code" == 202 ]] || jobs_problem="POST http://$GATEWAY_ADDR/jobs answered HTTP $code, not 202: no jobs API"
fi
jobs_args=()
if [[ -n "$jobs_problem" ]]; then
    say "############################################################################"
    say "JOBS PART CANNOT RUN: $jobs_problem"
    say "the jobs part FAILS; the request part runs anyway"
    say "############################################################################"
elif [[ "$JOBS" -gt 0 ]]; then
    jobs_args=(--jobs "$JOBS" --jobs-rate "$JOBS_RATE")
fi

# One probe through the whole chain before the clock starts.
for ((i = 0; i < 30; i++)); do
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"message":"probe"}' \
        "http://$GATEWAY_ADDR/messages" && break
    sleep 1
done

say "$REQUESTS requests at $RATE/s, ${JOBS_RATE}/s jobs; kill -9 relay, processor, worker ${GAP}s apart"
out="$SWITCHBOARD_RUN_DIR/loadgen.out"
"$LOADGEN" --label kill-test --target "http://$GATEWAY_ADDR/messages" --verify \
    --requests "$REQUESTS" --rate "$RATE" --concurrency "$CONNECTIONS" \
    --deadline "${DEADLINE_MS}ms" --margin 2s "${jobs_args[@]}" >"$out" &
loadgen_pid=$!

# crash NAME: kill -9, restart after a second, report how long until it serves again.
crash() {
    local name="$1" pattern="$2" before t0 i
    before="$(grep -c "$pattern" "$RUN_DIR/$name.log" 2>/dev/null || true)"
    kill9_service "$name"
    sleep 1
    restart_service "$name"
    t0=$(date +%s%N)
    for ((i = 0; i < 600; i++)); do
        [[ "$(grep -c "$pattern" "$RUN_DIR/$name.log" 2>/dev/null || true)" -gt "$before" ]] && break
        sleep 0.1
    done
    say "$name back ('$pattern') $(( ($(date +%s%N) - t0) / 1000000 )) ms after restart"
}

sleep "$GAP"
crash relay "relay consuming"
sleep "$GAP"
crash processor "processor listening"
if [[ -n "${SERVICE_PID_OF[worker]:-}" ]]; then
    sleep "$GAP"
    crash worker "${KILL_TEST_WORKER_READY:-worker consuming}"
else
    say "no worker process to kill (see above)"
fi

rc=0
wait "$loadgen_pid" || rc=$?
loadgen_pid=""
cat "$out"
# After the last restart the chain must serve again: a request and a job must succeed.
recovered=0
for ((i = 0; i < 30; i++)); do
    body="$(curl -s -m 10 -X POST -H 'Content-Type: application/json' -d '{"message":"after the kills"}' \
        "http://$GATEWAY_ADDR/messages" || true)"
    if grep -q '"AFTER THE KILLS FROM REST AND KAFKA PUBLISHER' <<<"$body"; then recovered=1; break; fi
    sleep 1
done
if [[ $recovered == 1 ]]; then
    say "chain recovered: POST /messages answers after the kills"
else
    say "CHAIN DID NOT RECOVER: no 200 from POST /messages within 30 s after the test (last: ${body:0:200})"
    rc=1
fi
for name in gateway relay processor worker; do
    [[ -f "$RUN_DIR/$name.log" ]] || continue
    if grep -qiE "panicked|thread '.*' panicked" "$RUN_DIR/$name.log"; then
        say "$name PANICKED (see $RUN_DIR/$name.log)"; rc=1
    fi
done
for name in "${!SERVICE_PID_OF[@]}"; do
    kill -0 "${SERVICE_PID_OF[$name]}" 2>/dev/null || { say "$name died during the test"; rc=1; }
done
if [[ -n "$jobs_problem" ]]; then
    say "FAIL (jobs part): $jobs_problem"
    rc=1
fi
[[ $rc == 0 ]] && say "PASS" || say "FAIL"
exit "$rc"

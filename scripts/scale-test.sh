#!/usr/bin/env bash
# Scale test (`make scale-test`, run by scripts/test-real.sh): N of every service as separate
# release processes on tansu + RabbitMQ — 3 gateways, 2 relays, 2 processors, 2 workers —
# under verified load spread over the gateways (one `loadgen --verify` per gateway, every
# reply checked against its own token) plus jobs; `kill -9` one gateway, one relay, one
# processor and one worker in turn (each restarted a second later with the same instance id).
#
# Prints per instance the requests it answered and the replies it consumed (from its
# /metrics), the consumer groups the run left on the broker (`kafka-groups`), and a verdict line:
#   scale-test: VERDICT PASS|FAIL lost=… cross_delivered=… duplicated=… unkilled_ok=…% overall_ok=…%
# Pass: 0 lost, 0 cross-delivered, 0 duplicated; requests on gateways that were not killed
# ≥ 99.5 % ok; all requests but the killed gateway's connection errors ≥ 99 % ok, and those
# errors came fast (< 1 s); every gateway consumed at most its share of the replies; jobs all
# finished; no consumer group left but the relays' own (when the broker cannot list its groups,
# the verdict line says groups_unchecked instead of counting none).
#
# Settings: SCALE_TEST_RATE (total requests/s, default 100), SCALE_TEST_GAP (seconds between
# kills, default 6), SCALE_TEST_VICTIMS (who is killed, in order; default "gateway-2 relay-1
# processor-1 worker-1"), SCALE_TEST_JOBS (default 200), SCALE_TEST_PORT_BASE (default 18500:
# gateways BASE+80.., processors BASE+51.., admin ports BASE+101..). Starts tansu via
# scripts/brokers.sh unless KAFKA_BROKERS is set; AMQP_URL defaults to the local RabbitMQ.
# SKIP_BUILD=1 uses the binaries in target/release (SCALE_TEST_BIN_DIR: another directory).
# Logs: .run/scale-test/.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export SWITCHBOARD_RUN_DIR="${SWITCHBOARD_RUN_DIR:-$ROOT/.run/scale-test}"
RUN_DIR="$SWITCHBOARD_RUN_DIR"
BASE="${SCALE_TEST_PORT_BASE:-18500}"
RATE="${SCALE_TEST_RATE:-100}"
GAP="${SCALE_TEST_GAP:-6}"
JOBS="${SCALE_TEST_JOBS:-200}"
read -r -a VICTIMS <<<"${SCALE_TEST_VICTIMS:-gateway-2 relay-1 processor-1 worker-1}"
DEADLINE_MS="${SWITCHBOARD_REQUEST_TIMEOUT_MS:-5000}"
BIN="${SCALE_TEST_BIN_DIR:-$ROOT/target/release}"
# Topics, group and queue of this run only: a shared broker may hold another run's backlog.
# shellcheck source=scripts/run-names.sh
source "$ROOT/scripts/run-names.sh"
run_names scale-test
export SWITCHBOARD_JOBS_QUEUE="switchboard.jobs.scale-test"
export SWITCHBOARD_JOB_EVENTS_EXCHANGE="switchboard.job-events.scale-test"
# One reply partition per gateway: gateway-N reads partition N.
export SWITCHBOARD_PARTITIONS="${SCALE_TEST_PARTITIONS:-6}"
export SWITCHBOARD_REQUEST_TIMEOUT_MS="$DEADLINE_MS"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RUST_LOG="${RUST_LOG:-info}"
PROCESSORS="127.0.0.1:$((BASE + 51)),127.0.0.1:$((BASE + 52))"

source "$ROOT/scripts/services.sh" # use_brokers / stop_all (brokers only: our processes are below)

declare -A PID=() ADMIN=() KIND=() ENVS=()
LOADGEN_PIDS=()
cleanup() {
    local p
    for p in "${LOADGEN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_pids "${PID[@]}"
    stop_all || true
}
trap cleanup EXIT

# define NAME KIND ADMIN_PORT ENV…: an instance of binary KIND with its own environment.
define() {
    local name="$1" kind="$2" admin="$3"
    shift 3
    KIND[$name]="$kind"
    ADMIN[$name]="$admin"
    local IFS='|'
    ENVS[$name]="SWITCHBOARD_INSTANCE_ID=$name|SWITCHBOARD_ADMIN_ADDR=127.0.0.1:$admin|$*"
}
launch() {
    local name="$1"
    echo "---- started $(date +%T.%N) ----" >>"$RUN_DIR/$name.log"
    local -a vars
    IFS='|' read -ra vars <<<"${ENVS[$name]}"
    env "${vars[@]}" "$BIN/${KIND[$name]}" >>"$RUN_DIR/$name.log" 2>&1 &
    PID[$name]=$!
}
# wait_log NAME PATTERN SECS: the instance's log shows PATTERN since its last start.
wait_log() {
    local name="$1" pattern="$2" secs="$3" i
    for ((i = 0; i < secs * 10; i++)); do
        sed -n '/^---- started/h; /^---- started/!H; ${x;p}' "$RUN_DIR/$name.log" | grep -q "$pattern" && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    say "$name did not log '$pattern' within ${secs}s:"
    tail -n 20 "$RUN_DIR/$name.log" >&2
    return 1
}
ready_pattern() {
    case "${KIND[$1]}" in
    gateway) echo "gateway listening" ;;
    relay) echo "relay consuming" ;;
    processor) echo "processor listening" ;;
    worker) echo "worker consuming" ;;
    esac
}
# crash NAME: kill -9 (no flush, no commit, no leave), restart a second later with the same
# instance id, report how long until it serves again.
crash() {
    local name="$1" t0
    kill -9 "${PID[$name]}" 2>/dev/null || say "$name was already gone"
    wait "${PID[$name]}" 2>/dev/null || true
    say "$name killed with SIGKILL at $(date +%T.%N | cut -c1-12)"
    sleep 1
    t0=$(date +%s%N)
    launch "$name"
    wait_log "$name" "$(ready_pattern "$name")" 60 || return 1
    say "$name back $((($(date +%s%N) - t0) / 1000000)) ms after its restart"
}
# metric NAME PATTERN: the sum of the samples of NAME's /metrics matching the regex PATTERN.
metric() {
    curl -s -m 5 "http://127.0.0.1:${ADMIN[$1]}/metrics" | grep -E "$2" | awk '{s += $NF} END {printf "%d", s}'
}

mkdir -p "$RUN_DIR"
rm -f "$RUN_DIR"/*.log "$RUN_DIR"/*.out
if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    use_brokers # starts tansu unless one answers; creates the topics
else
    bash "$ROOT/scripts/brokers.sh" start # creates this run's topics on KAFKA_BROKERS
fi
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "building the services and loadgen (release)"
    cargo build -q --release -p switchboard-gateway -p switchboard-relay -p switchboard-processor \
        -p switchboard-worker -p switchboard-bench --bins
fi

for i in 0 1; do
    define "processor-$i" processor $((BASE + 111 + i)) "PROCESSOR_ADDR=127.0.0.1:$((BASE + 51 + i))"
    # Failover: cooperative-sticky (the default) and a 2 s session: the shorter the session, the
    # sooner tansu 0.6 gives a killed relay's partitions back (BENCHMARKS.md "Relay failover"); SCALE_TEST_RELAY_KAFKA_SET
    # overrides.
    define "relay-$i" relay $((BASE + 121 + i)) "PROCESSOR_ADDR=$PROCESSORS" \
        "SWITCHBOARD_KAFKA_SET=${SCALE_TEST_RELAY_KAFKA_SET:-session.timeout.ms=2000 heartbeat.interval.ms=400}"
    define "worker-$i" worker $((BASE + 131 + i)) "PROCESSOR_ADDR=$PROCESSORS"
done
for i in 0 1 2; do
    # A gateway serves its /metrics on its own port.
    define "gateway-$i" gateway $((BASE + 80 + i)) "GATEWAY_ADDR=127.0.0.1:$((BASE + 80 + i))"
done
ORDER=(processor-0 processor-1 worker-0 worker-1 relay-0 relay-1 gateway-0 gateway-1 gateway-2)
# The broker's groups before the run: what the run adds is compared with this at the end.
GROUPS_BEFORE_OK=1
GROUPS_BEFORE=$("$BIN/kafka-groups" --brokers "$KAFKA_BROKERS" 2>&1) || GROUPS_BEFORE_OK=0
for name in "${ORDER[@]}"; do launch "$name"; done
for name in "${ORDER[@]}"; do wait_log "$name" "$(ready_pattern "$name")" 90; done
say "up: ${ORDER[*]}"
for i in 0 1 2; do
    for ((t = 0; t < 30; t++)); do
        curl -sf -o /dev/null -m 6 -X POST -H 'Content-Type: application/json' -d '{"message":"probe"}' \
            "http://127.0.0.1:$((BASE + 80 + i))/messages" && break
        sleep 1
    done
done

# Requests per gateway: the load lasts the kills plus a gap on each side.
seconds=$((GAP * (${#VICTIMS[@]} + 1) + 4))
per_rate=$(awk -v r="$RATE" 'BEGIN {printf "%.3f", r / 3}')
per_requests=$(awk -v r="$RATE" -v s="$seconds" 'BEGIN {printf "%d", r / 3 * s}')
say "$RATE requests/s over 3 gateways for ${seconds}s, $JOBS jobs; kill -9 ${VICTIMS[*]} ${GAP}s apart"
for i in 0 1 2; do
    jobs_args=()
    [[ $i == 0 && $JOBS -gt 0 ]] && jobs_args=(--jobs "$JOBS" --jobs-rate "$(awk -v j="$JOBS" -v s="$seconds" 'BEGIN {printf "%.2f", j / s}')")
    "$BIN/loadgen" --label "gateway-$i" --target "http://127.0.0.1:$((BASE + 80 + i))/messages" --verify \
        --requests "$per_requests" --rate "$per_rate" --concurrency 128 --progress 0s \
        --deadline "${DEADLINE_MS}ms" --margin 2s "${jobs_args[@]}" >"$RUN_DIR/loadgen-$i.out" 2>"$RUN_DIR/loadgen-$i.err" &
    LOADGEN_PIDS+=($!)
done

rc=0
for victim in "${VICTIMS[@]}"; do
    sleep "$GAP"
    crash "$victim" || rc=1
done
for p in "${LOADGEN_PIDS[@]}"; do wait "$p" || true; done
LOADGEN_PIDS=()

# Per instance: what it answered and consumed, read from its own /metrics.
printf 'scale-test: %-12s %s\n' instance "share (this process since its last start)" >&2
replies_total=0
declare -A CONSUMED=()
for name in "${ORDER[@]}"; do
    case "${KIND[$name]}" in
    gateway)
        answered=$(metric "$name" '^http_requests_total\{route="/messages",method="POST",status="200"')
        consumed=$(metric "$name" '^messages_consumed_total\{')
        CONSUMED[$name]=$consumed
        replies_total=$((replies_total + consumed))
        say "$(printf '%-12s answered=%s replies_consumed=%s' "$name" "$answered" "$consumed")" ;;
    relay)
        say "$(printf '%-12s requests_consumed=%s' "$name" "$(metric "$name" '^messages_consumed_total\{')")" ;;
    processor)
        say "$(printf '%-12s calls_ok=%s replies_published=%s' "$name" \
            "$(metric "$name" '^grpc_calls_total\{.*code="OK"')" \
            "$(metric "$name" '^messages_published_total\{.*outcome="ok"')")" ;;
    worker)
        say "$(printf '%-12s jobs_settled=%s' "$name" "$(metric "$name" '^jobs_total\{status="(succeeded|failed)"')")" ;;
    esac
done

# The sums over the loadgens; the killed gateway's requests apart.
sum() { cat "$@" | grep -o "$FIELD=[0-9]*" | cut -d= -f2 | awk '{s += $1} END {printf "%d", s}'; }
all=("$RUN_DIR"/loadgen-{0,1,2}.out) unkilled=("$RUN_DIR"/loadgen-{0,1}.out)
for f in "${all[@]}"; do grep -E "requests sent=|jobs " "$f" >&2 || true; done
FIELD=sent; sent=$(sum "${all[@]}"); sent_u=$(sum "${unkilled[@]}")
FIELD=ok; ok=$(sum "${all[@]}"); ok_u=$(sum "${unkilled[@]}")
FIELD=lost; lost=$(sum "${all[@]}")
FIELD=cross_delivered; crossed=$(sum "${all[@]}")
FIELD=duplicated; dup=$(sum "${all[@]}")
FIELD=corrupted; corrupt=$(sum "${all[@]}")
FIELD=conn_errors; conn_u=$(sum "${unkilled[@]}") conn_k=$(sum "$RUN_DIR/loadgen-2.out")
conn_max=$(grep -o 'conn_error_max_ms=[0-9]*' "$RUN_DIR/loadgen-2.out" | cut -d= -f2 | head -1)
jobs_line=$(grep -E "^gateway-0: jobs " "$RUN_DIR/loadgen-0.out" || true)
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "0.00"; else printf "%.2f", 100 * a / b}'; }
# The killed gateway's open connections may fail (fast: checked below); everything else counts.
ok_pct=$(pct "$ok" "$((sent - conn_k))") ok_u_pct=$(pct "$ok_u" "$sent_u")

# Each gateway's share of the replies: its own partition only, about 1/3 (+ duplicates).
share_ok=1
for name in gateway-0 gateway-1 gateway-2; do
    awk -v c="${CONSUMED[$name]:-0}" -v t="$replies_total" 'BEGIN {exit !(t > 0 && c <= t * 0.5)}' || share_ok=0
done
# Consumer groups the run left on the broker: those listed now and not before the run. Only
# the relays' may be among them (one per live role that joins a group: gateways read their
# partition without one, processors and workers join none).
groups_ok=1 groups_note=""
if [[ $GROUPS_BEFORE_OK == 0 ]]; then
    groups_note="groups_unchecked"
    say "consumer groups NOT checked: kafka-groups could not list them before the run: $GROUPS_BEFORE"
elif groups_after=$("$BIN/kafka-groups" --brokers "$KAFKA_BROKERS" 2>&1); then
    new_groups=$(comm -13 <(cut -d' ' -f1 <<<"$GROUPS_BEFORE" | sort) <(cut -d' ' -f1 <<<"$groups_after" | sort) | grep -v '^$' || true)
    n_groups=$(grep -c . <<<"$new_groups" || true)
    say "consumer groups this run left on the broker: $n_groups (allowed: the relays' $SWITCHBOARD_RELAY_GROUP; gateways none)"
    while read -r g; do
        [[ -n $g ]] || continue
        say "  $(awk -v g="$g" '$1 == g' <<<"$groups_after")"
        [[ $g == "$SWITCHBOARD_RELAY_GROUP" ]] || groups_ok=0
    done <<<"$new_groups"
else
    # Never counted as "none": the broker did not say.
    groups_note="groups_unchecked"
    say "consumer groups NOT checked: kafka-groups could not list them: $groups_after"
fi

checks=()
[[ $lost == 0 && $crossed == 0 && $dup == 0 && $corrupt == 0 ]] || checks+=("lost/crossed/duplicated/corrupted")
awk -v p="$ok_u_pct" 'BEGIN {exit !(p >= 99.5)}' || checks+=("unkilled gateways ${ok_u_pct}% < 99.5%")
awk -v p="$ok_pct" 'BEGIN {exit !(p >= 99)}' || checks+=("overall ${ok_pct}% < 99%")
[[ $conn_u == 0 ]] || checks+=("$conn_u connection errors on gateways not killed")
[[ -z "$conn_max" || $conn_max -lt 1000 ]] || checks+=("the killed gateway's connections failed slowly (${conn_max} ms)")
[[ $share_ok == 1 ]] || checks+=("a gateway consumed more than half of the replies")
[[ $groups_ok == 1 ]] || checks+=("consumer groups left beyond the relays' (see above)")
if [[ $JOBS -gt 0 ]]; then grep -q "lost=0 " <<<"$jobs_line" || checks+=("jobs: $jobs_line"); fi
for name in "${ORDER[@]}"; do
    kill -0 "${PID[$name]}" 2>/dev/null || checks+=("$name died")
    grep -q "panicked" "$RUN_DIR/$name.log" && checks+=("$name panicked")
done
[[ $rc == 0 ]] || checks+=("an instance did not come back")
verdict=PASS
[[ ${#checks[@]} == 0 ]] || verdict=FAIL
echo "scale-test: VERDICT $verdict sent=$sent ok=$ok killed_gateway_conn_errors=$conn_k lost=$lost cross_delivered=$crossed duplicated=$dup unkilled_ok=${ok_u_pct}% overall_ok=${ok_pct}% killed_gateway_conn_error_max_ms=${conn_max:-0} ${groups_note:+$groups_note }${checks[*]:+problems: ${checks[*]}}"
[[ $verdict == PASS ]]

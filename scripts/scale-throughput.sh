#!/usr/bin/env bash
# Throughput of the chain with 2 relays + 2 processors against 1 relay + 1 processor (more
# instances should not mean lower throughput). On a shared host req/s swings between runs, so
# the two configurations run in alternated pairs (A B, B A, A B, ...), each on fresh processes,
# topics and relay group:
#   1+1: processor-0; relay-0 calling it; one gateway
#   2+2: processor-0 and -1; relay-0 and relay-1, each calling both (PROCESSOR_ADDR list)
# Before measuring, a configuration is settled: warm-up bursts until, in two bursts in a row,
# the relay group is Stable with all its members (kafka-groups) and every relay consumed
# requests and every processor answered calls. Then: idle CPU for a few seconds, and a
# closed-loop loadgen through the gateway.
#
# One line per run (req/s; the relays' and processors' shares of the measured phase; CPU µs per
# transaction of our services, split gateway/relays/processors, and of the broker when its pid
# is known; idle CPU ms per second), then the medians and the per-pair ratios.
#
# Settings: THROUGHPUT_PAIRS (default 3), THROUGHPUT_SECS (measured seconds, default 10),
# THROUGHPUT_CONCURRENCY (default 64), THROUGHPUT_PORT_BASE (default 18700: gateway BASE+80,
# processors BASE+51.., admin ports BASE+111..), SCALE_TEST_BIN_DIR (default target/release,
# built unless SKIP_BUILD=1), KAFKA_BROKERS (unset: scripts/brokers.sh starts tansu),
# BROKER_PID (default: the tansu scripts/brokers.sh started). Logs: .run/scale-throughput/.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PAIRS="${THROUGHPUT_PAIRS:-3}"
SECS="${THROUGHPUT_SECS:-10}"
CONC="${THROUGHPUT_CONCURRENCY:-64}"
BASE="${THROUGHPUT_PORT_BASE:-18700}"
BIN="${SCALE_TEST_BIN_DIR:-$ROOT/target/release}"
export SWITCHBOARD_PARTITIONS="${SCALE_TEST_PARTITIONS:-6}"
export RUST_LOG="${RUST_LOG:-warn}"
run_dir scale-throughput

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    bash "$ROOT/scripts/brokers.sh" start
    export KAFKA_BROKERS="${TANSU_ADDR:-127.0.0.1:9092}"
fi
if [[ -z "${BROKER_PID:-}" && -f "${TANSU_STATE:-$ROOT/.tansu}/tansu.pid" ]]; then
    BROKER_PID="$(cat "${TANSU_STATE:-$ROOT/.tansu}/tansu.pid")"
fi
[[ -n "${BROKER_PID:-}" ]] && ! kill -0 "$BROKER_PID" 2>/dev/null && BROKER_PID=""
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    say "building the services, loadgen and kafka-groups (release)"
    # The scale test's selection: one release build (and one grpcio-sys) serves both scripts.
    cargo build -q --release -p switchboard-gateway -p switchboard-relay -p switchboard-processor \
        -p switchboard-worker -p switchboard-bench --bins
fi
for b in gateway relay processor loadgen kafka-groups; do [[ -x "$BIN/$b" ]] || die "no $BIN/$b"; done

PIDS=()
stop_services() {
    stop_pids "${PIDS[@]}"
    PIDS=()
}
trap stop_services EXIT

# CPU ticks (user + system) of the given pids.
ticks() {
    local p t=0
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    echo "$t"
}
HZ="$(getconf CLK_TCK)"
# counter PORT PATTERN: the sum of the /metrics samples on admin PORT matching PATTERN.
counter() {
    { curl -s -m 5 "http://127.0.0.1:$1/metrics" || true; } | { grep -E "$2" || true; } | awk '{s += $NF} END {printf "%d", s}'
}
relay_count() { counter "$1" '^messages_consumed_total\{'; }
processor_count() { counter "$1" '^grpc_calls_total\{.*code="OK"'; }
# loadgen_run SECONDS: a closed-loop run through the gateway; prints "REQ_PER_S OK ERRORS".
loadgen_run() {
    local out
    out="$("$BIN/loadgen" --target "http://127.0.0.1:$((BASE + 80))/messages" --concurrency "$CONC" \
        --warmup 0s --duration "${1}s" --progress 0 2>&1)" || true
    echo "$out" >>"$RUN_DIR/loadgen.log"
    awk '/ ok, [0-9]+ failed/ {ok = $(NF - 3); err = $(NF - 1)} /^POST/ {rps = $3} END {printf "%d %d %d", rps, ok, err}' <<<"$out"
}

# run_config N PAIR: start N processors and N relays (each calling all N processors) and one
# gateway on fresh topics, settle, measure; prints the result line and appends to RESULTS.
RESULTS="$RUN_DIR/results"
: >"$RESULTS"
run_config() {
    local n="$1" pair="$2" i tag addrs="" relay_admin=() proc_admin=() relay_pids=() proc_pids=() gw_pid
    tag="tput.$(date +%s%N).$n"
    export SWITCHBOARD_REQUESTS_TOPIC="$tag.requests" SWITCHBOARD_REPLIES_TOPIC="$tag.replies"
    export SWITCHBOARD_REQUESTS_DLQ="$tag.requests.dlq" SWITCHBOARD_RELAY_GROUP="$tag.relay"
    for ((i = 0; i < n; i++)); do addrs+="${addrs:+,}127.0.0.1:$((BASE + 51 + i))"; done
    for ((i = 0; i < n; i++)); do
        env PROCESSOR_ADDR="127.0.0.1:$((BASE + 51 + i))" SWITCHBOARD_ADMIN_ADDR="127.0.0.1:$((BASE + 111 + i))" \
            SWITCHBOARD_INSTANCE_ID="processor-$i" "$BIN/processor" >>"$RUN_DIR/processor-$i.log" 2>&1 &
        PIDS+=($!) proc_pids+=($!) proc_admin+=($((BASE + 111 + i)))
    done
    for ((i = 0; i < n; i++)); do
        env PROCESSOR_ADDR="$addrs" SWITCHBOARD_ADMIN_ADDR="127.0.0.1:$((BASE + 121 + i))" \
            SWITCHBOARD_INSTANCE_ID="relay-$i" "$BIN/relay" >>"$RUN_DIR/relay-$i.log" 2>&1 &
        PIDS+=($!) relay_pids+=($!) relay_admin+=($((BASE + 121 + i)))
    done
    env GATEWAY_ADDR="127.0.0.1:$((BASE + 80))" SWITCHBOARD_INSTANCE_ID=gateway-0 \
        "$BIN/gateway" >>"$RUN_DIR/gateway.log" 2>&1 &
    PIDS+=($!) gw_pid=$!
    local port t
    for port in "${proc_admin[@]}" "${relay_admin[@]}" $((BASE + 80)); do
        for ((t = 0; t < 300; t++)); do
            curl -sf -o /dev/null -m 2 "http://127.0.0.1:$port/readyz" && break
            sleep 0.2
        done
        ((t < 300)) || die "$n+$n: the service on admin port $port is not ready after 60 s (logs in $RUN_DIR)"
    done

    # Settle: 2 s bursts until two in a row show the group stable and every instance working.
    local good=0 bursts=0 settle_t0 group="" ok_burst before after p
    settle_t0=$(date +%s)
    while ((good < 2)); do
        ((bursts++ < 30)) || die "$n+$n: not settled after 30 warm-up bursts (group: $group)"
        before=()
        for p in "${relay_admin[@]}"; do before+=("$(relay_count "$p")"); done
        for p in "${proc_admin[@]}"; do before+=("$(processor_count "$p")"); done
        loadgen_run 2 >/dev/null
        after=()
        for p in "${relay_admin[@]}"; do after+=("$(relay_count "$p")"); done
        for p in "${proc_admin[@]}"; do after+=("$(processor_count "$p")"); done
        ok_burst=1
        for i in "${!before[@]}"; do ((after[i] > before[i])) || ok_burst=0; done
        if group="$("$BIN/kafka-groups" --brokers "$KAFKA_BROKERS" --prefix "$SWITCHBOARD_RELAY_GROUP" --timeout 5s 2>&1)"; then
            grep -q "state=Stable members=$n\$" <<<"$group" || ok_burst=0
        else
            # A broker that cannot list groups: the per-instance counters alone decide.
            say "kafka-groups failed, settling on the counters only: $group"
        fi
        if ((ok_burst)); then ((good++)) || true; else good=0; fi
    done
    local settle_s=$(($(date +%s) - settle_t0))

    # Idle cost: CPU of the services (and the broker) with no load, 5 s.
    local c0 b0 c1 b1 idle_ms idle_broker_ms=""
    c0=$(ticks "${PIDS[@]}"); b0=$(ticks ${BROKER_PID:-})
    sleep 5
    c1=$(ticks "${PIDS[@]}"); b1=$(ticks ${BROKER_PID:-})
    idle_ms=$(((c1 - c0) * 1000 / HZ / 5))
    [[ -n "${BROKER_PID:-}" ]] && idle_broker_ms=$(((b1 - b0) * 1000 / HZ / 5))

    # Measured phase.
    before=()
    for p in "${relay_admin[@]}"; do before+=("$(relay_count "$p")"); done
    for p in "${proc_admin[@]}"; do before+=("$(processor_count "$p")"); done
    c0=$(ticks "${PIDS[@]}"); b0=$(ticks ${BROKER_PID:-})
    local g0 r0 p0 g1 r1 p1
    g0=$(ticks "$gw_pid"); r0=$(ticks "${relay_pids[@]}"); p0=$(ticks "${proc_pids[@]}")
    local rps ok errors
    read -r rps ok errors <<<"$(loadgen_run "$SECS")"
    c1=$(ticks "${PIDS[@]}"); b1=$(ticks ${BROKER_PID:-})
    g1=$(ticks "$gw_pid"); r1=$(ticks "${relay_pids[@]}"); p1=$(ticks "${proc_pids[@]}")
    after=()
    for p in "${relay_admin[@]}"; do after+=("$(relay_count "$p")"); done
    for p in "${proc_admin[@]}"; do after+=("$(processor_count "$p")"); done
    local relays="" procs="" cpu broker_cpu="n/a"
    for ((i = 0; i < n; i++)); do relays+="${relays:+/}$((after[i] - before[i]))"; done
    for ((i = n; i < 2 * n; i++)); do procs+="${procs:+/}$((after[i] - before[i]))"; done
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v ok="$ok" 'BEGIN {printf "%.0f", ok ? t * 1e6 / hz / ok : 0}')
    [[ -n "${BROKER_PID:-}" ]] && broker_cpu=$(awk -v t=$((b1 - b0)) -v hz="$HZ" -v ok="$ok" 'BEGIN {printf "%.0f", ok ? t * 1e6 / hz / ok : 0}')
    per_tx() { awk -v t="$1" -v hz="$HZ" -v ok="$ok" 'BEGIN {printf "%.0f", ok ? t * 1e6 / hz / ok : 0}'; }
    local roles
    roles="$(per_tx $((g1 - g0)))/$(per_tx $((r1 - r0)))/$(per_tx $((p1 - p0)))"
    stop_services
    local line="pair=$pair config=$n+$n req/s=$rps ok=$ok errors=$errors relays=$relays processors=$procs cpu_us_per_tx=$cpu gateway/relays/processors=$roles broker_cpu_us_per_tx=$broker_cpu idle_cpu_ms_per_s=$idle_ms idle_broker_cpu_ms_per_s=${idle_broker_ms:-n/a} settled_in=${settle_s}s load=$(cut -d' ' -f1 /proc/loadavg)"
    echo "scale-throughput: $line"
    echo "$line" >>"$RESULTS"
}

say "$PAIRS pairs, $SECS s closed loop at $CONC connections each, on $KAFKA_BROKERS, binaries $BIN"
for ((pair = 1; pair <= PAIRS; pair++)); do
    if ((pair % 2)); then order=(1 2); else order=(2 1); fi
    for n in "${order[@]}"; do run_config "$n" "$pair"; done
done

# Medians and per-pair ratios.
rps_of() { grep " config=$1+$1 " "$RESULTS" | grep -o 'req/s=[0-9]*' | cut -d= -f2; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
a_med=$(rps_of 1 | median) b_med=$(rps_of 2 | median)
ratios=$(paste <(rps_of 1) <(rps_of 2) | awk '{printf "%s%.2f", (NR > 1) ? " " : "", $1 ? $2 / $1 : 0}')
echo "scale-throughput: SUMMARY 1+1 median=${a_med} req/s  2+2 median=${b_med} req/s  ratio=$(awk -v a="$a_med" -v b="$b_med" 'BEGIN {printf "%.2f", a ? b / a : 0}')  per-pair 2+2/1+1: $ratios"

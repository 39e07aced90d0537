#!/usr/bin/env bash
# Soak test (`make soak`): `loadgen --verify` at SOAK_RATE requests/s (default 200) for SOAK_SECS
# (default 300), printing resident memory (VmRSS) every SOAK_EVERY seconds (default 15).
#
# Two modes:
#   embedded (default): the all-in-one `target/release/switchboard run` on the embedded broker
#     (free ports); its log goes to .run/soak/switchboard.log.
#   separate (KAFKA_BROKERS set, or SOAK_SEPARATE=1): gateway, relay and processor, each its own
#     release process (scripts/services.sh with SWITCHBOARD_BIN_DIR=target/release) on
#     KAFKA_BROKERS, or on a tansu started here through scripts/brokers.sh when it is unset.
#     Topics and relay group of this run only (soak.<stamp>.*), ports of their own (gateway
#     SOAK_GATEWAY_ADDR, default 127.0.0.1:18680; processor SOAK_PROCESSOR_ADDR, default
#     127.0.0.1:18651; admin 127.0.0.1:18690-18692), logs in .run/soak/. No worker and no /jobs
#     (AMQP_URL is unset). Every service's RSS is judged; the RSS of a tansu started here is
#     printed for information only (its memory:// storage keeps every message by design).
#     On exit: the services are stopped, then the brokers this script started.
#
# Verdict, per judged process: the samples after SOAK_WARMUP seconds (default 30) are split in
# thirds; memory is FLAT when the last third's max is within SOAK_TOLERANCE percent (default 10)
# of the first third's max. Exits non-zero when any process's memory grows, or when any request
# was lost, cross-delivered, duplicated or corrupted. SOAK_LOG sets the RUST_LOG of the server or
# services (default warn,switchboard=info). SKIP_BUILD=1 uses the binaries already built;
# SOAK_BIN_DIR takes them from elsewhere (default target/release; not built there), e.g. an
# older commit's, for a before/after of the same run.
#
# Also printed: each judged process's CPU time (utime + stime from /proc) per request over the
# loaded phase, and the sum over our services (the broker excluded): what one transaction costs
# the services at this rate.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
run_dir soak
RATE="${SOAK_RATE:-200}"
SECS="${SOAK_SECS:-300}"
EVERY="${SOAK_EVERY:-15}"
WARMUP="${SOAK_WARMUP:-30}"
TOLERANCE="${SOAK_TOLERANCE:-10}"
LOG_LEVEL="${SOAK_LOG:-warn,switchboard=info}"
BIN="${SOAK_BIN_DIR:-$ROOT/target/release}"
SEPARATE=0
[[ -n "${KAFKA_BROKERS:-}" || "${SOAK_SEPARATE:-0}" == 1 ]] && SEPARATE=1

if [[ "${SKIP_BUILD:-0}" != 1 && -z "${SOAK_BIN_DIR:-}" ]]; then
    if [[ $SEPARATE == 1 ]]; then
        cargo build -q --release -p switchboard-gateway -p switchboard-relay -p switchboard-processor --bins
    else
        cargo build -q --release -p switchboard --bin switchboard
    fi
    cargo build -q --release -p switchboard-bench --bin loadgen
fi

# The processes whose memory is judged, in print order, and their pids. broker_pid: a tansu
# started here, printed but not judged.
names=()
declare -A pid_of=()
broker_pid=""
server_pid=""
loadgen_pid=""

if [[ $SEPARATE == 1 ]]; then
    # Topics, relay group and ports of this run only: a shared broker may hold another run's backlog.
    # shellcheck source=scripts/run-names.sh
    source "$ROOT/scripts/run-names.sh"
    run_names soak
    export GATEWAY_ADDR="${SOAK_GATEWAY_ADDR:-127.0.0.1:18680}"
    export PROCESSOR_ADDR="${SOAK_PROCESSOR_ADDR:-127.0.0.1:18651}"
    export SWITCHBOARD_ADMIN_ADDR_gateway="${SWITCHBOARD_ADMIN_ADDR_gateway:-127.0.0.1:18690}"
    export SWITCHBOARD_ADMIN_ADDR_relay="${SWITCHBOARD_ADMIN_ADDR_relay:-127.0.0.1:18691}"
    export SWITCHBOARD_ADMIN_ADDR_processor="${SWITCHBOARD_ADMIN_ADDR_processor:-127.0.0.1:18692}"
    export SWITCHBOARD_RUN_DIR="$RUN_DIR" SWITCHBOARD_BIN_DIR="$BIN" SKIP_BUILD=1
    # services.sh waits for the start-up lines these modules log at info, whatever SOAK_LOG says.
    export RUST_LOG="$LOG_LEVEL,switchboard_gateway::serve=info,switchboard_relay::run=info,switchboard_processor::server=info"
    unset AMQP_URL # requests only: no worker, no /jobs
    # shellcheck source=services.sh
    source "$ROOT/scripts/services.sh"
fi

cleanup() {
    [[ -n "$loadgen_pid" ]] && kill "$loadgen_pid" 2>/dev/null
    if [[ $SEPARATE == 1 ]]; then
        stop_all || true # the services, then the brokers this run started
    elif [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null
    fi
    true
}
trap cleanup EXIT

if [[ $SEPARATE == 1 ]]; then
    if [[ -n "${KAFKA_BROKERS:-}" ]]; then
        bash "$ROOT/scripts/brokers.sh" start # checks KAFKA_BROKERS answers, creates the topics
    else
        use_brokers # starts tansu on 127.0.0.1:9092 unless one answers, creates the topics
        # written by scripts/brokers.sh when it starts tansu
        [[ $STARTED_BROKERS == 1 && -f "$ROOT/.tansu/tansu.pid" ]] && broker_pid="$(cat "$ROOT/.tansu/tansu.pid")"
    fi
    start_services
    names=(gateway relay processor)
    for name in "${names[@]}"; do pid_of[$name]="${SERVICE_PID_OF[$name]}"; done
    url="http://$GATEWAY_ADDR"
    # One request through the whole chain before the clock starts.
    ok=0
    for ((i = 0; i < 30; i++)); do
        if curl -sf -o /dev/null -m 10 -X POST -H 'Content-Type: application/json' -d '{"message":"soak probe"}' \
            "$url/messages"; then ok=1; break; fi
        sleep 1
    done
    [[ $ok == 1 ]] || { echo "soak: no reply through the chain within 30 tries (logs in $RUN_DIR)" >&2; exit 1; }
    what="gateway (pid ${pid_of[gateway]}), relay (pid ${pid_of[relay]}), processor (pid ${pid_of[processor]}) on $KAFKA_BROKERS"
    [[ -n "$broker_pid" ]] && what+=" (tansu pid $broker_pid, started here)"
else
    # Free ports (port 0) and no KAFKA_BROKERS: the embedded broker.
    env -u KAFKA_BROKERS GATEWAY_ADDR=127.0.0.1:0 PROCESSOR_ADDR=127.0.0.1:0 RUST_LOG="$LOG_LEVEL" \
        "$BIN/switchboard" run >"$RUN_DIR/switchboard.log" 2>&1 &
    server_pid=$!
    url=""
    for ((i = 0; i < 300; i++)); do
        url="$(grep -o 'REST on http://[0-9.:]*' "$RUN_DIR/switchboard.log" 2>/dev/null | head -n1 | sed 's/REST on //' || true)"
        [[ -n "$url" ]] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$RUN_DIR/switchboard.log"; echo "soak: switchboard exited" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$url" ]] || { echo "soak: switchboard did not log its address" >&2; exit 1; }
    names=(switchboard)
    pid_of[switchboard]=$server_pid
    what="switchboard (pid $server_pid)"
fi

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# label NAME: how a process is named in the output (the embedded mode keeps its old `rss=` lines).
label() { if [[ $SEPARATE == 1 ]]; then echo "$1"; else echo rss; fi; }

# sample WHEN [NOTE]: prints every process's RSS on one line; after the warm-up, records it.
declare -A samples=() # name → RSS samples in KiB after the warm-up, space-separated
sample() {
    local when="$1" note="${2:-}" line="+${1}s" name pid kib
    for name in "${names[@]}"; do
        pid="${pid_of[$name]}"
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "soak: $name (pid $pid) died" >&2
            [[ $SEPARATE == 1 ]] && tail -n 20 "$RUN_DIR/$name.log" >&2
            exit 1
        fi
        kib="$(rss_kib "$pid")"
        line+=" $(label "$name")=$(( kib / 1024 )) MiB ($kib KiB)"
        (( when > WARMUP )) && samples[$name]+=" $kib"
    done
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kib="$(rss_kib "$broker_pid")"
        line+="; tansu=$(( kib / 1024 )) MiB (info only)"
    fi
    say "$line${note:+ $note}"
}

requests=$(awk -v r="$RATE" -v s="$SECS" 'BEGIN {printf "%d", r * s}')
say "$what at $url; $requests verified requests at $RATE/s for ${SECS}s; RSS every ${EVERY}s"
sample 0 "(before load)"
# CPU ticks (utime + stime) of a process; every judged one's at the start of the load.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A ticks_at_start=()
for name in "${names[@]}"; do ticks_at_start[$name]=$(ticks "${pid_of[$name]}"); done
[[ -n "$broker_pid" ]] && ticks_at_start[tansu]=$(ticks "$broker_pid")
"$BIN/loadgen" --label soak --target "$url/messages" --verify --requests "$requests" \
    --rate "$RATE" --concurrency 64 --progress 0 >"$RUN_DIR/loadgen.out" &
loadgen_pid=$!

start=$(date +%s)
while kill -0 "$loadgen_pid" 2>/dev/null; do
    sleep "$EVERY"
    sample $(( $(date +%s) - start ))
done
rc=0
wait "$loadgen_pid" || rc=$?
loadgen_pid=""
cat "$RUN_DIR/loadgen.out"

# CPU per request over the loaded phase: ticks → µs, over the requests sent.
hz="$(getconf CLK_TCK)"
per_request() { awk -v t="$1" -v hz="$hz" -v n="$requests" 'BEGIN {printf "%.0f", t * 1e6 / hz / n}'; }
cpu_line="" services_ticks=0
for name in "${names[@]}"; do
    used=$(( $(ticks "${pid_of[$name]}") - ticks_at_start[$name] ))
    services_ticks=$(( services_ticks + used ))
    cpu_line+=" $name=$(per_request "$used")"
done
cpu_line+=" services=$(per_request "$services_ticks")"
if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    cpu_line+=" (tansu=$(per_request $(( $(ticks "$broker_pid") - ticks_at_start[tansu] ))), not counted)"
fi
say "CPU µs per request over the load:$cpu_line"

# verdict NAME KIB...: FLAT when the last third's max is within TOLERANCE % of the first third's.
verdict() {
    local name="$1" prefix="" first_max=0 last_max=0 n third i growth word=FLAT
    shift
    local s=("$@")
    [[ $SEPARATE == 1 ]] && prefix="$name "
    n=${#s[@]}
    if (( n < 3 )); then
        say "${prefix}only $n samples after the ${WARMUP}s warm-up: no verdict (run longer)"
        return 1
    fi
    third=$(( n / 3 ))
    for ((i = 0; i < third; i++)); do (( s[i] > first_max )) && first_max=${s[i]}; done
    for ((i = n - third; i < n; i++)); do (( s[i] > last_max )) && last_max=${s[i]}; done
    growth=$(awk -v a="$first_max" -v b="$last_max" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')
    awk -v a="$first_max" -v b="$last_max" -v t="$TOLERANCE" 'BEGIN {exit !(b <= a * (1 + t / 100))}' || word=GROWING
    say "${prefix}memory $word: first third max $(( first_max / 1024 )) MiB, last third max $(( last_max / 1024 )) MiB (${growth}%, tolerance ${TOLERANCE}%)"
    [[ $word == FLAT ]]
}

for name in "${names[@]}"; do
    read -r -a kibs <<<"${samples[$name]:-}"
    verdict "$name" "${kibs[@]}" || rc=1
done
if [[ $SEPARATE == 1 ]]; then
    for name in "${names[@]}"; do
        say "$name log: $(grep -cE ' (WARN|ERROR): ' "$RUN_DIR/$name.log" || true) warning/error lines ($RUN_DIR/$name.log)"
    done
fi
[[ $rc == 0 ]] && say "PASS" || say "FAIL"
exit "$rc"

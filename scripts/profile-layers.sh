#!/usr/bin/env bash
# Where the all-in-one's CPU goes, by layer: `perf record` (cpu-clock samples; this VM exposes no
# hardware counters) of `switchboard run` on the embedded broker under `loadgen`, each sample's
# own symbol (self time, no call graph) sorted into the layers of the chain by name.
#
#   scripts/profile-layers.sh [CONCURRENCY] [SECONDS]     default 32 in flight, 8 s
#
# Env: PROFILE_LOG (the server's RUST_LOG, default warn), PROFILE_ADDR (default 127.0.0.1:18090),
# SKIP_BUILD=1 to use target/release as it is, PROFILE_ENV="K=V …" extra server environment.
# Prints a table of layers with their share of the samples, and the top symbols of each
# (`PROFILE_TOP`, default 4). Needs perf (Debian's linux-perf) and root or perf_event_paranoid ≤ 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONC="${1:-32}"
SECS="${2:-8}"
ADDR="${PROFILE_ADDR:-127.0.0.1:18090}"
TOP="${PROFILE_TOP:-4}"
BIN="$ROOT/target/release"
work="$(mktemp -d)"
command -v perf >/dev/null || { echo "profile: no perf (apt-get install linux-perf)" >&2; exit 1; }
command -v gawk >/dev/null || { echo "profile: no gawk (apt-get install gawk)" >&2; exit 1; }
[[ "${SKIP_BUILD:-0}" == 1 ]] || (cd "$ROOT" && cargo build -q --release -p switchboard --bin switchboard -p switchboard-bench --bin loadgen)

# shellcheck disable=SC2086 # PROFILE_ENV is a list of K=V words
env -u KAFKA_BROKERS GATEWAY_ADDR="$ADDR" PROCESSOR_ADDR=127.0.0.1:0 RUST_LOG="${PROFILE_LOG:-warn}" ${PROFILE_ENV:-} \
    "$BIN/switchboard" run >"$work/server.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for ((i = 0; i < 100; i++)); do
    curl -sf "http://$ADDR/healthz" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "profile: switchboard exited" >&2; exit 1; }
    sleep 0.1
done

"$BIN/loadgen" --target "http://$ADDR/messages" --concurrency "$CONC" --warmup 1s --duration "$((SECS + 3))s" \
    --progress 0 >"$work/load.txt" 2>&1 &
load=$!
sleep 2
perf record -q -F 999 -p "$pid" -o "$work/perf.data" -- sleep "$SECS" >/dev/null 2>&1
wait "$load" || { cat "$work/load.txt"; echo "profile: loadgen failed" >&2; exit 1; }
grep -E '^POST' "$work/load.txt" | sed 's/^/profile: load: /'

# One line per symbol: "<percent> <dso> <symbol>"; then each symbol to its layer.
perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ { pct = $1; sub(/%/, "", pct); dso = $2; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); print pct "\t" dso "\t" $0 }' |
    gawk -F'\t' -v top="$TOP" '
    function layer(dso, s) {
        if (dso ~ /kernel/) return "kernel (syscalls, scheduling, loopback TCP)"
        if (s ~ /grpc|absl|gpr_|upb_|tsi_|alts|re2::|cq_|chttp2|hpack|grpcio|stream_op|^timer_|^tcp_|_frame_parser|connected_channel|^now_impl|^std::__cxx11/) return "gRPC (grpc-core C++ and grpcio)"
        if (s ~ /clock_gettime|SystemTime|Instant/) return "clocks"
        if (s ~ /^(mi_|_mi_|mi_malloc|mi_free)|mimalloc|malloc|free|realloc|calloc|operator (new|delete)|__rust_(alloc|dealloc|realloc)|memcpy|memmove|memset/) return "allocation and copies (mimalloc, memcpy)"
        if (s ~ /protobuf|Envelope|switchboard_proto/) return "protobuf and envelopes"
        if (s ~ /env_logger|log::|tracing_appender|fmt::|core::fmt|humantime|Formatter/) return "formatting and the log"
        if (s ~ /async_h1|tide|http_types|route_recognizer|url::|httparse/) return "HTTP (async-h1, tide)"
        if (s ~ /serde_json|serde::/) return "JSON (serde_json)"
        if (s ~ /async_executor|async_task|async_io|polling|concurrent_queue|async_channel|event_listener|futures_lite|async_lock|parking|smol|waker|Waker|async_std/) return "executor, reactor, channels"
        if (s ~ /switchboard_embedded|MemoryBroker/) return "embedded broker"
        if (s ~ /prometheus|switchboard_telemetry/) return "metrics and telemetry"
        if (s ~ /switchboard/) return "switchboard services (gateway, relay, processor)"
        if (dso ~ /libc/) return "libc (other)"
        return "other"
    }
    { l = layer($2, $3); total[l] += $1; all += $1; n = ++count[l]; if (n <= top) sym[l, n] = sprintf("%.1f%% %s", $1, substr($3, 1, 90)) }
    END {
        printf "\n| layer | share of samples |\n|---|---:|\n"
        PROCINFO["sorted_in"] = "@val_num_desc"
        for (l in total) printf "| %s | %.1f %% |\n", l, total[l] * 100 / all
        printf "\ntop symbols per layer (self time):\n"
        for (l in total) { printf "  %s\n", l; for (i = 1; i <= top && (l, i) in sym; i++) printf "    %s\n", sym[l, i] }
    }'

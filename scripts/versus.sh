#!/usr/bin/env bash
# switchboard against the tokio peer (../shared/peers/tokio-chain: axum + tonic, the same chain on
# in-memory topics and loopback gRPC), side by side on this machine: wrk at 32 connections
# (throughput and server CPU per transaction, read from /proc) and at 1 connection (p50), in
# interleaved rounds so drift on a shared host hits both alike. Prints both sides and the ratios
# (switchboard / peer; parity is throughput ≥ 1.0, CPU ≤ 1.0, p50 ≤ 1.0).
#
#   scripts/versus.sh                 3 rounds, switchboard at RUST_LOG=warn
#   VERSUS_ROUNDS=5 VERSUS_LOG=info scripts/versus.sh
#   VERSUS_PROFILE=1 scripts/versus.sh    then one more 32-connection run per side under
#                                         `perf record`: both sides' CPU in µs per transaction
#                                         by thread and by layer (scripts/layers.awk): where
#                                         the gap is
#
# Needs wrk and protoc (the peer's build): scripts/prereqs.sh installs them. The peer is built
# with --target-dir under target/, since ../shared may be read-only. Not part of `make test`.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PEER_SRC="${PEER_SRC:-$ROOT/../shared/peers/tokio-chain}"
ROUNDS="${VERSUS_ROUNDS:-3}"
SB_LOG="${VERSUS_LOG:-warn}"
SB_ADDR=127.0.0.1:18181
PEER_ADDR=127.0.0.1:18182
LUA="$ROOT/bench/wrk/post-message.lua"
EXPECTED="HELLO WORLD FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER"
HZ="$(getconf CLK_TCK)"

[[ -f "$PEER_SRC/Cargo.toml" ]] || die "no peer at $PEER_SRC"
bash "$ROOT/scripts/prereqs.sh" wrk protoc
echo "versus: building switchboard and the peer (release)" >&2
(cd "$ROOT" && cargo build -q --release -p switchboard --bin switchboard)
cargo build -q --release --locked --manifest-path "$PEER_SRC/Cargo.toml" --target-dir "$ROOT/target/peer"

logs="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$logs"; }
trap cleanup EXIT

env -u KAFKA_BROKERS GATEWAY_ADDR="$SB_ADDR" PROCESSOR_ADDR=127.0.0.1:0 RUST_LOG="$SB_LOG" \
    "$ROOT/target/release/switchboard" run >"$logs/switchboard.log" 2>&1 &
sb_pid=$!; pids+=("$sb_pid")
GATEWAY_ADDR="$PEER_ADDR" PROCESSOR_ADDR=127.0.0.1:15182 RUST_LOG=warn \
    "$ROOT/target/peer/release/tokio-chain" >"$logs/peer.log" 2>&1 &
peer_pid=$!; pids+=("$peer_pid")

# ready NAME ADDR PID: the expected final string comes back within 20 s, or the run fails.
ready() {
    local i out
    for ((i = 0; i < 200; i++)); do
        kill -0 "$3" 2>/dev/null || { cat "$logs/$1.log" >&2; die "$1 exited"; }
        out="$(curl -sf -m 2 -H 'Content-Type: application/json' -d '{"message": "hello world"}' "http://$2/messages" || true)"
        if grep -qF "$EXPECTED" <<<"$out"; then return 0; fi
        sleep 0.1
    done
    die "$1 did not answer the expected final string on $2"
}
ready switchboard "$SB_ADDR" "$sb_pid"
ready peer "$PEER_ADDR" "$peer_pid"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# load PID ADDR THREADS CONNS SECS: runs wrk, prints "req/s cpu_us_per_tx p50_ms requests".
load() {
    local pid=$1 addr=$2 t=$3 c=$4 d=$5 c0 c1 out n rps p50
    c0=$(ticks "$pid")
    out="$(wrk -t"$t" -c"$c" -d"${d}s" --latency -s "$LUA" "http://$addr/messages")"
    c1=$(ticks "$pid")
    if grep -q "Non-2xx" <<<"$out"; then echo "$out" >&2; die "non-2xx answers from $addr"; fi
    n="$(awk '/requests in/ {print $1}' <<<"$out")"
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' <<<"$out")"
    [[ -n "$n" && "$n" -gt 0 ]] || { echo "$out" >&2; die "wrk made no requests to $addr"; }
    awk -v r="$rps" -v c=$((c1 - c0)) -v n="$n" -v hz="$HZ" -v p="$p50" 'BEGIN {printf "%s %.1f %s %d\n", r, c * 1e6 / hz / n, p, n}'
}

# warm-up, then interleaved rounds
load "$sb_pid" "$SB_ADDR" 2 32 3 >/dev/null
load "$peer_pid" "$PEER_ADDR" 2 32 3 >/dev/null
results="$logs/results"
for ((r = 1; r <= ROUNDS; r++)); do
    for side in switchboard peer; do
        if [[ $side == switchboard ]]; then pid=$sb_pid addr=$SB_ADDR; else pid=$peer_pid addr=$PEER_ADDR; fi
        read -r rps cpu _ < <(load "$pid" "$addr" 2 32 10)
        read -r _ _ p50 _ < <(load "$pid" "$addr" 1 1 5)
        echo "$side $rps $cpu $p50" >>"$results"
        printf 'versus: round %d %-11s %10.0f req/s  %6.1f µs CPU/tx  p50 %.3f ms\n' "$r" "$side" "$rps" "$cpu" "$p50"
    done
done

# profile PID ADDR NAME: a 32-connection run sampled by perf (outside the rounds above, since
# sampling costs CPU of its own), then NAME's CPU in µs per transaction by thread and by layer.
profile() {
    local pid=$1 addr=$2 name=$3 perf_pid cpu requests
    perf record -q -F 999 -p "$pid" -o "$logs/$name.perf" -- sleep 8 >/dev/null 2>&1 &
    perf_pid=$!
    threads_of "$pid" >"$logs/$name.threads0"
    load "$pid" "$addr" 2 32 10 >"$logs/$name.load"
    threads_of "$pid" >"$logs/$name.threads1"
    read -r _ cpu _ requests <"$logs/$name.load"
    wait "$perf_pid"
    echo
    echo "versus: $name by thread and by layer ($cpu µs CPU/tx in this sampled run)"
    thread_costs "$logs/$name.threads0" "$logs/$name.threads1" "$requests"
    layers "$logs/$name.perf" "${VERSUS_PROFILE_TOP:-3}" "$cpu"
}
if [[ "${VERSUS_PROFILE:-0}" == 1 ]]; then
    profile "$sb_pid" "$SB_ADDR" switchboard
    profile "$peer_pid" "$PEER_ADDR" peer
fi

# medians per side, then ratios
awk -v lvl="$SB_LOG" '
function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ k = ++n[$1]; rps[$1, k] = $2; cpu[$1, k] = $3; p50[$1, k] = $4 }
END {
    for (s in n) { for (i = 1; i <= n[s]; i++) { a[i] = rps[s, i] } ; R[s] = median(a, n[s])
                   for (i = 1; i <= n[s]; i++) { a[i] = cpu[s, i] } ; C[s] = median(a, n[s])
                   for (i = 1; i <= n[s]; i++) { a[i] = p50[s, i] } ; P[s] = median(a, n[s]) }
    printf "\n| median of %d rounds | switchboard (RUST_LOG=%s) | peer | ratio |\n|---|---:|---:|---:|\n", n["peer"], lvl
    printf "| wrk -t2 -c32 -d10s req/s | %.0f | %.0f | %.2f |\n", R["switchboard"], R["peer"], R["switchboard"] / R["peer"]
    printf "| server CPU µs per transaction | %.1f | %.1f | %.2f |\n", C["switchboard"], C["peer"], C["switchboard"] / C["peer"]
    printf "| wrk -t1 -c1 -d5s p50 ms | %.3f | %.3f | %.2f |\n", P["switchboard"], P["peer"], P["switchboard"] / P["peer"]
}' "$results"

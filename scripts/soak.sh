#!/usr/bin/env bash
# Soak test (`make soak`): the all-in-one `target/release/switchboard run` on the embedded broker
# (free ports) driven by `loadgen --verify` at SOAK_RATE requests/s (default 200) for SOAK_SECS
# (default 300), printing the server's resident memory (VmRSS) every SOAK_EVERY seconds
# (default 15).
#
# Verdict: the samples after SOAK_WARMUP seconds (default 30) are split in thirds; memory is
# FLAT when the last third's max is within SOAK_TOLERANCE percent (default 10) of the first
# third's max. Exits non-zero when memory grows, or when any request was lost, cross-delivered,
# duplicated or corrupted. SOAK_LOG sets the server's RUST_LOG (default warn; its log goes to
# .run/soak/switchboard.log).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RATE="${SOAK_RATE:-200}"
SECS="${SOAK_SECS:-300}"
EVERY="${SOAK_EVERY:-15}"
WARMUP="${SOAK_WARMUP:-30}"
TOLERANCE="${SOAK_TOLERANCE:-10}"
RUN_DIR="$ROOT/.run/soak"
mkdir -p "$RUN_DIR"

say() { echo "soak: $*"; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build -q --release -p switchboard --bin switchboard
    cargo build -q --release -p switchboard-bench --bin loadgen
fi

server_pid=""
loadgen_pid=""
cleanup() {
    [[ -n "$loadgen_pid" ]] && kill "$loadgen_pid" 2>/dev/null
    if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
    true
}
trap cleanup EXIT

# Free ports (port 0) and no KAFKA_BROKERS: the embedded broker.
env -u KAFKA_BROKERS GATEWAY_ADDR=127.0.0.1:0 PROCESSOR_ADDR=127.0.0.1:0 RUST_LOG="${SOAK_LOG:-warn,switchboard=info}" \
    "$ROOT/target/release/switchboard" run >"$RUN_DIR/switchboard.log" 2>&1 &
server_pid=$!
url=""
for ((i = 0; i < 300; i++)); do
    url="$(grep -o 'REST on http://[0-9.:]*' "$RUN_DIR/switchboard.log" 2>/dev/null | head -n1 | sed 's/REST on //' || true)"
    [[ -n "$url" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$RUN_DIR/switchboard.log"; echo "soak: switchboard exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "soak: switchboard did not log its address" >&2; exit 1; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
requests=$(awk -v r="$RATE" -v s="$SECS" 'BEGIN {printf "%d", r * s}')
say "switchboard (pid $server_pid) at $url; $requests verified requests at $RATE/s for ${SECS}s; RSS every ${EVERY}s"
say "+0s rss=$(( $(rss_kib) / 1024 )) MiB (before load)"
"$ROOT/target/release/loadgen" --label soak --target "$url/messages" --verify --requests "$requests" \
    --rate "$RATE" --concurrency 64 --progress 0 >"$RUN_DIR/loadgen.out" &
loadgen_pid=$!

samples=()
start=$(date +%s)
while kill -0 "$loadgen_pid" 2>/dev/null; do
    sleep "$EVERY"
    kill -0 "$server_pid" 2>/dev/null || { echo "soak: switchboard died" >&2; exit 1; }
    now=$(( $(date +%s) - start ))
    rss=$(rss_kib)
    say "+${now}s rss=$(( rss / 1024 )) MiB ($rss KiB)"
    (( now > WARMUP )) && samples+=("$rss")
done
rc=0
wait "$loadgen_pid" || rc=$?
loadgen_pid=""
cat "$RUN_DIR/loadgen.out"

n=${#samples[@]}
if (( n < 3 )); then
    say "only $n samples after the ${WARMUP}s warm-up: no verdict (run longer)"
    exit 1
fi
third=$(( n / 3 ))
first_max=0; last_max=0
for ((i = 0; i < third; i++)); do (( samples[i] > first_max )) && first_max=${samples[i]}; done
for ((i = n - third; i < n; i++)); do (( samples[i] > last_max )) && last_max=${samples[i]}; done
growth=$(awk -v a="$first_max" -v b="$last_max" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')
if awk -v a="$first_max" -v b="$last_max" -v t="$TOLERANCE" 'BEGIN {exit !(b <= a * (1 + t / 100))}'; then
    say "memory FLAT: first third max $(( first_max / 1024 )) MiB, last third max $(( last_max / 1024 )) MiB (${growth}%, tolerance ${TOLERANCE}%)"
else
    say "memory GROWING: first third max $(( first_max / 1024 )) MiB, last third max $(( last_max / 1024 )) MiB (${growth}%, tolerance ${TOLERANCE}%)"
    rc=1
fi
[[ $rc == 0 ]] && say "PASS" || say "FAIL"
exit "$rc"

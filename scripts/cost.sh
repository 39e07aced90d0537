#!/usr/bin/env bash
# What one chain transaction costs the all-in-one: server CPU time and context switches per
# transaction under closed-loop load, read from /proc. On a shared host req/s swings ~2× between
# runs; these two figures move far less, so they are what an A/B of a change compares.
#
#   scripts/cost.sh [BIN_DIR] [CONCURRENCY] [SECONDS]
#
# BIN_DIR holds `switchboard` and `loadgen` (default target/release, built unless SKIP_BUILD=1).
# COST_PROFILE=1 also samples the server with `perf record` over the measured run and prints its
# CPU by layer of the chain (scripts/layers.awk; needs perf and gawk, and root or
# perf_event_paranoid ≤ 1), COST_PROFILE_TOP symbols per layer (default 4).
# COST_THREADS=1 also prints CPU µs and context switches per transaction by thread name (digits
# dropped, so grpcio's completion-queue threads add up as one "grpc-poll-"), to tell whose threads
# the hand-offs are.
# COST_HOPS=1 also prints where a transaction's time goes: the mean of each hop of the chain
# over the measured run, from the gateway's hop_duration histograms (the timeline every hop
# records, read from the all-in-one's /metrics), beside the client's latency. At 1 in flight it shows which hand-offs a lone request waits on.
# COST_COLLECTOR=1 exports the server's spans to a console of its own process (release `console`
# on COST_COLLECTOR_ADDR, default 127.0.0.1:18318) as their OTLP/HTTP receiver, so the figure is
# what tracing costs the chain, not what a collector costs; the OTEL_* variables (sampler, …)
# pass through. COST_COLLECTOR=sink exports to `otlp-sink` (bench crate) instead, which answers
# every batch without decoding it: on two cores the console's own CPU slows the load generator,
# and the chain alike (the console takes about 7 % of the chain's CPU to decode and keep the spans).
# With export on, the line ends with the spans exported and dropped while measured, and the
# collector's own CPU µs per transaction.
# COST_BURN=PCT runs a process busy for PCT % of one core beside the server: what that much other
# work on the host does to the figure (on two cores the closed loop magnifies it).
# The server runs on the embedded broker at RUST_LOG=warn (COST_LOG to change it) on COST_ADDR (default
# 127.0.0.1:18080); loadgen warms up for 2 s, then runs SECONDS (default 6) with CONCURRENCY
# connections (default 32). Prints one line: req/s, CPU µs per transaction, context switches
# per transaction (every thread of the server, voluntary and involuntary).
set -euo pipefail

BIN="$(realpath -s "${1:-$(dirname "${BASH_SOURCE[0]}")/../target/release}")"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CONC="${2:-32}"
SECS="${3:-6}"
ADDR="${COST_ADDR:-127.0.0.1:18080}"
LOG="$(mktemp)"
if [[ -n "${COST_BURN:-}" ]]; then
    [[ "$COST_BURN" =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v p="$COST_BURN" 'BEGIN {exit !(p > 0 && p < 100)}' ||
        die "COST_BURN is a percentage of one core, above 0 and below 100"
fi

if [[ "${SKIP_BUILD:-0}" != 1 && "$BIN" == "$ROOT/target/release" ]]; then
    (cd "$ROOT" && cargo build -q --release -p switchboard --bin switchboard -p switchboard-bench --bin loadgen)
    [[ "${COST_COLLECTOR:-0}" == 1 ]] && (cd "$ROOT" && cargo build -q --release -p switchboard-console --bin console)
    [[ "${COST_COLLECTOR:-0}" == sink ]] && (cd "$ROOT" && cargo build -q --release -p switchboard-bench --bin otlp-sink)
fi

collector_pid=
if [[ "${COST_COLLECTOR:-0}" != 0 ]]; then
    COLLECTOR_ADDR="${COST_COLLECTOR_ADDR:-127.0.0.1:18318}"
    if [[ "$COST_COLLECTOR" == sink ]]; then
        "$BIN/otlp-sink" "$COLLECTOR_ADDR" >"$LOG.collector" 2>&1 &
    else
        env -u KAFKA_BROKERS -u AMQP_URL CONSOLE_ADDR="$COLLECTOR_ADDR" RUST_LOG=warn "$BIN/console" >"$LOG.collector" 2>&1 &
    fi
    collector_pid=$!
    wait_for_http "http://$COLLECTOR_ADDR/healthz" "$collector_pid" 10 "$LOG.collector"
    export OTEL_EXPORTER_OTLP_ENDPOINT="http://$COLLECTOR_ADDR"
fi

burn_pid=
if [[ -n "${COST_BURN:-}" ]]; then
    # Busy in 2 ms slices, idle between them, until stopped.
    python3 -c 'import sys, time
busy = 0.002; idle = busy * (100 - float(sys.argv[1])) / float(sys.argv[1])
while True:
    t = time.perf_counter()
    while time.perf_counter() - t < busy: pass
    time.sleep(idle)' "$COST_BURN" &
    burn_pid=$!
fi

env -u KAFKA_BROKERS GATEWAY_ADDR="$ADDR" PROCESSOR_ADDR=127.0.0.1:0 RUST_LOG="${COST_LOG:-warn}" \
    "$BIN/switchboard" run >"$LOG" 2>&1 &
pid=$!
# stop_pids: a burner ended by the signal (Python) does not fail the run.
trap 'stop_pids $pid $collector_pid $burn_pid; rm -f "$LOG" "$LOG".*' EXIT
for ((i = 0; i < 100; i++)); do
    curl -sf "http://$ADDR/healthz" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$LOG"; echo "cost: switchboard exited" >&2; exit 1; }
    sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/${1:-$pid}/stat"; }
# A thread may end between the glob and the read (grpc-core's timer threads come and go).
switches() { cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}' || true; }

"$BIN/loadgen" --target "http://$ADDR/messages" --concurrency "$CONC" --duration 2s --progress 0 >/dev/null 2>&1
if [[ "${COST_PROFILE:-0}" == 1 ]]; then
    # cpu-clock samples (this VM exposes no hardware counters) over the measured run.
    perf record -q -F 999 -p "$pid" -o "$LOG.perf" -- sleep "$SECS" >/dev/null 2>&1 &
    perf_pid=$!
fi
# hop → "sum count" of its hop_duration histogram, one line each.
hops() { curl -sf "http://$ADDR/metrics" | awk -F'[{}" ]+' '/hop_duration_seconds_(sum|count)\{/ {
    if ($1 ~ /_sum$/) sum[$3] = $NF; else n[$3] = $NF } END { for (h in n) print h, sum[h], n[h] }' | sort; }
[[ "${COST_HOPS:-0}" == 1 ]] && hops >"$LOG.hops0"
[[ "${COST_THREADS:-0}" == 1 ]] && threads_of "$pid" >"$LOG.threads0"
# The server's own export counters: "exported dropped" spans so far.
spans() { curl -sf "http://$ADDR/metrics" | awk '/^otlp_spans_exported_total/ {e += $NF} /^otlp_spans_dropped_total/ {d += $NF} END {print e + 0, d + 0}'; }
spans0=$(spans)
c0=$(ticks); s0=$(switches)
[[ -n "$collector_pid" ]] && k0=$(ticks "$collector_pid")
out="$("$BIN/loadgen" --target "http://$ADDR/messages" --concurrency "$CONC" --warmup 0s --duration "${SECS}s" --progress 0 2>&1)"
c1=$(ticks); s1=$(switches)
[[ -n "$collector_pid" ]] && k1=$(ticks "$collector_pid")
spans1=$(spans)
[[ "${COST_THREADS:-0}" == 1 ]] && threads_of "$pid" >"$LOG.threads1"
if [[ "${COST_HOPS:-0}" == 1 ]]; then
    # The chain's six steps in order; relay_grpc_call (the relay's whole call, processor
    # included) overlaps them and is printed apart.
    hops | join "$LOG.hops0" - | awk '{ n = $5 - $3; if (n > 0) mean[$1] = ($4 - $2) * 1e6 / n }
        END { split("gateway_accept request_queue relay grpc_call processor reply_queue", chain)
              for (i = 1; i <= 6; i++) { printf "hop %-16s %7.1f µs mean\n", chain[i], mean[chain[i]]; t += mean[chain[i]] }
              printf "hop %-16s %7.1f µs (gateway accept to reply consumed)\n", "sum", t
              if ("relay_grpc_call" in mean) printf "hop %-16s %7.1f µs (overlaps the above)\n", "relay_grpc_call", mean["relay_grpc_call"] }'
    grep -E '^(phase|POST)' <<<"$out"
fi
ok="$(grep -oE '[0-9]+ ok' <<<"$out" | grep -oE '[0-9]+')"
rps="$(awk '/^POST/ {print $3}' <<<"$out")"
[[ -n "$ok" && "$ok" -gt 0 ]] || { echo "$out"; echo "cost: no successful requests" >&2; exit 1; }
per_tx="$(awk -v c=$((c1 - c0)) -v n="$ok" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", c * 1e6 / hz / n}')"
if [[ "${COST_PROFILE:-0}" == 1 ]]; then
    wait "$perf_pid"
    layers "$LOG.perf" "${COST_PROFILE_TOP:-4}" "$per_tx"
fi
[[ "${COST_THREADS:-0}" == 1 ]] && thread_costs "$LOG.threads0" "$LOG.threads1" "$ok"
failed="$(grep -oE '[0-9]+ failed' <<<"$out" | grep -oE '[0-9]+' || echo 0)"
awk -v cpu="$per_tx" -v s=$((s1 - s0)) -v n="$ok" -v r="$rps" -v k="$CONC" -v f="${failed:-0}" -v a="$spans0" -v b="$spans1" \
    -v kc="${collector_pid:+$((k1 - k0))}" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "cost: %d in flight, %s req/s, %.1f µs CPU per transaction, %.2f context switches per transaction, %d failed", k, r, cpu, s / n, f
            split(a, x, " "); split(b, y, " ")
            if (y[1] + y[2] > 0) printf ", spans exported %d dropped %d", y[1] - x[1], y[2] - x[2]
            if (kc != "") printf ", collector CPU %.1f µs per transaction", kc * 1e6 / hz / n
            print ""}'

#!/usr/bin/env bash
# Benchmarks (`make bench`).
#
# Always: builds switchboard-bench in release and runs `bench`: the all-in-one chain on the
# embedded broker, closed loop and at a fixed rate, next to the floor of each hop alone (broker
# round trip, gRPC unary call, HTTP round trip). Defaults: 1 s warm-up + 3 s per phase, 9 phases.
#
# With KAFKA_BROKERS set: also benchmarks the chain on that broker with every service as its
# own process (release binaries, started here through scripts/services.sh on ports of their own:
# gateway 127.0.0.1:18580, processor 127.0.0.1:18551, logs in .run/bench/), then stops them:
#   - the raw produce → consume floor on the same broker (`bench --kafka-floor`: the
#     switchboard_kafka publisher/subscriber with the services' settings, fresh topics),
#   - `loadgen` open loop at BENCH_REAL_RATE (default 200/s) and closed loop.
# BENCH_EMBEDDED=0 skips the embedded part.
#
# Environment (each also a flag of bench/loadgen):
#   LOADGEN_CONCURRENCY  workers / connections            (default 32)
#   LOADGEN_RATE         open-loop rate, requests/s       (bench: half the closed-loop throughput)
#   LOADGEN_DURATION     recorded time per phase          (default 3s)
#   LOADGEN_WARMUP       unrecorded warm-up per phase     (default 1s)
#   LOADGEN_MESSAGE_SIZE characters per message           (default 64)
#   BENCH_ARGS           extra arguments for bench, e.g. "--log" to log as deployed
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"

"$CARGO" build --release -p switchboard-bench
BIN="$ROOT/target/release"

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${BENCH_EMBEDDED:-1}" != 0 ]; then
    echo "== embedded chain and hop floors"
    # shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
    "$BIN/bench" ${BENCH_ARGS:-}
fi

if [ -n "${KAFKA_BROKERS:-}" ]; then
    "$CARGO" build --release -p switchboard-gateway -p switchboard-relay -p switchboard-processor --bins
    # Topics and group of this run only: a shared broker may hold another run's backlog.
    # shellcheck source=scripts/run-names.sh
    source "$ROOT/scripts/run-names.sh"
    run_names bench
    bash "$ROOT/scripts/brokers.sh" start # checks KAFKA_BROKERS answers, creates the topics
    export GATEWAY_ADDR="${BENCH_GATEWAY_ADDR:-127.0.0.1:18580}"
    export PROCESSOR_ADDR="${BENCH_PROCESSOR_ADDR:-127.0.0.1:18551}"
    export SWITCHBOARD_RUN_DIR="$ROOT/.run/bench" SWITCHBOARD_BIN_DIR="$BIN" SKIP_BUILD=1
    export RUST_LOG="${BENCH_SERVICES_LOG:-info}"
    # The relay stops consuming SWITCHBOARD_GRACE_MS (default 10 s) after it starts (its main
    # wraps the whole run in the shutdown grace period); a long grace keeps it up for the bench.
    export SWITCHBOARD_GRACE_MS="${SWITCHBOARD_GRACE_MS:-600000}"
    export SWITCHBOARD_ADMIN_ADDR_relay="${SWITCHBOARD_ADMIN_ADDR_relay:-127.0.0.1:18591}"
    export SWITCHBOARD_ADMIN_ADDR_processor="${SWITCHBOARD_ADMIN_ADDR_processor:-127.0.0.1:18592}"
    # shellcheck source=services.sh
    source "$ROOT/scripts/services.sh"
    trap stop_services EXIT
    echo
    echo "== real broker ($KAFKA_BROKERS): raw produce -> consume floor"
    "$BIN/bench" --kafka-floor "$KAFKA_BROKERS" --concurrency "${BENCH_FLOOR_CONCURRENCY:-8}" \
        --warmup "${LOADGEN_WARMUP:-2s}" --duration "${LOADGEN_DURATION:-10s}"
    echo
    echo "== real broker ($KAFKA_BROKERS): chain, every service its own process ($BIN)"
    start_services
    url="http://$GATEWAY_ADDR/messages"
    rate="${BENCH_REAL_RATE:-200}"
    echo "-- open loop at $rate/s"
    env -u LOADGEN_RATE "$BIN/loadgen" --target "$url" --rate "$rate" \
        --warmup "${LOADGEN_WARMUP:-2s}" --duration "${LOADGEN_DURATION:-10s}"
    echo "-- closed loop"
    env -u LOADGEN_RATE "$BIN/loadgen" --target "$url" \
        --warmup "${LOADGEN_WARMUP:-2s}" --duration "${LOADGEN_DURATION:-10s}"
    stop_services
fi

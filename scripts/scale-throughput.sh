#!/usr/bin/env bash
# Ad-hoc (#12, not yet in CI): the chain closed loop (64 connections, 10 s) through one gateway
# with 1 relay + 1 processor, then with a second relay calling both processors. Needs tansu at
# 127.0.0.1:29092 and the release binaries; ports 29051-29122.
set -u
B="$(cd "$(dirname "$0")/.." && pwd)/target/release"; R=/tmp/tput; mkdir -p $R; s=$(date +%s)
export KAFKA_BROKERS=127.0.0.1:29092 SWITCHBOARD_PARTITIONS=6 RUST_LOG=warn
export SWITCHBOARD_REQUESTS_TOPIC=tput.$s.requests SWITCHBOARD_REPLIES_TOPIC=tput.$s.replies SWITCHBOARD_REQUESTS_DLQ=tput.$s.dlq SWITCHBOARD_RELAY_GROUP=tput.$s.relay
pids=()
run() { env "$@" >>$R/log 2>&1 & pids+=($!); }
run PROCESSOR_ADDR=127.0.0.1:29051 SWITCHBOARD_ADMIN_ADDR=127.0.0.1:29111 $B/processor
run PROCESSOR_ADDR=127.0.0.1:29052 SWITCHBOARD_ADMIN_ADDR=127.0.0.1:29112 $B/processor
sleep 1
run PROCESSOR_ADDR=127.0.0.1:29051 SWITCHBOARD_ADMIN_ADDR=127.0.0.1:29121 $B/relay
run GATEWAY_ADDR=127.0.0.1:29080 SWITCHBOARD_INSTANCE_ID=gateway-0 $B/gateway
sleep 8
echo "1 relay + 1 processor:"; $B/loadgen --target http://127.0.0.1:29080/messages --concurrency 64 --duration 10s --warmup 2s 2>&1 | grep -iE "req/s|throughput|ok" | head -3
run PROCESSOR_ADDR=127.0.0.1:29051,127.0.0.1:29052 SWITCHBOARD_ADMIN_ADDR=127.0.0.1:29122 $B/relay
sleep 8
echo "2 relays (one on both processors):"; $B/loadgen --target http://127.0.0.1:29080/messages --concurrency 64 --duration 10s --warmup 2s 2>&1 | grep -iE "req/s|throughput|ok" | head -3
for p in "${pids[@]}"; do kill -TERM $p; done; wait

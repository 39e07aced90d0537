#!/usr/bin/env bash
# Every service as its own process on real brokers, until Ctrl-C. Starts tansu unless
# KAFKA_BROKERS points at a running broker.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

trap stop_all EXIT
use_brokers
start_all
echo "run-all: gateway on http://$GATEWAY_ADDR, processor on $PROCESSOR_ADDR, Kafka at $KAFKA_BROKERS; console on http://$CONSOLE_ADDR; Ctrl-C stops" >&2
trap 'exit 0' INT TERM
tail -n +1 -F "$RUN_DIR"/{processor,relay,gateway}.log

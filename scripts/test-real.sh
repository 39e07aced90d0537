#!/usr/bin/env bash
# The real-broker suite: conformance of the Kafka and AMQP adapters, the chain end to end on
# Kafka in-process, the demo with every service as its own process, and the kill test. Starts tansu (unless
# KAFKA_BROKERS is set) and RabbitMQ if it is down, and enables RabbitMQ's management plugin (the
# queue depths with unacked messages); an unreachable broker or management API fails the run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

started_brokers=0
cleanup() { if [[ $started_brokers == 1 ]]; then bash scripts/brokers.sh stop; fi; }
trap cleanup EXIT
if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    bash scripts/brokers.sh start
    started_brokers=1
    export KAFKA_BROKERS="${TANSU_ADDR:-127.0.0.1:9092}"
else
    bash scripts/brokers.sh start   # uses KAFKA_BROKERS, checks/starts RabbitMQ, creates topics
fi
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export SWITCHBOARD_REAL_BROKERS=1

echo "test-real: adapters and conformance on Kafka ($KAFKA_BROKERS) and RabbitMQ (its management API too)"
cargo test -p switchboard-kafka -p switchboard-amqp -- --include-ignored
echo "test-real: the worker on RabbitMQ (round trip, killed worker, retries, dead letters)"
cargo test -p switchboard-worker -- --include-ignored
echo "test-real: the chain on Kafka"
cargo test -p switchboard --test integration -- --include-ignored real_chain::
echo "test-real: the edges on real brokers (budgets on a stalled broker, queued jobs on every gateway, Idempotency-Key)"
cargo test -p switchboard --test integration -- --include-ignored real_edges::
echo "test-real: RabbitMQ stopped and started under a gateway (rabbitmqctl stop_app/start_app; alone: nothing else uses RabbitMQ meanwhile)"
cargo test -p switchboard --test integration -- --include-ignored real_outage::
echo "test-real: messaging edges on Kafka (hostile records, permanent publish errors)"
cargo test -p switchboard --test integration -- --include-ignored real_loops::
echo "test-real: dead letters on tansu and RabbitMQ (origin headers, redrive, limit, purge, kill -9 mid-redrive)"
cargo test -p switchboard --test integration -- --include-ignored real_dead_letters::
echo "test-real: dead letters seen by foreign clients (confluent-kafka, pika) and dlq --json"
bash scripts/dlq-check.sh
echo "test-real: demo with separate processes"
GATEWAY_ADDR="${GATEWAY_ADDR:-127.0.0.1:18080}" PROCESSOR_ADDR="${PROCESSOR_ADDR:-127.0.0.1:15051}" bash scripts/demo.sh
echo "test-real: TLS on every hop (HTTPS + bearer token, gRPC mTLS, Kafka and RabbitMQ through stunnel), refusals, no secret in the logs"
bash scripts/tls-test.sh
echo "test-real: kill test (kill -9 relay, processor, worker under load; nothing lost)"
bash scripts/kill-test.sh
echo "test-real: scale test (3 gateways, 2 relays, 2 processors, 2 workers; kill -9 one of each)"
bash scripts/scale-test.sh

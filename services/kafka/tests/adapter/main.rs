//! Adapter tests. `offline` needs no broker; `real` needs a Kafka broker (tansu is fine):
//! `scripts/brokers.sh start` then
//! `SWITCHBOARD_REAL_BROKERS=1 KAFKA_BROKERS=127.0.0.1:9092 cargo test -p switchboard-kafka -- --include-ignored`.

mod offline;
mod real;
mod support;

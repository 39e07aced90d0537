//! Embedded in-memory brokers implementing the ports: Kafka-style topics ([`pubsub`]) and
//! RabbitMQ-style work queues with fanout ([`queue`]). The all-in-one `switchboard` serves on
//! them when no real broker is configured; tests use them as fast, deterministic backends.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod pubsub;
pub mod queue;

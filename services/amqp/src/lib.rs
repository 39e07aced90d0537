//! RabbitMQ adapter of the switchboard work-queue and fanout ports, on amiquip.
//!
//! amiquip is synchronous, so one thread owns the connection and its publishing channel and
//! takes commands over an async channel (replies come back on one-shot channels); each consumer
//! runs on its own thread with its own channel. Enqueues wait for publisher confirms; queues are
//! durable and messages persistent; a lost connection is re-opened with exponential backoff and
//! jitter (capped at 1 s), the topology re-declared and consumers resumed; while a reconnect
//! fails, publishes fail at once. Every call that waits for the broker (channel open, declare,
//! close) is bounded by the connect timeout, so a stalled broker cannot hold the connection
//! thread for the minute or more amiquip's heartbeats take to notice.
//!
//! Topology of a queue `jobs` (see [`AmqpWorkQueue`]): `jobs` (bounded, `reject-publish`),
//! `jobs.dlq`, and one TTL queue per retry delay (`jobs.retry.1000ms`…) dead-lettering back
//! into `jobs`. [`ManagementApi`] reads their depths, unacked messages included, from
//! RabbitMQ's management HTTP API.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod bounded;
mod browse;
mod config;
mod connection;
mod consumer;
mod error;
mod headers;
mod management;
mod queue;
mod tls;
mod topology;

pub use config::{AmqpConfig, DEFAULT_URL};
pub use management::ManagementApi;
pub use queue::AmqpWorkQueue;
pub use tls::{redact, AmqpTls};
pub use topology::retry_queues;

//! The composition root of every switchboard binary: picks and connects the brokers from flags.
//! Each adapter sits behind a cargo feature (`kafka`, `amqp`, `embedded`), so a binary links only
//! the transports it uses and shows only their flags.
//!
//! Selection: `KAFKA_BROKERS` set means real Kafka (topics
//! created when missing); unset means the embedded broker, which only the all-in-one accepts —
//! a service deployed alone cannot share an in-process broker with anyone. Likewise `AMQP_URL`
//! set means RabbitMQ for the jobs queue, unset the embedded work queue.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod args;
mod pubsub;
mod queue;
mod security;

pub use args::{BrokerArgs, BrokerError};
pub use pubsub::PubSub;
pub use queue::Queues;
#[cfg(any(feature = "kafka", feature = "amqp"))]
pub use security::read_secret_file;
pub use security::BrokerSecurityArgs;
#[cfg(feature = "kafka")]
pub use security::KAFKA_SASL_PASSWORD_ENV;

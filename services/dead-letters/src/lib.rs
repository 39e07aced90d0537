//! Dead letters you can act on: list them, see why, send them back safely, or remove them.
//!
//! Every operation works over the broker ports ([`Browse`](switchboard_ports::Browse)), so
//! Kafka, RabbitMQ and the embedded brokers share one code path: the `switchboard dlq`
//! command and the console's dead-letters page both call [`DeadLetters`].
//!
//! Guarantees of [`DeadLetters::redrive`]:
//! - at-least-once: a dead letter leaves its queue only after the broker confirmed its copy
//!   at the origin (RabbitMQ: acked after the confirm; Kafka: the offset of the tool's own
//!   consumer group committed past it). Killed at any point, a redrive loses nothing and
//!   repeats at most the one it was sending;
//! - no loops: each copy carries a redrive count one higher, and one already redriven
//!   `max_redrives` times is refused and stays.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod entry;
mod filter;
mod http;
mod ops;

pub use entry::{capped, Entry, PREVIEW_BYTES};
pub use filter::{parse_time, Filter};
pub use http::{refuse_unauthenticated, HttpApi, MAX_BODY_BYTES};
pub use ops::{source_of_id, DeadLetters, Listing, Report, Run, Settings, Source, SourceKind};

/// The consumer group under which the tool marks Kafka dead letters as handled. No service
/// uses it.
pub const TOOL_GROUP: &str = switchboard_topology::DEAD_LETTER_GROUP;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request names something that does not exist or cannot be.
    #[error("{0}")]
    Invalid(String),
    /// The broker refused or could not be reached.
    #[error("broker: {0}")]
    Broker(#[from] switchboard_ports::Error),
}

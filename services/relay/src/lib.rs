//! The relay service: consumes requests from the broker (the `KAFKA Consumer` hop) and calls
//! the processor over gRPC (the `gRPC Client` hop). A request is acked only once the processor
//! has answered, so a relay killed mid-call leaves it for the next member of its group.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod args;
mod batcher;
mod config;
mod handler;
mod run;
mod spans;

pub use args::{RelayArgs, RelayBreaker};
pub use config::RelayConfig;
pub use handler::{Handled, RequestHandler};
pub use run::{run, Relay, SubscribedRelay};
pub use spans::Received;

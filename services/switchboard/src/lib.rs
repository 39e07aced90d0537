//! The whole switchboard chain in one process: processor, relay and gateway wired through a
//! broker port, talking as deployed (broker hops and real gRPC); only the broker may be the
//! embedded one. Used by the `switchboard` binary, the end-to-end tests and the benchmarks.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod chain;
mod client;
mod dead_letters;

pub use chain::{Chain, ChainConfig, ChainError, ChainJobs, Step};
pub use client::{ClientError, HttpClient, HttpReply};
pub use dead_letters::dead_letters;

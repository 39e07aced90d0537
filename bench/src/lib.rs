//! Benchmark harness of switchboard: a load generator for any gateway (closed loop or fixed
//! rate, coordinated-omission safe) and the embedded benchmark that drives the all-in-one chain
//! and measures the floor of each hop alone, so a slow layer shows up as a ratio.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod cli;
mod drive;
mod embedded;
mod error;
mod floors;
mod http_load;
mod jobs;
mod kafka_floor;
mod latency;
mod table;
mod verify;

pub use cli::{parse_duration, LoadArgs};
pub use drive::{run_phase, Call, Mode, Phase, PhaseReport};
pub use embedded::{run_embedded, EmbeddedConfig, EmbeddedReport};
pub use error::Error;
pub use floors::{broker_floor, grpc_floor, http_floor, DiscardPublisher};
pub use http_load::{HttpCall, HttpTarget};
pub use jobs::{job_state, run_jobs, JobState, JobsConfig, JobsReport};
pub use kafka_floor::kafka_floor;
pub use latency::{Latencies, Summary};
pub use table::{print_embedded, print_phase};
pub use verify::{expected_reply, judge, run_verify, Outcome, Tokens, VerifyConfig, VerifyReport, CHAIN_SUFFIX};

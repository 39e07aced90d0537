//! The worker service: consumes jobs from the work queue (the `RABBITMQ Consumer` hop), calls
//! the processor over gRPC (the `gRPC Client` hop) through a circuit breaker, and broadcasts
//! each job's progress and outcome on a fanout exchange for every gateway.
//!
//! A job is acked only after its outcome (`done`, or `failed` before a dead-letter) was
//! broadcast; transient failures are retried with exponential backoff and jitter up to a
//! number of attempts; a worker lost mid-job spends an attempt, so nothing crash-loops.
//! Workers hear each other's events: a job enqueued twice under one id runs once (see
//! `claims.rs` for the window that is left).

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod args;
mod claims;
mod config;
mod handler;
mod run;
mod spans;

pub use args::{WorkerArgs, WorkerBreaker};
pub use config::{WorkerConfig, DEFAULT_JOBS_QUEUE, DEFAULT_JOB_EVENTS_EXCHANGE};
pub use handler::{Handled, JobHandler, JOB_ID_HEADER};
pub use run::{ConsumingWorker, Worker};

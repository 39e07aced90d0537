//! The gateway: the REST edge. `POST /messages` starts a transaction (the `REST request` and
//! `KAFKA Publisher` hops), the reply consumer matches replies to callers by correlation id
//! (the second `KAFKA Consumer` hop), and the caller gets the upper-cased result.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod args;
mod auth;
mod config;
mod errors;
mod idempotency;
mod instance;
mod jobs;
mod pending;
mod replies;
pub mod route_table;
mod routes;
mod second_chance;
mod security;
mod serve;
mod spans;

pub use args::{GatewayArgs, GatewayBreaker};
pub use auth::{BearerTokens, TokenFileError};
pub use config::GatewayConfig;
pub use errors::JsonErrors;
pub use instance::{default_instance_id, reply_partition};
pub use jobs::{JobState, JobStore, JobView, JobsArgs, JobsConfig};
pub use pending::{Pending, PendingFull, Slot, Waiter, Wake};
pub use second_chance::SecondChance;
pub use security::{EdgeSecurityArgs, EdgeSecurityError};
pub use serve::Gateway;

/// The OpenAPI 3.1 description of the REST API, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

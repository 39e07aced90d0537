//! The console: watch the chain work in a browser. It receives the services' spans over
//! OTLP/HTTP (`POST /v1/traces`) and shows each transaction as a waterfall with its hop log;
//! it scrapes each service instance's `/readyz` and `/metrics`; it reads the brokers' lag and
//! depths through the ports' inspection traits; it follows the job-events fanout; and it pushes
//! all of it to the pages (embedded in the binary) over Server-Sent Events.
//!
//! Everything it keeps is bounded: the last N transactions (and spans per transaction), M
//! minutes of metric points, the most recent jobs, a short event replay buffer, and a bounded
//! queue per live page.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_console::{Console, ConsoleConfig, Sources};
//!
//! let config = ConsoleConfig { targets: vec!["gateway=127.0.0.1:8080".parse()?], ..ConsoleConfig::default() };
//! let console = Console::bind(config, Sources::default()).await?;
//! println!("console on http://{}", console.local_addr()?);
//! console.serve(futures_lite::future::pending()).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod api;
mod app;
mod args;
mod assets;
mod auth;
mod brokers;
mod client;
mod console;
mod dead_letters;
mod events;
mod jobs;
mod otlp;
mod promtext;
mod rates;
mod scrape;
mod store;
mod transaction;

pub use args::ConsoleArgs;
pub use brokers::Watched;
pub use console::{BindError, Console, ConsoleConfig, Sources};
pub use dead_letters::{DeadLetterAnswer, DeadLetterRequest, DeadLetters, NoDeadLetters};
pub use scrape::Target;

/// The Content-Security-Policy on every response.
pub const CONTENT_SECURITY_POLICY: &str = app::CSP;

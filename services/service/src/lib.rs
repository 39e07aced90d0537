//! What every switchboard binary starts and stops with, written once: [`main`] (logging, flags
//! with environment fallbacks, the exit status), [`Service`] (signals and the grace period,
//! metrics, readiness and the [`AdminServer`], served by `switchboard-http-server`'s loop).
//! [`breaker_args!`] makes a breaker's settings flags with environment fallbacks.
//! Service crates keep only their wiring and handlers.
//!
//! Nothing here needs tokio: the admin server runs on async-h1 with its own executor, signals
//! are read on a dedicated thread, and every future is `Send`, so smol and async-std (tide)
//! callers use the same API.
//!
//! ```no_run
//! use switchboard_service::{Service, ServiceArgs, ServiceError};
//!
//! #[derive(Debug, clap::Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     service: ServiceArgs,
//! }
//!
//! async fn run(cli: Cli) -> Result<(), ServiceError> {
//!     let service = Service::start("relay", &cli.service, "127.0.0.1:9101").await?;
//!     // ... wire the service's ports and handlers, then run them until the signal:
//!     let work = async {
//!         service.shutdown.wait().await;
//!         Ok(())
//!     };
//!     service.drain_within_grace("relay", work).await?;
//!     service.finish().await
//! }
//!
//! fn main() {
//!     switchboard_service::main("relay", run)
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod admin;
#[doc(hidden)]
pub mod breaker;
mod service;
mod shutdown;

pub use admin::{health_response, metrics_response, AdminServer};
pub use breaker::WindowKind;
pub use mimalloc::MiMalloc;
pub use service::{error_chain, main, Service, ServiceArgs, ServiceError, WorkError};
pub use shutdown::{GraceExpired, Shutdown, ShutdownArgs, ShutdownError, ShutdownReason, DEFAULT_GRACE, GRACE_ENV};
pub use switchboard_resilience::{Config as BreakerConfig, ConfigError as BreakerConfigError};

#[cfg(test)]
mod tests {
    #[test]
    fn shutdown_is_send_sync_and_clone() {
        fn shared_across_threads<T: Send + Sync + Clone + 'static>() {}
        shared_across_threads::<crate::Shutdown>();
    }
}

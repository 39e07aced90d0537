//! Resilience for calls to other services, without an async runtime: a circuit breaker with
//! resilience4j's semantics, and a retry policy under a retry budget. [`RetryPolicy`] is the
//! one backoff of switchboard: every retry and reconnect schedule is one of its [`Delays`].
//!
//! - [`CircuitBreaker`]: closed / open / half-open over a count- or time-based sliding
//!   window, failure-rate and slow-call-rate thresholds, events and counters. Wraps sync calls
//!   ([`call`](CircuitBreaker::call)), futures ([`call_async`](CircuitBreaker::call_async)) or
//!   anything else through [`Permit`]s. About 20 ns per healthy call, see `BENCHMARKS.md`.
//! - [`RetryPolicy`] and [`RetryBudget`]: exponential backoff with jitter; retries capped at a
//!   share of recent calls so an outage does not multiply load.
//! - [`BreakerPublisher`]: the breaker as a decorator of any
//!   [`Publisher`](switchboard_ports::Publisher).
//!
//! Time comes from a [`Clock`]: the [`SystemClock`] by default, a [`ManualClock`] in tests.
//! There are no timers; an open breaker moves to half-open on the first call after its wait.
//!
//! # Configuration from the environment
//!
//! [`Config::from_env`] reads these variables (unset ones keep their defaults; an invalid one
//! is a [`ConfigError`] naming it):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `{PREFIX}_FAILURE_RATE` | failure rate in percent that opens the breaker, `(0, 100]` | `50` |
//! | `{PREFIX}_SLOW_CALL_RATE` | slow-call rate in percent that opens the breaker, `(0, 100]` | `100` |
//! | `{PREFIX}_SLOW_CALL_MS` | calls longer than this are slow (ms) | `5000` |
//! | `{PREFIX}_WINDOW` | window size: calls, or seconds for a time window | `100` |
//! | `{PREFIX}_WINDOW_KIND` | `count` or `time` | `count` |
//! | `{PREFIX}_MIN_CALLS` | calls in the window before the rates count | `20` |
//! | `{PREFIX}_WAIT_OPEN_MS` | time open before probing (ms) | `5000` |
//! | `{PREFIX}_HALF_OPEN_CALLS` | probe calls in half-open | `10` |
//!
//! ```
//! use std::time::Duration;
//! use switchboard_resilience::{CallError, CircuitBreaker, Config, CallOutcome};
//!
//! let breaker = CircuitBreaker::new(Config::from_env("ORDERS_BREAKER")?);
//! let status: Result<u16, CallError<u16>> =
//!     breaker.call_with(CallOutcome::ignore_if(|s: &u16| *s < 500), || Ok(200));
//! match status {
//!     Ok(200) => {}
//!     Err(CallError::Rejected(r)) => println!("503 Retry-After: {}", r.retry_after_secs()),
//!     other => println!("{other:?}"),
//! }
//! # Ok::<(), switchboard_resilience::ConfigError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod breaker;
mod clock;
mod config;
mod error;
mod events;
mod metrics;
mod outcome;
mod padded;
mod permit;
mod publisher;
mod retry;
mod window;

pub use breaker::{CircuitBreaker, State};
pub use clock::{Clock, ManualClock, PreciseClock, SystemClock};
pub use config::{Config, ConfigBuilder, SlidingWindow, MAX_HALF_OPEN_CALLS, MAX_WINDOW};
pub use error::{CallError, ConfigError, ConfigErrorKind, Rejected};
pub use events::{Event, Reason};
pub use metrics::Metrics;
pub use outcome::CallOutcome;
pub use permit::Permit;
pub use publisher::BreakerPublisher;
pub use retry::{Delays, Jitter, RetryBudget, RetryPolicy};

//! Graceful shutdown: a cloneable handle that SIGTERM, SIGINT or code can trigger, and the
//! grace period the service has to drain before it stops waiting.
//!
//! The signals are read on a dedicated thread with `async-signal`, so the handle works the
//! same under smol, async-std or a plain `block_on`.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_signal::{Signal, Signals};
use futures_lite::{future, StreamExt};

/// Environment variable with the grace period in milliseconds.
pub const GRACE_ENV: &str = "SWITCHBOARD_GRACE_MS";

/// Grace period when [`GRACE_ENV`] is unset.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(10_000);

/// The grace period flag, with its environment fallback [`GRACE_ENV`].
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownArgs {
    /// Milliseconds to finish the work in flight after SIGTERM or SIGINT (a second signal
    /// exits at once).
    #[arg(long = "grace-ms", env = GRACE_ENV, value_name = "MS", default_value = "10000", value_parser = grace_flag)]
    pub grace: Duration,
}

impl Default for ShutdownArgs {
    fn default() -> Self {
        ShutdownArgs { grace: DEFAULT_GRACE }
    }
}

impl ShutdownArgs {
    /// A [`Shutdown`] started by SIGTERM or SIGINT, with this grace period.
    pub fn install(&self) -> Result<Shutdown, ShutdownError> {
        Shutdown::with_signals(self.grace)
    }
}

fn grace_flag(value: &str) -> Result<Duration, String> {
    parse_grace(Some(value)).map_err(|e| e.to_string())
}

/// Why shutdown started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// SIGTERM arrived (an orchestrator stopping the process).
    Terminate,
    /// SIGINT arrived (Ctrl-C).
    Interrupt,
    /// [`Shutdown::trigger`] was called.
    Triggered,
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShutdownReason::Terminate => "SIGTERM",
            ShutdownReason::Interrupt => "SIGINT",
            ShutdownReason::Triggered => "requested",
        })
    }
}

/// What went wrong setting up shutdown.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The grace period is not a whole number of milliseconds.
    InvalidGrace(String),
    /// The signal handlers could not be installed.
    Signals(io::Error),
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownError::InvalidGrace(v) => {
                write!(f, "invalid {GRACE_ENV} {v:?}: expected milliseconds")
            }
            ShutdownError::Signals(_) => f.write_str("cannot install signal handlers"),
        }
    }
}

impl std::error::Error for ShutdownError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShutdownError::Signals(e) => Some(e),
            ShutdownError::InvalidGrace(_) => None,
        }
    }
}

/// The grace period was over before the draining work finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceExpired(pub Duration);

impl fmt::Display for GraceExpired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grace period of {:?} expired", self.0)
    }
}

impl std::error::Error for GraceExpired {}

struct Inner {
    // Closing the channel is the broadcast: every pending and future `recv` returns at once.
    tx: async_channel::Sender<()>,
    rx: async_channel::Receiver<()>,
    reason: OnceLock<ShutdownReason>,
    grace: Duration,
}

/// A shutdown signal shared by every part of a process; cheap to clone, `Send + Sync`.
///
/// [`wait`](Shutdown::wait) completes in every clone once shutdown starts, by signal or by
/// [`trigger`](Shutdown::trigger); then each part drains within
/// [`grace_period`](Shutdown::grace_period).
///
/// ```
/// use std::time::Duration;
/// use switchboard_service::{Shutdown, ShutdownReason};
///
/// // In main, `ShutdownArgs::install` also listens for SIGTERM and SIGINT.
/// let shutdown = Shutdown::new(Duration::from_millis(500));
/// let waiter = std::thread::spawn({
///     let shutdown = shutdown.clone();
///     move || smol::block_on(shutdown.wait())
/// });
/// shutdown.trigger();
/// waiter.join().unwrap();
/// assert_eq!(shutdown.reason(), Some(ShutdownReason::Triggered));
///
/// // Drain in-flight work, but not for longer than the grace period.
/// let drained = smol::block_on(shutdown.within_grace(async { "flushed" }));
/// assert_eq!(drained, Ok("flushed"));
/// ```
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").field("reason", &self.reason()).field("grace", &self.inner.grace).finish()
    }
}

impl Shutdown {
    /// A handle only [`trigger`](Shutdown::trigger) starts (tests, embedded use).
    pub fn new(grace: Duration) -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Shutdown { inner: Arc::new(Inner { tx, rx, reason: OnceLock::new(), grace }) }
    }

    /// A handle started by SIGTERM or SIGINT, with `grace`.
    ///
    /// The signals are handled for the rest of the process: once shutdown has started, by
    /// either route, a further SIGTERM or SIGINT exits at once with status 128 + signal
    /// number, so a stuck drain can be cut short. Install this once per process.
    pub fn with_signals(grace: Duration) -> Result<Self, ShutdownError> {
        let shutdown = Self::new(grace);
        let signals = Signals::new([Signal::Term, Signal::Int]).map_err(ShutdownError::Signals)?;
        let handle = shutdown.clone();
        std::thread::Builder::new()
            .name("switchboard-signals".into())
            .spawn(move || listen(signals, handle))
            .map_err(ShutdownError::Signals)?;
        Ok(shutdown)
    }

    /// Starts shutdown (if it has not started) and wakes every waiter.
    pub fn trigger(&self) {
        self.start(ShutdownReason::Triggered);
    }

    fn start(&self, reason: ShutdownReason) -> bool {
        let first = self.inner.reason.set(reason).is_ok();
        self.inner.tx.close();
        first
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.inner.tx.is_closed()
    }

    /// Why shutdown started, once it has.
    pub fn reason(&self) -> Option<ShutdownReason> {
        self.inner.reason.get().copied()
    }

    /// Completes once shutdown has started (at once if it already has). The future owns what
    /// it needs, so it can be handed to a spawned task or [`AdminServer::run`](crate::AdminServer::run).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let rx = self.inner.rx.clone();
        async move {
            // Nothing is ever sent: recv returns only with the error of a closed channel.
            let _ = rx.recv().await;
        }
    }

    /// How long draining may take after shutdown starts.
    pub fn grace_period(&self) -> Duration {
        self.inner.grace
    }

    /// Runs `drain` for at most the grace period.
    pub async fn within_grace<F: Future>(&self, drain: F) -> Result<F::Output, GraceExpired> {
        let grace = self.inner.grace;
        let expired = async {
            async_io::Timer::after(grace).await;
            Err(GraceExpired(grace))
        };
        future::or(async { Ok(drain.await) }, expired).await
    }
}

fn listen(mut signals: Signals, shutdown: Shutdown) {
    async_io::block_on(async {
        while let Some(signal) = signals.next().await {
            let (reason, number) = match signal {
                Ok(Signal::Term) => (ShutdownReason::Terminate, 15),
                Ok(Signal::Int) => (ShutdownReason::Interrupt, 2),
                Ok(_) => continue,
                Err(e) => {
                    log::warn!("reading signals failed: {e}");
                    continue;
                }
            };
            if shutdown.start(reason) {
                log::info!("{reason}: shutting down within {:?}; send it again to exit now", shutdown.grace_period());
            } else {
                log::warn!("{reason} during shutdown: exiting now");
                switchboard_telemetry::flush_logs();
                std::process::exit(128 + number);
            }
        }
    })
}

/// The grace period from a flag or [`GRACE_ENV`] value.
fn parse_grace(value: Option<&str>) -> Result<Duration, ShutdownError> {
    match value.map(str::trim) {
        None | Some("") => Ok(DEFAULT_GRACE),
        Some(v) => v.parse::<u64>().map(Duration::from_millis).map_err(|_| ShutdownError::InvalidGrace(v.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn trigger_wakes_every_waiter() {
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let shutdown = shutdown.clone();
                let started = started_tx.clone();
                std::thread::spawn(move || {
                    let wait = shutdown.wait();
                    started.send(()).unwrap();
                    smol::block_on(wait);
                    shutdown.is_triggered()
                })
            })
            .collect();
        for _ in 0..4 {
            started_rx.recv().unwrap();
        }
        // Give the waiters time to block, so the trigger wakes parked tasks (no timing is
        // asserted: a late waiter must return as well).
        std::thread::sleep(Duration::from_millis(20));
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        for w in waiters {
            assert!(w.join().unwrap());
        }
        // Late waiters return at once.
        smol::block_on(shutdown.wait());
        assert_eq!(shutdown.reason(), Some(ShutdownReason::Triggered));
    }

    #[test]
    fn waits_under_async_std_too() {
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let waiter = async_std::task::spawn(shutdown.wait());
        shutdown.trigger();
        async_std::task::block_on(waiter);
        assert!(shutdown.is_triggered());
    }

    #[test]
    fn within_grace_cuts_off_a_slow_drain() {
        let shutdown = Shutdown::new(Duration::from_millis(50));
        let started = Instant::now();
        let result = smol::block_on(shutdown.within_grace(future::pending::<()>()));
        assert_eq!(result, Err(GraceExpired(Duration::from_millis(50))));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn grace_comes_from_milliseconds() {
        assert_eq!(parse_grace(None).unwrap(), DEFAULT_GRACE);
        assert_eq!(parse_grace(Some("")).unwrap(), DEFAULT_GRACE);
        assert_eq!(parse_grace(Some(" 2500 ")).unwrap(), Duration::from_millis(2500));
        let err = parse_grace(Some("10s")).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid SWITCHBOARD_GRACE_MS "10s": expected milliseconds"#);
    }

    #[test]
    fn sigterm_starts_shutdown() {
        // A real signal to this test process; the handler is installed before it is sent.
        let shutdown = Shutdown::with_signals(Duration::from_secs(1)).unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let woke = smol::block_on(future::or(
            async {
                shutdown.wait().await;
                true
            },
            async {
                async_io::Timer::after(Duration::from_secs(10)).await;
                false
            },
        ));
        assert!(woke, "SIGTERM did not start shutdown");
        assert_eq!(shutdown.reason(), Some(ShutdownReason::Terminate));
    }
}

//! The start and the stop of a service deployed alone, in the same order for every binary.

use std::error::Error;
use std::future::Future;
use std::io;
use std::net::{AddrParseError, SocketAddr};

use futures_lite::{future, FutureExt};
use switchboard_telemetry::{Metrics, Readiness};

use crate::{AdminServer, Shutdown, ShutdownArgs, ShutdownError};

/// The flags of a service with an admin port (relay, processor, worker).
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Admin HTTP address: /healthz, /readyz, /metrics [default: relay 127.0.0.1:9101,
    /// processor 127.0.0.1:9102, worker 127.0.0.1:9103].
    #[arg(long, env = "SWITCHBOARD_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// The grace period.
    #[command(flatten)]
    pub shutdown: ShutdownArgs,
}

/// What a service's own work failed with: any error, boxed, so each binary keeps its own
/// error type.
pub type WorkError = Box<dyn Error + Send + Sync>;

/// Why a [`Service`] could not start, or why it stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The built-in admin address does not parse.
    #[error("default admin address")]
    AdminAddr(#[source] AddrParseError),
    /// The signal handlers or the grace period.
    #[error("setting up shutdown")]
    Shutdown(#[source] ShutdownError),
    /// The admin port cannot be listened on.
    #[error("admin port")]
    AdminBind(#[source] io::Error),
    /// The admin server stopped serving.
    #[error("admin server")]
    AdminServer(#[source] io::Error),
    /// The service's work ended before any shutdown signal.
    #[error("the {0} stopped before any shutdown signal")]
    Stopped(String),
    /// The service's work failed.
    #[error(transparent)]
    Work(WorkError),
}

/// `error` and its causes on one line, outermost first: `a: b: c`.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}

/// The global allocator and `fn main` of a switchboard binary: mimalloc instead of glibc
/// malloc (fewer CPU µs per transaction, BENCHMARKS.md, "Changes tried"), then [`main`](crate::main)
/// with `run`.
#[macro_export]
macro_rules! service_main {
    ($service:literal, $run:path) => {
        #[global_allocator]
        static ALLOCATOR: $crate::MiMalloc = $crate::MiMalloc;

        fn main() {
            $crate::main($service, $run)
        }
    };
}

/// The `main` of every switchboard binary: the log format named after `service`, the flags
/// (each with its environment fallback), then `run` on smol; an error is printed with its
/// causes and the process exits 1.
pub fn main<C, F, E>(service: &'static str, run: impl FnOnce(C) -> F)
where
    C: clap::Parser,
    F: Future<Output = Result<(), E>>,
    E: Into<WorkError>,
{
    switchboard_telemetry::init_logging(service);
    let result = smol::block_on(run(C::parse()));
    // Buffered log lines first, so the error below is the last line of the log.
    switchboard_telemetry::flush_logs();
    if let Err(e) = result {
        let e: WorkError = e.into();
        eprintln!("{service}: {}", error_chain(&*e));
        std::process::exit(1);
    }
}

/// A running service's shutdown, metrics, readiness and admin server (`/healthz`, `/readyz`,
/// `/metrics`).
#[derive(Debug)]
pub struct Service {
    /// Started by SIGTERM or SIGINT, or by a broken admin listener.
    pub shutdown: Shutdown,
    /// The service's registry, served at `/metrics`.
    pub metrics: Metrics,
    /// The service's checks, served at `/readyz`; draining once shutdown starts.
    pub readiness: Readiness,
    admin: smol::Task<io::Result<()>>,
}

impl Service {
    /// Installs the signal handlers and starts the admin server on `--admin-addr`, else on
    /// `default_admin` (one of the addresses of `switchboard-topology`). A broken admin listener
    /// triggers the shutdown and fails [`finish`](Service::finish) (exit 1).
    pub async fn start(name: &'static str, args: &ServiceArgs, default_admin: &str) -> Result<Self, ServiceError> {
        let admin_addr = match args.admin_addr {
            Some(addr) => addr,
            None => default_admin.parse().map_err(ServiceError::AdminAddr)?,
        };
        let shutdown = args.shutdown.install().map_err(ServiceError::Shutdown)?;
        let (metrics, readiness) = (Metrics::new(name), Readiness::new());
        let admin = AdminServer::bind(admin_addr, metrics.clone(), readiness.clone())
            .await
            .map_err(ServiceError::AdminBind)?
            .spawn(&shutdown);
        Ok(Service { shutdown, metrics, readiness, admin })
    }

    /// Runs `work` until the shutdown starts, then lets it finish for at most the grace
    /// period (which starts at the signal, not at start-up). `work` ending on its own before
    /// any signal is an error naming `name`: exit non-zero rather than idle with a dead service.
    pub async fn drain_within_grace(
        &self,
        name: &str,
        work: impl Future<Output = Result<(), WorkError>>,
    ) -> Result<(), ServiceError> {
        let mut work = std::pin::pin!(work);
        let before_signal = async { Some(work.as_mut().await) }.or(async {
            self.shutdown.wait().await;
            None
        });
        match before_signal.await {
            Some(result) => self.ended(name, result),
            None => {
                self.readiness.set_draining();
                match self.shutdown.within_grace(work).await {
                    Ok(result) => result.map_err(ServiceError::Work),
                    Err(expired) => {
                        log::warn!("{name}: {expired} with work in flight: it is left to the next instance");
                        Ok(())
                    }
                }
            }
        }
    }

    /// Runs `work`, which bounds its own drain once the shutdown starts; readiness reports
    /// draining from the signal on. `work` ending before any signal is an error naming `name`.
    pub async fn until_signal(
        &self,
        name: &str,
        work: impl Future<Output = Result<(), WorkError>>,
    ) -> Result<(), ServiceError> {
        let draining = async {
            self.shutdown.wait().await;
            self.readiness.set_draining();
            future::pending().await
        };
        let result = work.or(draining).await;
        self.ended(name, result)
    }

    fn ended(&self, name: &str, result: Result<(), WorkError>) -> Result<(), ServiceError> {
        result.map_err(ServiceError::Work)?;
        if !self.shutdown.is_triggered() {
            return Err(ServiceError::Stopped(name.to_owned()));
        }
        Ok(())
    }

    /// Waits for the admin server to stop (it stops with the shutdown). The error converts into
    /// the caller's own error type, so a binary's `run` can end with this call.
    pub async fn finish<E: From<ServiceError>>(self) -> Result<(), E> {
        self.admin.await.map_err(|e| ServiceError::AdminServer(e).into())
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] io::Error);

    #[test]
    fn error_chain_names_every_cause_outermost_first() {
        let e = ServiceError::Work(Box::new(Outer(io::Error::other("inner"))));
        assert_eq!(error_chain(&e), "outer: inner");
        assert_eq!(error_chain(&ServiceError::AdminBind(io::Error::other("in use"))), "admin port: in use");
    }

    #[test]
    fn error_chain_keeps_the_context_of_a_binarys_error() {
        let e = Err::<(), _>(io::Error::other("refused")).context("processor TLS").unwrap_err();
        let boxed: WorkError = e.into();
        assert_eq!(error_chain(&*boxed), "processor TLS: refused");
    }
}

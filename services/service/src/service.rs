//! The start and the stop of a service deployed alone, in the same order for every binary.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use anyhow::Context;
use futures_lite::{future, FutureExt};
use switchboard_telemetry::{Metrics, Readiness};

use crate::{AdminServer, Shutdown, ShutdownArgs};

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

/// The global allocator and `fn main` of a switchboard binary: mimalloc instead of glibc
/// malloc (fewer CPU µs per transaction, BENCHMARKS.md, "Allocator"), then [`main`](crate::main)
/// with `run`. With `about = "…"` the flags are a struct shared by several binaries
/// ([`main_shared`](crate::main_shared)): the binary's package name, version and `about` text
/// head its `--help`.
#[macro_export]
macro_rules! service_main {
    ($service:literal, $run:path) => {
        $crate::service_main!(@main $crate::main($service, $run));
    };
    ($service:literal, $run:path, about = $about:literal) => {
        $crate::service_main!(@main $crate::main_shared(
            $service,
            $crate::Program { name: env!("CARGO_PKG_NAME"), version: env!("CARGO_PKG_VERSION"), about: $about },
            $run
        ));
    };
    (@main $call:expr) => {
        #[global_allocator]
        static ALLOCATOR: $crate::MiMalloc = $crate::MiMalloc;

        fn main() {
            $call
        }
    };
}

/// What heads a binary's `--help` and `--version` when its flags struct is shared
/// ([`main_shared`]).
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The package name (`--version` prints it).
    pub name: &'static str,
    /// The package version.
    pub version: &'static str,
    /// The one-line description.
    pub about: &'static str,
}

/// The `main` of every switchboard binary: the log format named after `service`, the flags
/// (each with its environment fallback), then `run` on smol; an error is printed with its
/// causes and the process exits 1.
pub fn main<C, F>(service: &'static str, run: impl FnOnce(C) -> F)
where
    C: clap::Parser,
    F: Future<Output = anyhow::Result<()>>,
{
    parse_and_run(service, C::command(), run)
}

/// [`main`] for a flags struct declared once for several binaries (the relay and the worker
/// share one): `program` names the binary, as a struct of its own would.
pub fn main_shared<C, F>(service: &'static str, program: Program, run: impl FnOnce(C) -> F)
where
    C: clap::Parser,
    F: Future<Output = anyhow::Result<()>>,
{
    let command = C::command().name(program.name).version(program.version).about(program.about);
    parse_and_run(service, command, run)
}

fn parse_and_run<C, F>(service: &'static str, mut command: clap::Command, run: impl FnOnce(C) -> F)
where
    C: clap::FromArgMatches,
    F: Future<Output = anyhow::Result<()>>,
{
    switchboard_telemetry::init_logging(service);
    // As `clap::Parser::parse`: a bad flag prints the usage and exits 2.
    let cli = C::from_arg_matches(&command.clone().get_matches()).unwrap_or_else(|e| e.format(&mut command).exit());
    let result = smol::block_on(run(cli));
    // Buffered log lines first, so the error below is the last line of the log.
    switchboard_telemetry::flush_logs();
    if let Err(e) = result {
        eprintln!("{service}: {e:#}");
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
    pub async fn start(name: &'static str, args: &ServiceArgs, default_admin: &str) -> anyhow::Result<Self> {
        let admin_addr = match args.admin_addr {
            Some(addr) => addr,
            None => default_admin.parse().context("default admin address")?,
        };
        let shutdown = args.shutdown.install().context("setting up shutdown")?;
        let (metrics, readiness) = (Metrics::new(name), Readiness::new());
        let admin = AdminServer::bind(admin_addr, metrics.clone(), readiness.clone())
            .await
            .context("admin port")?
            .spawn(&shutdown);
        Ok(Service { shutdown, metrics, readiness, admin })
    }

    /// Runs `work` until the shutdown starts, then lets it finish for at most the grace
    /// period (which starts at the signal, not at start-up). `work` ending on its own before
    /// any signal is an error naming `name`: exit non-zero rather than idle with a dead service.
    pub async fn drain_within_grace(
        &self,
        name: &str,
        work: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
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
                    Ok(result) => result,
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
    pub async fn until_signal(&self, name: &str, work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
        let draining = async {
            self.shutdown.wait().await;
            self.readiness.set_draining();
            future::pending().await
        };
        let result = work.or(draining).await;
        self.ended(name, result)
    }

    fn ended(&self, name: &str, result: anyhow::Result<()>) -> anyhow::Result<()> {
        result?;
        if !self.shutdown.is_triggered() {
            anyhow::bail!("the {name} stopped before any shutdown signal");
        }
        Ok(())
    }

    /// Waits for the admin server to stop (it stops with the shutdown).
    pub async fn finish(self) -> anyhow::Result<()> {
        self.admin.await.context("admin server")?;
        Ok(())
    }
}

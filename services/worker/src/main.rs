//! `worker`: consumes jobs from RabbitMQ (`AMQP_URL`) and runs them through the processor.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use switchboard_breaker::{CircuitBreaker, Config, State};
use switchboard_names::JobNames;
use switchboard_telemetry::{AdminServer, CheckStatus, Metrics, Readiness, Shutdown};
use switchboard_wiring::BrokerArgs;
use switchboard_worker::{Worker, WorkerArgs};

/// Environment prefix of the breaker around processor calls (`{PREFIX}_FAILURE_RATE`, …).
const BREAKER_ENV: &str = "SWITCHBOARD_WORKER_BREAKER";

#[derive(Debug, Parser)]
#[command(version, about = "switchboard worker: RabbitMQ jobs → gRPC processor → job events")]
struct Cli {
    #[command(flatten)]
    names: JobNames,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Where the processor serves gRPC.
    #[arg(long, env = "PROCESSOR_ADDR", default_value = switchboard_names::PROCESSOR_ADDR)]
    processor_addr: SocketAddr,
    #[command(flatten)]
    processor_tls: switchboard_proto::tls::GrpcClientTlsArgs,
    /// Admin HTTP address: /healthz, /readyz, /metrics.
    #[arg(long, env = "SWITCHBOARD_ADMIN_ADDR", default_value = switchboard_names::WORKER_ADMIN_ADDR)]
    admin_addr: SocketAddr,
    #[command(flatten)]
    brokers: BrokerArgs,
}

// mimalloc instead of glibc malloc: fewer CPU µs per transaction (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    switchboard_telemetry::init_logging("worker");
    let cli = Cli::parse();
    if let Err(e) = smol::block_on(run(cli)) {
        eprintln!("worker: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = Shutdown::from_env().context("setting up shutdown")?;
    let breaker = CircuitBreaker::new(Config::from_env(BREAKER_ENV)?);
    let (metrics, readiness) = (Metrics::new("worker"), Readiness::new());
    let checked = breaker.clone();
    readiness.add_sync_check("processor", move || match checked.state() {
        State::Open => CheckStatus::not_ready("processor breaker open"),
        _ => CheckStatus::Ok,
    });
    // A broken admin listener triggers the shutdown and fails the run (exit 1).
    let admin = AdminServer::bind(cli.admin_addr, metrics.clone(), readiness.clone())
        .await
        .context("admin port")?
        .spawn(&shutdown);
    let queues = cli.brokers.require_amqp("worker").await?;
    let tls = cli.processor_tls.load().context("processor TLS")?;
    if let Some(tls) = &tls {
        grpcio::redirect_log();
        log::info!(
            "calling the processor over TLS ({})",
            if tls.is_mutual() { "mutual" } else { "server-authenticated" }
        );
    }
    let client = switchboard_proto::client::processor_client_tls(&cli.processor_addr.to_string(), tls.as_ref());
    let worker = Worker::new(cli.worker.config(&cli.names), queues.queue.clone(), queues.fanout, client, breaker)
        .with_metrics(metrics);
    let draining = readiness.clone();
    let stop = shutdown.wait();
    worker
        .run(
            async move {
                stop.await;
                draining.set_draining();
            },
            shutdown.grace_period(),
        )
        .await?;
    queues.queue.close().await?;
    // The worker ends at the signal; ending before it means it stopped consuming.
    if !shutdown.is_triggered() {
        anyhow::bail!("the worker stopped consuming before any shutdown signal");
    }
    admin.await.context("admin server")?;
    Ok(())
}

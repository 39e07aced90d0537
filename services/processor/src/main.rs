//! `processor`: the gRPC processor deployed alone; publishes replies to Kafka.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use switchboard_names::topics::Topics;
use switchboard_processor::{ProcessorArgs, ProcessorServer};
use switchboard_telemetry::{AdminServer, Metrics, Readiness, Shutdown};
use switchboard_wiring::BrokerArgs;

#[derive(Debug, Parser)]
#[command(version, about = "switchboard processor: gRPC Process → reply on Kafka")]
struct Cli {
    #[command(flatten)]
    topics: Topics,
    #[command(flatten)]
    processor: ProcessorArgs,
    /// Admin HTTP address: /healthz, /readyz, /metrics.
    #[arg(long, env = "SWITCHBOARD_ADMIN_ADDR", default_value = switchboard_names::PROCESSOR_ADMIN_ADDR)]
    admin_addr: SocketAddr,
    #[command(flatten)]
    tls: switchboard_proto::tls::GrpcServerTlsArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
}

// mimalloc instead of glibc malloc: fewer CPU µs per transaction (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    switchboard_telemetry::init_logging("processor");
    let cli = Cli::parse();
    if let Err(e) = smol::block_on(run(cli)) {
        eprintln!("processor: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = Shutdown::from_env()?;
    let (metrics, readiness) = (Metrics::new("processor"), Readiness::new());
    // A broken admin listener triggers the shutdown and fails the run (exit 1).
    let admin = AdminServer::bind(cli.admin_addr, metrics.clone(), readiness.clone())
        .await
        .context("admin port")?
        .spawn(&shutdown);

    let ports = cli.brokers.require_kafka("processor", &[&cli.topics.replies]).await?;
    let mut config = cli.processor.config();
    config.metrics = metrics;
    config.reply_topics = cli.topics.reply_allow_list();
    config.tls = cli.tls.load().context("processor TLS")?;
    if config.tls.is_some() {
        // gRPC core's own log lines (refused handshakes among them) into ours.
        grpcio::redirect_log();
    }
    let server = ProcessorServer::start(&config, ports.publisher.clone())?;
    shutdown.wait().await;
    readiness.set_draining();
    // grpcio's shutdown waits for the calls in flight; the grace period bounds it.
    if shutdown.within_grace(server.shutdown()).await.is_err() {
        log::warn!("grace period over with calls in flight");
    }
    ports.publisher.close().await?;
    admin.await.context("admin server")?;
    Ok(())
}

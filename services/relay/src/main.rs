//! `relay`: consumes requests from Kafka and calls the processor over gRPC.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use futures_lite::FutureExt;
use switchboard_names::topics::Topics;
use switchboard_relay::{Relay, RelayArgs};
use switchboard_telemetry::{AdminServer, Metrics, Readiness, Shutdown};
use switchboard_wiring::BrokerArgs;

#[derive(Debug, Parser)]
#[command(version, about = "switchboard relay: Kafka requests → gRPC processor")]
struct Cli {
    #[command(flatten)]
    topics: Topics,
    #[command(flatten)]
    relay: RelayArgs,
    /// Where the processor serves gRPC.
    #[arg(long, env = "PROCESSOR_ADDR", default_value = switchboard_names::PROCESSOR_ADDR)]
    processor_addr: SocketAddr,
    #[command(flatten)]
    processor_tls: switchboard_proto::tls::GrpcClientTlsArgs,
    /// Admin HTTP address: /healthz, /readyz, /metrics.
    #[arg(long, env = "SWITCHBOARD_ADMIN_ADDR", default_value = switchboard_names::RELAY_ADMIN_ADDR)]
    admin_addr: SocketAddr,
    #[command(flatten)]
    brokers: BrokerArgs,
}

// mimalloc instead of glibc malloc: fewer CPU µs per transaction (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    switchboard_telemetry::init_logging("relay");
    let cli = Cli::parse();
    if let Err(e) = smol::block_on(run(cli)) {
        eprintln!("relay: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = Shutdown::from_env()?;
    let mut config = cli.relay.config(&cli.topics)?;
    let (metrics, readiness) = (Metrics::new("relay"), Readiness::new());
    config.metrics = metrics.clone();
    config.readiness = readiness.clone();
    // A broken admin listener triggers the shutdown and fails the run (exit 1).
    let admin = AdminServer::bind(cli.admin_addr, metrics, readiness).await.context("admin port")?.spawn(&shutdown);

    let ports = cli.brokers.require_kafka("relay", &[&cli.topics.requests, &cli.topics.requests_dlq]).await?;
    let tls = cli.processor_tls.load().context("processor TLS")?;
    if let Some(tls) = &tls {
        grpcio::redirect_log();
        log::info!(
            "calling the processor over TLS ({})",
            if tls.is_mutual() { "mutual" } else { "server-authenticated" }
        );
    }
    let client = switchboard_proto::client::processor_client_tls(&cli.processor_addr.to_string(), tls.as_ref());
    let relay = Relay::new(config, ports.requests, ports.publisher.clone(), client).subscribe().await?;
    // Runs until the signal; after it the relay finishes what it holds, bounded by the grace
    // period (which starts at the signal, not at start-up).
    let mut run = Box::pin(relay.run(shutdown.wait()));
    let before_signal = async { Some(run.as_mut().await) }.or(async {
        shutdown.wait().await;
        None
    });
    match before_signal.await {
        Some(result) => {
            result?;
            // Consuming ended on its own: exit non-zero rather than idle with a dead relay.
            if !shutdown.is_triggered() {
                ports.publisher.close().await?;
                anyhow::bail!("the relay stopped consuming before any shutdown signal");
            }
        }
        None => match shutdown.within_grace(run).await {
            Ok(result) => result?,
            Err(_) => log::warn!("grace period over: requests still in flight are left to the next relay"),
        },
    }
    ports.publisher.close().await?;
    admin.await.context("admin server")?;
    Ok(())
}

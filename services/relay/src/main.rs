//! `relay`: consumes requests from Kafka and calls the processor over gRPC.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use switchboard_grpc::tls::ProcessorClientArgs;
use switchboard_relay::{Relay, RelayArgs};
use switchboard_service::{Service, ServiceArgs};
use switchboard_topology::Topics;
use switchboard_wiring::BrokerArgs;

#[derive(Debug, Parser)]
#[command(version, about = "switchboard relay: Kafka requests → gRPC processor", long_about = None)]
struct Cli {
    #[command(flatten)]
    names: Topics,
    #[command(flatten)]
    args: RelayArgs,
    #[command(flatten)]
    processor: ProcessorClientArgs,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
}

switchboard_service::service_main!("relay", run);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = cli.args.config(&cli.names)?;
    let service = Service::start("relay", &cli.service, switchboard_topology::RELAY_ADMIN_ADDR).await?;
    config.metrics = service.metrics.clone();
    config.readiness = service.readiness.clone();
    let exporter = switchboard_otlp::Exporter::from_env()?;
    config.tracer = exporter.tracer("relay", env!("CARGO_PKG_VERSION"), &service.metrics);
    let ports = cli.brokers.require_kafka("relay", &[&cli.names.requests, &cli.names.requests_dlq]).await?;
    let client = cli.processor.connect().context("processor TLS")?;
    let relay = Relay::new(config, ports.requests, ports.publisher.clone(), client).subscribe().await?;
    // After the signal the relay finishes what it holds; what is left past the grace period
    // goes to the next relay.
    let consumed = service.drain_within_grace("relay", async { Ok(relay.run(service.shutdown.wait()).await?) }).await;
    ports.publisher.close().await?;
    consumed?;
    exporter.shutdown();
    service.finish().await
}

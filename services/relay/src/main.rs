//! `relay`: consumes requests from Kafka and calls the processor over gRPC.

use anyhow::Context;
use clap::Parser;
use switchboard_names::Topics;
use switchboard_proto::tls::ProcessorClientArgs;
use switchboard_relay::{Relay, RelayArgs};
use switchboard_scaffold::{Service, ServiceArgs};
use switchboard_wiring::BrokerArgs;

#[derive(Debug, Parser)]
#[command(version, about = "switchboard relay: Kafka requests → gRPC processor")]
struct Cli {
    #[command(flatten)]
    topics: Topics,
    #[command(flatten)]
    relay: RelayArgs,
    #[command(flatten)]
    processor: ProcessorClientArgs,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
}

switchboard_scaffold::service_main!("relay", run);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = cli.relay.config(&cli.topics)?;
    let service = Service::start("relay", &cli.service, switchboard_names::RELAY_ADMIN_ADDR).await?;
    config.metrics = service.metrics.clone();
    config.readiness = service.readiness.clone();
    let ports = cli.brokers.require_kafka("relay", &[&cli.topics.requests, &cli.topics.requests_dlq]).await?;
    let client = cli.processor.connect().context("processor TLS")?;
    let relay = Relay::new(config, ports.requests, ports.publisher.clone(), client).subscribe().await?;
    // After the signal the relay finishes what it holds; what is left past the grace period
    // goes to the next relay.
    let consumed = service.drain_within_grace("relay", async { Ok(relay.run(service.shutdown.wait()).await?) }).await;
    ports.publisher.close().await?;
    consumed?;
    service.finish().await
}

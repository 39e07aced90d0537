//! `relay`: consumes requests from Kafka and calls the processor over gRPC.

use anyhow::Context;
use switchboard_relay::{Relay, RelayArgs};
use switchboard_service::Service;
use switchboard_topology::Topics;
use switchboard_wiring::CallerCli;

switchboard_service::service_main!("relay", run, about = "switchboard relay: Kafka requests → gRPC processor");

async fn run(cli: CallerCli<Topics, RelayArgs>) -> anyhow::Result<()> {
    let mut config = cli.args.config(&cli.names)?;
    let service = Service::start("relay", &cli.service, switchboard_topology::RELAY_ADMIN_ADDR).await?;
    config.metrics = service.metrics.clone();
    config.readiness = service.readiness.clone();
    let ports = cli.brokers.require_kafka("relay", &[&cli.names.requests, &cli.names.requests_dlq]).await?;
    let client = cli.processor.connect().context("processor TLS")?;
    let relay = Relay::new(config, ports.requests, ports.publisher.clone(), client).subscribe().await?;
    // After the signal the relay finishes what it holds; what is left past the grace period
    // goes to the next relay.
    let consumed = service.drain_within_grace("relay", async { Ok(relay.run(service.shutdown.wait()).await?) }).await;
    ports.publisher.close().await?;
    consumed?;
    service.finish().await
}

//! `processor`: the gRPC processor deployed alone; publishes replies to Kafka.

use anyhow::Context;
use clap::Parser;
use switchboard_processor::{ProcessorArgs, ProcessorServer};
use switchboard_service::{Service, ServiceArgs};
use switchboard_topology::Topics;
use switchboard_wiring::BrokerArgs;

#[derive(Debug, Parser)]
#[command(version, about = "switchboard processor: gRPC Process → reply on Kafka")]
struct Cli {
    #[command(flatten)]
    topics: Topics,
    #[command(flatten)]
    processor: ProcessorArgs,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    tls: switchboard_grpc::tls::GrpcServerTlsArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
}

switchboard_service::service_main!("processor", run);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let service = Service::start("processor", &cli.service, switchboard_topology::PROCESSOR_ADMIN_ADDR).await?;
    let ports = cli.brokers.require_kafka("processor", &[&cli.topics.replies]).await?;
    let mut config = cli.processor.config();
    config.metrics = service.metrics.clone();
    config.reply_topics = cli.topics.reply_allow_list();
    config.tls = cli.tls.load().context("processor TLS")?;
    if config.tls.is_some() {
        // gRPC core's own log lines (refused handshakes among them) into ours.
        grpcio::redirect_log();
    }
    let server = ProcessorServer::start(&config, ports.publisher.clone())?;
    // grpcio serves on its own threads until the signal; its shutdown waits for the calls in
    // flight, within the grace period.
    let serving = async {
        service.shutdown.wait().await;
        server.shutdown().await;
        Ok(())
    };
    service.drain_within_grace("processor", serving).await?;
    ports.publisher.close().await?;
    service.finish().await
}

//! `worker`: consumes jobs from RabbitMQ (`AMQP_URL`) and runs them through the processor.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use switchboard_grpc::tls::ProcessorClientArgs;
use switchboard_resilience::CircuitBreaker;
use switchboard_service::{Service, ServiceArgs};
use switchboard_topology::JobNames;
use switchboard_wiring::BrokerArgs;
use switchboard_worker::{Worker, WorkerArgs};

#[derive(Debug, Parser)]
#[command(version, about = "switchboard worker: RabbitMQ jobs → gRPC processor → job events", long_about = None)]
struct Cli {
    #[command(flatten)]
    names: JobNames,
    #[command(flatten)]
    args: WorkerArgs,
    #[command(flatten)]
    processor: ProcessorClientArgs,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
}

switchboard_service::service_main!("worker", run);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let breaker = CircuitBreaker::new(cli.args.breaker.config()?);
    let service = Service::start("worker", &cli.service, switchboard_topology::WORKER_ADMIN_ADDR).await?;
    switchboard_telemetry::ready_unless_open(&service.readiness, "processor", &breaker, "processor breaker open");
    let queues = cli.brokers.require_amqp("worker").await?;
    let client = cli.processor.connect().context("processor TLS")?;
    let exporter = switchboard_otlp::Exporter::from_env()?;
    let config =
        cli.args.config(&cli.names).with_tracer(exporter.tracer("worker", env!("CARGO_PKG_VERSION"), &service.metrics));
    let worker =
        Worker::new(config, queues.queue.clone(), queues.fanout, client, breaker).with_metrics(service.metrics.clone());
    // The worker bounds its own drain: jobs unsettled after the grace period go back to the queue.
    let consumed = service
        .until_signal("worker", async { Ok(worker.run(service.shutdown.wait(), cli.service.shutdown.grace).await?) })
        .await;
    queues.queue.close().await?;
    exporter.shutdown();
    consumed?;
    service.finish().await
}

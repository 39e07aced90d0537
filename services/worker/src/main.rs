//! `worker`: consumes jobs from RabbitMQ (`AMQP_URL`) and runs them through the processor.

use anyhow::Context;
use clap::Parser;
use switchboard_names::JobNames;
use switchboard_proto::tls::ProcessorClientArgs;
use switchboard_resilience::CircuitBreaker;
use switchboard_scaffold::{Service, ServiceArgs};
use switchboard_wiring::BrokerArgs;
use switchboard_worker::{Worker, WorkerArgs};

#[derive(Debug, Parser)]
#[command(version, about = "switchboard worker: RabbitMQ jobs → gRPC processor → job events")]
struct Cli {
    #[command(flatten)]
    names: JobNames,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    processor: ProcessorClientArgs,
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
}

switchboard_scaffold::service_main!("worker", run);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let breaker = CircuitBreaker::new(cli.worker.breaker.config()?);
    let service = Service::start("worker", &cli.service, switchboard_names::WORKER_ADMIN_ADDR).await?;
    switchboard_telemetry::ready_unless_open(&service.readiness, "processor", &breaker, "processor breaker open");
    let queues = cli.brokers.require_amqp("worker").await?;
    let client = cli.processor.connect().context("processor TLS")?;
    let worker = Worker::new(cli.worker.config(&cli.names), queues.queue.clone(), queues.fanout, client, breaker)
        .with_metrics(service.metrics.clone());
    // The worker bounds its own drain: jobs unsettled after the grace period go back to the queue.
    let consumed = service
        .until_signal("worker", async { Ok(worker.run(service.shutdown.wait(), cli.service.shutdown.grace).await?) })
        .await;
    queues.queue.close().await?;
    consumed?;
    service.finish().await
}

//! `worker`: consumes jobs from RabbitMQ (`AMQP_URL`) and runs them through the processor.

use anyhow::Context;
use switchboard_resilience::CircuitBreaker;
use switchboard_service::Service;
use switchboard_topology::JobNames;
use switchboard_wiring::CallerCli;
use switchboard_worker::{Worker, WorkerArgs};

switchboard_service::service_main!(
    "worker",
    run,
    about = "switchboard worker: RabbitMQ jobs → gRPC processor → job events"
);

async fn run(cli: CallerCli<JobNames, WorkerArgs>) -> anyhow::Result<()> {
    let breaker = CircuitBreaker::new(cli.args.breaker.config()?);
    let service = Service::start("worker", &cli.service, switchboard_topology::WORKER_ADMIN_ADDR).await?;
    switchboard_telemetry::ready_unless_open(&service.readiness, "processor", &breaker, "processor breaker open");
    let queues = cli.brokers.require_amqp("worker").await?;
    let client = cli.processor.connect().context("processor TLS")?;
    let worker = Worker::new(cli.args.config(&cli.names), queues.queue.clone(), queues.fanout, client, breaker)
        .with_metrics(service.metrics.clone());
    // The worker bounds its own drain: jobs unsettled after the grace period go back to the queue.
    let consumed = service
        .until_signal("worker", async { Ok(worker.run(service.shutdown.wait(), cli.service.shutdown.grace).await?) })
        .await;
    queues.queue.close().await?;
    consumed?;
    service.finish().await
}

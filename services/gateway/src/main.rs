//! `gateway`: the REST edge deployed alone, on Kafka (`KAFKA_BROKERS`); with `AMQP_URL` set it
//! also serves the jobs API on RabbitMQ.

use clap::Parser;
use switchboard_gateway::{Gateway, GatewayArgs, JobsArgs};
use switchboard_service::ShutdownArgs;
use switchboard_topology::topics::Topics;
use switchboard_wiring::BrokerArgs;

#[derive(Debug, Parser)]
#[command(version, about = "switchboard gateway: POST /messages over Kafka; /healthz, /readyz, /metrics")]
struct Cli {
    #[command(flatten)]
    topics: Topics,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(flatten)]
    jobs: JobsArgs,
    #[command(flatten)]
    shutdown: ShutdownArgs,
}

switchboard_service::service_main!("gateway", run);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = cli.shutdown.install()?;
    let mut config = cli.gateway.config(&cli.topics)?;
    cli.gateway.security.apply(&mut config)?;
    config.grace = shutdown.grace_period();
    if let Some(id) = &cli.brokers.instance_id {
        config.instance_id = id.clone();
    }
    let ports = cli.brokers.require_kafka("gateway", &[&cli.topics.requests, &cli.topics.replies]).await?;
    let mut gateway = Gateway::bind(config, ports.publisher.clone(), ports.replies).await?;
    // The jobs API needs RabbitMQ; without AMQP_URL the gateway serves /messages only.
    let queues = match cli.brokers.rabbitmq().await.transpose()? {
        Some(queues) => {
            let jobs = cli.jobs.config();
            gateway = gateway.with_jobs(jobs, queues.queue.clone(), queues.fanout.clone()).await?;
            Some(queues)
        }
        None => {
            log::info!("no AMQP_URL: /jobs is not served");
            None
        }
    };
    // Serves until SIGTERM/SIGINT, then drains requests in flight within the grace period.
    gateway.serve(shutdown.wait()).await?;
    ports.publisher.close().await?;
    if let Some(queues) = queues {
        queues.queue.close().await?;
    }
    Ok(())
}

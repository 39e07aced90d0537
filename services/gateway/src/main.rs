//! `gateway`: the REST edge deployed alone, on Kafka (`KAFKA_BROKERS`); with `AMQP_URL` set it
//! also serves the jobs API on RabbitMQ.

use clap::Parser;
use switchboard_gateway::{Gateway, GatewayArgs, JobsArgs};
use switchboard_names::topics::Topics;
use switchboard_names::JobNames;
use switchboard_telemetry::Shutdown;
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
    job_names: JobNames,
    #[command(flatten)]
    jobs: JobsArgs,
}

// mimalloc instead of glibc malloc: fewer CPU µs per transaction (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    switchboard_telemetry::init_logging("gateway");
    let cli = Cli::parse();
    if let Err(e) = smol::block_on(run(cli)) {
        eprintln!("gateway: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = Shutdown::from_env()?;
    let mut config = cli.gateway.config(&cli.topics)?;
    cli.gateway.security.apply(&mut config)?;
    config.grace = shutdown.grace_period();
    let ports = cli.brokers.require_kafka("gateway", &[&cli.topics.requests, &cli.topics.replies]).await?;
    let mut gateway = Gateway::bind(config, ports.publisher.clone(), ports.replies).await?;
    // The jobs API needs RabbitMQ; without AMQP_URL the gateway serves /messages only.
    let queues = match cli.brokers.rabbitmq().await.transpose()? {
        Some(queues) => {
            let jobs = cli.jobs.config(&cli.job_names);
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

//! `switchboard`: every service in one process. With no broker configured the broker is the
//! embedded one; the services still talk as deployed (broker hops, real gRPC).

#![forbid(unsafe_code)]

mod dlq;

use std::net::SocketAddr;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use switchboard::{Chain, ChainConfig, ChainJobs, HttpClient};
use switchboard_console::{ConsoleArgs, ConsoleConfig, Sources};
use switchboard_gateway::{route_table, GatewayArgs, GatewayConfig, JobsArgs};
use switchboard_ports::QueueOptions;
use switchboard_processor::ProcessorArgs;
use switchboard_relay::RelayArgs;
use switchboard_service::ShutdownArgs;
use switchboard_telemetry::Metrics;
use switchboard_topology::topics::Topics;
use switchboard_wiring::BrokerArgs;
use switchboard_worker::WorkerArgs;

#[derive(Debug, Parser)]
#[command(version, about = "All switchboard services in one process (embedded broker unless one is configured)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    topics: Topics,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    relay: RelayArgs,
    #[command(flatten)]
    processor: ProcessorArgs,
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(flatten)]
    jobs: JobsArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    console: ConsoleArgs,
    #[command(flatten)]
    shutdown: ShutdownArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until SIGINT/SIGTERM (the default).
    Run,
    /// Start the chain on free ports, send one message, print the reply, exit.
    Demo {
        /// The message to send.
        #[arg(default_value = "hello world")]
        message: String,
    },
    /// Dead letters: list, show, redrive, purge (on Kafka and RabbitMQ).
    Dlq(Box<dlq::DlqCli>),
}

mod console;

switchboard_service::service_main!("switchboard", run);

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Some(Command::Dlq(_))) {
        let Some(Command::Dlq(dlq)) = cli.command.take() else { unreachable!("matched above") };
        return dlq.run().await;
    }
    let ports = cli.brokers.connect(&cli.topics.all()).await?;
    let kind = ports.kind;
    // Jobs on RabbitMQ when AMQP_URL is set, else on the embedded work queue.
    let queues = cli.brokers.connect_queues().await?;
    // The console reads the same brokers the services use: the retry queues of the delays the
    // chain declares the jobs queue with, and the depths from RabbitMQ's management API if given.
    let retry_queues = queues.retry_queues(&cli.jobs.names.jobs_queue, &QueueOptions::default());
    let queue_depths = match &cli.console.rabbitmq_management_url {
        Some(url) => Some(cli.brokers.rabbitmq_management(url, ConsoleConfig::default().scrape_timeout)?),
        None => queues.inspect.clone(),
    };
    let console_sources = Sources {
        topics: ports.inspect.clone(),
        queues: queue_depths,
        fanout: Some(queues.fanout.clone()),
        dead_letters: Some(std::sync::Arc::new(switchboard_dead_letters::HttpApi::new(
            switchboard::dead_letters(
                Some(&ports),
                Some(&queues),
                &cli.topics.requests_dlq,
                &cli.jobs.names.jobs_queue,
                switchboard_dead_letters::Settings::default(),
            ),
            cli.console.allow_redrive,
        ))),
    };
    let jobs = ChainJobs {
        gateway: cli.jobs.config(),
        worker: cli.worker.config(&cli.jobs.names),
        breaker: cli.worker.breaker.config()?,
        ..ChainJobs::new(queues)
    };
    let mut config = ChainConfig {
        gateway: GatewayConfig {
            metrics: Metrics::builder("switchboard").routes(route_table::templates()).build(),
            ..cli.gateway.config(&cli.topics)?
        },
        relay: cli.relay.config(&cli.topics)?,
        processor: cli.processor.config(),
        without_processor: false,
        jobs: Some(jobs),
    };
    cli.gateway.security.apply(&mut config.gateway)?;
    // The OpenTelemetry variables; with none set, `run` exports to its own console (every
    // trace kept) and `demo`, which has no console, exports nothing.
    let mut export = switchboard_otlp::ExportConfig::from_env()?;
    if matches!(cli.command, None | Some(Command::Run)) {
        export = export.or_local_viewer(&format!("http://{}", cli.console.console_addr));
    }
    let exporter = switchboard_otlp::Exporter::start(export)?;
    let config = config.traced_by(&exporter);
    let result = serve(cli, config, ports, kind, console_sources, retry_queues).await;
    exporter.shutdown();
    result
}

async fn serve(
    mut cli: Cli,
    mut config: ChainConfig,
    ports: switchboard_wiring::PubSub,
    kind: &str,
    console_sources: Sources,
    retry_queues: Vec<String>,
) -> anyhow::Result<()> {
    match cli.command.take().unwrap_or(Command::Run) {
        Command::Run => {
            let shutdown = cli.shutdown.install()?;
            config.gateway.grace = shutdown.grace_period();
            let seen = console::FromChain {
                auth: config.gateway.auth.clone(),
                gateway_https: config.gateway.tls.is_some(),
                retry_queues,
            };
            let chain = Chain::start_on(config, ports).await?;
            log::info!(
                "switchboard up: REST on http://{}, gRPC on {} ({kind} broker)",
                chain.gateway_addr(),
                chain.processor_addr()
            );
            let console = console::start(
                &cli.console,
                &cli.topics,
                &cli.jobs.names,
                &cli.relay.relay_group,
                seen,
                &chain,
                console_sources,
            )
            .await;
            let stop = async {
                shutdown.wait().await;
                None
            };
            let failed = futures_lite::future::or(stop, async { Some(chain.exited().await) }).await;
            if let Some(service) = failed {
                log::error!("the {service} stopped on its own: shutting down the rest");
                chain.stop().await;
                bail!("the {service} stopped serving before any shutdown signal");
            }
            log::info!("shutting down: draining requests in flight");
            drop(console);
            chain.stop().await;
            Ok(())
        }
        Command::Demo { message } => {
            // Free ports: the demo must not collide with a chain already serving.
            config.gateway.addr = SocketAddr::new(config.gateway.addr.ip(), 0);
            config.processor.addr = SocketAddr::new(config.processor.addr.ip(), 0);
            let chain = Chain::start_on(config, ports).await?;
            let mut client = HttpClient::new(chain.gateway_addr());
            let reply = client.post_json("/messages", &serde_json::json!({ "message": message })).await?;
            let job = demo_job(&mut client, &message).await;
            chain.stop().await;
            // The hop log above the reply, as the Go example's transaction log shows it.
            switchboard_telemetry::flush_logs();
            println!("HTTP {}", reply.status);
            println!("{}", reply.body);
            if reply.status != 200 {
                bail!("the chain answered {}", reply.status);
            }
            let (id, result) = job?;
            println!("\njob {id} (POST /jobs, then GET /jobs/{id}): {result}");
            let text = reply.json()["message"].as_str().context("reply without message")?.to_string();
            println!("\n\"{text}\"");
            println!(
                "\nWatch the chain live: `switchboard run` (make run-all), then open http://{} and send messages to http://{}/messages",
                cli.console.console_addr, cli.gateway.gateway_addr
            );
            Ok(())
        }
        Command::Dlq(_) => unreachable!("handled above"),
    }
}

/// Sends `message` as a job and polls its status until it is done; returns its id and result.
async fn demo_job(client: &mut HttpClient, message: &str) -> anyhow::Result<(String, String)> {
    let accepted = client.post_json("/jobs", &serde_json::json!({ "message": message })).await?;
    if accepted.status != 202 {
        bail!("POST /jobs answered {}: {}", accepted.status, accepted.body);
    }
    let id = accepted.json()["id"].as_str().context("202 without id")?.to_string();
    let started = std::time::Instant::now();
    loop {
        let status = client.get(&format!("/jobs/{id}")).await?.json();
        match status["status"].as_str() {
            Some("done") => return Ok((id, status["result"].as_str().unwrap_or_default().to_string())),
            Some("failed") => bail!("job {id} failed: {}", status["error"]),
            _ if started.elapsed() > std::time::Duration::from_secs(10) => bail!("job {id} not done in 10 s"),
            _ => {
                smol::Timer::after(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

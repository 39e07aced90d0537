//! `console`: the console deployed alone, beside the separate services.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use switchboard_console::{Console, ConsoleArgs, Sources};
use switchboard_dead_letters::{DeadLetters, HttpApi, Settings, Source, SourceKind};
use switchboard_ports::QueueOptions;
use switchboard_service::ShutdownArgs;
use switchboard_topology::{JobNames, Topics};
use switchboard_wiring::BrokerArgs;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "The switchboard console: transactions, services, brokers, jobs and dead letters in a browser"
)]
struct Cli {
    #[command(flatten)]
    console: ConsoleArgs,
    #[command(flatten)]
    topics: Topics,
    #[command(flatten)]
    jobs: JobNames,
    /// Consumer group of the relays, whose lag on the requests topic is shown.
    #[arg(long, env = "SWITCHBOARD_RELAY_GROUP", default_value = switchboard_topology::RELAY_GROUP)]
    relay_group: String,
    /// File of accepted bearer tokens' SHA-256 (hex, one per line): with it every page and
    /// API call needs a token (or the login cookie).
    #[arg(long, env = "SWITCHBOARD_AUTH_TOKENS_FILE")]
    auth_tokens_file: Option<PathBuf>,
    #[command(flatten)]
    brokers: BrokerArgs,
    #[command(flatten)]
    shutdown: ShutdownArgs,
}

switchboard_service::service_main!("console", run);

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = cli.console.config();
    config.watched.topics = vec![(cli.topics.requests.clone(), cli.relay_group.clone())];
    config.watched.requests_dlq = cli.topics.requests_dlq.clone();
    let jobs_dlq_name = switchboard_ports::dead_letter_queue(&cli.jobs.jobs_queue);
    config.watched.jobs_queue(&cli.jobs.jobs_queue, Vec::new());
    config.job_events_exchange = cli.jobs.job_events_exchange.clone();
    if let Some(path) = &cli.auth_tokens_file {
        config.auth = Some(switchboard_gateway::BearerTokens::from_file(path, true).context("console tokens")?);
    }
    let mut sources = Sources::default();
    match cli.brokers.kafka_inspector() {
        Some(inspector) => sources.topics = Some(inspector?),
        None => log::info!("no KAFKA_BROKERS: topic lag not shown"),
    }
    // Dead letters through the same operations as `switchboard dlq`, under its group.
    let mut dead = Vec::new();
    if let Some(browse) = cli.brokers.kafka_dead_letters(switchboard_topology::DEAD_LETTER_GROUP) {
        dead.push(Source { kind: SourceKind::Requests, dlq: cli.topics.requests_dlq.clone(), browse: browse? });
    }
    match cli.brokers.rabbitmq().await {
        Some(queues) => {
            let queues = queues?;
            // The retry queues of the delays gateways and workers declare the jobs queue with
            // (QueueOptions' defaults: no flag changes them), so only those are read.
            let retry_queues = queues.retry_queues(&cli.jobs.jobs_queue, &QueueOptions::default());
            config.watched.jobs_queue(&cli.jobs.jobs_queue, retry_queues);
            sources.queues = queues.inspect;
            sources.fanout = Some(queues.fanout);
            dead.push(Source { kind: SourceKind::Jobs, dlq: jobs_dlq_name.clone(), browse: queues.dead_letters });
        }
        None => log::info!("no AMQP_URL: queue depths and jobs not shown"),
    }
    if let Some(url) = &cli.console.rabbitmq_management_url {
        // Depths with unacked messages, instead of AMQP's ready messages only.
        sources.queues = Some(cli.brokers.rabbitmq_management(url, config.scrape_timeout)?);
    }
    if !dead.is_empty() {
        let ops = DeadLetters::new(dead, Settings::default());
        sources.dead_letters = Some(Arc::new(HttpApi::new(ops, cli.console.allow_redrive)));
    }
    let shutdown = cli.shutdown.install()?;
    let console = Console::bind(config, sources).await?;
    log::info!("console on http://{}", console.local_addr()?);
    console.serve(shutdown.wait()).await.context("console listener")?;
    Ok(())
}

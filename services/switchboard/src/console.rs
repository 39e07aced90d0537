//! The console beside the in-process services: every service's scrape target is the gateway's
//! port (one process, one registry), and the brokers are read through the same ports.

use switchboard::Chain;
use switchboard_console::{Console, ConsoleArgs, Sources, Target};
use switchboard_gateway::BearerTokens;
use switchboard_topology::{JobNames, Topics};

/// The console's serving task; dropping it stops the console.
pub(crate) type Running = Option<smol::Task<std::io::Result<()>>>;

/// What the console takes from the chain's own settings.
pub(crate) struct FromChain {
    /// The gateway's accepted tokens, for the console's own pages.
    pub auth: Option<BearerTokens>,
    /// The gateway serves HTTPS: its scrape target is `https://` (trusting --scrape-ca-file).
    pub gateway_https: bool,
    /// The jobs queue's retry queues, shown beside it.
    pub retry_queues: Vec<String>,
}

/// Starts the console and logs its URL. A console that cannot start (its port taken) is
/// logged and left out: the chain serves without it.
pub(crate) async fn start(
    args: &ConsoleArgs,
    topics: &Topics,
    jobs: &JobNames,
    relay_group: &str,
    seen: FromChain,
    chain: &Chain,
    sources: Sources,
) -> Running {
    let mut config = args.config();
    let gateway = chain.gateway_addr().to_string();
    for service in ["gateway", "relay", "processor", "worker"] {
        config.targets.push(Target { service: service.into(), addr: gateway.clone(), https: seen.gateway_https });
    }
    config.watched.topics = vec![(topics.requests.clone(), relay_group.to_owned())];
    config.watched.requests_dlq = topics.requests_dlq.clone();
    config.watched.jobs_queue(&jobs.jobs_queue, seen.retry_queues);
    config.job_events_exchange = jobs.job_events_exchange.clone();
    config.auth = seen.auth;
    match Console::bind(config, sources).await {
        Ok(console) => {
            match console.local_addr() {
                Ok(addr) => log::info!("console on http://{addr} (spans to http://{addr}/v1/traces)"),
                Err(e) => log::warn!("console: {e}"),
            }
            Some(smol::spawn(console.serve(futures_lite::future::pending())))
        }
        Err(e) => {
            log::warn!("no console: {}", switchboard_service::error_chain(&e));
            None
        }
    }
}

//! A bound console and the tasks that feed it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::TcpListener;
use switchboard_gateway::BearerTokens;
use switchboard_http_server::{serve_until, HttpLimits};
use switchboard_ports::{Fanout, InspectQueues, InspectTopics};

use crate::app::{Shared, State};
use crate::brokers::{Brokers, DeadLetterCounts, Watched};
use crate::client::ScrapeClient;
use crate::dead_letters::{DeadLetters, NoDeadLetters};
use crate::events::Hub;
use crate::jobs::Jobs;
use crate::scrape::{Scraper, Target};
use crate::store::Store;

/// How often services and brokers are read, and the overview pushed.
const TICK: Duration = Duration::from_secs(1);
/// How often changed transactions are pushed.
const FLUSH: Duration = Duration::from_millis(200);
/// Transactions pushed per flush at most; the page's list catches up with the rest.
const MAX_PUSHED: usize = 500;

/// The console's settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Listen address (loopback by default).
    pub addr: SocketAddr,
    /// Transactions kept.
    pub max_transactions: usize,
    /// Spans kept per transaction.
    pub max_spans: usize,
    /// Minutes of metric points kept per service.
    pub metrics_minutes: u32,
    /// Jobs kept.
    pub max_jobs: usize,
    /// Instances to scrape.
    pub targets: Vec<Target>,
    /// PEM CA bundle `https://` targets' certificates are checked against (`None`: the webpki
    /// roots).
    pub scrape_ca_file: Option<PathBuf>,
    /// File whose first line is the bearer token sent with every scrape (`None`: no token);
    /// read once at bind, never logged.
    pub scrape_token_file: Option<PathBuf>,
    /// Longest wait for one scrape or broker read.
    pub scrape_timeout: Duration,
    /// Topics, queues and dead letters shown.
    pub watched: Watched,
    /// The job-events fanout exchange.
    pub job_events_exchange: String,
    /// Accepted tokens; `None`: no authentication.
    pub auth: Option<BearerTokens>,
    /// Let a caller without a token redrive dead letters (only sensible on loopback).
    pub allow_redrive: bool,
    /// Time for a request head to arrive (and keep-alive idleness).
    pub header_timeout: Duration,
    /// Time for a body to arrive and a response to be taken; an event stream lasts 3/4 of it.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        let jobs = switchboard_topology::JOBS_QUEUE;
        ConsoleConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            max_transactions: 10_000,
            max_spans: 256,
            metrics_minutes: 15,
            max_jobs: 1000,
            targets: Vec::new(),
            scrape_ca_file: None,
            scrape_token_file: None,
            scrape_timeout: Duration::from_millis(800),
            watched: Watched {
                topics: vec![(switchboard_topology::REQUESTS_TOPIC.into(), switchboard_topology::RELAY_GROUP.into())],
                queues: vec![jobs.into(), switchboard_ports::dead_letter_queue(jobs)],
                requests_dlq: switchboard_topology::REQUESTS_DLQ_TOPIC.into(),
                jobs_dlq: switchboard_ports::dead_letter_queue(jobs),
            },
            job_events_exchange: switchboard_topology::JOB_EVENTS_EXCHANGE.into(),
            auth: None,
            allow_redrive: false,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

/// Where the console reads the brokers from; each part is optional.
#[derive(Default, Clone)]
pub struct Sources {
    /// Topic offsets and group lag (Kafka or the embedded broker).
    pub topics: Option<Arc<dyn InspectTopics>>,
    /// Queue depths (RabbitMQ or the embedded work queue).
    pub queues: Option<Arc<dyn InspectQueues>>,
    /// The job-events fanout.
    pub fanout: Option<Arc<dyn Fanout>>,
    /// The dead-letter API; `None`: it answers 503.
    pub dead_letters: Option<Arc<dyn DeadLetters>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("topics", &self.topics.is_some())
            .field("queues", &self.queues.is_some())
            .field("fanout", &self.fanout.is_some())
            .field("dead_letters", &self.dead_letters.is_some())
            .finish()
    }
}

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The scrape CA or token file; the text names the file, never the token.
    #[error("console: {0}")]
    Scrape(String),
    /// The console's address.
    #[error("console: cannot listen on {addr}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it cannot be listened on.
        source: io::Error,
    },
}

/// A bound console, ready to serve.
pub struct Console {
    listener: TcpListener,
    app: tide::Server<State>,
    limits: HttpLimits,
    tasks: Vec<smol::Task<()>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").field("addr", &self.listener.local_addr().ok()).finish_non_exhaustive()
    }
}

fn edges() -> Vec<[String; 2]> {
    use switchboard_topology::{JOBS_QUEUE, REPLIES_TOPIC, REQUESTS_TOPIC};
    [
        ["gateway", REQUESTS_TOPIC],
        [REQUESTS_TOPIC, "relay"],
        ["relay", "processor"],
        ["processor", REPLIES_TOPIC],
        [REPLIES_TOPIC, "gateway"],
        ["gateway", JOBS_QUEUE],
        [JOBS_QUEUE, "worker"],
        ["worker", "processor"],
    ]
    .iter()
    .map(|[a, b]| [a.to_string(), b.to_string()])
    .collect()
}

impl Console {
    /// Binds the listener, starts listening for job events (when a fanout is given) and the
    /// tasks that scrape and push; serving starts with [`serve`](Console::serve).
    pub async fn bind(config: ConsoleConfig, sources: Sources) -> Result<Console, BindError> {
        let client = ScrapeClient::load(config.scrape_ca_file.as_deref(), config.scrape_token_file.as_deref())
            .map_err(BindError::Scrape)?;
        let listener =
            TcpListener::bind(config.addr).await.map_err(|source| BindError::Listen { addr: config.addr, source })?;
        let shared = Arc::new(Shared {
            store: Store::new(config.max_transactions, config.max_spans),
            scraper: Scraper::new(
                config.targets.clone(),
                client,
                config.scrape_timeout,
                (config.metrics_minutes as usize).saturating_mul(60),
            ),
            brokers: Brokers::new(config.watched.clone(), sources.topics, sources.queues, config.scrape_timeout),
            jobs: Jobs::new(config.max_jobs),
            hub: Hub::default(),
            tokens: config.auth.clone(),
            allow_redrive: config.allow_redrive,
            dead_letters: sources.dead_letters.unwrap_or_else(|| Arc::new(NoDeadLetters)),
            edges: edges(),
            stream_lifetime: config.body_timeout.mul_f32(0.75).max(Duration::from_secs(1)),
            spans_received: AtomicU64::new(0),
            spans_refused: AtomicU64::new(0),
        });
        let mut tasks = vec![smol::spawn(tick(shared.clone())), smol::spawn(flush(shared.clone()))];
        if let Some(fanout) = sources.fanout {
            match fanout.listen(&config.job_events_exchange).await {
                Ok(listener) => tasks.push(smol::spawn(follow_jobs(listener, shared.clone()))),
                Err(e) => log::warn!("console: no jobs view, cannot listen to {}: {e}", config.job_events_exchange),
            }
        }
        let limits = HttpLimits {
            max_connections: config.max_connections,
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            allow: |_| None,
            tls: None,
        };
        Ok(Console { listener, app: crate::app::app(shared), limits, tasks })
    }

    /// The bound address (with the real port when 0 was asked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes. Returns an error if the listener broke first.
    pub async fn serve(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let Console { listener, app, limits, tasks } = self;
        let endpoint = move |req| {
            let app = app.clone();
            async move { app.respond(req).await }
        };
        let spawn = |conn| smol::spawn(conn).detach();
        let outcome = serve_until("console", &listener, &limits, spawn, endpoint, stop).await;
        drop(tasks);
        outcome
    }
}

/// Each second: scrape the services and read the brokers, then push the overview (and the
/// dead-letter counts when they changed).
async fn tick(state: State) {
    let mut last_counts: Option<DeadLetterCounts> = None;
    loop {
        let started = std::time::Instant::now();
        futures_lite::future::zip(state.scraper.tick(), state.brokers.tick()).await;
        if state.hub.clients() > 0 {
            let overview = crate::api::overview(&state);
            state.hub.publish("overview", &overview.to_string());
        }
        let counts = state.brokers.view().dead_letters;
        if last_counts != Some(counts) {
            state.hub.publish("dead-letters", &serde_json::to_string(&counts).unwrap_or_default());
            last_counts = Some(counts);
        }
        async_io::Timer::after(TICK.saturating_sub(started.elapsed())).await;
    }
}

/// Pushes the transactions that changed since the last flush.
async fn flush(state: State) {
    loop {
        async_io::Timer::after(FLUSH).await;
        let changed = state.store.take_changed();
        if state.hub.clients() == 0 {
            continue;
        }
        for tx in changed.iter().rev().take(MAX_PUSHED).rev() {
            let summary = crate::transaction::summary(tx);
            state.hub.publish("transaction", &serde_json::to_string(&summary).unwrap_or_default());
        }
    }
}

/// Applies every job event heard and pushes the job as it now stands.
async fn follow_jobs(listener: switchboard_ports::FanoutListener, state: State) {
    while let Some(message) = listener.recv().await {
        let traceparent = message.header_str(switchboard_telemetry::TRACEPARENT);
        if let Some(job) = state.jobs.apply(&message.payload, traceparent, crate::scrape::unix_ms()) {
            state.hub.publish("job", &serde_json::to_string(&job).unwrap_or_default());
        }
    }
    log::warn!("console: the job-events listener ended; the jobs view no longer changes");
}

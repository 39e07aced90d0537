use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use log::warn;
use switchboard_gateway::{Gateway, GatewayConfig, JobsConfig};
use switchboard_ports::{Publisher, Subscriber};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_relay::RelayConfig;
use switchboard_resilience::CircuitBreaker;
use switchboard_telemetry::Metrics;
use switchboard_wiring::{PubSub, Queues};
use switchboard_worker::WorkerConfig;

/// The step of starting a [`Chain`] that a broker refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// The relay's subscription to the requests.
    RelayGroup,
    /// The worker's consumer on the jobs queue.
    WorkerConsumer,
    /// The gateway's listener or its replies subscription.
    Gateway,
    /// The gateway's jobs API.
    JobsApi,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::RelayGroup => "relay joining its group",
            Step::WorkerConsumer => "worker consuming jobs",
            Step::Gateway => "starting the gateway",
            Step::JobsApi => "starting the jobs API",
        })
    }
}

/// Why a [`Chain`] (or its processor, restarted) did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The processor's gRPC server; `restart`: by [`Chain::start_processor`].
    #[error("{} the processor", if *restart { "restarting" } else { "starting" })]
    Processor {
        /// Whether the processor was started again.
        restart: bool,
        /// Why gRPC refused.
        source: grpcio::Error,
    },
    /// A broker refused `0`.
    #[error("{0}")]
    Ports(Step, #[source] switchboard_ports::Error),
    /// The address the gateway listens on.
    #[error("the gateway's address")]
    GatewayAddr(#[source] io::Error),
}

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct ChainConfig {
    /// The gateway.
    pub gateway: GatewayConfig,
    /// The relay.
    pub relay: RelayConfig,
    /// The processor's server; the relay calls it at this address.
    pub processor: ServerConfig,
    /// Leave the processor out (the relay still calls `processor.addr`): for outage tests.
    pub without_processor: bool,
    /// The jobs API on the gateway and a worker, on these work-queue ports; `None`: no jobs.
    pub jobs: Option<ChainJobs>,
}

impl ChainConfig {
    /// Records the spans of the gateway, relay and processor through `exporter`, each under its
    /// own `service.name`, counted in the chain's (the gateway's) registry; and the worker's,
    /// when jobs are on.
    pub fn traced_by(mut self, exporter: &switchboard_otlp::Exporter) -> Self {
        let (metrics, version) = (&self.gateway.metrics, env!("CARGO_PKG_VERSION"));
        self.gateway.tracer = exporter.tracer_named("gateway", version, metrics);
        self.relay.tracer = exporter.tracer_named("relay", version, metrics);
        self.processor.tracer = exporter.tracer_named("processor", version, metrics);
        if let Some(jobs) = self.jobs.as_mut() {
            jobs.worker.tracer = exporter.tracer_named("worker", version, metrics);
        }
        self
    }
}

/// The jobs part of a chain: the gateway's `/jobs` and one worker, over one work queue.
#[derive(Debug, Clone)]
pub struct ChainJobs {
    /// The work queue and job-events fanout (embedded or RabbitMQ).
    pub queues: Queues,
    /// The gateway's jobs API; its queue options must match the worker's.
    pub gateway: JobsConfig,
    /// The worker.
    pub worker: WorkerConfig,
    /// The worker's breaker around processor calls.
    pub breaker: switchboard_resilience::Config,
}

impl ChainJobs {
    /// Defaults over `queues`.
    pub fn new(queues: Queues) -> Self {
        ChainJobs {
            queues,
            gateway: JobsConfig::default(),
            worker: WorkerConfig::default(),
            breaker: switchboard_resilience::Config::default(),
        }
    }

    /// Defaults over a fresh embedded work queue.
    pub fn embedded() -> Self {
        Self::new(Queues::embedded(switchboard_embedded::queue::MemoryWorkQueue::new()))
    }
}

/// A running chain.
pub struct Chain {
    gateway_addr: SocketAddr,
    processor_addr: SocketAddr,
    processor: Option<ProcessorServer>,
    processor_config: ServerConfig,
    grpc_env: Arc<grpcio::Environment>,
    publisher: Arc<dyn Publisher>,
    relay_breaker: CircuitBreaker,
    gateway_breaker: CircuitBreaker,
    metrics: Metrics,
    pending: Arc<switchboard_gateway::Pending>,
    stop_gateway: async_channel::Sender<()>,
    stop_relay: async_channel::Sender<()>,
    gateway_task: smol::Task<std::io::Result<()>>,
    relay_task: smol::Task<Result<(), switchboard_ports::Error>>,
    /// The worker's stop signal and task, when jobs are on.
    worker: Option<(async_channel::Sender<()>, ServiceTask)>,
    /// The name of each service whose task ended (by `stop` or on its own).
    exited: async_channel::Receiver<&'static str>,
}

/// `service`, which sends `name` on `exited` when it ends, however it ends.
fn watched<T>(
    name: &'static str,
    exited: &async_channel::Sender<&'static str>,
    service: impl std::future::Future<Output = T>,
) -> impl std::future::Future<Output = T> {
    let exited = exited.clone();
    async move {
        let outcome = service.await;
        let _ = exited.try_send(name);
        outcome
    }
}

/// A service running on its own task until told to stop.
type ServiceTask = smol::Task<Result<(), switchboard_ports::Error>>;

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("gateway_addr", &self.gateway_addr)
            .field("processor_addr", &self.processor_addr)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Starts processor, relay and gateway over one publisher and one subscriber (the embedded
    /// broker, where start positions do not matter).
    pub async fn start(
        config: ChainConfig,
        publisher: Arc<dyn Publisher>,
        subscriber: Arc<dyn Subscriber>,
    ) -> Result<Chain, ChainError> {
        let ports = PubSub {
            publisher,
            requests: subscriber.clone(),
            replies: subscriber,
            kind: "custom",
            dead_letters: None,
            inspect: None,
        };
        Self::start_on(config, ports).await
    }

    /// Starts processor, relay and gateway over `ports`.
    pub async fn start_on(mut config: ChainConfig, ports: PubSub) -> Result<Chain, ChainError> {
        let PubSub { publisher, requests, replies, .. } = ports;
        // One process, one registry and one readiness report, served by the gateway.
        config.relay.metrics = config.gateway.metrics.clone();
        config.relay.readiness = config.gateway.readiness.clone();
        config.processor.metrics = config.gateway.metrics.clone();
        // Replies go where this chain's gateway listens: the relay and processor allow it (and
        // what they were configured with), never a requests or dead-letter topic.
        config.relay.reply_topics = config.relay.reply_topics.clone().allow(&config.gateway.replies_topic);
        config.processor.reply_topics = config
            .processor
            .reply_topics
            .clone()
            .union(&config.relay.reply_topics)
            .deny(&config.gateway.requests_topic)
            .deny(&config.relay.requests_topic)
            .deny(&config.relay.dead_letter_topic);
        let metrics = config.gateway.metrics.clone();
        // Closing a channel wakes its receiver: a one-shot stop signal per service.
        let (stop_gateway, gateway_stopped) = async_channel::bounded::<()>(1);
        let (stop_relay, relay_stopped) = async_channel::bounded::<()>(1);
        let until = |rx: async_channel::Receiver<()>| async move {
            let _ = rx.recv().await;
        };
        let (exit, exited) = async_channel::bounded::<&'static str>(3);

        // One grpcio environment for the processor and its clients: a call's completion and
        // the server's arrival share a completion-queue thread instead of handing off.
        let grpc_env = Arc::new(grpcio::Environment::new(config.processor.threads.max(1)));
        let (processor, processor_addr) = if config.without_processor {
            (None, config.processor.addr)
        } else {
            let server = ProcessorServer::start_on(grpc_env.clone(), &config.processor, publisher.clone())
                .map_err(|source| ChainError::Processor { restart: false, source })?;
            let addr = server.local_addr();
            (Some(server), addr)
        };

        let client = switchboard_grpc::client::ProcessorClientBuilder::new(processor_addr.to_string())
            .environment(grpc_env.clone())
            .connect();
        let relay = switchboard_relay::Relay::new(config.relay, requests, publisher.clone(), client);
        let relay_breaker = relay.breaker();
        // Subscribed before the gateway takes requests, so none is published into a group
        // that does not exist yet.
        let relay = relay.subscribe().await.map_err(|e| ChainError::Ports(Step::RelayGroup, e))?;
        let relay_task = smol::spawn(watched("relay", &exit, relay.run(until(relay_stopped))));

        // The worker consumes before the gateway takes jobs.
        let jobs = config.jobs.take();
        let worker = match &jobs {
            Some(jobs) => {
                let client = switchboard_grpc::client::ProcessorClientBuilder::new(processor_addr.to_string())
                    .environment(grpc_env.clone())
                    .connect();
                let worker = switchboard_worker::Worker::new(
                    jobs.worker.clone(),
                    jobs.queues.queue.clone(),
                    jobs.queues.fanout.clone(),
                    client,
                    CircuitBreaker::new(jobs.breaker.clone()),
                )
                .with_metrics(metrics.clone());
                let worker = worker.start().await.map_err(|e| ChainError::Ports(Step::WorkerConsumer, e))?;
                let (stop, stopped) = async_channel::bounded::<()>(1);
                let run = worker.run(until(stopped), config.gateway.grace);
                Some((stop, smol::spawn(watched("worker", &exit, run))))
            }
            None => None,
        };

        let gateway = Gateway::bind(config.gateway, publisher.clone(), replies)
            .await
            .map_err(|e| ChainError::Ports(Step::Gateway, e))?;
        let gateway = match jobs {
            Some(jobs) => gateway
                .with_jobs(jobs.gateway, jobs.queues.queue, jobs.queues.fanout)
                .await
                .map_err(|e| ChainError::Ports(Step::JobsApi, e))?,
            None => gateway,
        };
        let gateway_breaker = gateway.breaker();
        let gateway_addr = gateway.local_addr().map_err(ChainError::GatewayAddr)?;
        let pending = gateway.pending();
        let gateway_task = smol::spawn(watched("gateway", &exit, gateway.serve(until(gateway_stopped))));

        let processor_config = ServerConfig { addr: processor_addr, ..config.processor };
        Ok(Chain {
            gateway_addr,
            processor_addr,
            processor,
            processor_config,
            grpc_env,
            publisher,
            relay_breaker,
            gateway_breaker,
            metrics,
            pending,
            stop_gateway,
            stop_relay,
            gateway_task,
            relay_task,
            worker,
            exited,
        })
    }

    /// Resolves when a service of the chain stops on its own, before [`stop`](Chain::stop):
    /// its name. The process should then stop and exit non-zero, not idle half dead.
    pub async fn exited(&self) -> &'static str {
        self.exited.recv().await.unwrap_or("chain")
    }

    /// Where the gateway serves HTTP.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway_addr
    }

    /// Requests the gateway is waiting on right now.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// The metrics of every service in the chain (also served at the gateway's `/metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The relay's breaker around processor calls.
    pub fn relay_breaker(&self) -> &CircuitBreaker {
        &self.relay_breaker
    }

    /// The gateway's breaker around publishes.
    pub fn gateway_breaker(&self) -> &CircuitBreaker {
        &self.gateway_breaker
    }

    /// Stops the processor (an outage, for resilience tests and demos).
    pub async fn stop_processor(&mut self) {
        if let Some(p) = self.processor.take() {
            p.shutdown().await;
        }
    }

    /// Starts the processor again at the same address; `publisher` replaces the broker
    /// publisher for its replies (e.g. a fault-injecting one).
    pub fn start_processor(&mut self, publisher: Option<Arc<dyn Publisher>>) -> Result<(), ChainError> {
        self.processor.take();
        let publisher = publisher.unwrap_or_else(|| self.publisher.clone());
        let server = ProcessorServer::start_on(self.grpc_env.clone(), &self.processor_config, publisher)
            .map_err(|source| ChainError::Processor { restart: true, source })?;
        self.processor = Some(server);
        Ok(())
    }

    /// Where the relay expects the processor.
    pub fn processor_addr(&self) -> SocketAddr {
        self.processor_addr
    }

    /// Stops the gateway, then the relay (which finishes its requests in flight), then the
    /// processor.
    pub async fn stop(self) {
        // The gateway drains first: its requests in flight still need the relay and processor.
        self.stop_gateway.close();
        if let Err(e) = self.gateway_task.await {
            warn!("gateway stopped with an error: {e}");
        }
        if let Some((stop, task)) = self.worker {
            // Finishes its jobs in flight (broadcast, ack) within the grace period.
            stop.close();
            if let Err(e) = task.await {
                warn!("worker stopped with an error: {e}");
            }
        }
        self.stop_relay.close();
        if let Err(e) = self.relay_task.await {
            warn!("relay stopped with an error: {e}");
        }
        if let Some(p) = self.processor {
            p.shutdown().await;
        }
    }
}

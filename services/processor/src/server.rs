use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use grpcio::{Environment, Server, ServerBuilder, ServerCredentials};
use switchboard_proto::health::ServingStatus;

use crate::health::Health;
use log::info;
use switchboard_ports::Publisher;
use switchboard_telemetry::Metrics;
use switchboard_topology::topics::{ReplyTopics, Topics};

use crate::ProcessorHandler;

/// Where and how the processor serves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address (`PROCESSOR_ADDR`); port 0 picks a free port.
    pub addr: SocketAddr,
    /// grpcio completion-queue threads.
    pub threads: usize,
    /// Where the processor's metrics go.
    pub metrics: Metrics,
    /// Topics replies may be published to (`--reply-topics`); default: `switchboard.replies`.
    pub reply_topics: ReplyTopics,
    /// TLS (and mutual TLS with a client CA); `None`: plaintext.
    pub tls: Option<switchboard_grpc::tls::ServerTls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: switchboard_topology::PROCESSOR_ADDR.parse().expect("a socket address"),
            threads: 1,
            metrics: Metrics::new("processor"),
            reply_topics: Topics::default().reply_allow_list(),
            tls: None,
        }
    }
}

/// A running processor gRPC server.
#[derive(Debug)]
pub struct ProcessorServer {
    server: Server,
    addr: SocketAddr,
    health: Health,
}

impl ProcessorServer {
    /// Binds and starts serving; replies go out through `publisher`.
    pub fn start(config: &ServerConfig, publisher: Arc<dyn Publisher>) -> Result<Self, grpcio::Error> {
        Self::start_on(Arc::new(Environment::new(config.threads.max(1))), config, publisher)
    }

    /// Like [`start`](ProcessorServer::start) on an existing grpcio environment (shared with
    /// the relay's client in the all-in-one); `config.threads` is then the environment's.
    pub fn start_on(
        env: Arc<Environment>,
        config: &ServerConfig,
        publisher: Arc<dyn Publisher>,
    ) -> Result<Self, grpcio::Error> {
        let handler =
            ProcessorHandler::new(publisher, config.metrics.clone()).with_reply_topics(config.reply_topics.clone());
        let service = switchboard_proto::create_processor(handler);
        let health = Health::default();
        // The clients ping every second to notice a vanished processor: allow it (the default
        // answers pings more often than every 5 min without calls with GOAWAY).
        let args = grpcio::ChannelBuilder::new(env.clone())
            .http2_min_recv_ping_interval_without_data(Duration::from_millis(500))
            .keepalive_permit_without_calls(true)
            .build_args();
        let mut server = ServerBuilder::new(env)
            .channel_args(args)
            .register_service(service)
            .register_service(switchboard_proto::health::create_health(health.clone()))
            .build()?;
        let credentials = config.tls.as_ref().map_or_else(ServerCredentials::insecure, |t| t.credentials());
        let port = server.add_listening_port(config.addr.to_string(), credentials)?;
        server.start();
        health.set(ServingStatus::SERVING);
        let addr = SocketAddr::new(config.addr.ip(), port);
        let mode = match &config.tls {
            None => "plaintext",
            Some(t) if t.is_mutual() => "mutual TLS",
            Some(_) => "TLS",
        };
        info!("processor listening on {addr} ({mode})");
        Ok(ProcessorServer { server, addr, health })
    }

    /// The bound address (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The health the server reports (`grpc.health.v1.Health`): setting NOT_SERVING takes it
    /// out of its callers' rotation while it keeps serving.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Drains, then stops: reports NOT_SERVING and ends the health watches (each watcher is
    /// sent the status first, so callers' channels take this processor out of their rotation),
    /// then stops taking calls (grpc-core's GOAWAY moves callers to other processors) and waits
    /// for those in flight.
    pub async fn shutdown(mut self) {
        self.health.set(ServingStatus::NOT_SERVING);
        // The watch streams would keep the server's shutdown waiting.
        self.health.end_watches();
        let _ = self.server.shutdown().await;
    }
}

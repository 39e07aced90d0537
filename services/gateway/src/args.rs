use std::net::SocketAddr;
use std::time::Duration;

use switchboard_topology::topics::Topics;

use crate::GatewayConfig;

/// Gateway flags, each with an environment fallback.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// HTTP listen address.
    #[arg(long, env = "GATEWAY_ADDR", default_value = switchboard_topology::GATEWAY_ADDR)]
    pub gateway_addr: SocketAddr,
    /// Time budget of one request in milliseconds (becomes the envelope deadline).
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: u64,
    /// Percent of a request's budget after which a request whose Kafka partition answered
    /// nothing since (its relay died and still holds it) is published once more to a
    /// partition that answers; 0 turns this off.
    #[arg(long, env = "SWITCHBOARD_SECOND_CHANCE_PERCENT", default_value_t = crate::second_chance::DEFAULT_AFTER_PERCENT, value_parser = clap::value_parser!(u32).range(0..=99))]
    pub second_chance_percent: u32,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 65536)]
    pub max_body_bytes: usize,
    /// Requests waiting for a reply at once; beyond it 503 at once.
    #[arg(long, env = "SWITCHBOARD_MAX_PENDING", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending: u64,
    /// Open client connections at once; beyond it new connections wait in the listen backlog.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Milliseconds a client has to send a request head (also how long an idle keep-alive
    /// connection is kept); past it the connection is closed. At most 60 000.
    #[arg(long, env = "SWITCHBOARD_HEADER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send a request body once its head is in (408 past it), and
    /// to take the response.
    #[arg(long, env = "SWITCHBOARD_BODY_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub body_timeout_ms: u64,
    /// Seconds a `POST /messages` reply is replayed to a request repeating its Idempotency-Key.
    #[arg(long, env = "SWITCHBOARD_IDEMPOTENCY_TTL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idempotency_ttl_secs: u64,
    /// Idempotency keys of `POST /messages` kept per gateway; the oldest is forgotten beyond it.
    #[arg(long, env = "SWITCHBOARD_IDEMPOTENCY_MAX_KEYS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub idempotency_max_keys: u64,
    /// The publish breaker's settings.
    #[command(flatten)]
    pub breaker: GatewayBreaker,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub security: crate::EdgeSecurityArgs,
}

switchboard_service::breaker_args!(
    /// The breaker around the gateway's publishes to the broker.
    GatewayBreaker, env = "SWITCHBOARD_GATEWAY_BREAKER", flag = "gateway-breaker"
);

impl GatewayArgs {
    /// The gateway configuration these flags describe, with the publish breaker's settings
    /// (`--gateway-breaker-*`, `SWITCHBOARD_GATEWAY_BREAKER_*`).
    pub fn config(&self, topics: &Topics) -> Result<GatewayConfig, switchboard_resilience::ConfigError> {
        Ok(GatewayConfig {
            addr: self.gateway_addr,
            requests_topic: topics.requests.clone(),
            replies_topic: topics.replies.clone(),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            second_chance_percent: self.second_chance_percent,
            max_body_bytes: self.max_body_bytes,
            max_pending: self.max_pending as usize,
            max_connections: self.max_connections as usize,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            idempotency_ttl: Duration::from_secs(self.idempotency_ttl_secs),
            idempotency_max_keys: self.idempotency_max_keys as usize,
            breaker: self.breaker.config()?,
            ..GatewayConfig::default()
        })
    }
}

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_telemetry::{Metrics, Readiness};

/// Gateway settings; defaults match the documented topic names and limits.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Listen address (`GATEWAY_ADDR`); port 0 picks a free port.
    pub addr: SocketAddr,
    /// Topic requests are published to.
    pub requests_topic: String,
    /// Topic replies come back on (the envelope's reply-to).
    pub replies_topic: String,
    /// This instance's stable identity (`SWITCHBOARD_INSTANCE_ID`, default the host name):
    /// picks the partition of the replies topic it reads (see [`reply_partition`](crate::reply_partition)).
    pub instance_id: String,
    /// Time budget of one request, carried in the envelope as its deadline.
    pub request_timeout: Duration,
    /// Share of a request's budget, in percent, after which a request whose partition of the
    /// requests topic answered nothing since it was published goes once more to a partition
    /// that answers (see [`SecondChance`](crate::SecondChance)); 0: never.
    pub second_chance_percent: u32,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests waiting for a reply at once (the gateway's bulkhead); beyond it the gateway
    /// answers 503 at once.
    pub max_pending: usize,
    /// Open client connections at once; at the limit the gateway stops accepting until one
    /// closes (backpressure instead of a task per connection without bound).
    pub max_connections: usize,
    /// Time for a client to send a request head, counted from the end of the previous
    /// response on the connection (so it also bounds keep-alive idleness); at most 60 s.
    pub header_timeout: Duration,
    /// Time for a client to send a request body once its head is in, and to take the response.
    pub body_timeout: Duration,
    /// How long a `POST /messages` reply is replayed to a request repeating its
    /// `Idempotency-Key` (counted from the first request's start).
    pub idempotency_ttl: Duration,
    /// Idempotency keys of `POST /messages` one gateway keeps; the oldest is forgotten beyond it.
    pub idempotency_max_keys: usize,
    /// Circuit breaker around the gateway's publishes to the broker.
    pub breaker: switchboard_resilience::Config,
    /// How long a stopping gateway waits for requests in flight to get their replies.
    pub grace: Duration,
    /// Where the gateway's metrics go (shared with the other services in the all-in-one).
    pub metrics: Metrics,
    /// Readiness checks reported at `/readyz`; the gateway adds its own.
    pub readiness: Readiness,
    /// Where the gateway's spans go (off unless an OTLP endpoint is configured).
    pub tracer: switchboard_otlp::Tracer,
    /// HTTPS instead of plain HTTP (`--gateway-tls-cert`/`--gateway-tls-key`).
    pub tls: Option<switchboard_http_server::ServerTls>,
    /// Bearer tokens callers must present (`--auth-tokens-file`); `None`: no authentication.
    pub auth: Option<crate::BearerTokens>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            addr: switchboard_topology::GATEWAY_ADDR.parse().expect("a socket address"),
            requests_topic: switchboard_topology::REQUESTS_TOPIC.into(),
            replies_topic: switchboard_topology::REPLIES_TOPIC.into(),
            instance_id: crate::default_instance_id(),
            request_timeout: Duration::from_secs(5),
            second_chance_percent: crate::second_chance::DEFAULT_AFTER_PERCENT,
            max_body_bytes: 64 * 1024,
            max_pending: 10_000,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idempotency_ttl: Duration::from_secs(300),
            idempotency_max_keys: 10_000,
            breaker: switchboard_resilience::Config::default(),
            grace: Duration::from_secs(10),
            metrics: Metrics::builder("gateway").routes(crate::route_table::templates()).build(),
            readiness: Readiness::new(),
            tracer: switchboard_otlp::Tracer::default(),
            tls: None,
            auth: None,
        }
    }
}

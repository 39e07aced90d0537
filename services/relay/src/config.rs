use std::time::Duration;

use switchboard_telemetry::{Metrics, Readiness};
use switchboard_topology::topics::{ReplyTopics, Topics};

/// `--relay-batch-max` unless set.
pub const DEFAULT_BATCH_MAX: usize = 64;

/// Relay settings; defaults match the documented topic names.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Topic the gateway publishes requests to.
    pub requests_topic: String,
    /// Consumer group shared by every relay instance.
    pub group: String,
    /// Where undecodable or invalid requests go, with the reason in `x-switchboard-error`.
    pub dead_letter_topic: String,
    /// Reply topics a request may name; others are dead-lettered before anything is
    /// published there. Default: `switchboard.replies`.
    pub reply_topics: ReplyTopics,
    /// Retries of a failure answer or dead letter whose publish failed transiently; then the
    /// request is dead-lettered (or, for a dead letter, dropped and counted). Permanent
    /// errors are not retried.
    pub max_publish_retries: u32,
    /// First wait before such a retry (doubles, with jitter, up to 5 s).
    pub publish_retry_base: Duration,
    /// Requests handled at once by one relay (bounded concurrency towards the processor).
    pub max_in_flight: usize,
    /// Most envelopes carried by one `ProcessBatch` call: those ready at the same moment go
    /// together, a lone one goes at once as a batch of one. 1: a call per envelope. Capped at
    /// [`switchboard_proto::MAX_BATCH`].
    pub batch_max: usize,
    /// Used when an envelope carries no deadline.
    pub default_budget: Duration,
    /// First retry delay after a transient gRPC failure (doubles, with jitter).
    pub retry_base: Duration,
    /// Circuit breaker around the processor calls.
    pub breaker: switchboard_resilience::Config,
    /// Retries allowed, as a percentage of recent calls (Finagle-style retry budget).
    pub retry_budget_percent: f32,
    /// Where the relay's metrics go.
    pub metrics: Metrics,
    /// Readiness checks; the relay adds its own.
    pub readiness: Readiness,
    /// Where the relay's spans go (off unless an OTLP endpoint is configured).
    pub tracer: switchboard_otlp::Tracer,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            requests_topic: switchboard_topology::REQUESTS_TOPIC.into(),
            group: switchboard_topology::RELAY_GROUP.into(),
            dead_letter_topic: switchboard_topology::REQUESTS_DLQ_TOPIC.into(),
            reply_topics: Topics::default().reply_allow_list(),
            max_publish_retries: 5,
            publish_retry_base: Duration::from_millis(200),
            max_in_flight: 256,
            batch_max: DEFAULT_BATCH_MAX,
            default_budget: Duration::from_secs(5),
            retry_base: Duration::from_millis(20),
            breaker: switchboard_resilience::Config::default(),
            retry_budget_percent: 20.0,
            metrics: Metrics::new("relay"),
            readiness: Readiness::new(),
            tracer: switchboard_otlp::Tracer::default(),
        }
    }
}

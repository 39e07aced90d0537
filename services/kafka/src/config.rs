use std::time::Duration;

use rdkafka::ClientConfig;

/// Where a consumer group starts reading a partition it has no committed offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OffsetReset {
    /// Only messages published after the member joined (a reply subscription: old replies
    /// belong to requests nobody waits for any more).
    #[default]
    Latest,
    /// Everything still in the partition (a work group such as the relay's: requests published
    /// before the first member joined must not be lost).
    Earliest,
}

impl OffsetReset {
    fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Latest => "latest",
            OffsetReset::Earliest => "earliest",
        }
    }
}

/// Settings of the Kafka adapter, shared by [`KafkaPublisher`](crate::KafkaPublisher),
/// [`KafkaSubscriber`](crate::KafkaSubscriber) and [`KafkaAdmin`](crate::KafkaAdmin).
///
/// Defaults are tuned for a broker on loopback (tansu in development, tests and the demo):
/// small linger, small session timeout, Nagle off. Build one with [`KafkaConfig::new`] and
/// change the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// `client.id`, shown in broker logs. Default `switchboard`.
    pub client_id: String,
    /// `session.timeout.ms` of consumer groups: how long a silent member keeps its partitions,
    /// so what a killed relay costs its partitions. Default 6000 ms, the smallest Apache Kafka
    /// accepts by default (`group.min.session.timeout.ms`); brokers delay a group's first join
    /// by about half of it. On tansu 0.6 a kill -9 + restart stalled the killed member's
    /// partitions 9.1 s at 6000 ms and 2.9 s at 3000 ms (cooperative-sticky, heartbeat
    /// timeout/6; BENCHMARKS.md "Relay failover"): lower it where the broker allows, e.g.
    /// `SWITCHBOARD_KAFKA_SET="session.timeout.ms=3000 heartbeat.interval.ms=500"`.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`; must stay well below `session_timeout`. Default 1000 ms.
    pub heartbeat_interval: Duration,
    /// `linger.ms`: how long the producer waits to batch records. Default 1 ms: on loopback a
    /// request/reply round trip is dominated by this, and batching gains little. (0 with a
    /// 1–2 ms fetch wait: lower latency in short runs, but the chain stalled under sustained
    /// load on tansu; BENCHMARKS.md.) The price is per instance: while records flow, the
    /// producer's broker thread wakes once per linger, so at 1000 records/s over two processors
    /// their producer threads used 3× the CPU of one; 5 ms (librdkafka's default) cut that to a
    /// third, and is what the Kubernetes ConfigMap sets for N replicas.
    pub linger: Duration,
    /// `message.timeout.ms`: a publish fails with a timeout when the broker has not
    /// acknowledged it by then (retries included). Default 30 s.
    pub delivery_timeout: Duration,
    /// Timeout of admin requests (`ensure_topic`) and of synchronous commits. Default 10 s.
    pub request_timeout: Duration,
    /// `topic.metadata.propagation.max.ms`: how long a publish waits for a topic the broker
    /// does not know to appear (one just created elsewhere takes a moment to be seen); past it
    /// the publish fails with a permanent "unknown topic" error. librdkafka's default, 30 s,
    /// would hold whatever waits behind such a publish that long. At most `delivery_timeout`.
    /// Default 2 s.
    pub missing_topic_timeout: Duration,
    /// `fetch.wait.max.ms`: how long the broker may hold a fetch open when there is no data.
    /// Default 10 ms: tansu holds every fetch this long even when a record arrives meanwhile,
    /// so it is the consumer's added latency there (produce → consume p50: 100 ms → 53 ms,
    /// 10 ms → 7.4 ms, 2 ms → 3.1 ms, 1 ms → 2.5 ms; 0 never delivers). 1–2 ms (with linger 0)
    /// brings the chain at 200 req/s from p50 13 ms to 4.4–6.3 ms in 10 s runs, but on tansu
    /// 0.6 the chain then stalls after 40–75 s of sustained 200 req/s (10 ms ran steadily),
    /// so 10 ms stays until that is understood (BENCHMARKS.md). Against Apache Kafka, which
    /// answers as soon as data arrives, raise it (e.g. 500 ms) to save idle fetch requests.
    pub fetch_wait_max: Duration,
    /// Publishes awaiting their delivery report per publisher; further publishes wait
    /// (backpressure) instead of growing librdkafka's queue. Default 10 000.
    pub max_in_flight: usize,
    /// Deliveries buffered per subscription between the consumer thread and the handler.
    /// When full the consumer pauses its partitions. Default 64.
    pub subscription_buffer: usize,
    /// Start position of a group without committed offsets; default [`OffsetReset::Latest`].
    /// Use [`KafkaSubscriber::subscribe_from`](crate::KafkaSubscriber::subscribe_from) to
    /// choose per subscription.
    pub auto_offset_reset: OffsetReset,
    /// Longest time the consumer thread waits in the broker poll before it serves acks, nacks
    /// and close requests; bounds the ack→commit and nack→redelivery delay. Default 20 ms.
    pub poll_interval: Duration,
    /// How long `subscribe` waits for the group to assign partitions. Default 30 s.
    pub subscribe_timeout: Duration,
    /// How long closing a subscription or publisher may take (final commit, leaving the group,
    /// flushing). Default 10 s.
    pub close_timeout: Duration,
    /// Replication factor of topics created by [`KafkaAdmin`](crate::KafkaAdmin). Default 1.
    pub replication_factor: i32,
    /// `group.instance.id` (static membership, KIP-345): a member restarted with the same id
    /// gets its partitions back without a rebalance, and the others keep theirs meanwhile.
    /// Set from the service's instance id; must be unique among the live members of a group.
    /// Default `None` (dynamic membership).
    pub group_instance_id: Option<String>,
    /// `partition.assignment.strategy`. Default `cooperative-sticky` (KIP-429): in a
    /// rebalance only the partitions that move are revoked, the others keep flowing.
    pub assignment_strategy: String,
    /// TLS and SASL (default: plaintext).
    pub security: crate::KafkaSecurity,
    /// Raw librdkafka properties applied last, overriding the ones above.
    pub overrides: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            client_id: "switchboard".into(),
            session_timeout: Duration::from_millis(6000),
            heartbeat_interval: Duration::from_millis(1000),
            linger: Duration::from_millis(1),
            delivery_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            missing_topic_timeout: Duration::from_secs(2),
            fetch_wait_max: Duration::from_millis(10),
            max_in_flight: 10_000,
            subscription_buffer: 64,
            auto_offset_reset: OffsetReset::Latest,
            poll_interval: Duration::from_millis(20),
            subscribe_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(10),
            replication_factor: 1,
            group_instance_id: None,
            assignment_strategy: "cooperative-sticky".into(),
            security: crate::KafkaSecurity::default(),
            overrides: Vec::new(),
        }
    }

    /// Adds a raw librdkafka property (see librdkafka's CONFIGURATION.md).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.push((key.into(), value.into()));
        self
    }

    fn common(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            // Loopback and small messages: send each request at once.
            .set("socket.nagle.disable", "true");
        self.security.apply(&mut c);
        c
    }

    /// Sets [`auto_offset_reset`](KafkaConfig::auto_offset_reset): where a group without
    /// committed offsets starts.
    pub fn with_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.auto_offset_reset = reset;
        self
    }

    /// Sets [`security`](KafkaConfig::security).
    pub fn with_security(mut self, security: crate::KafkaSecurity) -> Self {
        self.security = security;
        self
    }

    fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.common();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", millis(self.linger))
            .set("message.timeout.ms", millis(self.delivery_timeout))
            .set("topic.metadata.propagation.max.ms", millis(self.missing_topic_timeout.min(self.delivery_timeout)))
            // Our semaphore bounds in-flight publishes first; librdkafka's queue has room for
            // them all, so QueueFull only happens when several publishers share nothing.
            .set("queue.buffering.max.messages", (self.max_in_flight.max(1) + 16).to_string())
            // librdkafka's producer default is true: its metadata request for a topic it does
            // not know asks the broker to create it. Topics are created by `KafkaAdmin` only,
            // never because a message named one.
            .set("allow.auto.create.topics", "false");
        self.finish(c)
    }

    pub(crate) fn consumer(&self, group: &str, reset: OffsetReset) -> ClientConfig {
        let mut c = self.common();
        c.set("group.id", group)
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("heartbeat.interval.ms", millis(self.heartbeat_interval))
            // At-least-once: offsets are committed by us, only after the handler acked.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset.as_str())
            .set("fetch.wait.max.ms", millis(self.fetch_wait_max))
            .set("allow.auto.create.topics", "false")
            // Bound librdkafka's own prefetch buffer (per partition).
            .set("queued.max.messages.kbytes", "16384")
            .set("queued.min.messages", "1000")
            .set("partition.assignment.strategy", &self.assignment_strategy);
        if let Some(id) = &self.group_instance_id {
            c.set("group.instance.id", id);
        }
        self.finish(c)
    }

    /// A consumer for manual assignment only: it never joins (no subscribe) and never commits,
    /// so the broker keeps no group for it. librdkafka refuses `assign` without a `group.id`
    /// ("Unknown group"), hence the placeholder, which no member ever joins.
    pub(crate) fn reader(&self) -> ClientConfig {
        let mut c = self.common();
        c.set("group.id", READER_GROUP)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", millis(self.fetch_wait_max))
            .set("allow.auto.create.topics", "false")
            .set("queued.max.messages.kbytes", "16384");
        self.finish(c)
    }

    pub(crate) fn admin(&self) -> ClientConfig {
        let c = self.common();
        self.finish(c)
    }
}

/// The `group.id` of readers (see [`KafkaConfig::reader`]): never joined, never committed to.
pub(crate) const READER_GROUP: &str = "switchboard-reader-never-joined";

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::{Duration, KafkaConfig, OffsetReset};

    #[test]
    fn consumer_config_disables_auto_commit_and_sets_the_reset() {
        let c = KafkaConfig::new("127.0.0.1:9092").consumer("g", OffsetReset::Earliest);
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(c.get("session.timeout.ms"), Some("6000"));
        assert_eq!(c.get("group.id"), Some("g"));
        assert_eq!(c.get("partition.assignment.strategy"), Some("cooperative-sticky"));
        assert_eq!(c.get("group.instance.id"), None, "static membership only when an instance id is given");
    }

    #[test]
    fn static_membership_uses_the_instance_id_and_a_reader_has_no_group() {
        let mut config = KafkaConfig::new("b:1");
        config.group_instance_id = Some("relay-1".into());
        assert_eq!(config.consumer("g", OffsetReset::Earliest).get("group.instance.id"), Some("relay-1"));
        let reader = config.reader();
        assert_eq!(reader.get("enable.auto.commit"), Some("false"), "a reader commits nothing, so no group is left");
        assert_eq!(reader.get("group.instance.id"), None, "and never joins");
    }

    #[test]
    fn producer_is_idempotent_and_overrides_win() {
        let c = KafkaConfig::new("b:1").set("linger.ms", "7").producer();
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("linger.ms"), Some("7"));
        assert_eq!(c.get("bootstrap.servers"), Some("b:1"));
    }

    #[test]
    fn a_missing_topic_is_waited_for_at_most_the_missing_topic_timeout() {
        let mut config = KafkaConfig::new("b:1");
        assert_eq!(config.producer().get("topic.metadata.propagation.max.ms"), Some("2000"));
        config.delivery_timeout = Duration::from_millis(500);
        assert_eq!(config.producer().get("topic.metadata.propagation.max.ms"), Some("500"));
    }

    #[test]
    fn no_client_asks_the_broker_to_create_topics() {
        let config = KafkaConfig::new("b:1");
        assert_eq!(config.producer().get("allow.auto.create.topics"), Some("false"));
        assert_eq!(config.consumer("g", OffsetReset::Latest).get("allow.auto.create.topics"), Some("false"));
    }
}

use std::time::Duration;

/// Where a consumer group with no committed offset starts reading a partition
/// (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// At the log end when the group is created: only messages published after the first
    /// member's `subscribe` returned are delivered (Kafka's `latest`).
    #[default]
    Latest,
    /// At the oldest retained message (Kafka's `earliest`).
    Earliest,
}

/// Settings of a [`MemoryBroker`](super::MemoryBroker); every limit is per broker instance.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Partitions of a topic created on first use (publish or subscribe). At least 1;
    /// default 4. Topics created by `ensure_topic` get the count asked for.
    pub default_partitions: i32,
    /// Create unknown topics on first use (default `true`). When `false`, publishing or
    /// subscribing to a topic not created by `ensure_topic` fails with `ErrorKind::Invalid`,
    /// as with brokers such as tansu that do not auto-create.
    pub auto_create_topics: bool,
    /// Where a new consumer group starts (default [`StartFrom::Latest`]). Overridable per
    /// handle with [`MemoryBroker::starting_at`](super::MemoryBroker::starting_at) and per call
    /// with [`MemoryBroker::subscribe_from`](super::MemoryBroker::subscribe_from).
    pub start_from: StartFrom,
    /// Messages retained per partition (default 100 000, at least 1): the broker's memory
    /// bound. Older messages are dropped on append once every group with members has committed
    /// them; while a subscribed group still owes the oldest, a publish to the full partition
    /// waits for commits (backpressure, up to [`publish_timeout`](BrokerConfig::publish_timeout))
    /// instead. Groups without members do not hold messages: one whose position falls before
    /// the oldest retained message skips forward to it (lost for that group, as with Kafka
    /// retention), and logs a warning.
    pub retention_messages: usize,
    /// Longest wait of a publish for room in a full partition (default 5 s); then it fails
    /// with `ErrorKind::Unavailable` ("topic full"), a transient error, and the message is
    /// handed back.
    pub publish_timeout: Duration,
    /// Largest message accepted, payload, key and headers counted (default 1 MiB, Kafka's
    /// `message.max.bytes`); a larger one fails with `ErrorKind::Invalid`, a permanent error.
    pub max_message_bytes: usize,
    /// Capacity of each subscription's delivery channel (default 256, at least 1). A full
    /// channel pauses that member's delivery task; publishers are never blocked by consumers.
    pub subscription_buffer: usize,
    /// Deliveries a member may hold unacked, buffered ones included (default 4096, at least
    /// 1). At the limit the member stops fetching until acks come in; this bounds the
    /// per-member offset tracker.
    pub max_in_flight: usize,
    /// Messages a delivery task copies out of one partition per lock (default 64, at least
    /// 1): larger batches mean fewer lock round trips, smaller ones fairer partitions.
    pub fetch_batch: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            default_partitions: 4,
            auto_create_topics: true,
            start_from: StartFrom::Latest,
            retention_messages: 100_000,
            publish_timeout: Duration::from_secs(5),
            max_message_bytes: 1024 * 1024,
            subscription_buffer: 256,
            max_in_flight: 4096,
            fetch_batch: 64,
        }
    }
}

impl BrokerConfig {
    /// The same settings with every limit raised to its minimum, so a zero never deadlocks.
    pub(super) fn sanitized(mut self) -> Self {
        self.default_partitions = self.default_partitions.max(1);
        self.retention_messages = self.retention_messages.max(1);
        self.subscription_buffer = self.subscription_buffer.max(1);
        self.max_in_flight = self.max_in_flight.max(1);
        self.fetch_batch = self.fetch_batch.max(1);
        self
    }
}

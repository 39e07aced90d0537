use std::sync::Arc;

#[cfg(any(feature = "kafka", feature = "embedded"))]
use async_trait::async_trait;
#[cfg(feature = "embedded")]
use switchboard_embedded::pubsub::{MemoryBroker, StartFrom};
#[cfg(feature = "kafka")]
use switchboard_kafka::{KafkaSubscriber, OffsetReset};
use switchboard_ports::{Browse, Publisher, Subscriber};
#[cfg(any(feature = "kafka", feature = "embedded"))]
use switchboard_ports::{Error, Subscription};

/// The publish/subscribe ports a service gets.
#[derive(Clone)]
pub struct PubSub {
    /// Publishes requests, replies and dead letters.
    pub publisher: Arc<dyn Publisher>,
    /// For work groups (the relays): a new group starts at the oldest message, so requests
    /// published before the first relay joined are not lost.
    pub requests: Arc<dyn Subscriber>,
    /// For per-instance reply groups (the gateways): a new group starts at the newest message;
    /// older replies belong to requests nobody waits for.
    pub replies: Arc<dyn Subscriber>,
    /// `kafka` or `embedded`, for logs and readiness.
    pub kind: &'static str,
    /// Reads dead-letter topics without consuming them, removing under the dead-letter tool's
    /// group (`switchboard-dead-letters`); `None` for ports assembled by hand.
    pub dead_letters: Option<Arc<dyn Browse>>,
    /// Offsets and consumer-group lag of the same broker, for the console; `None` when the
    /// ports cannot say.
    pub inspect: Option<Arc<dyn switchboard_ports::InspectTopics>>,
}

#[cfg(feature = "embedded")]
impl PubSub {
    /// Ports over one embedded broker, with the same start positions as on Kafka.
    pub fn embedded(broker: MemoryBroker) -> Self {
        PubSub {
            publisher: Arc::new(broker.clone()),
            requests: Arc::new(StartingAt::new(broker.clone(), StartFrom::Earliest)),
            replies: Arc::new(StartingAt::new(broker.clone(), StartFrom::Latest)),
            kind: "embedded",
            dead_letters: Some(Arc::new(broker.browser(switchboard_topology::DEAD_LETTER_GROUP))),
            inspect: Some(Arc::new(broker)),
        }
    }
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// A subscriber whose new groups start at a position of the caller's choice.
#[cfg(any(feature = "kafka", feature = "embedded"))]
#[async_trait]
pub(crate) trait SubscribeFrom: Subscriber {
    /// Where a new group starts.
    type Start: Copy + Send + Sync + std::fmt::Debug;

    /// Joins `group` on `topic`; a new group starts at `start`.
    async fn subscribe_from(&self, topic: &str, group: &str, start: Self::Start) -> Result<Subscription, Error>;
}

// Both adapters have an inherent `subscribe_from`; the trait names it for `StartingAt`.
macro_rules! subscribe_from {
    ($feature:literal, $subscriber:ty, $start:ty) => {
        #[cfg(feature = $feature)]
        #[async_trait]
        impl SubscribeFrom for $subscriber {
            type Start = $start;

            async fn subscribe_from(&self, topic: &str, group: &str, start: $start) -> Result<Subscription, Error> {
                <$subscriber>::subscribe_from(self, topic, group, start).await
            }
        }
    };
}

subscribe_from!("kafka", KafkaSubscriber, OffsetReset);
subscribe_from!("embedded", MemoryBroker, StartFrom);

/// A subscriber (Kafka or embedded) whose new groups start at a fixed position.
#[cfg(any(feature = "kafka", feature = "embedded"))]
#[derive(Debug)]
pub(crate) struct StartingAt<S: SubscribeFrom> {
    inner: S,
    start: S::Start,
}

#[cfg(any(feature = "kafka", feature = "embedded"))]
impl<S: SubscribeFrom> StartingAt<S> {
    pub(crate) fn new(inner: S, start: S::Start) -> Self {
        StartingAt { inner, start }
    }
}

#[cfg(any(feature = "kafka", feature = "embedded"))]
#[async_trait]
impl<S: SubscribeFrom> Subscriber for StartingAt<S> {
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, Error> {
        self.inner.subscribe_from(topic, group, self.start).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, Error> {
        self.inner.partition_count(topic).await
    }

    async fn assign(&self, topic: &str, partitions: &[i32]) -> Result<Subscription, Error> {
        self.inner.assign(topic, partitions).await
    }
}

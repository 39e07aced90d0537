use std::sync::Arc;

#[cfg(any(feature = "kafka", feature = "embedded"))]
use async_trait::async_trait;
#[cfg(feature = "embedded")]
use switchboard_embedded::pubsub::{MemoryBroker, StartFrom};
#[cfg(feature = "kafka")]
use switchboard_kafka::{KafkaSubscriber, OffsetReset};
#[cfg(any(feature = "kafka", feature = "embedded"))]
use switchboard_ports::{Error, Subscription};
use switchboard_ports::{Publisher, Subscriber};

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
}

#[cfg(feature = "embedded")]
impl PubSub {
    /// Ports over one embedded broker, with the same start positions as on Kafka.
    pub fn embedded(broker: MemoryBroker) -> Self {
        PubSub {
            publisher: Arc::new(broker.clone()),
            requests: Arc::new(Embedded { broker: broker.clone(), start: StartFrom::Earliest }),
            replies: Arc::new(Embedded { broker, start: StartFrom::Latest }),
            kind: "embedded",
        }
    }
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// A Kafka subscriber whose new groups start at a fixed position.
#[cfg(feature = "kafka")]
#[derive(Debug)]
pub(crate) struct StartingAt {
    inner: KafkaSubscriber,
    reset: OffsetReset,
}

#[cfg(feature = "kafka")]
impl StartingAt {
    pub(crate) fn new(inner: KafkaSubscriber, reset: OffsetReset) -> Self {
        StartingAt { inner, reset }
    }
}

#[cfg(feature = "kafka")]
#[async_trait]
impl Subscriber for StartingAt {
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, Error> {
        self.inner.subscribe_from(topic, group, self.reset).await
    }
}

/// An embedded-broker subscriber whose new groups start at a fixed position.
#[cfg(feature = "embedded")]
#[derive(Debug)]
struct Embedded {
    broker: MemoryBroker,
    start: StartFrom,
}

#[cfg(feature = "embedded")]
#[async_trait]
impl Subscriber for Embedded {
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, Error> {
        self.broker.subscribe_from(topic, group, self.start).await
    }
}

use async_trait::async_trait;

use crate::{Error, Message, PublishError, Subscription};

/// Publishes messages to topics.
///
/// Thread safety: shared by reference across tasks (`Send + Sync`); concurrent publishes are
/// allowed and messages with the same key keep their order.
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes one message and returns once the broker has accepted it (for Kafka: the
    /// delivery report arrived). On error the message is handed back.
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError>;

    /// Waits for every accepted publish to be acknowledged, then refuses further publishes.
    async fn close(&self) -> Result<(), Error>;
}

// A shared publisher is a publisher, so decorators (breaker, faults) can wrap `Arc<dyn Publisher>`.
#[async_trait]
impl<P: Publisher + ?Sized> Publisher for std::sync::Arc<P> {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        (**self).publish(topic, message).await
    }

    async fn close(&self) -> Result<(), Error> {
        (**self).close().await
    }
}

/// Subscribes to topics in consumer groups.
///
/// Members of one group share the topic's partitions; each message goes to one member. A
/// message not acked when its member leaves is delivered again to the next owner of its
/// partition (at-least-once).
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// Joins `group` on `topic`; returns once the member can receive.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, Error>;

    /// The number of partitions of `topic` (`Invalid` if it does not exist).
    async fn partition_count(&self, topic: &str) -> Result<i32, Error>;

    /// Reads `partitions` of `topic` by manual assignment, without a consumer group (so none is
    /// left on the broker): every message appended to them after this returns is delivered,
    /// nothing older. Nothing is committed: ack only releases the delivery, and a nacked one
    /// is not delivered again (a reader of replies drops what nobody waits for anyway). An
    /// empty list or a partition outside the topic's range is `Invalid`.
    async fn assign(&self, topic: &str, partitions: &[i32]) -> Result<Subscription, Error>;
}

/// Creating topics on brokers that do not create them on first use.
#[async_trait]
pub trait TopicAdmin: Send + Sync {
    /// Creates `topic` with `partitions` partitions unless it exists.
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), Error>;
}

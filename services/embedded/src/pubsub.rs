//! Embedded Kafka-style broker: partitioned topics, consumer groups with committed offsets,
//! at-least-once delivery; in memory, for tests and the in-process harness.
//!
//! Semantics, as with Kafka:
//! - a topic has a fixed number of partitions, created on first use with
//!   [`BrokerConfig::default_partitions`] or by [`TopicAdmin::ensure_topic`];
//! - a keyed message goes to the partition picked by a stable hash of its key (same key, same
//!   partition, same order); keyless messages go round robin;
//! - members of one group share the partitions (range assignment in join order, rebalanced on
//!   every join and leave); each partition has one committed offset per group;
//! - a new group starts at the log end ([`StartFrom::Latest`]) unless configured otherwise: it
//!   gets every message published after its first `subscribe` returned;
//! - [`Delivery::ack`](switchboard_ports::Delivery::ack) commits through an
//!   [`OffsetTracker`](switchboard_ports::OffsetTracker), so out-of-order acks commit the
//!   watermark; a nack (or dropping the delivery) sends the message again to the same
//!   subscription; when a member leaves, its partitions go to the others starting from the
//!   committed offset, so unacked messages reach the next consumer.
//!
//! Each subscription has one delivery task on smol's global executor (threads set by
//! `SMOL_THREADS`), so the broker works under any runtime: `smol::block_on`, async-std, tide.
//! Idle tasks sleep on event notifications; nothing polls.
//!
//! ```
//! use switchboard_ports::{Message, Publisher, Subscriber};
//! use switchboard_embedded::pubsub::MemoryBroker;
//! # smol::block_on(async {
//! let broker = MemoryBroker::new();
//! let replies = broker.subscribe("replies", "gateway-1").await.unwrap();
//! broker.publish("replies", Message::new("done").with_key("order-7")).await.unwrap();
//! let delivery = replies.recv().await.unwrap();
//! assert_eq!(delivery.message().payload, b"done");
//! delivery.ack();
//! # });
//! ```

mod browse;
mod config;
mod group;
mod topic;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use futures_lite::future;
use switchboard_ports::{
    Error, ErrorKind, InspectTopics, Message, PartitionOffsets, PublishError, Publisher, Subscriber, Subscription,
    TopicAdmin,
};

pub use config::{BrokerConfig, StartFrom};
use group::Group;
use topic::Topic;

/// The embedded broker. Cheap to clone: clones share topics, groups and offsets.
///
/// Implements [`Publisher`], [`Subscriber`] and [`TopicAdmin`]. `Publisher::close` on the broker
/// refuses publishes through every clone; use [`publisher`](MemoryBroker::publisher) for a
/// handle that can be closed on its own.
#[derive(Clone)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
    /// Where a group this handle creates starts (see [`starting_at`](MemoryBroker::starting_at)).
    start_from: StartFrom,
}

struct Inner {
    config: BrokerConfig,
    topics: RwLock<HashMap<Box<str>, Arc<Topic>>>,
    closed: AtomicBool,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker with [`BrokerConfig::default`].
    pub fn new() -> Self {
        Self::with_config(BrokerConfig::default())
    }

    /// A broker with `config` (limits below their minimum are raised to it).
    pub fn with_config(config: BrokerConfig) -> Self {
        MemoryBroker {
            start_from: config.start_from,
            inner: Arc::new(Inner {
                config: config.sanitized(),
                topics: RwLock::new(HashMap::new()),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// A handle on the same broker whose `subscribe` starts new groups at `start` (a work
    /// group at the oldest message, reply readers at the newest), as a Kafka subscriber's
    /// `auto.offset.reset` does.
    pub fn starting_at(&self, start: StartFrom) -> MemoryBroker {
        MemoryBroker { inner: self.inner.clone(), start_from: start }
    }

    /// The settings in effect.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// A publisher on this broker whose `close` refuses only its own later publishes.
    pub fn publisher(&self) -> MemoryPublisher {
        MemoryPublisher { broker: self.clone(), closed: Arc::new(AtomicBool::new(false)) }
    }

    /// Like [`Subscriber::subscribe`], choosing where the group starts if this call creates it.
    /// An existing group keeps its committed offsets.
    pub async fn subscribe_from(&self, topic: &str, group: &str, start: StartFrom) -> Result<Subscription, Error> {
        let topic = self.topic(topic)?;
        let group = {
            let mut groups = lock(&topic.groups);
            groups
                .entry(group.into())
                .or_insert_with(|| {
                    let offsets = match start {
                        StartFrom::Latest => topic.end_offsets(),
                        StartFrom::Earliest => topic.start_offsets(),
                    };
                    Arc::new(Group::new(offsets, topic.freed.clone()))
                })
                .clone()
        };
        let (tx, rx) = async_channel::bounded(self.inner.config.subscription_buffer);
        let handle = group.join(topic, self.inner.config.clone(), tx);
        Ok(Subscription::new(rx, handle))
    }

    /// Reads `partitions` of `topic` from their end without a consumer group (see
    /// [`Subscriber::assign`]).
    async fn assign_partitions(&self, topic: &str, partitions: &[i32]) -> Result<Subscription, Error> {
        let topic = self.topic(topic)?;
        let count = topic.partition_count();
        if partitions.is_empty() || partitions.iter().any(|&p| p < 0 || p >= count) {
            let why = format!("assign {}: partitions {partitions:?} outside 0..{count}", topic.name);
            return Err(Error::new(ErrorKind::Invalid, why));
        }
        let group = Arc::new(Group::new(topic.end_offsets(), topic.freed.clone()));
        let (tx, rx) = async_channel::bounded(self.inner.config.subscription_buffer);
        let handle = group.assigned(topic, self.inner.config.clone(), tx, partitions);
        Ok(Subscription::new(rx, handle))
    }

    /// Partition count of `topic`, if it exists.
    pub fn partitions(&self, topic: &str) -> Option<i32> {
        self.existing(topic).map(|t| t.partition_count())
    }

    /// Log end offset (next offset to be written) per partition of `topic`.
    pub fn end_offsets(&self, topic: &str) -> Option<Vec<i64>> {
        self.existing(topic).map(|t| t.end_offsets())
    }

    /// Committed offset (next to read) per partition of `group` on `topic`.
    pub fn committed_offsets(&self, topic: &str, group: &str) -> Option<Vec<i64>> {
        let topic = self.existing(topic)?;
        let groups = lock(&topic.groups);
        groups.get(group).map(|g| g.committed_offsets())
    }

    /// Current members of `group` on `topic`.
    pub fn member_count(&self, topic: &str, group: &str) -> usize {
        self.existing(topic).and_then(|t| lock(&t.groups).get(group).map(|g| g.member_count())).unwrap_or(0)
    }

    fn existing(&self, topic: &str) -> Option<Arc<Topic>> {
        self.inner.topics.read().unwrap_or_else(PoisonError::into_inner).get(topic).cloned()
    }

    /// The topic, created with the default partition count if allowed.
    fn topic(&self, name: &str) -> Result<Arc<Topic>, Error> {
        if let Some(t) = self.existing(name) {
            return Ok(t);
        }
        if !self.inner.config.auto_create_topics {
            return Err(Error::new(ErrorKind::Invalid, format!("unknown topic {name}")));
        }
        Ok(self.create(name, self.inner.config.default_partitions))
    }

    fn create(&self, name: &str, partitions: i32) -> Arc<Topic> {
        let mut topics = self.inner.topics.write().unwrap_or_else(PoisonError::into_inner);
        topics.entry(name.into()).or_insert_with(|| Arc::new(Topic::new(name, partitions))).clone()
    }

    async fn append(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        if topic.is_empty() {
            return Err(PublishError::new(Error::new(ErrorKind::Invalid, "empty topic name"), message));
        }
        let config = &self.inner.config;
        let size = message.payload.len()
            + message.key.as_ref().map_or(0, Vec::len)
            + message.headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>();
        if size > config.max_message_bytes {
            let why = format!("message of {size} bytes is larger than the limit of {}", config.max_message_bytes);
            return Err(PublishError::new(Error::new(ErrorKind::Invalid, why), message));
        }
        let t = match self.topic(topic) {
            Ok(t) => t,
            Err(e) => return Err(PublishError::new(e, message)),
        };
        if let Some(p) = message.partition {
            if p < 0 || p >= t.partition_count() {
                let why = format!("topic {topic} has no partition {p} (0..{})", t.partition_count());
                return Err(PublishError::new(Error::new(ErrorKind::Invalid, why), message));
            }
        }
        let mut message = match t.append(message, config.retention_messages) {
            Ok(_) => return Ok(()),
            Err(back) => back,
        };
        // The partition is full of messages a group still owes: wait for commits (bounded),
        // rather than drop them.
        let deadline = Instant::now() + config.publish_timeout;
        loop {
            let freed = t.freed.listen();
            message = match t.append(message, config.retention_messages) {
                Ok(_) => return Ok(()),
                Err(back) => back,
            };
            let woken = future::or(
                async {
                    freed.await;
                    true
                },
                async {
                    smol::Timer::at(deadline).await;
                    false
                },
            );
            if !woken.await {
                let why = format!(
                    "topic {topic} full: {} messages per partition not yet committed by its consumer groups",
                    config.retention_messages
                );
                return Err(PublishError::new(Error::new(ErrorKind::Unavailable, why), message));
            }
        }
    }
}

#[async_trait]
impl Publisher for MemoryBroker {
    /// Appends to the partition log; returns once appended. A partition holding
    /// [`BrokerConfig::retention_messages`] messages that a subscribed group has not committed
    /// makes the publish wait for commits, up to [`BrokerConfig::publish_timeout`], then fail
    /// with `Unavailable`; a message over [`BrokerConfig::max_message_bytes`] is `Invalid`.
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PublishError::new(Error::closed(), message));
        }
        self.append(topic, message).await
    }

    /// Refuses later publishes through every clone; appends are synchronous, so nothing to flush.
    async fn close(&self) -> Result<(), Error> {
        self.inner.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl Subscriber for MemoryBroker {
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, Error> {
        if topic.is_empty() || group.is_empty() {
            return Err(Error::new(ErrorKind::Invalid, "empty topic or group name"));
        }
        self.subscribe_from(topic, group, self.start_from).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, Error> {
        Ok(self.topic(topic)?.partition_count())
    }

    async fn assign(&self, topic: &str, partitions: &[i32]) -> Result<Subscription, Error> {
        self.assign_partitions(topic, partitions).await
    }
}

#[async_trait]
impl TopicAdmin for MemoryBroker {
    /// Creates the topic; an existing topic keeps its partition count.
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), Error> {
        if topic.is_empty() || partitions < 1 {
            return Err(Error::new(ErrorKind::Invalid, "topic needs a name and at least one partition"));
        }
        self.create(topic, partitions);
        Ok(())
    }
}

/// The same view as Kafka's watermarks and committed offsets: the oldest retained and the
/// next offset of each partition, and the group's committed offset where it has one.
#[async_trait]
impl InspectTopics for MemoryBroker {
    async fn topic_offsets(&self, topic: &str, group: &str) -> Result<Vec<PartitionOffsets>, Error> {
        let t = self.existing(topic).ok_or_else(|| Error::new(ErrorKind::Invalid, format!("unknown topic {topic}")))?;
        let committed = lock(&t.groups).get(group).map(|g| g.committed_offsets());
        let offsets = t.start_offsets().into_iter().zip(t.end_offsets()).enumerate();
        Ok(offsets
            .map(|(p, (start, end))| PartitionOffsets {
                partition: p as i32,
                start,
                end,
                committed: committed.as_ref().and_then(|c| c.get(p).copied()),
            })
            .collect())
    }
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topics = self.inner.topics.read().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("MemoryBroker")
            .field("topics", &topics)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .field("config", &self.inner.config)
            .finish()
    }
}

/// A publisher handle on a [`MemoryBroker`] with its own `close`.
#[derive(Clone, Debug)]
pub struct MemoryPublisher {
    broker: MemoryBroker,
    closed: Arc<AtomicBool>,
}

#[async_trait]
impl Publisher for MemoryPublisher {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PublishError::new(Error::closed(), message));
        }
        self.broker.publish(topic, message).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// Locks ignoring poison: every critical section leaves the state consistent, and a panicking
/// test thread must not take the broker down for the others.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;

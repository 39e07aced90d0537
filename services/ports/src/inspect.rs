//! Read-only views of a broker for dashboards: how far a consumer group is behind on a topic,
//! and how many jobs wait in a queue. Inspecting never consumes, commits or moves anything.

use async_trait::async_trait;

use crate::Error;

/// Offsets of one partition of a topic, and a consumer group's position on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// Oldest offset still held (the low watermark).
    pub start: i64,
    /// Next offset to be written (the high watermark).
    pub end: i64,
    /// The group's committed offset (next to read); `None` when the group committed nothing
    /// on this partition.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// Messages the group has yet to commit: from its committed offset (or, with none, the
    /// oldest message held) to the end.
    pub fn lag(&self) -> i64 {
        (self.end - self.committed.unwrap_or(self.start)).max(0)
    }

    /// The next offset the group reads: its committed offset, or with none (or one the
    /// retention has passed) the oldest message held.
    pub fn next_read(&self) -> i64 {
        self.committed.map_or(self.start, |c| c.max(self.start))
    }

    /// Messages held on the partition.
    pub fn held(&self) -> i64 {
        (self.end - self.start).max(0)
    }
}

/// How many jobs a queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepth {
    /// Messages ready for delivery.
    pub messages: u64,
    /// Delivered and not yet settled; `None` when the broker does not say (RabbitMQ's AMQP
    /// protocol reports only ready messages).
    pub unacked: Option<u64>,
    /// Consumers attached to the queue.
    pub consumers: u32,
}

/// Offsets of topics and consumer groups (Kafka, the embedded broker).
#[async_trait]
pub trait InspectTopics: Send + Sync {
    /// Every partition of `topic` with its watermarks and `group`'s committed offset, sorted
    /// by partition. An unknown topic is an [`ErrorKind::Invalid`](crate::ErrorKind) error.
    async fn topic_offsets(&self, topic: &str, group: &str) -> Result<Vec<PartitionOffsets>, Error>;
}

/// Depths of work queues (RabbitMQ, the embedded work queue).
#[async_trait]
pub trait InspectQueues: Send + Sync {
    /// The depth of `queue`. An unknown queue is an [`ErrorKind::Invalid`](crate::ErrorKind)
    /// error.
    async fn queue_depth(&self, queue: &str) -> Result<QueueDepth, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_commit_or_else_from_the_oldest_message() {
        let p = PartitionOffsets { partition: 0, start: 10, end: 25, committed: Some(20) };
        assert_eq!((p.lag(), p.held()), (5, 15));
        let p = PartitionOffsets { committed: None, ..p };
        assert_eq!(p.lag(), 15);
        // A commit past a truncated log never shows as negative lag.
        let p = PartitionOffsets { committed: Some(30), ..p };
        assert_eq!(p.lag(), 0);
    }
}

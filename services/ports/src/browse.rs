//! Reading what sits in a topic or queue without consuming it, and removing single messages
//! once their copy elsewhere is confirmed: what a dead-letter tool needs from a broker.
//!
//! A [`Browse`] port opens a [`BrowsePass`]: a snapshot of at most N messages, oldest first,
//! none removed. The pass can publish copies (confirmed by the broker) and then remove the
//! originals one by one; whatever it does not remove stays where it was when the pass ends
//! or is dropped, also when the process dies mid-pass.
//!
//! Work queues implement it natively (RabbitMQ: `basic.get` without ack, then ack or close the
//! channel). Kafka-style topics implement [`TopicLog`] and get [`TopicBrowser`]: there
//! "removed" means "behind the committed offset of the browsing tool's own consumer group".

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Error, Message, PublishError};

/// One message held by a [`BrowsePass`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Browsed {
    /// Its partition (topics only).
    pub partition: Option<i32>,
    /// Its offset in the partition (topics), or its position in the queue when the pass began.
    pub offset: i64,
    /// The message, headers included.
    pub message: Message,
}

/// Opens passes over the messages of a topic or queue.
#[async_trait]
pub trait Browse: Send + Sync {
    /// Takes at most `max` messages of `source`, oldest first, without removing any.
    async fn browse(&self, source: &str, max: usize) -> Result<Box<dyn BrowsePass>, Error>;
}

/// A snapshot of messages of one topic or queue; see [`Browse`].
#[async_trait]
pub trait BrowsePass: Send {
    /// The messages held, oldest first (topics: partition by partition, in offset order).
    fn entries(&self) -> &[Browsed];

    /// Publishes `message` to `destination` (a topic or queue of the same broker) and returns
    /// once the broker confirmed it.
    async fn send(&mut self, destination: &str, message: Message) -> Result<(), PublishError>;

    /// Removes entry `index` from its topic or queue: call it only after its copy was
    /// confirmed, and in the order of [`entries`](BrowsePass::entries).
    async fn remove(&mut self, index: usize) -> Result<(), Error>;

    /// Ends the pass: what was not removed stays where it was.
    async fn finish(self: Box<Self>) -> Result<(), Error>;
}

/// Offset-level access to a Kafka-style topic for [`TopicBrowser`].
#[async_trait]
pub trait TopicLog: Send + Sync {
    /// Per partition (the index is the partition): the next offset `group` reads (its committed
    /// offset, else the oldest one retained) and the log end. `Invalid` for an unknown topic.
    async fn bounds(&self, topic: &str, group: &str) -> Result<Vec<(i64, i64)>, Error>;

    /// The records of `partition` from `from` up to (not including) `until`, at most `max`.
    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
        max: usize,
    ) -> Result<Vec<(i64, Message)>, Error>;

    /// Commits `offset` as the next one `group` reads in `partition` (no member joins).
    async fn commit(&self, topic: &str, group: &str, partition: i32, offset: i64) -> Result<(), Error>;

    /// Publishes and returns once the broker confirmed it.
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError>;
}

/// [`Browse`] over a Kafka-style topic: a pass reads from the committed offsets of `group`
/// (the tool's own consumer group, which no service uses) to the log end seen when it began.
///
/// A topic only knows "everything before this offset": so when an entry is removed while an
/// older one of its partition stays (a filter skipped it), the older one is first appended
/// again to the end of its partition (same key and headers, confirmed), then the group's
/// offset moves past both. Such a kept message changes offset but is never lost.
pub struct TopicBrowser {
    log: Arc<dyn TopicLog>,
    group: String,
}

impl TopicBrowser {
    /// Browses through `log`, removing by committing under `group`.
    pub fn new(log: Arc<dyn TopicLog>, group: impl Into<String>) -> Self {
        TopicBrowser { log, group: group.into() }
    }
}

impl fmt::Debug for TopicBrowser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicBrowser").field("group", &self.group).finish_non_exhaustive()
    }
}

#[async_trait]
impl Browse for TopicBrowser {
    async fn browse(&self, source: &str, max: usize) -> Result<Box<dyn BrowsePass>, Error> {
        let bounds = self.log.bounds(source, &self.group).await?;
        let mut entries = Vec::new();
        for (p, &(from, until)) in bounds.iter().enumerate() {
            let room = max.saturating_sub(entries.len());
            if room == 0 {
                break;
            }
            if from >= until {
                continue;
            }
            for (offset, message) in self.log.read(source, p as i32, from, until, room).await? {
                entries.push(Browsed { partition: Some(p as i32), offset, message });
            }
        }
        let n = entries.len();
        Ok(Box::new(TopicPass {
            log: self.log.clone(),
            group: self.group.clone(),
            topic: source.to_owned(),
            committed: bounds.iter().map(|b| b.0).collect(),
            entries,
            settled: vec![false; n],
        }))
    }
}

struct TopicPass {
    log: Arc<dyn TopicLog>,
    group: String,
    topic: String,
    committed: Vec<i64>,
    entries: Vec<Browsed>,
    /// Removed, or appended again at the end of its partition.
    settled: Vec<bool>,
}

#[async_trait]
impl BrowsePass for TopicPass {
    fn entries(&self) -> &[Browsed] {
        &self.entries
    }

    async fn send(&mut self, destination: &str, message: Message) -> Result<(), PublishError> {
        self.log.publish(destination, message).await
    }

    async fn remove(&mut self, index: usize) -> Result<(), Error> {
        let Some(entry) = self.entries.get(index) else {
            return Err(Error::new(crate::ErrorKind::Invalid, format!("no entry {index} in this pass")));
        };
        let (partition, offset) = (entry.partition.unwrap_or(0), entry.offset);
        // Older entries of the partition that stay: append them again first, so committing
        // past them loses none.
        let kept: Vec<usize> = (0..self.entries.len())
            .filter(|&i| {
                !self.settled[i] && self.entries[i].partition == Some(partition) && self.entries[i].offset < offset
            })
            .collect();
        for i in kept {
            let copy = self.entries[i].message.clone().to_partition(partition);
            self.log.publish(&self.topic, copy).await.map_err(|e| e.error)?;
            self.settled[i] = true;
        }
        let next = offset + 1;
        if self.committed.get(partition as usize).is_some_and(|&c| next > c) {
            self.log.commit(&self.topic, &self.group, partition, next).await?;
            self.committed[partition as usize] = next;
        }
        self.settled[index] = true;
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), Error> {
        Ok(())
    }
}

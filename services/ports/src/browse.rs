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

use crate::{Error, Message, PartitionOffsets, PublishError};

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
    async fn browse(&self, source: &str, max: usize) -> Result<BrowsePass, Error>;
}

/// A snapshot of messages of one topic or queue; see [`Browse`]. The entries are kept here;
/// the broker's side of the pass, a [`PassBroker`], holds the messages on the broker.
pub struct BrowsePass {
    entries: Vec<Browsed>,
    broker: Box<dyn PassBroker>,
}

impl BrowsePass {
    /// A pass over `entries`, which `broker` holds.
    pub fn new(entries: Vec<Browsed>, broker: impl PassBroker + 'static) -> Self {
        BrowsePass { entries, broker: Box::new(broker) }
    }

    /// The messages held, oldest first (topics: partition by partition, in offset order).
    pub fn entries(&self) -> &[Browsed] {
        &self.entries
    }

    /// Publishes `message` to `destination` (a topic or queue of the same broker) and returns
    /// once the broker confirmed it.
    pub async fn send(&mut self, destination: &str, message: Message) -> Result<(), PublishError> {
        self.broker.send(destination, message).await
    }

    /// Removes entry `index` from its topic or queue: call it only after its copy was
    /// confirmed, and in the order of [`entries`](BrowsePass::entries).
    pub async fn remove(&mut self, index: usize) -> Result<(), Error> {
        if index >= self.entries.len() {
            return Err(Error::new(crate::ErrorKind::Invalid, format!("no entry {index} in this pass")));
        }
        self.broker.remove(&self.entries, index).await
    }

    /// Ends the pass: what was not removed stays where it was.
    pub async fn finish(self) -> Result<(), Error> {
        self.broker.finish().await
    }
}

impl fmt::Debug for BrowsePass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowsePass").field("entries", &self.entries.len()).finish_non_exhaustive()
    }
}

/// The broker's side of a [`BrowsePass`]: it holds the pass's messages until they are removed
/// or the pass ends (or is dropped).
#[async_trait]
pub trait PassBroker: Send {
    /// See [`BrowsePass::send`].
    async fn send(&mut self, destination: &str, message: Message) -> Result<(), PublishError>;

    /// Removes `entries[index]` (`index` is in range) from its topic or queue.
    async fn remove(&mut self, entries: &[Browsed], index: usize) -> Result<(), Error>;

    /// See [`BrowsePass::finish`].
    async fn finish(self: Box<Self>) -> Result<(), Error>;
}

/// Records of one partition: offsets `from` up to (not including) `until`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRange {
    /// The partition.
    pub partition: i32,
    /// The first offset.
    pub from: i64,
    /// The offset after the last one.
    pub until: i64,
    /// The most records.
    pub max: usize,
}

impl ReadRange {
    /// Whether the range holds no record.
    pub fn is_empty(&self) -> bool {
        self.from >= self.until || self.max == 0
    }
}

/// Offset-level access to a Kafka-style topic for [`TopicBrowser`].
#[async_trait]
pub trait TopicLog: Send + Sync {
    /// Every partition of `topic`, sorted by partition from 0, with its watermarks and
    /// `group`'s committed offset. `Invalid` for an unknown topic.
    async fn offsets(&self, topic: &str, group: &str) -> Result<Vec<PartitionOffsets>, Error>;

    /// The records of `range`, oldest first.
    async fn read(&self, topic: &str, range: ReadRange) -> Result<Vec<(i64, Message)>, Error>;

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
    async fn browse(&self, source: &str, max: usize) -> Result<BrowsePass, Error> {
        let offsets = self.log.offsets(source, &self.group).await?;
        let mut entries = Vec::new();
        for (p, o) in offsets.iter().enumerate() {
            let room = max.saturating_sub(entries.len());
            if room == 0 {
                break;
            }
            let range = ReadRange { partition: p as i32, from: o.next_read(), until: o.end, max: room };
            if range.is_empty() {
                continue;
            }
            for (offset, message) in self.log.read(source, range).await? {
                entries.push(Browsed { partition: Some(p as i32), offset, message });
            }
        }
        let pass = TopicPass {
            log: self.log.clone(),
            group: self.group.clone(),
            topic: source.to_owned(),
            committed: offsets.iter().map(PartitionOffsets::next_read).collect(),
            settled: vec![false; entries.len()],
        };
        Ok(BrowsePass::new(entries, pass))
    }
}

struct TopicPass {
    log: Arc<dyn TopicLog>,
    group: String,
    topic: String,
    committed: Vec<i64>,
    /// Per entry: removed, or appended again at the end of its partition.
    settled: Vec<bool>,
}

#[async_trait]
impl PassBroker for TopicPass {
    async fn send(&mut self, destination: &str, message: Message) -> Result<(), PublishError> {
        self.log.publish(destination, message).await
    }

    async fn remove(&mut self, entries: &[Browsed], index: usize) -> Result<(), Error> {
        let (partition, offset) = (entries[index].partition.unwrap_or(0), entries[index].offset);
        // Older entries of the partition that stay: append them again first, so committing
        // past them loses none.
        let kept: Vec<usize> = (0..entries.len())
            .filter(|&i| !self.settled[i] && entries[i].partition == Some(partition) && entries[i].offset < offset)
            .collect();
        for i in kept {
            let copy = entries[i].message.clone().to_partition(partition);
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

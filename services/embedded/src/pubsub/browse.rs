//! Offset-level access for tools ([`TopicLog`]): read a range, commit a group's offset without
//! joining it. [`MemoryBroker::browser`] wraps it as a [`Browse`](switchboard_ports::Browse) port.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_ports::{
    Error, ErrorKind, InspectTopics, Message, PartitionOffsets, PublishError, Publisher, ReadRange, TopicBrowser,
    TopicLog,
};

use super::group::Group;
use super::{lock, MemoryBroker};

impl MemoryBroker {
    /// Browses topics of this broker, removing by committing under `group`.
    pub fn browser(&self, group: &str) -> TopicBrowser {
        TopicBrowser::new(Arc::new(self.clone()), group)
    }
}

fn unknown(topic: &str) -> Error {
    Error::new(ErrorKind::Invalid, format!("unknown topic {topic}"))
}

#[async_trait]
impl TopicLog for MemoryBroker {
    /// A topic not created yet has no partitions to read: nothing was published to it.
    async fn offsets(&self, topic: &str, group: &str) -> Result<Vec<PartitionOffsets>, Error> {
        if self.existing(topic).is_none() {
            return Ok(Vec::new());
        }
        self.topic_offsets(topic, group).await
    }

    async fn read(&self, topic: &str, range: ReadRange) -> Result<Vec<(i64, Message)>, Error> {
        let ReadRange { partition, from, until, max } = range;
        let t = self.existing(topic).ok_or_else(|| unknown(topic))?;
        let part = t
            .partitions
            .get(usize::try_from(partition).unwrap_or(usize::MAX))
            .ok_or_else(|| Error::new(ErrorKind::Invalid, format!("{topic} has no partition {partition}")))?;
        let log = lock(&part.log);
        let start = from.max(log.base);
        let end = until.min(log.end());
        Ok((start..end)
            .take(max)
            .filter_map(|o| log.messages.get((o - log.base) as usize).map(|m| (o, m.clone())))
            .collect())
    }

    async fn commit(&self, topic: &str, group: &str, partition: i32, offset: i64) -> Result<(), Error> {
        let t = self.existing(topic).ok_or_else(|| unknown(topic))?;
        let mut groups = lock(&t.groups);
        let g = groups.entry(group.into()).or_insert_with(|| Arc::new(Group::new(t.start_offsets(), t.freed.clone())));
        let c = g
            .committed
            .get(usize::try_from(partition).unwrap_or(usize::MAX))
            .ok_or_else(|| Error::new(ErrorKind::Invalid, format!("{topic} has no partition {partition}")))?;
        c.store(offset, Ordering::Release);
        Ok(())
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        Publisher::publish(self, topic, message).await
    }
}

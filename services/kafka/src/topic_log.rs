//! [`TopicLog`] on Kafka, for tools that browse a topic (dead letters): bounds from the
//! watermarks and a group's committed offsets, reads by manual assignment (no group joined,
//! nothing committed), and commits a group's offset without joining it (a "simple" consumer
//! group commit: the group has no members, which is what the tool's own group is).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use switchboard_ports::{Error, ErrorKind, Message, PublishError, Publisher, TopicBrowser, TopicLog};

use crate::consumer_loop::to_message;
use crate::error::port_error;
use crate::reader::partition_count;
use crate::{KafkaConfig, KafkaPublisher, OffsetReset};

/// Longest a read of one range may take: records missing below the end (compacted away,
/// transaction markers) end it there.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Offset-level access to Kafka topics for tools.
#[derive(Clone)]
pub struct KafkaTopicLog {
    config: KafkaConfig,
    publisher: Arc<KafkaPublisher>,
    /// One idle consumer per group that commits (never subscribed: it joins nothing).
    committers: Arc<Mutex<HashMap<String, Arc<BaseConsumer>>>>,
}

impl std::fmt::Debug for KafkaTopicLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTopicLog").finish_non_exhaustive()
    }
}

impl KafkaTopicLog {
    /// Access through `config`, publishing with `publisher`.
    pub fn new(config: &KafkaConfig, publisher: Arc<KafkaPublisher>) -> Self {
        KafkaTopicLog { config: config.clone(), publisher, committers: Arc::default() }
    }

    /// A [`TopicBrowser`] removing by committing under `group`.
    pub fn browser(self, group: &str) -> TopicBrowser {
        TopicBrowser::new(Arc::new(self), group)
    }

    fn committer(&self, group: &str) -> Result<Arc<BaseConsumer>, Error> {
        let mut map = self.committers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get(group) {
            return Ok(c.clone());
        }
        let c: BaseConsumer = self
            .config
            .consumer(group, OffsetReset::Earliest)
            .create()
            .map_err(|e| port_error("create consumer", e))?;
        let c = Arc::new(c);
        map.insert(group.to_owned(), c.clone());
        Ok(c)
    }
}

/// Runs blocking librdkafka calls on their own thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("kafka-topic-log".into())
        .spawn(move || {
            let _ = tx.send_blocking(f());
        })
        .map_err(|e| Error::new(ErrorKind::Other, "spawn thread").with_source(e))?;
    rx.recv().await.map_err(|_| Error::new(ErrorKind::Other, "kafka call thread ended without an answer"))?
}

#[async_trait]
impl TopicLog for KafkaTopicLog {
    async fn bounds(&self, topic: &str, group: &str) -> Result<Vec<(i64, i64)>, Error> {
        let consumer = self.committer(group)?;
        let (topic, timeout) = (topic.to_owned(), self.config.request_timeout);
        blocking(move || {
            let count = partition_count(&consumer, &topic, timeout)?;
            let mut tpl = TopicPartitionList::with_capacity(count as usize);
            for p in 0..count {
                tpl.add_partition(&topic, p);
            }
            let committed = consumer.committed_offsets(tpl, timeout).map_err(|e| port_error("committed offsets", e))?;
            (0..count)
                .map(|p| {
                    let (low, high) =
                        consumer.fetch_watermarks(&topic, p, timeout).map_err(|e| port_error("watermarks", e))?;
                    let from = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o.max(low),
                        _ => low,
                    };
                    Ok((from, high))
                })
                .collect()
        })
        .await
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        until: i64,
        max: usize,
    ) -> Result<Vec<(i64, Message)>, Error> {
        if from >= until || max == 0 {
            return Ok(Vec::new());
        }
        let consumer: BaseConsumer = self.config.reader().create().map_err(|e| port_error("create reader", e))?;
        let topic = topic.to_owned();
        let poll = self.config.poll_interval;
        blocking(move || {
            let mut tpl = TopicPartitionList::with_capacity(1);
            tpl.add_partition_offset(&topic, partition, Offset::Offset(from)).map_err(|e| port_error("assign", e))?;
            consumer.assign(&tpl).map_err(|e| port_error("assign", e))?;
            let mut out = Vec::new();
            let deadline = Instant::now() + READ_TIMEOUT;
            while out.len() < max && Instant::now() < deadline {
                match consumer.poll(poll) {
                    None => continue,
                    Some(Err(e)) => return Err(port_error("read", e)),
                    Some(Ok(m)) if m.offset() >= until => break,
                    Some(Ok(m)) => {
                        let last = m.offset() + 1 >= until;
                        out.push((m.offset(), to_message(&m)));
                        if last {
                            break;
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn commit(&self, topic: &str, group: &str, partition: i32, offset: i64) -> Result<(), Error> {
        let consumer = self.committer(group)?;
        let topic = topic.to_owned();
        blocking(move || {
            let mut tpl = TopicPartitionList::with_capacity(1);
            tpl.add_partition_offset(&topic, partition, Offset::Offset(offset)).map_err(|e| port_error("commit", e))?;
            consumer.commit(&tpl, CommitMode::Sync).map_err(|e| port_error("commit", e))
        })
        .await
    }

    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        self.publisher.publish(topic, message).await
    }
}

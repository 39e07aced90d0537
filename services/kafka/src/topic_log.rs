//! [`TopicLog`] on Kafka, for tools that browse a topic (dead letters): bounds from the
//! watermarks and a group's committed offsets (the [`KafkaInspector`]'s), reads by manual
//! assignment (no group joined, nothing committed), and commits a group's offset without
//! joining it (a "simple" consumer group commit: the group has no members, which is what the
//! tool's own group is).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use switchboard_ports::{
    Error, InspectTopics, Message, PartitionOffsets, PublishError, Publisher, ReadRange, TopicBrowser, TopicLog,
};

use crate::consumer_loop::to_message;
use crate::error::port_error;
use crate::subscriber::off_thread;
use crate::{KafkaConfig, KafkaInspector, KafkaPublisher};

/// Longest a read of one range may take: records missing below the end (compacted away,
/// transaction markers) end it there.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Offset-level access to Kafka topics for tools.
#[derive(Clone, Debug)]
pub struct KafkaTopicLog {
    config: KafkaConfig,
    publisher: Arc<KafkaPublisher>,
    /// Bounds, and the consumer that commits a group.
    inspector: KafkaInspector,
}

impl KafkaTopicLog {
    /// Access through `config`, publishing with `publisher`.
    pub fn new(config: &KafkaConfig, publisher: Arc<KafkaPublisher>) -> Self {
        KafkaTopicLog { config: config.clone(), publisher, inspector: KafkaInspector::new(config) }
    }

    /// A [`TopicBrowser`] removing by committing under `group`.
    pub fn browser(self, group: &str) -> TopicBrowser {
        TopicBrowser::new(Arc::new(self), group)
    }
}

#[async_trait]
impl TopicLog for KafkaTopicLog {
    async fn offsets(&self, topic: &str, group: &str) -> Result<Vec<PartitionOffsets>, Error> {
        self.inspector.topic_offsets(topic, group).await
    }

    async fn read(&self, topic: &str, range: ReadRange) -> Result<Vec<(i64, Message)>, Error> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let ReadRange { partition, from, until, max } = range;
        let consumer: BaseConsumer = self.config.reader().create().map_err(|e| port_error("create reader", e))?;
        let topic = topic.to_owned();
        let poll = self.config.poll_interval;
        off_thread(move || {
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
        let consumer = self.inspector.group(group)?;
        let topic = topic.to_owned();
        off_thread(move || {
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

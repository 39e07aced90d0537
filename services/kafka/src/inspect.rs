//! Each partition's watermarks and a consumer group's committed offsets, read with a consumer
//! that carries the group's id but never joins it (no subscribe), so looking moves no partition
//! and commits nothing: consumer-group lag for dashboards ([`InspectTopics`]), and the bounds
//! the dead-letter tools browse between ([`KafkaTopicLog`](crate::KafkaTopicLog)).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use switchboard_ports::{Error, InspectTopics, PartitionOffsets};

use crate::error::port_error;
use crate::reader::partition_count;
use crate::subscriber::off_thread;
use crate::{KafkaConfig, OffsetReset};

/// Longest wait for one broker answer: a dashboard refreshing every second must not queue up
/// behind a broker that stopped answering.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Groups whose consumer is kept; past it one is made afresh for each call.
const KEPT_GROUPS: usize = 16;

/// [`InspectTopics`] on Kafka: metadata, `fetch_watermarks` and `committed_offsets` on a
/// thread of their own, each bounded by the config's request timeout (at most 5 s).
#[derive(Clone)]
pub struct KafkaInspector {
    config: KafkaConfig,
    /// One idle consumer per group (never subscribed: it joins nothing), at most
    /// [`KEPT_GROUPS`]; also what commits a tool's group.
    groups: Arc<Mutex<HashMap<String, Arc<BaseConsumer>>>>,
}

impl std::fmt::Debug for KafkaInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaInspector").field("brokers", &self.config.brokers).finish_non_exhaustive()
    }
}

impl KafkaInspector {
    /// An inspector of the cluster at `config.brokers`; connects on first use.
    pub fn new(config: &KafkaConfig) -> Self {
        KafkaInspector { config: config.clone(), groups: Arc::default() }
    }

    /// The idle consumer carrying `group`'s id.
    pub(crate) fn group(&self, group: &str) -> Result<Arc<BaseConsumer>, Error> {
        let mut kept = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = kept.get(group) {
            return Ok(c.clone());
        }
        let c: BaseConsumer = self
            .config
            .consumer(group, OffsetReset::Earliest)
            .create()
            .map_err(|e| port_error("create consumer", e))?;
        let c = Arc::new(c);
        if kept.len() < KEPT_GROUPS {
            kept.insert(group.to_owned(), c.clone());
        }
        Ok(c)
    }
}

#[async_trait]
impl InspectTopics for KafkaInspector {
    async fn topic_offsets(&self, topic: &str, group: &str) -> Result<Vec<PartitionOffsets>, Error> {
        let consumer = self.group(group)?;
        let (topic, timeout) = (topic.to_owned(), self.config.request_timeout.min(MAX_WAIT));
        off_thread(move || offsets(&consumer, &topic, timeout)).await
    }
}

fn offsets(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> Result<Vec<PartitionOffsets>, Error> {
    let count = partition_count(consumer, topic, timeout)?;
    let mut wanted = TopicPartitionList::with_capacity(count as usize);
    for p in 0..count {
        wanted.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(wanted, timeout).map_err(|e| port_error("committed offsets", e))?;
    (0..count)
        .map(|p| {
            let (start, end) = consumer.fetch_watermarks(topic, p, timeout).map_err(|e| port_error("watermarks", e))?;
            let committed = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            Ok(PartitionOffsets { partition: p, start, end, committed })
        })
        .collect()
}

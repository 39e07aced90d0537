//! Consumer-group lag for dashboards: each partition's watermarks and a group's committed
//! offsets, read with a consumer that carries the group's id but never joins it (no
//! subscribe), so inspecting moves no partition and commits nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use switchboard_ports::{Error, InspectTopics, PartitionOffsets};

use crate::error::port_error;
use crate::KafkaConfig;

/// Longest wait for one broker answer: a dashboard refreshing every second must not queue up
/// behind a broker that stopped answering.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Groups whose inspecting consumer is kept; past it they are made afresh on each call.
const KEPT_GROUPS: usize = 16;

/// [`InspectTopics`] on Kafka: metadata, `fetch_watermarks` and `committed_offsets` on a
/// thread of their own, each bounded by the config's request timeout (at most 5 s).
pub struct KafkaInspector {
    config: KafkaConfig,
    consumers: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl std::fmt::Debug for KafkaInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaInspector").field("brokers", &self.config.brokers).finish_non_exhaustive()
    }
}

impl KafkaInspector {
    /// An inspector of the cluster at `config.brokers`; connects on first use.
    pub fn new(config: &KafkaConfig) -> Self {
        KafkaInspector { config: config.clone(), consumers: Mutex::new(HashMap::new()) }
    }

    fn consumer(&self, group: &str) -> Result<Arc<BaseConsumer>, Error> {
        let mut kept = self.consumers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = kept.get(group) {
            return Ok(c.clone());
        }
        let mut config = self.config.reader();
        config.set("group.id", group);
        let consumer: Arc<BaseConsumer> =
            Arc::new(config.create().map_err(|e| port_error("create inspecting consumer", e))?);
        if kept.len() < KEPT_GROUPS {
            kept.insert(group.to_owned(), consumer.clone());
        }
        Ok(consumer)
    }
}

#[async_trait]
impl InspectTopics for KafkaInspector {
    async fn topic_offsets(&self, topic: &str, group: &str) -> Result<Vec<PartitionOffsets>, Error> {
        let consumer = self.consumer(group)?;
        let (topic, timeout) = (topic.to_owned(), self.config.request_timeout.min(MAX_WAIT));
        crate::subscriber::off_thread(move || offsets(&consumer, &topic, timeout)).await
    }
}

fn offsets(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> Result<Vec<PartitionOffsets>, Error> {
    let count = crate::reader::partition_count(consumer, topic, timeout)?;
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

//! The broker floor on a real Kafka-compatible broker: produce → consume round trips through
//! the same adapter ([`switchboard_kafka`]) and settings the services use, on fresh topics.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_kafka::{KafkaAdmin, KafkaConfig, KafkaPublisher, KafkaSubscriber, OffsetReset};
use switchboard_ports::{Error as PortError, Publisher, Subscriber, Subscription, TopicAdmin};

use crate::drive::{Phase, PhaseReport};
use crate::floors::broker_floor;
use crate::Error;

/// Round trips on `config`'s broker: creates `{prefix}.{worker}` (one partition each) with
/// [`KafkaAdmin`], then runs [`broker_floor`] with a Kafka publisher and subscriber.
pub async fn kafka_floor(
    config: &KafkaConfig,
    prefix: &str,
    payload_size: usize,
    phase: &Phase,
) -> Result<PhaseReport, Error> {
    let setup = |what: &str, e: PortError| Error::Setup(format!("kafka {what}: {e}"));
    let admin = KafkaAdmin::new(config).map_err(|e| setup("admin", e))?;
    for i in 0..phase.mode.workers() {
        admin.ensure_topic(&format!("{prefix}.{i}"), 1).await.map_err(|e| setup("topic", e))?;
    }
    let publisher: Arc<dyn Publisher> = Arc::new(KafkaPublisher::new(config).map_err(|e| setup("publisher", e))?);
    // Fresh topics: start at the beginning so a record published right after the group got
    // its partition is never skipped by a late `latest` lookup.
    let subscriber: Arc<dyn Subscriber> = Arc::new(FromEarliest(KafkaSubscriber::new(config)));
    let report = broker_floor(publisher.clone(), subscriber, prefix, payload_size, phase).await;
    let _ = publisher.close().await;
    report
}

#[derive(Debug)]
struct FromEarliest(KafkaSubscriber);

#[async_trait]
impl Subscriber for FromEarliest {
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, PortError> {
        self.0.subscribe_from(topic, group, OffsetReset::Earliest).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, PortError> {
        self.0.partition_count(topic).await
    }

    async fn assign(&self, topic: &str, partitions: &[i32]) -> Result<Subscription, PortError> {
        self.0.assign(topic, partitions).await
    }
}

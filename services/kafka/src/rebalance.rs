use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;

use crate::group_state::GroupState;
use crate::OffsetReset;

/// Consumer callbacks of one subscription: positions new partitions and, before partitions
/// are taken away, commits what was acked and forgets the rest so that the next owner
/// re-reads every unacked message.
pub(crate) struct GroupContext {
    pub state: Arc<GroupState>,
    pub topic: String,
    pub reset: OffsetReset,
    pub request_timeout: Duration,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let outcome = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.position_new_partitions(consumer, tpl);
                self.assigned(tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoking(consumer, tpl);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                log::error!("kafka rebalance of {}: {}", self.topic, RDKafkaErrorCode::from(other));
                self.revoking(consumer, tpl);
                consumer.unassign()
            }
        };
        if let Err(e) = outcome {
            log::error!("kafka rebalance of {}: {e}", self.topic);
        }
    }
}

impl GroupContext {
    /// With `latest`, a partition without a committed offset starts at its current end, read
    /// now (librdkafka would look the end up only after `subscribe` returned, and a message
    /// published in between would be skipped) and committed at once: "the group starts at the
    /// end when it first joins" must not turn into "a later owner skips to the end", which
    /// would lose the unacked messages of a member that left before acking anything.
    fn position_new_partitions(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        if self.reset != OffsetReset::Latest || tpl.count() == 0 {
            return;
        }
        let committed = match consumer.committed_offsets(tpl.clone(), self.request_timeout) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("kafka: committed offsets of {}: {e}; librdkafka will reset", self.topic);
                return;
            }
        };
        let mut starts = TopicPartitionList::new();
        for e in committed.elements() {
            if e.offset() != Offset::Invalid {
                continue;
            }
            match consumer.fetch_watermarks(e.topic(), e.partition(), self.request_timeout) {
                Ok((_, high)) => {
                    let start = Offset::Offset(high);
                    let set = tpl
                        .set_partition_offset(e.topic(), e.partition(), start)
                        .and_then(|()| starts.add_partition_offset(e.topic(), e.partition(), start));
                    if let Err(err) = set {
                        log::warn!("kafka: position {}/{}: {err}", e.topic(), e.partition());
                    }
                }
                Err(err) => log::warn!("kafka: end of {}/{}: {err}", e.topic(), e.partition()),
            }
        }
        if starts.count() > 0 {
            if let Err(e) = consumer.commit(&starts, CommitMode::Sync) {
                log::warn!("kafka: committing the start of {}: {e}", self.topic);
            }
        }
    }

    fn assigned(&self, tpl: &TopicPartitionList) {
        let mut s = self.state.lock();
        s.epoch += 1;
        let epoch = s.epoch;
        for e in tpl.elements() {
            s.owned.insert(e.partition(), epoch);
        }
        s.assigned = true;
        s.rebalanced = true;
    }

    /// Commits acked watermarks of the revoked partitions (synchronously: the next owner
    /// starts from them) and forgets their in-flight state.
    fn revoking(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let mut commits = TopicPartitionList::new();
        {
            let mut s = self.state.lock();
            for e in tpl.elements() {
                if let Some(mark) = s.to_commit.get(&e.partition()).copied() {
                    let _ = commits.add_partition_offset(&self.topic, e.partition(), Offset::Offset(mark));
                }
                s.revoke(e.partition());
            }
            s.rebalanced = true;
        }
        if commits.count() > 0 {
            if let Err(e) = consumer.commit(&commits, CommitMode::Sync) {
                // Not fatal: the next owner re-reads from the previous commit (at-least-once).
                log::warn!("kafka: commit on revoke of {}: {e}", self.topic);
            }
        }
    }
}

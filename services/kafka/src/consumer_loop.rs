use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Sender, TrySendError};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use switchboard_ports::{Delivery, Error, Message, Settle};

use crate::error::port_error;
use crate::gaps::{OffsetGaps, Verdict};
use crate::group_state::{EpochSettle, GroupState};
use crate::rebalance::GroupContext;

/// How long to wait in the broker poll while the handler's buffer is full.
const BACKPRESSURE_POLL: Duration = Duration::from_millis(5);

/// The thread body of one subscription: owns the consumer, hands deliveries to the bounded
/// channel, commits acked watermarks, re-sends nacked messages, and on close commits and
/// leaves the group. `ready` fires once the group assigned partitions.
pub(crate) struct ConsumerLoop {
    pub consumer: BaseConsumer<GroupContext>,
    pub state: Arc<GroupState>,
    pub topic: Arc<str>,
    pub deliveries: Sender<Delivery>,
    pub ready: Sender<Result<(), Error>>,
    pub poll_interval: Duration,
}

impl ConsumerLoop {
    /// Runs until the subscription closes; returns the outcome of the final commit.
    pub(crate) fn run(self) -> Result<(), Error> {
        let mut pending: VecDeque<(u64, Delivery)> = VecDeque::new();
        let mut settles: HashMap<u64, Arc<dyn Settle>> = HashMap::new();
        let mut gaps = OffsetGaps::default();
        let mut paused = false;
        let mut announced = false;
        let resume_below = self.deliveries.capacity().unwrap_or(1) / 2;
        loop {
            let (commits, redeliveries, closing, owned_now) = {
                let mut s = self.state.lock();
                if !announced && s.assigned {
                    announced = true;
                    let _ = self.ready.try_send(Ok(()));
                }
                let owned_now = std::mem::take(&mut s.rebalanced).then(|| s.owned.clone());
                let commits = std::mem::take(&mut s.to_commit);
                let redeliveries: Vec<_> = s.redeliver.drain(..).collect();
                (commits, redeliveries, s.closing, owned_now)
            };
            let rebalanced = owned_now.is_some();
            if let Some(owned) = owned_now {
                // Deliveries of partitions we lost go unseen: the new owner reads them. (Not
                // under the lock: a dropped delivery nacks, and nack takes the lock.)
                pending.retain(|(epoch, d)| owned.get(&d.partition()) == Some(epoch));
                settles.retain(|epoch, _| owned.values().any(|e| e == epoch));
            }
            if closing || self.deliveries.is_closed() {
                return self.shut_down(commits, pending);
            }
            let _ = self.commit(&commits, CommitMode::Async);
            if rebalanced && paused {
                // Start from a clean state: the pause below covers the new assignment.
                self.set_paused(false);
                paused = false;
            }
            for r in redeliveries.into_iter().rev() {
                let settle = self.settle(&mut settles, r.epoch);
                let d = Delivery::new(r.message, self.topic.clone(), r.partition, r.offset, settle);
                pending.push_front((r.epoch, d));
            }

            while let Some((epoch, d)) = pending.pop_front() {
                match self.deliveries.try_send(d) {
                    Ok(()) => {}
                    Err(TrySendError::Full(d)) => {
                        pending.push_front((epoch, d));
                        break;
                    }
                    // Subscription dropped; the next turn shuts down.
                    Err(TrySendError::Closed(_)) => break,
                }
            }
            // Backpressure: stop fetching while the handler is behind (keep polling so
            // rebalances are served); resume once it drained half its buffer.
            if !pending.is_empty() && !paused {
                self.set_paused(true);
                paused = true;
            } else if paused && pending.is_empty() && self.deliveries.len() <= resume_below {
                self.set_paused(false);
                paused = false;
            }

            let wait = if paused { BACKPRESSURE_POLL } else { self.poll_interval };
            match self.consumer.poll(wait) {
                None => {}
                Some(Ok(m)) => {
                    if let Some((epoch, d)) = self.delivery(&m, &mut settles, &mut gaps) {
                        pending.push_back((epoch, d));
                    }
                }
                Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                    log::error!("kafka consumer of {}: fatal: {code}", self.topic);
                    return self.shut_down(HashMap::new(), pending);
                }
                Some(Err(e)) => log::warn!("kafka consumer of {}: {e}", self.topic),
            }
        }
    }

    fn delivery(
        &self,
        m: &BorrowedMessage<'_>,
        settles: &mut HashMap<u64, Arc<dyn Settle>>,
        gaps: &mut OffsetGaps,
    ) -> Option<(u64, Delivery)> {
        let epoch = {
            let mut s = self.state.lock();
            let epoch = *s.owned.get(&m.partition())?;
            // A record after a gap the broker's fetch left: read the gap again first.
            if let Verdict::Refetch(from) = gaps.check(m.partition(), epoch, m.offset(), Instant::now()) {
                drop(s);
                crate::gaps::seek_back(&self.consumer, &self.topic, m.partition(), from, m.offset());
                return None;
            }
            s.tracker.delivered(m.partition(), m.offset());
            epoch
        };
        let settle = self.settle(settles, epoch);
        Some((epoch, Delivery::new(to_message(m), self.topic.clone(), m.partition(), m.offset(), settle)))
    }

    fn settle(&self, settles: &mut HashMap<u64, Arc<dyn Settle>>, epoch: u64) -> Arc<dyn Settle> {
        settles.entry(epoch).or_insert_with(|| Arc::new(EpochSettle { state: self.state.clone(), epoch })).clone()
    }

    fn set_paused(&self, pause: bool) {
        let assignment = match self.consumer.assignment() {
            Ok(a) => a,
            Err(e) => return log::warn!("kafka consumer of {}: assignment: {e}", self.topic),
        };
        let outcome = if pause { self.consumer.pause(&assignment) } else { self.consumer.resume(&assignment) };
        if let Err(e) = outcome {
            log::warn!("kafka consumer of {}: pause/resume: {e}", self.topic);
        }
    }

    fn commit(&self, commits: &HashMap<i32, i64>, mode: CommitMode) -> Result<(), Error> {
        if commits.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::with_capacity(commits.len());
        for (&partition, &offset) in commits {
            tpl.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
                .map_err(|e| port_error("commit", e))?;
        }
        self.consumer.commit(&tpl, mode).map_err(|e| {
            // Async commits fail only on the way in; the offsets stay acked and are committed
            // with the next watermark or on close.
            log::warn!("kafka commit of {}: {e}", self.topic);
            port_error("commit", e)
        })
    }

    /// Commits the last acked watermarks synchronously, then leaves the group (dropping the
    /// consumer closes it; revoked partitions commit once more in the rebalance callback).
    fn shut_down(self, mut commits: HashMap<i32, i64>, pending: VecDeque<(u64, Delivery)>) -> Result<(), Error> {
        {
            let mut s = self.state.lock();
            s.closing = true;
            commits.extend(s.to_commit.drain());
        }
        // Not handed out: their offsets stay uncommitted and go to the next owner.
        drop(pending);
        let outcome = self.commit(&commits, CommitMode::Sync);
        let ConsumerLoop { consumer, state, .. } = self;
        drop(consumer);
        state.lock().gone = true;
        outcome
    }
}

/// A consumed record as the ports' [`Message`] (the group consumer and the assigned reader).
pub(crate) fn to_message(m: &BorrowedMessage<'_>) -> Message {
    Message {
        key: m.key().map(<[u8]>::to_vec),
        partition: None,
        payload: m.payload().unwrap_or_default().to_vec(),
        headers: m
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec())).collect())
            .unwrap_or_default(),
    }
}

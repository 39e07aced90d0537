use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use switchboard_ports::{Message, OffsetTracker, Settle};

/// What a subscription's consumer thread shares with its deliveries' acks and nacks and with
/// the rebalance callback.
#[derive(Debug, Default)]
pub(crate) struct GroupState {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Offsets handed to the handler and not yet acked, per owned partition.
    pub tracker: OffsetTracker,
    /// Owned partitions, each with the epoch of the assignment that gave it to us. Acks and
    /// nacks of deliveries from an older epoch are ignored: that partition moved on (possibly
    /// to another member, which re-reads everything uncommitted).
    pub owned: HashMap<i32, u64>,
    /// Bumped on every assignment.
    pub epoch: u64,
    /// Watermarks acked and not yet committed (one per partition, so bounded).
    pub to_commit: HashMap<i32, i64>,
    /// Nacked messages to hand out again; each is an in-flight delivery, so bounded by them.
    pub redeliver: VecDeque<Redelivery>,
    /// Set once the group assigned partitions for the first time.
    pub assigned: bool,
    /// Set by the rebalance callback; the consumer thread re-pauses and filters its buffer.
    pub rebalanced: bool,
    /// The subscription is closing: nacks are dropped (the next owner re-reads them).
    pub closing: bool,
    /// The consumer is gone: acks can no longer be committed.
    pub gone: bool,
}

/// A nacked message waiting to be handed out again.
#[derive(Debug)]
pub(crate) struct Redelivery {
    pub epoch: u64,
    pub partition: i32,
    pub offset: i64,
    pub message: Message,
}

impl GroupState {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// True when `partition` is still owned under the assignment `epoch`.
    pub(crate) fn owns(&self, partition: i32, epoch: u64) -> bool {
        self.owned.get(&partition) == Some(&epoch)
    }

    /// Forgets `partition` (revoked): uncommitted offsets stay uncommitted.
    pub(crate) fn revoke(&mut self, partition: i32) {
        self.tracker.revoke(partition);
        self.owned.remove(&partition);
        self.to_commit.remove(&partition);
        self.redeliver.retain(|r| r.partition != partition);
    }
}

/// The [`Settle`] of deliveries from one partition assignment.
pub(crate) struct EpochSettle {
    pub state: Arc<GroupState>,
    pub epoch: u64,
}

impl Settle for EpochSettle {
    fn ack(&self, partition: i32, offset: i64) {
        let mut s = self.state.lock();
        if s.gone || !s.owns(partition, self.epoch) {
            return;
        }
        if let Some(mark) = s.tracker.acked(partition, offset) {
            s.to_commit.insert(partition, mark);
        }
    }

    fn nack(&self, partition: i32, offset: i64, message: Message) {
        let mut s = self.state.lock();
        if s.closing || !s.owns(partition, self.epoch) {
            return;
        }
        s.redeliver.push_back(Redelivery { epoch: self.epoch, partition, offset, message });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_ports::{Message, Settle};

    use super::{EpochSettle, GroupState};

    fn owning(partition: i32, epoch: u64) -> Arc<GroupState> {
        let state = Arc::new(GroupState::default());
        {
            let mut s = state.lock();
            s.owned.insert(partition, epoch);
            s.epoch = epoch;
        }
        state
    }

    #[test]
    fn acks_move_the_commit_watermark_in_order() {
        let state = owning(0, 1);
        for o in 5..8 {
            state.lock().tracker.delivered(0, o);
        }
        let settle = EpochSettle { state: state.clone(), epoch: 1 };
        settle.ack(0, 6);
        assert_eq!(state.lock().to_commit.get(&0), Some(&5), "offset 5 is still in flight");
        settle.ack(0, 5);
        assert_eq!(state.lock().to_commit.get(&0), Some(&7));
        settle.ack(0, 7);
        assert_eq!(state.lock().to_commit.get(&0), Some(&8));
    }

    #[test]
    fn revoked_partitions_ignore_late_acks_and_nacks() {
        let state = owning(3, 1);
        state.lock().tracker.delivered(3, 0);
        let stale = EpochSettle { state: state.clone(), epoch: 1 };
        state.lock().revoke(3);
        // Reassigned to us later under a new epoch: the old delivery must not commit.
        state.lock().owned.insert(3, 2);
        stale.ack(3, 0);
        stale.nack(3, 0, Message::new("x"));
        let s = state.lock();
        assert!(s.to_commit.is_empty());
        assert!(s.redeliver.is_empty());
    }

    #[test]
    fn nack_queues_a_redelivery_unless_closing() {
        let state = owning(0, 4);
        state.lock().tracker.delivered(0, 9);
        let settle = EpochSettle { state: state.clone(), epoch: 4 };
        settle.nack(0, 9, Message::new("again"));
        assert_eq!(state.lock().redeliver.len(), 1);
        assert_eq!(state.lock().tracker.in_flight(), 1, "a nacked offset stays uncommitted");
        state.lock().closing = true;
        settle.nack(0, 9, Message::new("again"));
        assert_eq!(state.lock().redeliver.len(), 1);
    }
}

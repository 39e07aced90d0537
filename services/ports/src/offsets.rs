use std::collections::{BTreeSet, HashMap};

/// Commit watermark per partition for handlers that finish out of order.
///
/// Kafka commits one offset per partition meaning "everything before it is done", so with
/// several messages in flight the committable offset is the lowest one still in flight (or one
/// past the highest delivered when none is). Shared by every adapter with Kafka semantics.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
}

#[derive(Debug, Default)]
struct PartitionState {
    in_flight: BTreeSet<i64>,
    next: i64,
    committed: i64,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// `offset` of `partition` was handed to a handler.
    pub fn delivered(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        p.in_flight.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// `offset` of `partition` is done. Returns the new offset to commit (the next one to read)
    /// when the watermark moved.
    pub fn acked(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&partition)?;
        if !p.in_flight.remove(&offset) {
            return None;
        }
        let mark = p.in_flight.first().copied().unwrap_or(p.next);
        if mark > p.committed {
            p.committed = mark;
            Some(mark)
        } else {
            None
        }
    }

    /// Number of messages handed out and not yet acked.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }

    /// Forgets a partition (revoked in a rebalance): its uncommitted messages go to the next owner.
    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }
}

#[cfg(test)]
mod tests {
    use super::OffsetTracker;

    #[test]
    fn watermark_waits_for_the_lowest_in_flight_offset() {
        let mut t = OffsetTracker::new();
        for o in 0..3 {
            t.delivered(0, o);
        }
        assert_eq!(t.acked(0, 2), None, "offset 0 and 1 still in flight");
        assert_eq!(t.acked(0, 0), Some(1));
        assert_eq!(t.acked(0, 1), Some(3));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent_and_double_acks_ignored() {
        let mut t = OffsetTracker::new();
        t.delivered(0, 10);
        t.delivered(1, 5);
        assert_eq!(t.acked(1, 5), Some(6));
        assert_eq!(t.acked(1, 5), None);
        assert_eq!(t.acked(0, 10), Some(11));
        t.delivered(2, 0);
        t.revoke(2);
        assert_eq!(t.acked(2, 0), None);
    }
}

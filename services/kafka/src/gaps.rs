//! Records a fetch left out. On the topics this adapter reads (no compaction, no transactions)
//! a partition's offsets are contiguous, so a record at N + k after the one at N means the
//! broker answered a fetch without records N + 1 .. N + k - 1. tansu 0.6 does that when two
//! producers append to one partition at once: it advances the partition's end before it stores
//! the batch, so a fetch in between returns the other producer's later batch, and librdkafka
//! moves past the missing one for good (a gateway's reply never arrives: a 504). The consumer
//! drops the record after the gap and seeks back to the gap's first offset instead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::Offset;

/// How long a gap is fetched again before the consumer moves on past it (with a warning):
/// tansu stores the missing batch within milliseconds; a broker with a real hole (e.g. a
/// compacted topic) would otherwise hold the partition forever.
pub(crate) const GAP_PATIENCE: Duration = Duration::from_secs(2);

/// What to do with a consumed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The next record of its partition (or the first one seen, or one before the expected
    /// offset: the consumer's position was reset): hand it out.
    Deliver,
    /// Records before it are missing: drop it, seek the partition back to this offset.
    Refetch(i64),
}

/// The next offset expected per partition, under the assignment (`generation`) it belongs to.
#[derive(Debug, Default)]
pub(crate) struct OffsetGaps {
    next: HashMap<i32, (u64, i64)>,
    /// The gap being fetched again per partition: its first offset and since when.
    open: HashMap<i32, (i64, Instant)>,
}

impl OffsetGaps {
    /// `partition` reads from `offset` on (a known start: an assignment at a fixed offset).
    pub(crate) fn start(&mut self, partition: i32, generation: u64, offset: i64) {
        self.next.insert(partition, (generation, offset));
        self.open.remove(&partition);
    }

    /// Judges the record at `offset` of `partition`, consumed under `generation`; a new
    /// generation (the partition was assigned again, at a position not known here) starts at
    /// the record itself.
    pub(crate) fn check(&mut self, partition: i32, generation: u64, offset: i64, now: Instant) -> Verdict {
        let next = match self.next.get_mut(&partition) {
            // The common case, on every record: one lookup, nothing else to clear.
            Some((g, next)) if *g == generation && offset == *next && self.open.is_empty() => {
                *next = offset + 1;
                return Verdict::Deliver;
            }
            Some(&mut (g, next)) if g == generation => next,
            _ => {
                self.start(partition, generation, offset + 1);
                return Verdict::Deliver;
            }
        };
        if offset > next {
            let since = match self.open.get(&partition) {
                Some(&(from, since)) if from == next => since,
                _ => {
                    self.open.insert(partition, (next, now));
                    now
                }
            };
            if now.duration_since(since) < GAP_PATIENCE {
                return Verdict::Refetch(next);
            }
            log::warn!(
                "kafka: offsets {next}..{} of partition {partition} never arrived within {GAP_PATIENCE:?}; moving on",
                offset - 1
            );
        }
        self.start(partition, generation, offset + 1);
        Verdict::Deliver
    }
}

/// Seeks `partition` of `topic` back to `from`: the record at `found` came with the records
/// before it missing. Asynchronous; records fetched before the seek are discarded by librdkafka.
pub(crate) fn seek_back<C: ConsumerContext + 'static>(
    consumer: &impl Consumer<C>,
    topic: &str,
    partition: i32,
    from: i64,
    found: i64,
) {
    log::info!("kafka: {topic}/{partition}: fetched offset {found} without {from}..{}; reading them again", found - 1);
    if let Err(e) = consumer.seek(topic, partition, Offset::Offset(from), Duration::ZERO) {
        log::warn!("kafka: {topic}/{partition}: seek back to {from}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{OffsetGaps, Verdict, GAP_PATIENCE};

    #[test]
    fn contiguous_records_are_delivered_and_a_gap_is_fetched_again() {
        let (mut gaps, t) = (OffsetGaps::default(), Instant::now());
        gaps.start(0, 1, 10);
        assert_eq!(gaps.check(0, 1, 10, t), Verdict::Deliver);
        assert_eq!(gaps.check(0, 1, 11, t), Verdict::Deliver);
        // 12..14 left out by the fetch: seek back to 12, drop 15 (it comes again).
        assert_eq!(gaps.check(0, 1, 15, t), Verdict::Refetch(12));
        assert_eq!(gaps.check(0, 1, 15, t + Duration::from_millis(10)), Verdict::Refetch(12));
        for o in 12..16 {
            assert_eq!(gaps.check(0, 1, o, t), Verdict::Deliver, "offset {o}");
        }
        // librdkafka reset the position backwards (e.g. out of range): read on from there.
        assert_eq!(gaps.check(0, 1, 3, t), Verdict::Deliver);
        assert_eq!(gaps.check(0, 1, 4, t), Verdict::Deliver);
    }

    #[test]
    fn the_first_record_of_a_generation_sets_the_start_and_partitions_are_apart() {
        let (mut gaps, t) = (OffsetGaps::default(), Instant::now());
        assert_eq!(gaps.check(2, 1, 40, t), Verdict::Deliver, "position unknown: any start");
        assert_eq!(gaps.check(3, 1, 7, t), Verdict::Deliver);
        assert_eq!(gaps.check(2, 1, 41, t), Verdict::Deliver);
        // Assigned again (a rebalance): it restarts from the committed offset, before 41.
        assert_eq!(gaps.check(2, 2, 30, t), Verdict::Deliver);
        assert_eq!(gaps.check(2, 2, 31, t), Verdict::Deliver);
    }

    #[test]
    fn a_gap_that_never_fills_is_passed_after_the_patience() {
        let (mut gaps, t) = (OffsetGaps::default(), Instant::now());
        gaps.start(0, 0, 0);
        assert_eq!(gaps.check(0, 0, 3, t), Verdict::Refetch(0));
        assert_eq!(gaps.check(0, 0, 3, t + GAP_PATIENCE), Verdict::Deliver);
        assert_eq!(gaps.check(0, 0, 4, t + GAP_PATIENCE), Verdict::Deliver);
        // A later gap gets its own patience.
        assert_eq!(gaps.check(0, 0, 9, t + GAP_PATIENCE * 2), Verdict::Refetch(5));
    }
}

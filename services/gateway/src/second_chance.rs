//! A request's second chance when the relay reading its partition has died.
//!
//! A relay killed without leaving its group keeps its partitions until the broker's session
//! timeout ends (6 s by default, Apache Kafka's smallest, longer than a 5 s budget), so requests
//! waiting there cannot be answered in time, however many other relays are idle. The gateway
//! picks each request's partition itself (a hash of its id), so it knows where a request waits,
//! and every reply marks the partition of its request as answering.
//!
//! A request still unanswered after a share of its budget ([`SecondChance::after_percent`]) is
//! published once more, with the same id and deadline, to the partition that answered last,
//! only when its own partition has answered nothing since the request was published and that
//! other partition answered after it. The first reply wins (the pending map matches by id);
//! the second is a reply nobody waits for. A partition that still answers other requests is
//! alive, only slow (an overloaded chain, a slow processor): its requests get no second
//! chance, so a loaded chain is not sent more work. The chain has no side effects, so a
//! request handled twice costs only the work; jobs keep their own at-most-once rules.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Which partitions of the requests topic answer, and when a request may take a second chance.
#[derive(Debug)]
pub struct SecondChance {
    partitions: i32,
    after_percent: u32,
    epoch: Instant,
    /// Per partition: when a reply to a request on it last came, in microseconds since
    /// `epoch` plus one (0: never).
    answered: Box<[AtomicU64]>,
}

impl SecondChance {
    /// For a requests topic of `partitions` partitions (at least 1), a second chance after
    /// `after_percent` % of a request's budget (1 to 99).
    pub fn new(partitions: i32, after_percent: u32) -> Self {
        let partitions = partitions.max(1);
        SecondChance {
            partitions,
            after_percent: after_percent.clamp(1, 99),
            epoch: Instant::now(),
            answered: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The partition a request with `id` is published to: stable for the id, spread evenly
    /// over the topic.
    pub fn partition_of(&self, id: &str) -> i32 {
        (crate::instance::fnv1a(id.as_bytes()) % self.partitions as u64) as i32
    }

    /// When a request registered at `since` with `deadline` may take its second chance.
    pub fn due(&self, since: Instant, deadline: Instant) -> Instant {
        let budget = deadline.saturating_duration_since(since);
        since + budget.mul_f64(f64::from(self.after_percent) / 100.0)
    }

    /// A reply came to a request waiting on `partition`.
    pub fn answered(&self, partition: i32, at: Instant) {
        if let Some(slot) = self.answered.get(partition as usize) {
            slot.fetch_max(self.ticks(at), Ordering::Relaxed);
        }
    }

    /// Where a request waiting on `partition` since `since` goes for its second chance: the
    /// partition that answered last, if `partition` answered nothing since `since` and that
    /// one answered after `partition` did; `None` otherwise.
    pub fn target(&self, partition: i32, since: Instant) -> Option<i32> {
        let own = self.answered.get(partition as usize)?.load(Ordering::Relaxed);
        if own >= self.ticks(since) {
            return None;
        }
        let (best, at) = (0..self.partitions)
            .filter(|&q| q != partition)
            .map(|q| (q, self.answered[q as usize].load(Ordering::Relaxed)))
            .max_by_key(|&(_, at)| at)?;
        (at > own).then_some(best)
    }

    fn ticks(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX - 1) + 1
    }
}

/// The default share of the budget after which a request may take its second chance: early
/// enough that the second publish has most of the budget left, late enough that a request on
/// a live partition has long been answered (milliseconds on loopback, tens on a busy broker).
pub(crate) const DEFAULT_AFTER_PERCENT: u32 = 40;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// `partitions` partitions that answered as `answers` says (partition, milliseconds after
    /// the start), and the start.
    fn answered(partitions: i32, answers: &[(i32, u32)]) -> (SecondChance, Instant) {
        let (sc, t0) = (SecondChance::new(partitions, 40), Instant::now());
        for &(partition, ms) in answers {
            sc.answered(partition, t0 + ms * MS);
        }
        (sc, t0)
    }

    #[test]
    fn a_silent_partition_sends_its_request_to_the_one_that_answered_last() {
        let (sc, t0) = answered(4, &[(0, 1), (1, 2), (2, 3)]);
        // A request on partition 3 since t0 + 4 ms: 3 never answered, 2 answered last.
        assert_eq!(sc.target(3, t0 + 4 * MS), Some(2));
        // Partition 2 answered last of all, before the request: nothing answered since, so
        // nothing shows another partition is better off.
        assert_eq!(sc.target(2, t0 + 4 * MS), None);
        sc.answered(0, t0 + 5 * MS);
        assert_eq!(sc.target(2, t0 + 4 * MS), Some(0), "0 answered after 2 did");
    }

    #[test]
    fn a_partition_that_answers_others_is_slow_not_dead_and_gets_no_second_chance() {
        let (sc, t0) = answered(2, &[(1, 1), (0, 5)]);
        assert_eq!(sc.target(0, t0 + 2 * MS), None, "0 answered after the request was published");
        assert_eq!(sc.target(1, t0 + 2 * MS), Some(0));
    }

    #[test]
    fn without_a_partition_answering_after_it_nothing_is_sent_again() {
        let sc = SecondChance::new(3, 40);
        let t0 = Instant::now();
        assert_eq!(sc.target(0, t0), None, "nothing answered at all: the whole chain is down");
        sc.answered(0, t0);
        assert_eq!(sc.target(0, t0 + MS), None, "the others never answered");
        assert_eq!(SecondChance::new(1, 40).target(0, t0), None, "one partition: nowhere else to go");
        assert_eq!(sc.target(7, t0), None, "a partition outside the topic");
    }

    #[test]
    fn partitions_are_stable_in_range_and_spread() {
        let sc = SecondChance::new(4, 40);
        let mut seen = [0; 4];
        for i in 0..400 {
            let id = format!("req-{i}");
            let p = sc.partition_of(&id);
            assert_eq!(p, sc.partition_of(&id));
            seen[p as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn the_second_chance_comes_at_its_share_of_the_budget() {
        let sc = SecondChance::new(4, 40);
        let t0 = Instant::now();
        assert_eq!(sc.due(t0, t0 + Duration::from_secs(5)), t0 + Duration::from_secs(2));
        assert_eq!(SecondChance::new(4, 0).after_percent, 1, "kept inside the budget");
        assert_eq!(SecondChance::new(4, 150).after_percent, 99);
    }
}

//! The one bounded map of switchboard's in-memory state (idempotency keys, job statuses,
//! workers' claims, the console's jobs): string keys in insertion order, at most `capacity` of
//! them (the oldest is forgotten first), each optionally kept only `ttl` after it was inserted.
//!
//! Insertion order is expiry order, so both eviction and expiry pop from the front of one
//! queue: O(1) per entry, no scan. Not synchronized: each owner keeps it behind its own lock,
//! with whatever else that lock guards.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use switchboard_bounded_map::BoundedMap;
//!
//! let mut jobs = BoundedMap::with_ttl(2, Duration::from_secs(60));
//! let t0 = Instant::now();
//! jobs.insert("a", 1, t0);
//! jobs.insert("b", 2, t0);
//! jobs.insert("c", 3, t0); // "a" is forgotten: at most 2
//! assert_eq!((jobs.get("a"), jobs.get("c")), (None, Some(&3)));
//! jobs.expire(t0 + Duration::from_secs(60));
//! assert!(jobs.is_empty());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A map of at most `capacity` entries, oldest first out, each kept at most `ttl` when one is
/// set.
#[derive(Debug)]
pub struct BoundedMap<V> {
    capacity: usize,
    ttl: Option<Duration>,
    entries: HashMap<String, (u64, V)>,
    /// Insertion order, which is also expiry order: (inserted, generation, key).
    order: VecDeque<(Instant, u64, String)>,
    next_generation: u64,
}

impl<V> BoundedMap<V> {
    /// At most `capacity` (at least 1) entries, kept until evicted.
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            capacity: capacity.max(1),
            ttl: None,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
        }
    }

    /// At most `capacity` (at least 1) entries, each kept `ttl` after it was inserted.
    pub fn with_ttl(capacity: usize, ttl: Duration) -> Self {
        BoundedMap { ttl: Some(ttl), ..Self::new(capacity) }
    }

    /// Forgets the entries older than the ttl at `now`.
    pub fn expire(&mut self, now: Instant) {
        let Some(ttl) = self.ttl else { return };
        while let Some(&(inserted, generation, _)) = self.order.front() {
            if now.saturating_duration_since(inserted) < ttl {
                break;
            }
            if let Some((_, _, key)) = self.order.pop_front() {
                self.remove_generation(&key, generation);
            }
        }
    }

    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// The value at `key`, to change in place (its place in the order stays).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.entries.get_mut(key).map(|(_, v)| v)
    }

    /// Inserts `value` at `key` as the newest entry (replacing one already there), forgetting
    /// the oldest while full. Returns the entry's generation, for
    /// [`remove_generation`](BoundedMap::remove_generation).
    pub fn insert(&mut self, key: impl Into<String>, value: V, now: Instant) -> u64 {
        let key = key.into();
        while self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let Some((_, generation, oldest)) = self.order.pop_front() else { break };
            self.remove_generation(&oldest, generation);
        }
        // Places left behind by replaced or removed entries are dropped before they outnumber
        // the entries: the queue stays within twice the capacity.
        if self.order.len() >= 2 * self.capacity {
            let entries = &self.entries;
            self.order.retain(|(_, g, k)| entries.get(k).is_some_and(|(current, _)| current == g));
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.order.push_back((now, generation, key.clone()));
        self.entries.insert(key, (generation, value));
        generation
    }

    /// The value at `key`, inserted with `make` first when absent.
    pub fn get_or_insert_with(&mut self, key: &str, now: Instant, make: impl FnOnce() -> V) -> &mut V {
        if !self.entries.contains_key(key) {
            self.insert(key, make(), now);
        }
        match self.entries.get_mut(key) {
            Some((_, v)) => v,
            None => unreachable!("inserted just above"),
        }
    }

    /// Removes `key` if it is still the entry of `generation` (not a newer insert of the same
    /// key).
    pub fn remove_generation(&mut self, key: &str, generation: u64) {
        if self.entries.get(key).is_some_and(|(g, _)| *g == generation) {
            self.entries.remove(key);
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.entries.remove(key).map(|(_, v)| v)
    }

    /// The entries, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = (&str, &V)> {
        self.order.iter().rev().filter_map(|(_, generation, key)| match self.entries.get(key) {
            Some((current, value)) if current == generation => Some((key.as_str(), value)),
            _ => None,
        })
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_goes_first_at_the_bound_and_a_replaced_key_is_not_evicted_by_its_old_place() {
        let t = Instant::now();
        let mut m = BoundedMap::new(2);
        let old_a = m.insert("a", 1, t);
        m.insert("b", 2, t);
        m.insert("a", 3, t); // replaces: still 2 entries, nothing evicted
        assert_eq!((m.len(), m.get("a"), m.get("b")), (2, Some(&3), Some(&2)));
        m.remove_generation("a", old_a);
        assert_eq!(m.get("a"), Some(&3), "an old generation removes nothing");
        m.insert("c", 4, t);
        // a's first place in the order was the oldest, but it names an old generation: b goes.
        assert_eq!(m.len(), 2);
        assert!(m.get("c").is_some());
        *m.get_or_insert_with("d", t, || 0) += 5;
        assert_eq!(m.get("d"), Some(&5));
        let newest: Vec<_> = m.newest_first().map(|(k, _)| k).collect();
        assert_eq!(newest, ["d", "c"]);
        assert_eq!(m.len(), 2, "bounded whatever the order of inserts");
        for i in 0..100 {
            m.insert("d", i, t);
            m.remove("d");
        }
        assert!(m.order.len() <= 4, "the order queue stays within twice the capacity: {}", m.order.len());
    }

    #[test]
    fn entries_expire_in_insertion_order_after_the_ttl_only_when_one_is_set() {
        let t = Instant::now();
        let mut m = BoundedMap::with_ttl(10, Duration::from_secs(10));
        m.insert("a", (), t);
        m.insert("b", (), t + Duration::from_secs(5));
        m.expire(t + Duration::from_secs(9));
        assert_eq!(m.len(), 2);
        m.expire(t + Duration::from_secs(10));
        assert_eq!((m.get("a"), m.get("b")), (None, Some(&())));
        let mut forever = BoundedMap::new(10);
        forever.insert("a", (), t);
        forever.expire(t + Duration::from_secs(1_000_000));
        assert_eq!(forever.len(), 1);
    }
}

//! Sliding windows over call outcomes: the last N calls, or the calls of the last N seconds.
//!
//! Both are lock-free on the recording path: callers on several threads record at once and
//! the totals the rates are computed from are plain atomics. A reader may see the totals
//! mid-update (a slot swapped, its totals not yet adjusted); [`Counts::is_consistent`] lets
//! the breaker skip such a reading, and the next record looks again.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::config::SlidingWindow;
use crate::padded::Padded;

/// A recorded outcome: failed or not, slow or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

impl Record {
    const OK: u8 = 1;

    // Slot codes of the count window; 0 is an empty slot.
    fn code(self) -> u8 {
        1 | (u8::from(self.failed) << 1) | (u8::from(self.slow) << 2)
    }
}

/// Calls in the window and how many of them failed or were slow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Counts {
    /// False for a reading taken mid-update (a total briefly below zero, so huge).
    pub(crate) fn is_consistent(&self) -> bool {
        self.failures <= self.calls && self.slow <= self.calls
    }

    /// Failure rate in percent; 0 with no calls.
    pub(crate) fn failure_rate(&self) -> f32 {
        percent(self.failures, self.calls)
    }

    /// Slow-call rate in percent; 0 with no calls.
    pub(crate) fn slow_call_rate(&self) -> f32 {
        percent(self.slow, self.calls)
    }
}

pub(crate) fn percent(part: u64, whole: u64) -> f32 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 100.0 / whole as f64) as f32
    }
}

/// Running totals of a window.
#[derive(Debug, Default)]
struct Totals {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

impl Totals {
    fn read(&self) -> Counts {
        Counts { calls: self.calls.load(Relaxed), failures: self.failures.load(Relaxed), slow: self.slow.load(Relaxed) }
    }

    fn clear(&self) {
        self.calls.store(0, Relaxed);
        self.failures.store(0, Relaxed);
        self.slow.store(0, Relaxed);
    }
}

/// The window the breaker records into while closed.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    pub(crate) fn new(kind: SlidingWindow) -> Window {
        match kind {
            SlidingWindow::Count(n) => Window::Count(CountWindow::new(n)),
            SlidingWindow::Time(secs) => Window::Time(TimeWindow::new(secs)),
        }
    }

    /// Records one outcome at `now_ns`; returns the totals when they changed (only then can a
    /// rate have crossed a threshold).
    #[inline]
    pub(crate) fn record(&self, now_ns: u64, record: Record) -> Option<Counts> {
        match self {
            Window::Count(w) => w.record(record),
            Window::Time(w) => Some(w.record(now_ns, record)),
        }
    }

    /// Current totals (a time window first forgets what is older than the window).
    pub(crate) fn counts(&self, now_ns: u64) -> Counts {
        match self {
            Window::Count(w) => w.head.1.read(),
            Window::Time(w) => {
                w.advance(now_ns / NANOS_PER_BUCKET);
                w.totals.read()
            }
        }
    }

    /// Forgets every call (on entering open: closed starts afresh).
    pub(crate) fn clear(&self) {
        match self {
            Window::Count(w) => w.clear(),
            Window::Time(w) => w.clear(),
        }
    }
}

/// The last `size` calls, one byte each, in a ring.
#[derive(Debug)]
pub(crate) struct CountWindow {
    // Next slot to write and the totals share a cache line: one line moves per call.
    head: Padded<(AtomicU64, Totals)>,
    slots: Box<[AtomicU8]>,
}

impl CountWindow {
    fn new(size: u32) -> CountWindow {
        CountWindow {
            head: Padded::new((AtomicU64::new(0), Totals::default())),
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    #[inline]
    fn record(&self, record: Record) -> Option<Counts> {
        let (head, totals) = &*self.head;
        let new = record.code();
        if new == Record::OK
            && totals.failures.load(Relaxed) == 0
            && totals.slow.load(Relaxed) == 0
            && totals.calls.load(Relaxed) == self.slots.len() as u64
        {
            // A full window of successes stays one whichever slot a success lands in: write
            // nothing, so healthy callers only read this cache line and never bounce it.
            return None;
        }
        let i = head.fetch_add(1, Relaxed) % self.slots.len() as u64;
        let old = self.slots[i as usize].swap(new, Relaxed);
        if old == new {
            return None; // totals unchanged
        }
        let bit = |code: u8, mask: u8| i64::from(code & mask != 0);
        adjust(&totals.calls, bit(new, 1) - bit(old, 1));
        adjust(&totals.failures, bit(new, 2) - bit(old, 2));
        adjust(&totals.slow, bit(new, 4) - bit(old, 4));
        Some(totals.read())
    }

    fn clear(&self) {
        let (head, totals) = &*self.head;
        for slot in self.slots.iter() {
            slot.store(0, Relaxed);
        }
        head.store(0, Relaxed);
        totals.clear();
    }
}

#[inline]
fn adjust(total: &AtomicU64, delta: i64) {
    match delta {
        1 => {
            total.fetch_add(1, Relaxed);
        }
        -1 => {
            total.fetch_sub(1, Relaxed);
        }
        _ => {}
    }
}

/// Time window buckets are one second long, as in resilience4j.
const NANOS_PER_BUCKET: u64 = 1_000_000_000;

/// Calls of the last `size` seconds in one-second buckets.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    totals: Padded<Totals>,
    // Newest second the buckets are rotated to; only `rotate` holders move it.
    latest: Padded<AtomicU64>,
    rotate: Mutex<()>,
    buckets: Box<[Totals]>,
}

impl TimeWindow {
    fn new(secs: u32) -> TimeWindow {
        TimeWindow {
            totals: Padded::new(Totals::default()),
            latest: Padded::new(AtomicU64::new(0)),
            rotate: Mutex::new(()),
            buckets: (0..secs).map(|_| Totals::default()).collect(),
        }
    }

    #[inline]
    fn record(&self, now_ns: u64, record: Record) -> Counts {
        let sec = now_ns / NANOS_PER_BUCKET;
        let n = self.buckets.len() as u64;
        let latest = self.latest.load(Relaxed);
        if sec > latest {
            self.advance(sec);
        } else if sec + n <= latest {
            // Finished so long ago (a stalled thread) that it is outside the window.
            return self.totals.read();
        }
        let bucket = &self.buckets[(sec % n) as usize];
        bucket.calls.fetch_add(1, Relaxed);
        self.totals.calls.fetch_add(1, Relaxed);
        if record.failed {
            bucket.failures.fetch_add(1, Relaxed);
            self.totals.failures.fetch_add(1, Relaxed);
        }
        if record.slow {
            bucket.slow.fetch_add(1, Relaxed);
            self.totals.slow.fetch_add(1, Relaxed);
        }
        self.totals.read()
    }

    /// Empties the buckets of the seconds after `latest` up to `sec`, taking their calls out
    /// of the totals. Runs at most once per second per window, so a lock is fine.
    fn advance(&self, sec: u64) {
        let _guard = self.rotate.lock();
        let latest = self.latest.load(Relaxed);
        if sec <= latest {
            return;
        }
        let n = self.buckets.len() as u64;
        let first = (latest + 1).max(sec.saturating_sub(n - 1));
        for s in first..=sec {
            let bucket = &self.buckets[(s % n) as usize];
            self.totals.calls.fetch_sub(bucket.calls.swap(0, Relaxed), Relaxed);
            self.totals.failures.fetch_sub(bucket.failures.swap(0, Relaxed), Relaxed);
            self.totals.slow.fetch_sub(bucket.slow.swap(0, Relaxed), Relaxed);
        }
        self.latest.store(sec, Relaxed);
    }

    fn clear(&self) {
        let _guard = self.rotate.lock();
        for bucket in self.buckets.iter() {
            bucket.clear();
        }
        self.totals.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Record = Record { failed: false, slow: false };
    const FAIL: Record = Record { failed: true, slow: false };
    const SLOW: Record = Record { failed: false, slow: true };
    const SEC: u64 = NANOS_PER_BUCKET;

    #[test]
    fn count_window_keeps_only_the_last_n_calls() {
        let w = Window::new(SlidingWindow::Count(3));
        w.record(0, FAIL);
        w.record(0, SLOW);
        w.record(0, OK);
        assert_eq!(w.counts(0), Counts { calls: 3, failures: 1, slow: 1 });
        // The failure falls out of the window.
        w.record(0, OK);
        assert_eq!(w.counts(0), Counts { calls: 3, failures: 0, slow: 1 });
        w.record(0, OK);
        assert_eq!(w.counts(0), Counts { calls: 3, failures: 0, slow: 0 });
    }

    #[test]
    fn a_full_window_of_successes_still_evicts_a_later_failure() {
        let w = Window::new(SlidingWindow::Count(3));
        for _ in 0..5 {
            w.record(0, OK);
        }
        w.record(0, FAIL);
        assert_eq!(w.counts(0), Counts { calls: 3, failures: 1, slow: 0 });
        w.record(0, OK);
        w.record(0, OK);
        assert_eq!(w.counts(0).failures, 1, "2 calls after it: still in the window");
        w.record(0, OK);
        assert_eq!(w.counts(0), Counts { calls: 3, failures: 0, slow: 0 });
    }

    #[test]
    fn count_window_reports_unchanged_totals_as_none() {
        let w = Window::new(SlidingWindow::Count(1));
        assert!(w.record(0, OK).is_some());
        assert!(w.record(0, OK).is_none());
        assert_eq!(w.record(0, FAIL), Some(Counts { calls: 1, failures: 1, slow: 0 }));
    }

    #[test]
    fn time_window_forgets_calls_older_than_the_window() {
        let w = Window::new(SlidingWindow::Time(3));
        w.record(0, FAIL);
        w.record(SEC, OK);
        w.record(2 * SEC + 5, SLOW);
        assert_eq!(w.counts(2 * SEC + 999_999_999), Counts { calls: 3, failures: 1, slow: 1 });
        // Second 0 leaves the window at second 3.
        assert_eq!(w.counts(3 * SEC), Counts { calls: 2, failures: 0, slow: 1 });
        // A long silence empties it.
        assert_eq!(w.counts(100 * SEC), Counts::default());
        w.record(100 * SEC, FAIL);
        assert_eq!(w.counts(100 * SEC), Counts { calls: 1, failures: 1, slow: 0 });
    }

    #[test]
    fn time_window_drops_records_older_than_the_window() {
        let w = Window::new(SlidingWindow::Time(2));
        w.record(10 * SEC, OK);
        w.record(3 * SEC, FAIL);
        assert_eq!(w.counts(10 * SEC), Counts { calls: 1, failures: 0, slow: 0 });
    }

    #[test]
    fn clear_forgets_everything() {
        for kind in [SlidingWindow::Count(4), SlidingWindow::Time(4)] {
            let w = Window::new(kind);
            w.record(0, FAIL);
            w.clear();
            assert_eq!(w.counts(0), Counts::default(), "{kind:?}");
        }
    }

    #[test]
    fn concurrent_records_add_up() {
        let w = Window::new(SlidingWindow::Count(64));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..10_000 {
                        w.record(0, if i % 4 == 0 { FAIL } else { OK });
                    }
                });
            }
        });
        let Window::Count(cw) = &w else { unreachable!() };
        let from_slots = cw.slots.iter().filter(|s| s.load(Relaxed) & 2 != 0).count() as u64;
        let counts = w.counts(0);
        assert_eq!(counts.calls, 64);
        assert_eq!(counts.failures, from_slots);
    }
}

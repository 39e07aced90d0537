//! Call counters, striped per thread so concurrent callers do not fight over one cache line,
//! and the snapshot they are read as.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::breaker::State;
use crate::padded::Padded;

pub(crate) const SUCCESS: usize = 0;
pub(crate) const FAILURE: usize = 1;
pub(crate) const SLOW: usize = 2;
pub(crate) const IGNORED: usize = 3;
pub(crate) const RELEASED: usize = 4;
pub(crate) const REJECTED: usize = 5;
const KINDS: usize = 6;

// More stripes than cores on the machines this runs on; a collision costs speed, not counts.
const STRIPES: usize = 16;

/// Counters of every call since the breaker was made.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    stripes: [Padded<[AtomicU64; KINDS]>; STRIPES],
}

impl Counters {
    #[inline]
    pub(crate) fn add(&self, kind: usize) {
        self.stripes[stripe()][kind].fetch_add(1, Relaxed);
    }

    pub(crate) fn sum(&self, kind: usize) -> u64 {
        self.stripes.iter().map(|s| s[kind].load(Relaxed)).sum()
    }
}

/// This thread's stripe, handed out round-robin on first use.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

/// A snapshot of a breaker's state and counters, from
/// [`CircuitBreaker::metrics`](crate::CircuitBreaker::metrics).
///
/// Counters cover the breaker's whole life; the `window_*` fields and rates cover the calls
/// the current state decides on: the sliding window when closed (and, when open, the window
/// that opened it), the probes when half-open. Taken without stopping callers, so counters
/// read while calls finish may be off by those calls.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// State at the time of the snapshot.
    pub state: State,
    /// Calls recorded as successful.
    pub successes: u64,
    /// Calls recorded as failed.
    pub failures: u64,
    /// Calls (successful or failed) slower than the slow-call duration.
    pub slow: u64,
    /// Calls whose outcome was classified as ignored.
    pub ignored: u64,
    /// Permits dropped without an outcome (cancelled futures).
    pub released: u64,
    /// Calls refused because the breaker was open or out of probes.
    pub rejected: u64,
    /// State transitions.
    pub transitions: u64,
    /// Events not delivered because a subscriber's channel was full.
    pub events_dropped: u64,
    /// Calls in the window the current state decides on.
    pub window_calls: u64,
    /// Failed calls among them.
    pub window_failures: u64,
    /// Slow calls among them.
    pub window_slow: u64,
    /// Failure rate (percent) of the window, `None` until enough calls were recorded.
    pub failure_rate: Option<f32>,
    /// Slow-call rate (percent) of the window, `None` until enough calls were recorded.
    pub slow_call_rate: Option<f32>,
}

impl Metrics {
    /// Calls that ran through the breaker and finished: successes, failures, ignored and
    /// released.
    pub fn calls(&self) -> u64 {
        self.successes + self.failures + self.ignored + self.released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counters = Counters::default();
        std::thread::scope(|s| {
            for _ in 0..(STRIPES + 3) {
                s.spawn(|| {
                    for _ in 0..1000 {
                        counters.add(SUCCESS);
                    }
                    counters.add(REJECTED);
                });
            }
        });
        assert_eq!(counters.sum(SUCCESS), 1000 * (STRIPES as u64 + 3));
        assert_eq!(counters.sum(REJECTED), STRIPES as u64 + 3);
        assert_eq!(counters.sum(FAILURE), 0);
    }
}

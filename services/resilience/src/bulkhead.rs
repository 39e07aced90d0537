//! Bulkhead: bounded concurrency, so one slow downstream cannot take every worker.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use async_lock::{Semaphore, SemaphoreGuard};

/// At most `max_concurrent` calls at once, and at most `max_waiting` callers queued for a
/// slot in [`enter`](Bulkhead::enter).
///
/// [`try_enter`](Bulkhead::try_enter) never waits: at a gateway, a full bulkhead becomes a 429
/// or 503 at once. Cheap to clone; clones share the slots.
///
/// ```
/// use switchboard_breaker::Bulkhead;
///
/// let bulkhead = Bulkhead::new(2, 0);
/// let a = bulkhead.try_enter().unwrap();
/// let _b = bulkhead.try_enter().unwrap();
/// assert!(bulkhead.try_enter().is_err());
/// drop(a);
/// assert!(bulkhead.try_enter().is_ok());
/// ```
#[derive(Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Semaphore,
    max_concurrent: usize,
    max_waiting: usize,
    waiting: AtomicUsize,
    rejected: AtomicU64,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("max_concurrent", &self.inner.max_concurrent)
            .field("max_waiting", &self.inner.max_waiting)
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// The bulkhead was full (and so was its queue, for [`Bulkhead::enter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadFull {
    max_concurrent: usize,
}

impl BulkheadFull {
    /// The bulkhead's concurrency limit.
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bulkhead full: {} calls in flight", self.max_concurrent)
    }
}

impl std::error::Error for BulkheadFull {}

/// A slot in the bulkhead, given back when dropped.
#[must_use = "the slot is given back when the permit is dropped"]
pub struct BulkheadPermit<'a> {
    _guard: SemaphoreGuard<'a>,
}

impl fmt::Debug for BulkheadPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BulkheadPermit")
    }
}

impl Bulkhead {
    /// A bulkhead of `max_concurrent` slots (at least 1) queueing at most `max_waiting`
    /// callers of [`enter`](Bulkhead::enter).
    pub fn new(max_concurrent: usize, max_waiting: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Bulkhead {
            inner: Arc::new(Inner {
                slots: Semaphore::new(max_concurrent),
                max_concurrent,
                max_waiting,
                waiting: AtomicUsize::new(0),
                rejected: AtomicU64::new(0),
            }),
        }
    }

    /// Takes a slot if one is free; never waits.
    pub fn try_enter(&self) -> Result<BulkheadPermit<'_>, BulkheadFull> {
        match self.inner.slots.try_acquire() {
            Some(guard) => Ok(BulkheadPermit { _guard: guard }),
            None => Err(self.full()),
        }
    }

    /// Takes a slot, waiting for one if there is room in the queue; fails at once when the
    /// queue is full too. Dropping the future leaves the queue.
    ///
    /// ```
    /// use switchboard_breaker::Bulkhead;
    ///
    /// # futures_lite::future::block_on(async {
    /// let bulkhead = Bulkhead::new(1, 8);
    /// let permit = bulkhead.enter().await.unwrap();
    /// // ... call the downstream ...
    /// drop(permit);
    /// # });
    /// ```
    pub async fn enter(&self) -> Result<BulkheadPermit<'_>, BulkheadFull> {
        let inner = &*self.inner;
        if let Some(guard) = inner.slots.try_acquire() {
            return Ok(BulkheadPermit { _guard: guard });
        }
        let queued = inner.waiting.fetch_update(Relaxed, Relaxed, |w| (w < inner.max_waiting).then_some(w + 1));
        if queued.is_err() {
            return Err(self.full());
        }
        let _waiting = Waiting(&inner.waiting);
        let guard = inner.slots.acquire().await;
        Ok(BulkheadPermit { _guard: guard })
    }

    /// Calls in the bulkhead now.
    pub fn in_flight(&self) -> usize {
        self.inner.max_concurrent - self.inner.slots.available_permits()
    }

    /// Callers queued in [`enter`](Bulkhead::enter).
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Relaxed)
    }

    /// Callers turned away so far.
    pub fn rejected(&self) -> u64 {
        self.inner.rejected.load(Relaxed)
    }

    fn full(&self) -> BulkheadFull {
        self.inner.rejected.fetch_add(1, Relaxed);
        BulkheadFull { max_concurrent: self.inner.max_concurrent }
    }
}

/// Leaves the queue when the waiting future finishes or is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;
    use std::pin::pin;

    #[test]
    fn try_enter_limits_and_releases() {
        let bulkhead = Bulkhead::new(3, 0);
        let permits: Vec<_> = (0..3).map(|_| bulkhead.try_enter().unwrap()).collect();
        assert_eq!(bulkhead.in_flight(), 3);
        let err = bulkhead.try_enter().unwrap_err();
        assert_eq!(err.to_string(), "bulkhead full: 3 calls in flight");
        assert_eq!(bulkhead.rejected(), 1);
        drop(permits);
        assert_eq!(bulkhead.in_flight(), 0);
        assert!(bulkhead.try_enter().is_ok());
    }

    #[test]
    fn enter_waits_for_a_slot_within_the_queue_bound() {
        let bulkhead = Bulkhead::new(1, 1);
        let held = bulkhead.try_enter().unwrap();
        let mut first = pin!(bulkhead.enter());
        // Queued: not ready while the slot is held.
        assert!(future::block_on(future::poll_once(first.as_mut())).is_none());
        assert_eq!(bulkhead.waiting(), 1);
        // The queue is full: a second waiter is turned away at once.
        assert!(future::block_on(bulkhead.enter()).is_err());
        drop(held);
        let permit = future::block_on(first).unwrap();
        assert_eq!((bulkhead.in_flight(), bulkhead.waiting()), (1, 0));
        drop(permit);
        assert_eq!(bulkhead.in_flight(), 0);
    }

    #[test]
    fn a_dropped_waiter_leaves_the_queue() {
        let bulkhead = Bulkhead::new(1, 1);
        let _held = bulkhead.try_enter().unwrap();
        {
            let mut waiter = pin!(bulkhead.enter());
            assert!(future::block_on(future::poll_once(waiter.as_mut())).is_none());
            assert_eq!(bulkhead.waiting(), 1);
        }
        assert_eq!(bulkhead.waiting(), 0);
    }

    #[test]
    fn concurrent_callers_never_exceed_the_limit() {
        let bulkhead = Bulkhead::new(2, 64);
        let inside = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let _permit = future::block_on(bulkhead.enter()).unwrap();
                        let now = inside.fetch_add(1, Relaxed) + 1;
                        peak.fetch_max(now, Relaxed);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Relaxed);
                    }
                });
            }
        });
        assert!(peak.load(Relaxed) <= 2);
        assert_eq!(bulkhead.in_flight(), 0);
        assert_eq!(bulkhead.rejected(), 0);
    }
}

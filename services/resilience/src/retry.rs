//! Retrying: exponential backoff with jitter, under a retry budget shared by all requests to
//! a downstream so that retries cannot multiply its load during an outage.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::{nanos, Clock, SystemClock};
use crate::error::{ConfigError, ConfigErrorKind};

/// How a backoff delay is randomised, so clients that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential delay.
    None,
    /// Uniform in `[0, delay]` ("full jitter"; spreads retries the most).
    Full,
    /// Uniform in `[delay / 2, delay]` (keeps a floor under the wait).
    Equal,
}

/// Retry settings: how many retries and how long to wait before each.
///
/// Delay before retry `k` (0-based) is `min(max_delay, initial_delay × multiplier^k)`, then
/// jittered. Defaults: 3 retries, 50 ms initial delay, ×2, at most 2 s, full jitter.
///
/// ```
/// use std::time::Duration;
/// use switchboard_resilience::{Jitter, RetryPolicy};
///
/// let policy = RetryPolicy::new()
///     .max_retries(4)
///     .initial_delay(Duration::from_millis(100))
///     .max_delay(Duration::from_millis(500))
///     .jitter(Jitter::None);
/// let delays: Vec<u64> = policy.delays().map(|d| d.as_millis() as u64).collect();
/// assert_eq!(delays, [100, 200, 400, 500]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: Jitter::Full,
        }
    }
}

impl RetryPolicy {
    /// The default policy.
    pub fn new() -> Self {
        RetryPolicy::default()
    }

    /// Retries after the first attempt (0: never retry).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Delay before the first retry, before jitter.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Cap on any delay, before jitter.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Growth factor between delays; values below 1 (or NaN) are taken as 1.
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier >= 1.0 { multiplier } else { 1.0 };
        self
    }

    /// How delays are randomised.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delays before each retry, randomly jittered.
    pub fn delays(&self) -> Delays {
        self.delays_with(fastrand::Rng::new())
    }

    /// The delays before each retry, jittered from `seed` (reproducible, for tests).
    pub fn delays_seeded(&self, seed: u64) -> Delays {
        self.delays_with(fastrand::Rng::with_seed(seed))
    }

    fn delays_with(&self, rng: fastrand::Rng) -> Delays {
        Delays { policy: self.clone(), next: 0, rng }
    }

    /// The delay before retry `retry` (0-based), randomly jittered, whatever
    /// [`max_retries`](RetryPolicy::max_retries) says: for callers that count attempts
    /// themselves (a job's attempt number travels with the job).
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchboard_resilience::{Jitter, RetryPolicy};
    ///
    /// let policy = RetryPolicy::new().initial_delay(Duration::from_millis(100)).jitter(Jitter::None);
    /// assert_eq!(policy.delay(2), Duration::from_millis(400));
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        self.jittered(retry, &mut fastrand::Rng::new())
    }

    fn jittered(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let grown = self.initial_delay.as_secs_f64() * self.multiplier.powi(retry.min(1024) as i32);
        let base = Duration::try_from_secs_f64(grown).unwrap_or(self.max_delay).min(self.max_delay);
        let base_ns = nanos(base);
        let ns = match self.jitter {
            Jitter::None => base_ns,
            Jitter::Full => rng.u64(0..=base_ns),
            Jitter::Equal => base_ns / 2 + rng.u64(0..=base_ns - base_ns / 2),
        };
        Duration::from_nanos(ns)
    }

    /// Runs `op` until it succeeds, returns an error `retryable` rejects, the retries are used
    /// up, or `budget` refuses a retry; sleeps the thread between attempts. Returns the last
    /// result.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchboard_resilience::{RetryBudget, RetryPolicy};
    ///
    /// let policy = RetryPolicy::new().initial_delay(Duration::from_millis(1));
    /// let budget = RetryBudget::default();
    /// let mut attempts = 0;
    /// let r = policy.run(&budget, |e: &&str| *e == "busy", || {
    ///     attempts += 1;
    ///     if attempts < 3 { Err("busy") } else { Ok(attempts) }
    /// });
    /// assert_eq!(r, Ok(3));
    /// ```
    pub fn run<T, E>(
        &self,
        budget: &RetryBudget,
        retryable: impl Fn(&E) -> bool,
        mut op: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        budget.deposit();
        let mut delays = self.delays();
        loop {
            match op() {
                Err(e) if retryable(&e) => match delays.next() {
                    Some(delay) if budget.try_withdraw() => std::thread::sleep(delay),
                    _ => return Err(e),
                },
                result => return result,
            }
        }
    }

    /// Like [`run`](RetryPolicy::run) for async operations; `sleep` makes the timer future
    /// (the crate depends on no runtime), e.g. `async_io::Timer::after`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchboard_resilience::{RetryBudget, RetryPolicy};
    ///
    /// # futures_lite::future::block_on(async {
    /// let policy = RetryPolicy::new().max_retries(2).initial_delay(Duration::from_millis(1));
    /// let budget = RetryBudget::default();
    /// let r: Result<(), &str> = policy
    ///     .run_async(&budget, |_| true, async_io::Timer::after, || async { Err("down") })
    ///     .await;
    /// assert_eq!(r, Err("down"));
    /// # });
    /// ```
    pub async fn run_async<T, E, F, S>(
        &self,
        budget: &RetryBudget,
        retryable: impl Fn(&E) -> bool,
        mut sleep: impl FnMut(Duration) -> S,
        mut op: impl FnMut() -> F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
        S: Future,
    {
        budget.deposit();
        let mut delays = self.delays();
        loop {
            match op().await {
                Err(e) if retryable(&e) => match delays.next() {
                    Some(delay) if budget.try_withdraw() => {
                        sleep(delay).await;
                    }
                    _ => return Err(e),
                },
                result => return result,
            }
        }
    }
}

/// The delays of a [`RetryPolicy`], one per retry.
#[derive(Debug)]
pub struct Delays {
    policy: RetryPolicy,
    next: u32,
    rng: fastrand::Rng,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next >= self.policy.max_retries {
            return None;
        }
        let delay = self.policy.jittered(self.next, &mut self.rng);
        self.next += 1;
        Some(delay)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.policy.max_retries - self.next) as usize;
        (left, Some(left))
    }
}

// The budget's ledger is kept in this many slices of its ttl; deposits and withdrawals expire
// a slice at a time.
const SLICES: usize = 10;
const MILLI: i64 = 1000;

/// Retry budget in the style of Finagle: retries may be at most `percent` of the calls of the
/// last `ttl`, plus `min_per_sec` retries per second so that quiet clients can retry at all.
///
/// Every original call [`deposit`](RetryBudget::deposit)s `percent / 100` of a token; every
/// retry [`try_withdraw`](RetryBudget::try_withdraw)s a whole one. Both expire after `ttl`
/// (in tenths of it), so the budget reflects recent traffic: in an outage, where every call
/// fails, load grows by at most `percent` instead of by the retry count. Share one budget
/// (it is cheaply [`Clone`]) among all requests to one downstream. A mutex guards the ledger:
/// two short critical sections per call.
///
/// Defaults (Finagle's): 20 %, 10 retries per second, ttl 10 s.
///
/// ```
/// use std::time::Duration;
/// use switchboard_resilience::{ManualClock, RetryBudget};
///
/// let clock = ManualClock::new();
/// let budget = RetryBudget::with_clock(10.0, 0, Duration::from_secs(10), clock.clone())?;
/// for _ in 0..50 {
///     budget.deposit();
/// }
/// assert_eq!(budget.available(), 5);
/// assert!((0..5).all(|_| budget.try_withdraw()));
/// assert!(!budget.try_withdraw());
/// # Ok::<(), switchboard_resilience::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    ledger: Mutex<Ledger>,
    clock: Arc<dyn Clock>,
    deposit_milli: i64,
    reserve_milli: i64,
    slice_ns: u64,
    percent: f32,
    min_per_sec: u32,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct Ledger {
    // (deposited, withdrawn) milli-tokens per slice.
    slices: [(i64, i64); SLICES],
    // Newest slice written (clock time / slice length).
    latest: u64,
    deposited: i64,
    withdrawn: i64,
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("percent", &self.inner.percent)
            .field("min_per_sec", &self.inner.min_per_sec)
            .field("ttl", &self.inner.ttl)
            .field("available", &self.available())
            .finish()
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::with_clock(20.0, 10, Duration::from_secs(10), SystemClock::new())
            .expect("default retry budget is valid")
    }
}

impl RetryBudget {
    /// A budget allowing retries of `percent` (0 to 1000) of the calls in the last `ttl`
    /// (1 s to 60 s), plus `min_per_sec` retries per second.
    pub fn new(percent: f32, min_per_sec: u32, ttl: Duration) -> Result<RetryBudget, ConfigError> {
        RetryBudget::with_clock(percent, min_per_sec, ttl, SystemClock::new())
    }

    /// Like [`new`](RetryBudget::new) reading time from `clock`.
    pub fn with_clock(
        percent: f32,
        min_per_sec: u32,
        ttl: Duration,
        clock: impl Clock + 'static,
    ) -> Result<RetryBudget, ConfigError> {
        if !(0.0..=1000.0).contains(&percent) {
            return Err(ConfigError::new("retry_percent", percent, ConfigErrorKind::OutOfRange));
        }
        if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(60) {
            return Err(ConfigError::new("retry_ttl_ms", ttl.as_millis(), ConfigErrorKind::OutOfRange));
        }
        let inner = BudgetInner {
            ledger: Mutex::new(Ledger::default()),
            clock: Arc::new(clock),
            deposit_milli: (f64::from(percent) * 10.0).round() as i64,
            reserve_milli: (f64::from(min_per_sec) * ttl.as_secs_f64() * MILLI as f64) as i64,
            slice_ns: nanos(ttl) / SLICES as u64,
            percent,
            min_per_sec,
            ttl,
        };
        Ok(RetryBudget { inner: Arc::new(inner) })
    }

    /// Records an original (non-retry) call, earning a fraction of a retry.
    pub fn deposit(&self) {
        let mut ledger = self.ledger();
        let slice = ledger.current();
        ledger.slices[slice].0 += self.inner.deposit_milli;
        ledger.deposited += self.inner.deposit_milli;
    }

    /// Takes one retry from the budget; false when none is left (do not retry).
    pub fn try_withdraw(&self) -> bool {
        let mut ledger = self.ledger();
        if self.balance(&ledger) < MILLI {
            return false;
        }
        let slice = ledger.current();
        ledger.slices[slice].1 += MILLI;
        ledger.withdrawn += MILLI;
        true
    }

    /// Retries the budget allows now.
    pub fn available(&self) -> u64 {
        let ledger = self.ledger();
        (self.balance(&ledger) / MILLI).max(0) as u64
    }

    fn balance(&self, ledger: &Ledger) -> i64 {
        self.inner.reserve_milli + ledger.deposited - ledger.withdrawn
    }

    /// The ledger with slices older than the ttl expired.
    fn ledger(&self) -> parking_lot::MutexGuard<'_, Ledger> {
        let now_slice = nanos(self.inner.clock.now()) / self.inner.slice_ns.max(1);
        let mut ledger = self.inner.ledger.lock();
        if now_slice > ledger.latest {
            let first = (ledger.latest + 1).max(now_slice.saturating_sub(SLICES as u64 - 1));
            for s in first..=now_slice {
                let (d, w) = std::mem::take(&mut ledger.slices[(s % SLICES as u64) as usize]);
                ledger.deposited -= d;
                ledger.withdrawn -= w;
            }
            ledger.latest = now_slice;
        }
        ledger
    }
}

impl Ledger {
    fn current(&self) -> usize {
        (self.latest % SLICES as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let policy = RetryPolicy::new()
            .max_retries(6)
            .initial_delay(Duration::from_millis(10))
            .multiplier(3.0)
            .max_delay(Duration::from_secs(1))
            .jitter(Jitter::None);
        let ms: Vec<u128> = policy.delays().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [10, 30, 90, 270, 810, 1000]);
    }

    #[test]
    fn jitter_stays_within_its_range_and_seeds_reproduce() {
        let policy = RetryPolicy::new().max_retries(200).initial_delay(Duration::from_millis(100));
        let full: Vec<Duration> = policy.delays_seeded(7).collect();
        assert_eq!(full, policy.delays_seeded(7).collect::<Vec<_>>());
        let plain: Vec<Duration> = policy.clone().jitter(Jitter::None).delays().collect();
        assert!(full.iter().zip(&plain).all(|(j, p)| j <= p));
        assert!(full.iter().zip(&plain).any(|(j, p)| j < p), "full jitter never lowered a delay");
        let equal: Vec<Duration> = policy.clone().jitter(Jitter::Equal).delays_seeded(7).collect();
        assert!(equal.iter().zip(&plain).all(|(j, p)| *j >= *p / 2 && j <= p));
    }

    #[test]
    fn budget_exhausts_at_the_ratio_of_recent_calls() {
        let clock = ManualClock::new();
        let budget = RetryBudget::with_clock(20.0, 0, TTL, clock.clone()).unwrap();
        assert!(!budget.try_withdraw(), "no calls, no reserve: no retries");
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(granted, 20);
        assert_eq!(budget.available(), 0);
    }

    #[test]
    fn budget_refills_as_withdrawals_expire() {
        let clock = ManualClock::new();
        let budget = RetryBudget::with_clock(0.0, 2, TTL, clock.clone()).unwrap();
        // Reserve: 2 per second over 10 s.
        assert_eq!((0..100).filter(|_| budget.try_withdraw()).count(), 20);
        clock.advance(Duration::from_secs(5));
        assert!(!budget.try_withdraw(), "withdrawals have not expired yet");
        clock.advance(Duration::from_secs(5));
        assert_eq!(budget.available(), 20);
    }

    #[test]
    fn old_deposits_stop_paying_for_retries() {
        let clock = ManualClock::new();
        let budget = RetryBudget::with_clock(10.0, 0, TTL, clock.clone()).unwrap();
        for _ in 0..100 {
            budget.deposit();
        }
        clock.advance(Duration::from_secs(6));
        for _ in 0..50 {
            budget.deposit();
        }
        assert_eq!(budget.available(), 15);
        clock.advance(Duration::from_secs(5));
        assert_eq!(budget.available(), 5, "the first 100 calls left the ttl");
        clock.advance(Duration::from_secs(60));
        assert_eq!(budget.available(), 0);
    }

    #[test]
    fn run_stops_when_the_budget_is_spent() {
        let clock = ManualClock::new();
        let budget = RetryBudget::with_clock(100.0, 0, TTL, clock).unwrap();
        let policy = RetryPolicy::new().max_retries(5).initial_delay(Duration::ZERO);
        let mut attempts = 0;
        // One deposit at 100 % buys exactly one retry.
        let r: Result<(), &str> = policy.run(
            &budget,
            |_| true,
            || {
                attempts += 1;
                Err("down")
            },
        );
        assert_eq!((r, attempts), (Err("down"), 2));
    }

    #[test]
    fn run_does_not_retry_what_is_not_retryable() {
        let budget = RetryBudget::default();
        let mut attempts = 0;
        let r: Result<(), u16> = RetryPolicy::new().run(
            &budget,
            |s| *s >= 500,
            || {
                attempts += 1;
                Err(404)
            },
        );
        assert_eq!((r, attempts), (Err(404), 1));
    }

    #[test]
    fn invalid_budgets_are_errors() {
        assert!(RetryBudget::new(-1.0, 0, TTL).is_err());
        assert!(RetryBudget::new(f32::NAN, 0, TTL).is_err());
        let err = RetryBudget::new(10.0, 0, Duration::from_millis(10)).unwrap_err();
        assert_eq!(err.to_string(), "invalid retry_ttl_ms=10: out of range");
    }
}

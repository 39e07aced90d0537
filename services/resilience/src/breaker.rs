//! The circuit breaker state machine: closed, open, half-open.
//!
//! The hot path (closed, call succeeds) is one load of the state word, two clock reads, a
//! per-thread counter and one slot of the count window; transitions take a lock, which is
//! fine because they are rare.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::ReentrantMutex;

use crate::clock::{nanos, Clock, SystemClock};
use crate::config::{Config, SlidingWindow};
use crate::error::{CallError, Rejected};
use crate::events::{Event, Listeners, Reason};
use crate::metrics::{self, Counters, Metrics};
use crate::outcome::CallOutcome;
use crate::padded::Padded;
use crate::permit::Permit;
use crate::window::{percent, Counts, Record, Window};

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls go through; their outcomes fill the sliding window.
    Closed,
    /// Calls are rejected until the wait elapses.
    Open,
    /// A limited number of probe calls go through; their outcomes decide between closed and
    /// open.
    HalfOpen,
}

// The state word: generation << 2 | tag. The generation grows with every transition, so a
// permit can tell whether the state it was issued in is still current.
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;

pub(crate) fn tag_state(word: u64) -> State {
    match word & 3 {
        CLOSED => State::Closed,
        OPEN => State::Open,
        _ => State::HalfOpen,
    }
}

// The half-open word packs four 16-bit fields: probes issued, probe results, failed results,
// slow results.
const ISSUED: u64 = 1;
const RESULTS: u64 = 1 << 16;
const FAILED: u64 = 1 << 32;
const SLOWED: u64 = 1 << 48;

fn field(word: u64, unit: u64) -> u64 {
    (word / unit) & 0xFFFF
}

/// A circuit breaker with resilience4j's semantics.
///
/// **Closed:** calls go through and their outcomes fill a sliding window (the last N calls,
/// or the last N seconds). Once the window holds at least
/// [`min_calls`](crate::ConfigBuilder::min_calls), a failure rate or a slow-call rate at or
/// above its threshold opens the breaker.
///
/// **Open:** calls are rejected at once with [`Rejected`], which says how long until the
/// breaker probes again. There is no timer: the first call after the wait moves the breaker
/// to half-open.
///
/// **Half-open:** [`half_open_calls`](crate::ConfigBuilder::half_open_calls) probe calls go
/// through, the rest are rejected. When all probes have finished and their rates are under
/// the thresholds the breaker closes with an empty window; it reopens as soon as the probes'
/// failures (or slow calls) reach a threshold whatever the remaining probes do.
///
/// A call that finishes after the breaker changed state (it started before the breaker
/// opened, say) is counted in [`metrics`](CircuitBreaker::metrics) but does not decide the
/// new state.
///
/// Cloning is cheap (an [`Arc`]); clones share the state. `Send + Sync`.
///
/// ```
/// use std::time::Duration;
/// use switchboard_resilience::{CallError, CircuitBreaker, Config, ManualClock, State};
///
/// let clock = ManualClock::new();
/// let config = Config::builder().min_calls(4).wait_open(Duration::from_secs(10)).build()?;
/// let breaker = CircuitBreaker::with_clock(config, clock.clone());
///
/// for _ in 0..4 {
///     let r: Result<(), CallError<&str>> = breaker.call(|| Err("connection refused"));
///     assert!(matches!(r, Err(CallError::Failed(_))));
/// }
/// assert_eq!(breaker.state(), State::Open);
/// match breaker.call(|| Ok::<_, &str>(42)) {
///     Err(CallError::Rejected(r)) => assert_eq!(r.retry_after(), Duration::from_secs(10)),
///     other => panic!("{other:?}"),
/// }
///
/// clock.advance(Duration::from_secs(10));
/// assert_eq!(breaker.call(|| Ok::<_, &str>(42)), Ok(42)); // a probe
/// assert_eq!(breaker.state(), State::HalfOpen);
/// # Ok::<(), switchboard_resilience::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    // Read by every call, written on transitions only: alone on its line.
    state: Padded<AtomicU64>,
    // When open: the clock time (ns) at which probing may start.
    open_until: Padded<AtomicU64>,
    half_open: Padded<AtomicU64>,
    window: Window,
    counters: Counters,
    transitions: AtomicU64,
    // Serialises transitions; reentrant so an event callback may itself reset the breaker.
    transition: ReentrantMutex<()>,
    listeners: Listeners,
    clock: Arc<dyn Clock>,
    config: Config,
    slow_ns: u64,
    wait_ns: u64,
    min_calls: u64,
    probes: u64,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("config", &self.inner.config)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new(Config::default())
    }
}

impl CircuitBreaker {
    /// A closed breaker on the system clock.
    pub fn new(config: Config) -> Self {
        CircuitBreaker::with_clock(config, SystemClock::new())
    }

    /// A closed breaker reading time from `clock` (a [`ManualClock`](crate::ManualClock) in
    /// tests).
    pub fn with_clock(config: Config, clock: impl Clock + 'static) -> Self {
        let min_calls = match config.window() {
            // A full count window always counts, as in resilience4j.
            SlidingWindow::Count(n) => config.min_calls().min(n),
            SlidingWindow::Time(_) => config.min_calls(),
        };
        let inner = Inner {
            state: Padded::new(AtomicU64::new(CLOSED)),
            open_until: Padded::new(AtomicU64::new(0)),
            half_open: Padded::new(AtomicU64::new(0)),
            window: Window::new(config.window()),
            counters: Counters::default(),
            transitions: AtomicU64::new(0),
            transition: ReentrantMutex::new(()),
            listeners: Listeners::default(),
            clock: Arc::new(clock),
            slow_ns: nanos(config.slow_call_duration()),
            wait_ns: nanos(config.wait_open()),
            min_calls: u64::from(min_calls),
            probes: u64::from(config.half_open_calls()),
            config,
        };
        CircuitBreaker { inner: Arc::new(inner) }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The current state. An open breaker whose wait elapsed reports [`State::Open`] until a
    /// call (or [`try_acquire`](CircuitBreaker::try_acquire)) moves it to half-open.
    pub fn state(&self) -> State {
        tag_state(self.inner.state.load(Acquire))
    }

    /// Asks to make one call; the low-level API under [`call`](CircuitBreaker::call).
    ///
    /// Report the call's outcome on the [`Permit`]; its duration (from this call to the report)
    /// decides whether it was slow. A permit dropped without an outcome is *released*: it
    /// counts as neither success nor failure (in half-open its probe slot is given back), as
    /// when a caller cancels a request. While the thread is panicking, though, a dropped
    /// permit counts as a failure.
    ///
    /// ```
    /// use switchboard_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::default();
    /// match breaker.try_acquire() {
    ///     Ok(permit) => {
    ///         let status = 200; // make the call
    ///         match status {
    ///             200..=399 => permit.success(),
    ///             400..=499 => permit.ignore(),
    ///             _ => permit.failure(),
    ///         }
    ///     }
    ///     Err(rejected) => println!("503, Retry-After: {}", rejected.retry_after_secs()),
    /// }
    /// assert_eq!(breaker.metrics().successes, 1);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        self.inner.try_acquire()
    }

    /// Runs `f` unless the breaker rejects it; `Ok` counts as a success, `Err` as a failure.
    ///
    /// ```
    /// use switchboard_resilience::{CallError, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::default();
    /// let n: Result<u32, CallError<std::num::ParseIntError>> = breaker.call(|| "7".parse());
    /// assert_eq!(n, Ok(7));
    /// ```
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_with(CallOutcome::of, f)
    }

    /// Runs `f` unless the breaker rejects it; `classify` says how its result counts.
    ///
    /// ```
    /// use switchboard_resilience::{CallError, CircuitBreaker, CallOutcome};
    ///
    /// let breaker = CircuitBreaker::default();
    /// let not_found: Result<(), CallError<u16>> =
    ///     breaker.call_with(CallOutcome::ignore_if(|s: &u16| *s < 500), || Err(404));
    /// assert_eq!(not_found, Err(CallError::Failed(404)));
    /// let m = breaker.metrics();
    /// assert_eq!((m.ignored, m.failures), (1, 0));
    /// ```
    #[inline]
    pub fn call_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> CallOutcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire()?;
        let result = f();
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// Awaits `future` unless the breaker rejects it; `Ok` counts as a success, `Err` as a
    /// failure. Dropping the returned future before it finishes releases the permit.
    ///
    /// ```
    /// use switchboard_resilience::{CallError, CircuitBreaker};
    ///
    /// # futures_lite::future::block_on(async {
    /// let breaker = CircuitBreaker::default();
    /// let r: Result<&str, CallError<()>> = breaker.call_async(async { Ok("pong") }).await;
    /// assert_eq!(r, Ok("pong"));
    /// # });
    /// ```
    pub async fn call_async<T, E>(&self, future: impl Future<Output = Result<T, E>>) -> Result<T, CallError<E>> {
        self.call_async_with(CallOutcome::of, future).await
    }

    /// Awaits `future` unless the breaker rejects it; `classify` says how its result counts.
    pub async fn call_async_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> CallOutcome,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire()?;
        let result = future.await;
        permit.record(classify(&result));
        result.map_err(CallError::Failed)
    }

    /// Opens the breaker now, for the configured wait (an operator switch, or a downstream
    /// that said "go away"). Does nothing when already open.
    pub fn force_open(&self) {
        self.force(OPEN, Reason::Forced);
    }

    /// Closes the breaker with an empty window. Does nothing when already closed.
    pub fn reset(&self) {
        self.force(CLOSED, Reason::Reset);
    }

    /// Moves to `state` unless already there: the operator's transitions.
    fn force(&self, state: u64, reason: Reason) {
        let inner = &*self.inner;
        let _lock = inner.transition.lock();
        let word = inner.state.load(Acquire);
        if word & 3 != state {
            inner.transition(word, state, reason, inner.now());
        }
    }

    /// Calls `callback` on every state transition, on the thread that caused it, in order.
    ///
    /// Keep it short (log, bump a gauge): it runs while transitions are held back.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use switchboard_resilience::{CircuitBreaker, Reason, State};
    ///
    /// let breaker = CircuitBreaker::default();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// breaker.on_transition(move |e| log.lock().unwrap().push((e.from, e.to, e.reason)));
    /// breaker.force_open();
    /// assert_eq!(*seen.lock().unwrap(), [(State::Closed, State::Open, Reason::Forced)]);
    /// ```
    pub fn on_transition(&self, callback: impl Fn(&Event) + Send + Sync + 'static) {
        self.inner.listeners.add_callback(callback);
    }

    /// A channel of state transitions holding up to `capacity` events; when it is full, new
    /// events are dropped and counted in [`Metrics::events_dropped`]. Dropping the receiver
    /// unsubscribes.
    ///
    /// ```
    /// use switchboard_resilience::{CircuitBreaker, State};
    ///
    /// # futures_lite::future::block_on(async {
    /// let breaker = CircuitBreaker::default();
    /// let events = breaker.subscribe(16);
    /// breaker.force_open();
    /// assert_eq!(events.recv().await.unwrap().to, State::Open);
    /// # });
    /// ```
    pub fn subscribe(&self, capacity: usize) -> async_channel::Receiver<Event> {
        self.inner.listeners.subscribe(capacity)
    }

    /// A snapshot of state and counters.
    ///
    /// ```
    /// use switchboard_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::default();
    /// let _ = breaker.call(|| Err::<(), _>("boom"));
    /// let m = breaker.metrics();
    /// assert_eq!((m.calls(), m.failures, m.window_failures), (1, 1, 1));
    /// assert_eq!(m.failure_rate, None); // fewer than min_calls
    /// ```
    pub fn metrics(&self) -> Metrics {
        self.inner.metrics()
    }
}

impl Inner {
    #[inline]
    fn now(&self) -> u64 {
        nanos(self.clock.now())
    }

    #[inline]
    fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let now = self.now();
        loop {
            let word = self.state.load(Acquire);
            match word & 3 {
                CLOSED => return Ok(Permit { inner: self, word, start: now, done: false }),
                OPEN => {
                    let until = self.open_until.load(Acquire);
                    if now < until {
                        self.counters.add(metrics::REJECTED);
                        return Err(Rejected { state: State::Open, retry_after: Duration::from_nanos(until - now) });
                    }
                    let _lock = self.transition.lock();
                    if self.state.load(Acquire) == word {
                        self.transition(word, HALF_OPEN, Reason::WaitElapsed, now);
                    }
                }
                _ => {
                    let issued = self
                        .half_open
                        .fetch_update(Relaxed, Relaxed, |h| (field(h, ISSUED) < self.probes).then_some(h + ISSUED));
                    // The state may have moved on while we took the slot; then the slot is
                    // stale and the loop looks again.
                    if issued.is_ok() && self.state.load(Acquire) == word {
                        return Ok(Permit { inner: self, word, start: now, done: false });
                    }
                    if issued.is_err() && self.state.load(Acquire) == word {
                        self.counters.add(metrics::REJECTED);
                        return Err(Rejected { state: State::HalfOpen, retry_after: Duration::ZERO });
                    }
                }
            }
        }
    }

    #[inline]
    pub(crate) fn finish(&self, word: u64, start: u64, outcome: Option<CallOutcome>) {
        let failed = match outcome {
            Some(CallOutcome::Success) => false,
            Some(CallOutcome::Failure) => true,
            Some(CallOutcome::Ignored) | None => {
                self.counters.add(if outcome.is_some() { metrics::IGNORED } else { metrics::RELEASED });
                if word & 3 == HALF_OPEN && self.state.load(Acquire) == word {
                    self.give_back_probe();
                }
                return;
            }
        };
        let now = self.now();
        let slow = now.saturating_sub(start) > self.slow_ns;
        self.counters.add(if failed { metrics::FAILURE } else { metrics::SUCCESS });
        if slow {
            self.counters.add(metrics::SLOW);
        }
        if self.state.load(Acquire) != word {
            return; // issued before a transition: counted, but does not decide the new state
        }
        let record = Record { failed, slow };
        if word & 3 == CLOSED {
            if let Some(counts) = self.window.record(now, record) {
                self.check_closed(word, counts, now);
            }
        } else {
            self.record_probe(word, record, now);
        }
    }

    fn check_closed(&self, word: u64, counts: Counts, now: u64) {
        if !counts.is_consistent() || counts.calls < self.min_calls {
            return;
        }
        if let Some(reason) = self.over_threshold(counts) {
            let _lock = self.transition.lock();
            if self.state.load(Acquire) == word {
                self.transition(word, OPEN, reason, now);
            }
        }
    }

    fn over_threshold(&self, counts: Counts) -> Option<Reason> {
        let failure_rate = counts.failure_rate();
        if failure_rate >= self.config.failure_rate() {
            return Some(Reason::FailureRate(failure_rate));
        }
        let slow_call_rate = counts.slow_call_rate();
        if slow_call_rate >= self.config.slow_call_rate() {
            return Some(Reason::SlowCallRate(slow_call_rate));
        }
        None
    }

    fn record_probe(&self, word: u64, record: Record, now: u64) {
        let delta = RESULTS + if record.failed { FAILED } else { 0 } + if record.slow { SLOWED } else { 0 };
        let h = self.half_open.fetch_add(delta, Relaxed) + delta;
        let results = field(h, RESULTS);
        let failures = field(h, FAILED);
        let slow = field(h, SLOWED);
        // Reopen as soon as the outcome is certain: the rates over all probes can only grow.
        let certain = Counts { calls: self.probes, failures, slow };
        let reason = if let Some(reason) = self.over_threshold(certain) {
            let counts = Counts { calls: results, failures, slow };
            Some(match reason {
                Reason::FailureRate(_) => Reason::FailureRate(counts.failure_rate()),
                _ => Reason::SlowCallRate(counts.slow_call_rate()),
            })
        } else if results >= self.probes {
            None
        } else {
            return;
        };
        let _lock = self.transition.lock();
        if self.state.load(Acquire) == word {
            match reason {
                Some(reason) => self.transition(word, OPEN, reason, now),
                None => self.transition(word, CLOSED, Reason::ProbesPassed, now),
            }
        }
    }

    fn give_back_probe(&self) {
        let _ = self.half_open.fetch_update(Relaxed, Relaxed, |h| (field(h, ISSUED) > 0).then(|| h - ISSUED));
    }

    /// Moves from `word` to `to`; the caller holds the transition lock and has checked that
    /// the state is still `word`. What the new state counts into is emptied before the state
    /// is published, while nobody records into it.
    fn transition(&self, word: u64, to: u64, reason: Reason, now: u64) {
        match to {
            CLOSED => self.window.clear(),
            OPEN => self.open_until.store(now.saturating_add(self.wait_ns), Release),
            _ => self.half_open.store(0, Relaxed),
        }
        let next = (((word >> 2) + 1) << 2) | to;
        self.state.store(next, Release);
        self.transitions.fetch_add(1, Relaxed);
        let event = Event { from: tag_state(word), to: tag_state(to), reason, at: Duration::from_nanos(now) };
        self.listeners.emit(event);
    }

    fn metrics(&self) -> Metrics {
        let word = self.state.load(Acquire);
        let (counts, needed) = if word & 3 == HALF_OPEN {
            let h = self.half_open.load(Relaxed);
            (Counts { calls: field(h, RESULTS), failures: field(h, FAILED), slow: field(h, SLOWED) }, self.probes)
        } else {
            (self.window.counts(self.now()), self.min_calls)
        };
        let decided = counts.calls >= needed && counts.is_consistent();
        let c = |kind| self.counters.sum(kind);
        Metrics {
            state: tag_state(word),
            successes: c(metrics::SUCCESS),
            failures: c(metrics::FAILURE),
            slow: c(metrics::SLOW),
            ignored: c(metrics::IGNORED),
            released: c(metrics::RELEASED),
            rejected: c(metrics::REJECTED),
            transitions: self.transitions.load(Relaxed),
            events_dropped: self.listeners.dropped(),
            window_calls: counts.calls,
            window_failures: counts.failures,
            window_slow: counts.slow,
            failure_rate: decided.then(|| percent(counts.failures, counts.calls)),
            slow_call_rate: decided.then(|| percent(counts.slow, counts.calls)),
        }
    }
}

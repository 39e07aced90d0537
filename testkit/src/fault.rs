//! Fault injection around any port, as Watermill's `randomfail`: wrap a [`Publisher`] or a
//! [`Subscriber`], add rules (which calls, what happens), and flip a [`Switch`] to simulate a
//! broker that went away. Deterministic: random rules take a seed.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard_ports::{ErrorKind, Message, Publisher};
//! use switchboard_embedded::pubsub::MemoryBroker;
//! use switchboard_testkit::fault::{Effect, FaultyPublisher, Trigger};
//! # smol::block_on(async {
//! let publisher = FaultyPublisher::new(Arc::new(MemoryBroker::new()))
//!     .with_rule(Trigger::Nth(2), Effect::Fail(ErrorKind::Unavailable));
//! assert!(publisher.publish("t", Message::new("1")).await.is_ok());
//! assert!(publisher.publish("t", Message::new("2")).await.unwrap_err().error.is_transient());
//! let switch = publisher.switch();
//! switch.disconnect();
//! assert!(publisher.publish("t", Message::new("3")).await.is_err());
//! switch.reconnect();
//! assert!(publisher.publish("t", Message::new("4")).await.is_ok());
//! # });
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_ports::{Error, ErrorKind, Message, PublishError, Publisher, Subscriber, Subscription};

/// Which calls a rule applies to; calls are counted from 1 per wrapper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// Every call.
    Always,
    /// Only call number `n`.
    Nth(u64),
    /// Calls `n`, `2n`, `3n`… (`Every(0)` matches nothing).
    Every(u64),
    /// Every call after the first `n`.
    After(u64),
    /// Each call with probability `fraction` (0.0 to 1.0), drawn from a generator seeded with
    /// `seed`, so a run is reproducible.
    Fraction {
        /// Probability of matching a call.
        fraction: f64,
        /// Seed of the rule's own generator.
        seed: u64,
    },
}

/// What happens to a matched call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The call fails with `kind` without reaching the inner port; a publish hands the
    /// message back (the message is dropped in transit and the caller told so).
    Fail(ErrorKind),
    /// The call waits this long, then proceeds (delays of several rules add up).
    Delay(Duration),
    /// Publish only: the message reaches the inner publisher, yet the caller gets a `Timeout`
    /// error, as when a broker accepted a message but its acknowledgement was lost. Retrying
    /// then duplicates the message. On a subscriber it acts as `Fail(Timeout)`.
    LoseAck,
    /// Publish only: the message is discarded and the caller told it succeeded (a broken
    /// broker losing data, for tests that must detect loss). On a subscriber it acts as
    /// `Fail(Unavailable)`.
    SilentDrop,
}

/// Simulated connectivity shared by wrappers: while disconnected every call fails with
/// `ErrorKind::Unavailable` without reaching the inner port.
#[derive(Debug, Clone, Default)]
pub struct Switch(Arc<AtomicBool>);

impl Switch {
    /// A connected switch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail until [`reconnect`](Switch::reconnect).
    pub fn disconnect(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Lets calls through again.
    pub fn reconnect(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// False while disconnected.
    pub fn is_connected(&self) -> bool {
        !self.0.load(Ordering::Acquire)
    }
}

/// Counts of a wrapper's calls, for assertions.
#[derive(Debug, Default)]
pub struct FaultStats {
    calls: AtomicU64,
    injected: AtomicU64,
}

impl FaultStats {
    /// Calls made through the wrapper.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls whose outcome was altered (failed, lost ack, dropped, refused while disconnected);
    /// delays are not counted.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
}

/// The rules of one wrapper and the call counter they see.
struct Plan {
    calls: u64,
    rules: Vec<Rule>,
}

struct Rule {
    trigger: Trigger,
    rng: fastrand::Rng,
    effect: Effect,
}

/// What to do with one call: wait, then the first non-delay effect that matched.
struct Decision {
    delay: Duration,
    effect: Option<Effect>,
}

impl Plan {
    fn new() -> Self {
        Plan { calls: 0, rules: Vec::new() }
    }

    fn add(&mut self, trigger: Trigger, effect: Effect) {
        let seed = match trigger {
            Trigger::Fraction { seed, .. } => seed,
            _ => 0,
        };
        self.rules.push(Rule { trigger, rng: fastrand::Rng::with_seed(seed), effect });
    }

    fn decide(&mut self) -> Decision {
        self.calls += 1;
        let call = self.calls;
        let mut decision = Decision { delay: Duration::ZERO, effect: None };
        for rule in &mut self.rules {
            // Every rule draws on every call, so one rule's outcome never shifts another's.
            let matched = match rule.trigger {
                Trigger::Always => true,
                Trigger::Nth(n) => call == n,
                Trigger::Every(n) => call.checked_rem(n) == Some(0),
                Trigger::After(n) => call > n,
                Trigger::Fraction { fraction, .. } => rule.rng.f64() < fraction,
            };
            if !matched {
                continue;
            }
            match rule.effect {
                Effect::Delay(d) => decision.delay += d,
                other => {
                    decision.effect.get_or_insert(other);
                }
            }
        }
        decision
    }
}

/// The state shared by both wrappers.
struct Faults {
    plan: Mutex<Plan>,
    switch: Switch,
    stats: Arc<FaultStats>,
}

impl Faults {
    fn new() -> Self {
        Faults { plan: Mutex::new(Plan::new()), switch: Switch::new(), stats: Arc::default() }
    }

    fn add(&self, trigger: Trigger, effect: Effect) {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner).add(trigger, effect);
    }

    /// Counts the call, sleeps any delay, and says what to do; `Err` when disconnected.
    async fn enter(&self) -> Result<Option<Effect>, Error> {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let decision = self.plan.lock().unwrap_or_else(PoisonError::into_inner).decide();
        if !decision.delay.is_zero() {
            smol::Timer::after(decision.delay).await;
        }
        // Checked after the delay: a call in flight when the link drops fails too.
        if !self.switch.is_connected() {
            self.stats.injected.fetch_add(1, Ordering::Relaxed);
            return Err(Error::new(ErrorKind::Unavailable, "injected fault: disconnected"));
        }
        if decision.effect.is_some() {
            self.stats.injected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(decision.effect)
    }
}

fn injected(kind: ErrorKind) -> Error {
    Error::new(kind, "injected fault")
}

/// A wrapper injecting faults into a [`Publisher`] ([`FaultyPublisher`]) or a [`Subscriber`]
/// ([`FaultySubscriber`]).
pub struct Faulty<T: ?Sized> {
    inner: Arc<T>,
    faults: Faults,
}

/// A [`Publisher`] wrapper injecting faults into `publish` (rules and switch) and `close`
/// (switch only).
pub type FaultyPublisher<P> = Faulty<P>;

/// A [`Subscriber`] wrapper injecting faults into `subscribe` and `assign`; publish-only effects
/// act as described at [`Effect`]. Subscriptions already returned are not affected by the
/// switch.
pub type FaultySubscriber<S> = Faulty<S>;

impl<T: ?Sized> Faulty<T> {
    /// Wraps `inner` with no rules, connected.
    pub fn new(inner: Arc<T>) -> Self {
        Faulty { inner, faults: Faults::new() }
    }

    /// Wraps `inner` so that every call fails with `kind` (e.g. a broker that is down).
    pub fn failing(inner: Arc<T>, kind: ErrorKind) -> Arc<Self> {
        Arc::new(Self::new(inner).with_rule(Trigger::Always, Effect::Fail(kind)))
    }

    /// Adds a rule; rules are checked in order, the first non-delay effect wins.
    pub fn with_rule(self, trigger: Trigger, effect: Effect) -> Self {
        self.faults.add(trigger, effect);
        self
    }

    /// Adds a rule to a wrapper already in use.
    pub fn add_rule(&self, trigger: Trigger, effect: Effect) {
        self.faults.add(trigger, effect);
    }

    /// Uses `switch` (e.g. one shared with another wrapper) instead of its own.
    pub fn with_switch(mut self, switch: Switch) -> Self {
        self.faults.switch = switch;
        self
    }

    /// The switch that disconnects this wrapper.
    pub fn switch(&self) -> Switch {
        self.faults.switch.clone()
    }

    /// Call counts.
    pub fn stats(&self) -> Arc<FaultStats> {
        self.faults.stats.clone()
    }

    /// The wrapped publisher or subscriber.
    pub fn inner(&self) -> &Arc<T> {
        &self.inner
    }

    /// Whether a subscribe or an assign goes through: the rules' effects as a subscriber
    /// error, delays slept.
    async fn admit(&self) -> Result<(), Error> {
        match self.faults.enter().await? {
            None | Some(Effect::Delay(_)) => Ok(()),
            Some(Effect::Fail(kind)) => Err(injected(kind)),
            Some(Effect::LoseAck) => Err(injected(ErrorKind::Timeout)),
            Some(Effect::SilentDrop) => Err(injected(ErrorKind::Unavailable)),
        }
    }
}

#[async_trait]
impl<P: Publisher + ?Sized> Publisher for Faulty<P> {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        match self.faults.enter().await {
            Err(e) => Err(PublishError::new(e, message)),
            Ok(None) => self.inner.publish(topic, message).await,
            Ok(Some(Effect::Fail(kind))) => Err(PublishError::new(injected(kind), message)),
            Ok(Some(Effect::LoseAck)) => {
                let copy = message.clone();
                self.inner.publish(topic, message).await?;
                Err(PublishError::new(injected(ErrorKind::Timeout), copy))
            }
            Ok(Some(Effect::SilentDrop)) => Ok(()),
            Ok(Some(Effect::Delay(_))) => unreachable!("delays are summed, never returned"),
        }
    }

    async fn close(&self) -> Result<(), Error> {
        if !self.faults.switch.is_connected() {
            return Err(Error::new(ErrorKind::Unavailable, "injected fault: disconnected"));
        }
        self.inner.close().await
    }
}

#[async_trait]
impl<S: Subscriber + ?Sized> Subscriber for Faulty<S> {
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, Error> {
        self.admit().await?;
        self.inner.subscribe(topic, group).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, Error> {
        self.inner.partition_count(topic).await
    }

    /// Faults apply as to `subscribe`: an assignment is the gateway's way to subscribe.
    async fn assign(&self, topic: &str, partitions: &[i32]) -> Result<Subscription, Error> {
        self.admit().await?;
        self.inner.assign(topic, partitions).await
    }
}

impl<T: ?Sized> fmt::Debug for Faulty<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faulty")
            .field("connected", &self.faults.switch.is_connected())
            .field("stats", &self.faults.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use switchboard_embedded::pubsub::MemoryBroker;

    fn wrap(broker: &MemoryBroker) -> FaultyPublisher<MemoryBroker> {
        FaultyPublisher::new(Arc::new(broker.clone()))
    }

    /// Publishes `n` numbered messages to "t"; returns which calls failed (1-based).
    async fn failed_calls(p: &impl Publisher, n: u64) -> Vec<u64> {
        let mut failed = Vec::new();
        for i in 1..=n {
            if p.publish("t", Message::new(i.to_be_bytes())).await.is_err() {
                failed.push(i);
            }
        }
        failed
    }

    /// Messages appended to "t" so far.
    fn appended(broker: &MemoryBroker) -> usize {
        broker.end_offsets("t").map_or(0, |e| e.iter().sum::<i64>() as usize)
    }

    #[test]
    fn fail_nth_and_every_fail_exactly_those_calls_and_hand_the_message_back() {
        smol::block_on(async {
            let broker = MemoryBroker::new();
            let p = wrap(&broker)
                .with_rule(Trigger::Nth(2), Effect::Fail(ErrorKind::Unavailable))
                .with_rule(Trigger::Every(5), Effect::Fail(ErrorKind::Invalid));
            assert_eq!(failed_calls(&p, 10).await, vec![2, 5, 10]);
            assert_eq!(appended(&broker), 7);
            assert_eq!((p.stats().calls(), p.stats().injected()), (10, 3));
            let err = p.publish("t", Message::new("x")).await;
            assert!(err.is_ok(), "call 11 passes");
            let p = wrap(&broker).with_rule(Trigger::Always, Effect::Fail(ErrorKind::Timeout));
            let err = p.publish("t", Message::new("back")).await.unwrap_err();
            assert!(err.error.is_transient());
            assert_eq!(err.into_inner().payload, b"back");
        });
    }

    #[test]
    fn fraction_is_reproducible_with_a_seed_and_roughly_proportional() {
        smol::block_on(async {
            let broker = MemoryBroker::new();
            let rule = Trigger::Fraction { fraction: 0.3, seed: 42 };
            let a = failed_calls(&wrap(&broker).with_rule(rule, Effect::Fail(ErrorKind::Unavailable)), 1000).await;
            let b = failed_calls(&wrap(&broker).with_rule(rule, Effect::Fail(ErrorKind::Unavailable)), 1000).await;
            assert_eq!(a, b, "same seed, same failures");
            assert!((200..400).contains(&a.len()), "{} of 1000 failed at 30%", a.len());
            let other = Trigger::Fraction { fraction: 0.3, seed: 7 };
            let c = failed_calls(&wrap(&broker).with_rule(other, Effect::Fail(ErrorKind::Unavailable)), 1000).await;
            assert_ne!(a, c, "another seed, other failures");
        });
    }

    #[test]
    fn delay_holds_the_call_then_lets_it_through() {
        smol::block_on(async {
            let broker = MemoryBroker::new();
            let p = wrap(&broker).with_rule(Trigger::Nth(1), Effect::Delay(Duration::from_millis(50)));
            let start = Instant::now();
            p.publish("t", Message::new("slow")).await.unwrap();
            assert!(start.elapsed() >= Duration::from_millis(50));
            assert_eq!(appended(&broker), 1);
            assert_eq!(p.stats().injected(), 0, "a delay alters no outcome");
        });
    }

    #[test]
    fn lost_ack_publishes_yet_reports_timeout_and_silent_drop_loses_quietly() {
        smol::block_on(async {
            let broker = MemoryBroker::new();
            let p = wrap(&broker)
                .with_rule(Trigger::Nth(1), Effect::LoseAck)
                .with_rule(Trigger::Nth(2), Effect::SilentDrop);
            let err = p.publish("t", Message::new("a")).await.unwrap_err();
            assert_eq!(err.error.kind(), ErrorKind::Timeout);
            assert_eq!(appended(&broker), 1, "the broker got it anyway");
            p.publish("t", Message::new("b")).await.unwrap();
            assert_eq!(appended(&broker), 1, "reported ok, never arrived");
            assert_eq!(p.stats().injected(), 2);
        });
    }

    #[test]
    fn disconnect_fails_every_call_until_reconnected() {
        smol::block_on(async {
            let broker = MemoryBroker::new();
            let switch = Switch::new();
            let p = wrap(&broker).with_switch(switch.clone());
            let s = FaultySubscriber::new(Arc::new(broker.clone())).with_switch(switch.clone());
            switch.disconnect();
            let err = p.publish("t", Message::new("x")).await.unwrap_err();
            assert_eq!(err.error.kind(), ErrorKind::Unavailable);
            assert_eq!(s.subscribe("t", "g").await.unwrap_err().kind(), ErrorKind::Unavailable);
            assert_eq!(p.close().await.unwrap_err().kind(), ErrorKind::Unavailable);
            assert_eq!(appended(&broker), 0);
            switch.reconnect();
            let sub = s.subscribe("t", "g").await.unwrap();
            p.publish("t", Message::new("y")).await.unwrap();
            assert_eq!(sub.recv().await.unwrap().message().payload, b"y");
            assert_eq!(s.stats().injected(), 1);
        });
    }

    #[test]
    fn subscriber_rules_fail_the_matching_subscribes() {
        smol::block_on(async {
            let broker = MemoryBroker::new();
            let dyn_sub: Arc<dyn Subscriber> = Arc::new(broker.clone());
            let s = FaultySubscriber::new(dyn_sub).with_rule(Trigger::After(1), Effect::Fail(ErrorKind::Timeout));
            assert!(s.subscribe("t", "g").await.is_ok());
            assert!(s.subscribe("t", "g").await.unwrap_err().is_transient());
            assert_eq!(broker.member_count("t", "g"), 0, "first subscription dropped, second refused");
        });
    }
}

//! Events and counters as seen by an observer.

use std::sync::{Arc, Mutex};

use switchboard_resilience::{Event, Reason, State};

use crate::support::*;

#[test]
fn every_transition_is_reported_in_order_with_its_reason() {
    let (b, clock) = breaker(config());
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let log = seen.clone();
    b.on_transition(move |e| log.lock().unwrap().push(*e));
    let events = b.subscribe(8);

    open_and_wait(&b, &clock); // closed → open
    fail(&b, 1); // open → half-open, then half-open → open (1 of 2 probes failed)
    clock.advance(WAIT);
    succeed(&b, 2); // open → half-open → closed

    let seen = seen.lock().unwrap().clone();
    let steps: Vec<(State, State, Reason)> = seen.iter().map(|e| (e.from, e.to, e.reason)).collect();
    assert_eq!(
        steps,
        [
            (State::Closed, State::Open, Reason::FailureRate(100.0)),
            (State::Open, State::HalfOpen, Reason::WaitElapsed),
            (State::HalfOpen, State::Open, Reason::FailureRate(100.0)),
            (State::Open, State::HalfOpen, Reason::WaitElapsed),
            (State::HalfOpen, State::Closed, Reason::ProbesPassed),
        ]
    );
    assert_eq!(seen[0].at, std::time::Duration::ZERO);
    assert_eq!(seen[1].at, WAIT);
    let from_channel: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(from_channel, seen);
    assert_eq!(b.metrics().transitions, 5);
}

#[test]
fn counters_count_every_kind_of_call() {
    let (b, clock) = breaker(config().min_calls(100).window(switchboard_resilience::SlidingWindow::Count(100)));
    succeed(&b, 3);
    fail(&b, 2);
    succeed_slowly(&b, &clock, 1);
    b.try_acquire().unwrap().ignore();
    drop(b.try_acquire().unwrap());
    b.force_open();
    let _ = b.try_acquire();
    let _ = b.try_acquire();
    let m = b.metrics();
    assert_eq!(m.state, State::Open);
    assert_eq!(
        (m.successes, m.failures, m.slow, m.ignored, m.released, m.rejected, m.transitions),
        (4, 2, 1, 1, 1, 2, 1)
    );
    assert_eq!(m.calls(), 8);
    assert_eq!((m.window_calls, m.window_failures, m.window_slow), (6, 2, 1));
}

#[test]
fn a_callback_may_act_on_the_breaker() {
    let (b, _) = breaker(config());
    let handle = b.clone();
    // An operator rule: never stay open, close again at once (reentrant transitions).
    b.on_transition(move |e| {
        if e.to == State::Open {
            handle.reset();
        }
    });
    b.force_open();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().transitions, 2);
}

#[test]
fn a_full_subscriber_loses_events_and_they_are_counted() {
    let (b, _) = breaker(config());
    let events = b.subscribe(1);
    b.force_open();
    b.reset();
    assert_eq!(events.try_recv().unwrap().to, State::Open);
    assert!(events.try_recv().is_err());
    assert_eq!(b.metrics().events_dropped, 1);
}

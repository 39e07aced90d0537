//! One test per state transition (and per rule guarding one), on a manual clock.

use std::time::Duration;

use switchboard_resilience::{CallOutcome, CircuitBreaker, Config, ManualClock, SlidingWindow, State};

use crate::support::*;

#[test]
fn closed_opens_when_the_failure_rate_reaches_the_threshold() {
    let (b, _) = breaker(config());
    succeed(&b, 5);
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed, "4 of 9 = 44 % is under 50 %");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "5 of 10 = 50 % reaches 50 %");
    assert_eq!(b.metrics().failure_rate, Some(50.0));
}

#[test]
fn closed_opens_when_the_slow_call_rate_reaches_the_threshold() {
    let (b, clock) = breaker(config());
    succeed(&b, 5);
    succeed_slowly(&b, &clock, 4);
    assert_eq!(b.state(), State::Closed);
    succeed_slowly(&b, &clock, 1);
    assert_eq!(b.state(), State::Open);
    let m = b.metrics();
    assert_eq!((m.failures, m.slow, m.slow_call_rate), (0, 5, Some(50.0)));
}

#[test]
fn a_call_exactly_at_the_slow_duration_is_not_slow() {
    let (b, clock) = breaker(config().min_calls(1));
    let permit = b.try_acquire().unwrap();
    clock.advance(SLOW);
    permit.success();
    assert_eq!(b.metrics().slow, 0);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn closed_stays_closed_below_the_minimum_number_of_calls() {
    let (b, _) = breaker(config());
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed, "100 % failures, but only 4 of 5 minimum calls");
    assert_eq!(b.metrics().failure_rate, None);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_full_count_window_counts_even_below_the_minimum() {
    // resilience4j: with a window of 3 calls and 100 minimum calls, 3 calls suffice.
    let (b, _) = breaker(config().window(SlidingWindow::Count(3)).min_calls(100));
    fail(&b, 3);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn open_rejects_with_the_remaining_open_time() {
    let (b, clock) = breaker(config());
    fail(&b, 5);
    clock.advance(Duration::from_millis(2_500));
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::Open);
    assert_eq!(rejected.retry_after(), WAIT - Duration::from_millis(2_500));
    assert_eq!(rejected.retry_after_secs(), 8);
    assert_eq!(rejected.to_string(), "circuit open: retry in 7500 ms");
    let ran = std::cell::Cell::new(false);
    let r = b.call(|| {
        ran.set(true);
        Ok::<(), ()>(())
    });
    assert!(r.unwrap_err().is_rejected());
    assert!(!ran.get(), "a rejected call must not run");
    assert_eq!(b.metrics().rejected, 2);
}

#[test]
fn open_moves_to_half_open_once_the_wait_elapsed() {
    let (b, clock) = breaker(config());
    fail(&b, 5);
    clock.advance(WAIT - Duration::from_nanos(1));
    assert!(b.try_acquire().is_err());
    clock.advance(Duration::from_nanos(1));
    assert_eq!(b.state(), State::Open, "no timer: the state moves on the next call");
    let probe = b.try_acquire().expect("a probe is let through");
    assert_eq!(probe.state(), State::HalfOpen);
    assert_eq!(b.state(), State::HalfOpen);
    probe.success();
}

#[test]
fn half_open_closes_when_the_probes_succeed() {
    let (b, clock) = breaker(config());
    open_and_wait(&b, &clock);
    succeed(&b, 1);
    assert_eq!(b.state(), State::HalfOpen, "one of two probes done");
    succeed(&b, 1);
    assert_eq!(b.state(), State::Closed);
    let m = b.metrics();
    assert_eq!((m.window_calls, m.window_failures), (0, 0), "closed starts with an empty window");
}

#[test]
fn half_open_closes_when_probe_failures_stay_under_the_threshold() {
    let (b, clock) = breaker(config().half_open_calls(4));
    open_and_wait(&b, &clock);
    fail(&b, 1);
    succeed(&b, 3);
    assert_eq!(b.state(), State::Closed, "1 of 4 = 25 % is under 50 %");
}

#[test]
fn half_open_reopens_on_a_failed_probe() {
    let (b, clock) = breaker(config());
    open_and_wait(&b, &clock);
    succeed(&b, 1);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "1 of 2 probes failed = 50 %");
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), WAIT, "a fresh wait starts");
}

#[test]
fn half_open_reopens_as_soon_as_the_failures_decide_it() {
    let (b, clock) = breaker(config().half_open_calls(4));
    open_and_wait(&b, &clock);
    let probes: Vec<_> = (0..4).map(|_| b.try_acquire().unwrap()).collect();
    let mut probes = probes.into_iter();
    probes.next().unwrap().failure();
    assert_eq!(b.state(), State::HalfOpen);
    probes.next().unwrap().failure();
    assert_eq!(b.state(), State::Open, "2 of 4 failed: 50 % whatever the other two do");
    // The probes still out finish in the new state and do not decide it.
    probes.for_each(|p| p.success());
    assert_eq!(b.state(), State::Open);
}

#[test]
fn half_open_reopens_on_slow_probes() {
    let (b, clock) = breaker(config());
    open_and_wait(&b, &clock);
    succeed_slowly(&b, &clock, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn half_open_lets_only_the_permitted_probes_through() {
    let (b, clock) = breaker(config().half_open_calls(3));
    open_and_wait(&b, &clock);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("probe")).collect();
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.state(), State::HalfOpen);
    assert_eq!(rejected.retry_after(), Duration::ZERO);
    assert_eq!(rejected.retry_after_secs(), 1);
    // A probe given back (ignored) frees its slot.
    let mut probes = probes.into_iter();
    probes.next().unwrap().ignore();
    let again = b.try_acquire().expect("the freed slot");
    assert!(b.try_acquire().is_err());
    again.success();
    probes.for_each(|p| p.success());
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn ignored_errors_count_as_neither_success_nor_failure() {
    let (b, _) = breaker(config());
    let classify = CallOutcome::ignore_if(|status: &u16| *status < 500);
    for _ in 0..20 {
        let r = b.call_with(&classify, || Err::<(), u16>(404));
        assert_eq!(r.unwrap_err().into_failed(), Some(404), "the caller still gets its error");
    }
    assert_eq!(b.state(), State::Closed);
    let m = b.metrics();
    assert_eq!((m.ignored, m.failures, m.successes, m.window_calls), (20, 0, 0, 0));
    for _ in 0..5 {
        let _ = b.call_with(&classify, || Err::<(), u16>(503));
    }
    assert_eq!(b.state(), State::Open, "server errors do count");
}

#[test]
fn time_window_forgets_calls_older_than_the_window() {
    let (b, clock) = breaker(config().window(SlidingWindow::Time(10)));
    fail(&b, 4);
    clock.advance(Duration::from_secs(10));
    succeed(&b, 1);
    fail(&b, 3);
    let m = b.metrics();
    assert_eq!((m.window_calls, m.window_failures), (4, 3), "the first 4 failures left the window");
    assert_eq!(b.state(), State::Closed, "4 calls are under the minimum of 5");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "4 of 5 failed within the last 10 s");
}

#[test]
fn time_window_keeps_calls_within_the_window() {
    let (b, clock) = breaker(config().window(SlidingWindow::Time(10)));
    for _ in 0..5 {
        fail(&b, 1);
        clock.advance(Duration::from_secs(2));
    }
    assert_eq!(b.state(), State::Open, "5 failures spread over 8 s");
}

#[test]
fn count_window_forgets_the_oldest_calls() {
    let (b, _) = breaker(config());
    succeed(&b, 5);
    fail(&b, 4);
    succeed(&b, 10);
    assert_eq!(b.metrics().window_failures, 0, "10 successes pushed the failures out");
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed, "the window holds 6 successes and 4 failures");
    assert_eq!(b.metrics().window_failures, 4);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_result_from_before_a_transition_does_not_decide_the_new_state() {
    let (b, clock) = breaker(config());
    let straggler = b.try_acquire().unwrap();
    open_and_wait(&b, &clock);
    succeed(&b, 1); // first probe; half-open
    straggler.failure(); // started while closed
    assert_eq!(b.state(), State::HalfOpen);
    succeed(&b, 1);
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().failures, 6, "the straggler still shows in the counters");
}

#[test]
fn a_dropped_permit_is_released_and_a_panicking_one_fails() {
    let (b, clock) = breaker(config());
    drop(b.try_acquire().unwrap());
    let m = b.metrics();
    assert_eq!((m.released, m.failures, m.window_calls), (1, 0, 0));

    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.call(|| -> Result<(), ()> { panic!("handler bug") })
    }));
    assert!(panicked.is_err());
    assert_eq!(b.metrics().failures, 1);

    // In half-open a released probe gives its slot back.
    open_and_wait(&b, &clock);
    drop(b.try_acquire().unwrap());
    drop(b.try_acquire().unwrap());
    succeed(&b, 2);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn force_open_and_reset() {
    let (b, clock) = breaker(config());
    b.force_open();
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), WAIT);
    clock.advance(Duration::from_secs(1));
    b.reset();
    assert_eq!(b.state(), State::Closed);
    succeed(&b, 1);
    b.reset(); // already closed: no transition
    assert_eq!(b.metrics().transitions, 2);
}

#[test]
fn default_breaker_on_the_system_clock_opens_and_rejects() {
    let b = CircuitBreaker::new(Config::default());
    for _ in 0..20 {
        let _ = b.call(|| Err::<(), _>("down"));
    }
    assert_eq!(b.state(), State::Open);
    let r = b.try_acquire().unwrap_err();
    assert!(r.retry_after() > Duration::from_secs(4) && r.retry_after() <= Duration::from_secs(5));
}

#[test]
fn manual_clock_is_shared_by_the_breaker() {
    let clock = ManualClock::new();
    let b = CircuitBreaker::with_clock(config().build().unwrap(), clock.clone());
    b.force_open();
    clock.advance(WAIT);
    assert!(b.try_acquire().is_ok());
}

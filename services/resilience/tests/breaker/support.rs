//! Helpers: a breaker on a manual clock, and calls with a chosen outcome and duration.

use std::time::Duration;

use switchboard_resilience::{CircuitBreaker, Config, ConfigBuilder, ManualClock, State};

pub const SLOW: Duration = Duration::from_secs(1);
pub const WAIT: Duration = Duration::from_secs(10);

/// Settings for small, readable tests: window of 10 calls, 5 minimum, 1 s slow calls, 10 s
/// open wait, 2 probes.
pub fn config() -> ConfigBuilder {
    Config::builder()
        .window(switchboard_resilience::SlidingWindow::Count(10))
        .min_calls(5)
        .slow_call_duration(SLOW)
        .slow_call_rate(50.0)
        .wait_open(WAIT)
        .half_open_calls(2)
}

#[track_caller]
pub fn breaker(config: ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    (CircuitBreaker::with_clock(config.build().unwrap(), clock.clone()), clock)
}

#[track_caller]
pub fn succeed(breaker: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        breaker.try_acquire().expect("call permitted").success();
    }
}

#[track_caller]
pub fn fail(breaker: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        breaker.try_acquire().expect("call permitted").failure();
    }
}

/// `n` successful calls that each take longer than the slow-call duration.
#[track_caller]
pub fn succeed_slowly(breaker: &CircuitBreaker, clock: &ManualClock, n: usize) {
    for _ in 0..n {
        let permit = breaker.try_acquire().expect("call permitted");
        clock.advance(SLOW + Duration::from_millis(1));
        permit.success();
    }
}

/// Opens `breaker` by failures and lets the wait elapse; the next call moves it to half-open.
#[track_caller]
pub fn open_and_wait(breaker: &CircuitBreaker, clock: &ManualClock) {
    for _ in 0..100 {
        if breaker.state() == State::Open {
            break;
        }
        fail(breaker, 1);
    }
    assert_eq!(breaker.state(), State::Open);
    clock.advance(WAIT);
}

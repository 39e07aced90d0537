//! Several threads on one breaker: counters must add up, and permits must respect limits.

use std::sync::atomic::{AtomicUsize, Ordering};

use switchboard_resilience::{CircuitBreaker, Config, SlidingWindow, State};

#[test]
fn counters_add_up_across_threads() {
    const THREADS: usize = 4;
    const CALLS: usize = 20_000;
    // Thresholds at 100 %: a mixed workload never opens it, so every call runs.
    let config = Config::builder().failure_rate(100.0).window(SlidingWindow::Count(64)).build().unwrap();
    let b = CircuitBreaker::new(config);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let b = b.clone();
            s.spawn(move || {
                for i in 0..CALLS {
                    let permit = b.try_acquire().expect("closed");
                    match (i + t) % 10 {
                        0..=5 => permit.success(),
                        6..=7 => permit.failure(),
                        8 => permit.ignore(),
                        _ => drop(permit),
                    }
                }
            });
        }
    });
    let m = b.metrics();
    let n = (THREADS * CALLS) as u64;
    assert_eq!(m.successes, n * 6 / 10);
    assert_eq!(m.failures, n * 2 / 10);
    assert_eq!(m.ignored, n / 10);
    assert_eq!(m.released, n / 10);
    assert_eq!(m.calls(), n);
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.window_calls, 64);
    assert!(m.window_failures <= 64);
}

#[test]
fn concurrent_failures_open_the_breaker_once_and_probes_stay_limited() {
    let config = Config::builder()
        .window(SlidingWindow::Count(20))
        .min_calls(20)
        .half_open_calls(3)
        .wait_open(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let clock = switchboard_resilience::ManualClock::new();
    let b = CircuitBreaker::with_clock(config, clock);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    let _ = b.call(|| Err::<(), _>("down"));
                }
            });
        }
    });
    assert_ne!(b.state(), State::Closed);
    assert!(b.metrics().failures >= 20, "the failing calls ran until the breaker opened");
    // The last probes may have ended in half-open with some of its probes used; start from a
    // fresh open state. With a zero wait the next call moves it to half-open: hold every
    // probe from many threads.
    b.force_open();
    let held = AtomicUsize::new(0);
    let permits = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    if let Ok(p) = b.try_acquire() {
                        held.fetch_add(1, Ordering::Relaxed);
                        permits.lock().unwrap().push(p);
                    }
                }
            });
        }
    });
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(held.load(Ordering::Relaxed), 3);
    permits.into_inner().unwrap().into_iter().for_each(|p| p.success());
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn breaker_and_permits_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<CircuitBreaker>();
    send::<switchboard_resilience::Permit<'static>>();
    send_sync::<switchboard_resilience::RetryBudget>();
    // A permit taken on one thread may be settled on another.
    let b = CircuitBreaker::default();
    let permit = b.try_acquire().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || permit.success());
    });
    assert_eq!(b.metrics().successes, 1);
}

//! Per-call overhead of the circuit breaker and retry budget, on one thread and on
//! two threads sharing one instance.
//!
//! Run: `cargo bench -p switchboard-resilience --bench breaker` (optionally `-- CALLS`, default
//! 5 000 000 per thread). Prints the median ns/call over batches of 10 000 calls during which
//! every thread was on a CPU (see `measure`), with "overhead" = case minus the unprotected
//! baseline call.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

use switchboard_resilience::{CircuitBreaker, Clock, Config, PreciseClock, RetryBudget, SlidingWindow, SystemClock};

const BATCH: u64 = 10_000;

/// One timed batch of one thread: wall-clock interval and whether the thread was on a CPU
/// for (nearly) all of it.
#[derive(Clone, Copy)]
struct Batch {
    start: Instant,
    end: Instant,
    ran_throughout: bool,
}

impl Batch {
    fn ns_per_call(&self) -> f64 {
        (self.end - self.start).as_nanos() as f64 / BATCH as f64
    }
}

/// Nanoseconds this thread has spent on a CPU (CLOCK_THREAD_CPUTIME_ID; None off Linux).
fn cpu_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Some(t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// ns per call of `body` with `threads` threads calling it at once.
///
/// The machine is shared, so a thread may be descheduled mid-run, which would either inflate
/// a batch (it waited) or deflate it (its rival waited, so no contention). Every thread times
/// batches of 10 000 calls and reads its own CPU time around each; a batch counts only if its
/// thread ran throughout it and every other thread ran throughout the same interval. Returns
/// the median of those batches and how many there were.
fn measure(threads: usize, calls: u64, body: &(dyn Fn(u64) + Sync)) -> (f64, usize) {
    let barrier = Barrier::new(threads);
    let per_thread: Vec<Vec<Batch>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut batches = Vec::with_capacity((calls / BATCH) as usize);
                    let mut i = 0;
                    while i < calls {
                        let cpu_before = cpu_ns();
                        let start = Instant::now();
                        for j in i..i + BATCH {
                            body(j);
                        }
                        let end = Instant::now();
                        let ran = match (cpu_before, cpu_ns()) {
                            (Some(a), Some(b)) => (b - a) as f64 >= 0.95 * (end - start).as_nanos() as f64,
                            _ => true,
                        };
                        batches.push(Batch { start, end, ran_throughout: ran });
                        i += BATCH;
                    }
                    batches
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Intervals in which each thread was running: runs of consecutive full batches.
    let running: Vec<Vec<(Instant, Instant)>> = per_thread
        .iter()
        .map(|batches| {
            let mut spans: Vec<(Instant, Instant)> = Vec::new();
            for b in batches.iter().filter(|b| b.ran_throughout) {
                match spans.last_mut() {
                    Some(last) if b.start.saturating_duration_since(last.1).as_micros() < 50 => last.1 = b.end,
                    _ => spans.push((b.start, b.end)),
                }
            }
            spans
        })
        .collect();
    let mut kept: Vec<f64> = Vec::new();
    for (t, batches) in per_thread.iter().enumerate() {
        for b in batches.iter().filter(|b| b.ran_throughout) {
            let others_ran = running
                .iter()
                .enumerate()
                .filter(|(o, _)| *o != t)
                .all(|(_, spans)| spans.iter().any(|(s, e)| *s <= b.start && b.end <= *e));
            if others_ran {
                kept.push(b.ns_per_call());
            }
        }
    }
    if kept.is_empty() {
        return (f64::NAN, 0);
    }
    kept.sort_by(f64::total_cmp);
    (kept[kept.len() / 2], kept.len())
}

fn median(threads: usize, calls: u64, body: &(dyn Fn(u64) + Sync)) -> (f64, usize) {
    measure(threads, calls / 10, body); // warm-up
    measure(threads, calls, body)
}

fn work(i: u64) -> Result<u64, u64> {
    black_box(Ok(black_box(i)))
}

fn main() {
    let calls: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5_000_000);
    let never_opens = |window| Config::builder().failure_rate(100.0).window(window).build().unwrap();
    let count = CircuitBreaker::new(never_opens(SlidingWindow::Count(100)));
    let time = CircuitBreaker::new(never_opens(SlidingWindow::Time(60)));
    let mixed = CircuitBreaker::new(never_opens(SlidingWindow::Count(100)));
    let precise = CircuitBreaker::with_clock(never_opens(SlidingWindow::Count(100)), PreciseClock::new());
    let open = CircuitBreaker::new(Config::default());
    open.force_open();
    let budget = RetryBudget::default();

    type Case<'a> = (&'a str, Box<dyn Fn(u64) + Sync + 'a>);
    let cases: Vec<Case<'_>> = vec![
        (
            "baseline: unprotected call",
            Box::new(|i| {
                let _ = black_box(work(i));
            }),
        ),
        (
            "SystemClock::now (reference)",
            Box::new(|i| {
                black_box(SystemClock::new().now());
                let _ = black_box(work(i));
            }),
        ),
        (
            "Instant::now (reference)",
            Box::new(|i| {
                black_box(Instant::now());
                let _ = black_box(work(i));
            }),
        ),
        (
            "call, count window, success",
            Box::new(|i| {
                let _ = black_box(count.call(|| work(i)));
            }),
        ),
        (
            "try_acquire + success, count window",
            Box::new(|i| {
                let p = count.try_acquire().unwrap();
                black_box(work(i)).unwrap();
                p.success();
            }),
        ),
        (
            "call, count window, 10% failures",
            Box::new(|i| {
                let _ = black_box(mixed.call(|| if i % 10 == 0 { Err(i) } else { work(i) }));
            }),
        ),
        (
            "call, count window, success, PreciseClock",
            Box::new(|i| {
                let _ = black_box(precise.call(|| work(i)));
            }),
        ),
        (
            "call, time window, success",
            Box::new(|i| {
                let _ = black_box(time.call(|| work(i)));
            }),
        ),
        (
            "call rejected (open)",
            Box::new(|i| {
                let _ = black_box(open.call(|| work(i)));
            }),
        ),
        (
            "retry budget deposit",
            Box::new(|i| {
                budget.deposit();
                black_box(work(i)).unwrap();
            }),
        ),
    ];

    println!("{calls} calls per thread, median ns per call over 10 000-call batches run with every thread on a CPU");
    println!("| case | 1 thread | overhead | 2 threads | overhead | batches kept (1t / 2t) |");
    println!("|---|---:|---:|---:|---:|---:|");
    // The baseline shares nothing between threads, so its one-thread time is the reference
    // for both columns.
    let mut base = 0.0;
    for (i, (name, body)) in cases.iter().enumerate() {
        let (one, n1) = median(1, calls, body.as_ref());
        let (two, n2) = median(2, calls, body.as_ref());
        if i == 0 {
            base = one;
            println!("| {name} | {one:.1} | - | {two:.1} | - | {n1} / {n2} |");
        } else {
            let (o1, o2) = (one - base, two - base);
            println!("| {name} | {one:.1} | {o1:.1} | {two:.1} | {o2:.1} | {n1} / {n2} |");
        }
    }
}

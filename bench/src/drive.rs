//! The load loop shared by every phase: closed loop (each worker sends its next request when the
//! previous one answered) or open loop (requests scheduled at a fixed rate, latency measured
//! from the scheduled time so a stalled server cannot hide its queue: coordinated omission).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::latency::{Latencies, Summary};

/// One kind of request, on one worker's own connection.
pub trait Call {
    /// Sends one request and waits for its answer; `Err` names the failure kind (an HTTP status,
    /// `io`, a gRPC code) and counts as an error.
    fn call(&mut self) -> impl Future<Output = Result<(), String>>;
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `concurrency` workers, each with one request in flight at all times.
    Closed {
        /// Workers (connections).
        concurrency: usize,
    },
    /// `rate` requests per second, sent by up to `connections` workers.
    Open {
        /// Requests per second.
        rate: f64,
        /// Workers (connections); a request waits for a free one, and that wait is latency.
        connections: usize,
    },
}

impl Mode {
    /// Number of workers.
    pub fn workers(&self) -> usize {
        match *self {
            Mode::Closed { concurrency } => concurrency.max(1),
            Mode::Open { connections, .. } => connections.max(1),
        }
    }
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Phase {
    /// What the report calls it.
    pub name: String,
    /// Pacing.
    pub mode: Mode,
    /// Requests sent before this are not recorded (connections, caches, JIT-free warm-up).
    pub warmup: Duration,
    /// How long requests are recorded.
    pub duration: Duration,
}

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct PhaseReport {
    /// The phase's name.
    pub name: String,
    /// Its pacing.
    pub mode: Mode,
    /// Successful requests recorded.
    pub ok: u64,
    /// Failed requests recorded, by kind.
    pub errors: BTreeMap<String, u64>,
    /// The first failure's kind, as an example.
    pub first_error: Option<String>,
    /// Latency of successful requests (open loop: from the scheduled send time).
    pub latency: Summary,
    /// Open loop only: how late the generator actually sent, p99 (a large value means the
    /// generator, not the target, was the bottleneck).
    pub send_lag_p99: Option<Duration>,
    /// Successful requests per second over the recorded window.
    pub throughput: f64,
}

impl PhaseReport {
    /// Failed requests recorded.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[derive(Default)]
struct Tally {
    ok: Latencies,
    lag: Latencies,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

impl Tally {
    fn record(&mut self, result: Result<(), String>, latency: Duration, done: Instant) {
        match result {
            Ok(()) => self.ok.record(latency),
            Err(kind) => {
                if self.first_error.is_none() {
                    self.first_error = Some(kind.clone());
                }
                *self.errors.entry(kind).or_default() += 1;
            }
        }
        self.last_done = Some(self.last_done.map_or(done, |t| t.max(done)));
    }
}

/// Runs `phase` on the current thread, one worker per `make(i)`.
///
/// Workers share one thread (a local executor), so the generator costs at most one core.
pub async fn run_phase<C: Call + 'static>(phase: &Phase, mut make: impl FnMut(usize) -> C) -> PhaseReport {
    let tally = Rc::new(RefCell::new(Tally::default()));
    let next_slot = Rc::new(Cell::new(0u64));
    let begin = Instant::now();
    let measure_from = begin + phase.warmup;
    let end = measure_from + phase.duration;
    let ex = smol::LocalExecutor::new();
    let tasks: Vec<_> = (0..phase.mode.workers())
        .map(|i| {
            let worker = make(i);
            let tally = tally.clone();
            let next_slot = next_slot.clone();
            match phase.mode {
                Mode::Closed { .. } => ex.spawn(closed_loop(worker, tally, measure_from, end)),
                Mode::Open { rate, .. } => {
                    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
                    ex.spawn(open_loop(worker, tally, next_slot, interval, begin, measure_from, end))
                }
            }
        })
        .collect();
    ex.run(async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    let tally = Rc::try_unwrap(tally).ok().expect("workers finished").into_inner();
    let window =
        tally.last_done.map_or(phase.duration, |t| t.saturating_duration_since(measure_from)).max(phase.duration);
    PhaseReport {
        name: phase.name.clone(),
        mode: phase.mode,
        ok: tally.ok.count(),
        throughput: tally.ok.count() as f64 / window.as_secs_f64(),
        latency: tally.ok.summary(),
        send_lag_p99: matches!(phase.mode, Mode::Open { .. }).then(|| tally.lag.summary().p99),
        errors: tally.errors,
        first_error: tally.first_error,
    }
}

async fn closed_loop<C: Call>(mut worker: C, tally: Rc<RefCell<Tally>>, measure_from: Instant, end: Instant) {
    loop {
        let sent = Instant::now();
        if sent >= end {
            return;
        }
        let result = worker.call().await;
        let done = Instant::now();
        let failed = result.is_err();
        if sent >= measure_from {
            tally.borrow_mut().record(result, done - sent, done);
        }
        if failed {
            // A refused connection fails at once: do not spin a core on it.
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
    }
}

async fn open_loop<C: Call>(
    mut worker: C,
    tally: Rc<RefCell<Tally>>,
    next_slot: Rc<Cell<u64>>,
    interval: Duration,
    begin: Instant,
    measure_from: Instant,
    end: Instant,
) {
    loop {
        // Slots are claimed in order; when every worker is busy the next slot is late, and its
        // latency still counts from when it was due.
        let slot = next_slot.get();
        next_slot.set(slot + 1);
        let due = begin + interval.mul_f64(slot as f64);
        if due >= end {
            return;
        }
        if Instant::now() < due {
            async_io::Timer::at(due).await;
        }
        let sent = Instant::now();
        let result = worker.call().await;
        let done = Instant::now();
        if due >= measure_from {
            let mut t = tally.borrow_mut();
            t.lag.record(sent - due);
            t.record(result, done - due, done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers after a fixed pause, failing every `fail_every`th call.
    struct Sleeper {
        pause: Duration,
        calls: u64,
        fail_every: u64,
    }

    impl Call for Sleeper {
        async fn call(&mut self) -> Result<(), String> {
            self.calls += 1;
            async_io::Timer::after(self.pause).await;
            if self.fail_every > 0 && self.calls % self.fail_every == 0 {
                return Err("503".into());
            }
            Ok(())
        }
    }

    fn phase(mode: Mode, ms: u64) -> Phase {
        Phase { name: "t".into(), mode, warmup: Duration::from_millis(50), duration: Duration::from_millis(ms) }
    }

    #[test]
    fn closed_loop_throughput_follows_concurrency_over_latency() {
        let p = phase(Mode::Closed { concurrency: 4 }, 400);
        let r = smol::block_on(run_phase(&p, |_| Sleeper { pause: Duration::from_millis(5), calls: 0, fail_every: 0 }));
        // 4 workers at >= 5 ms per call: at most 800/s (how close a loaded machine comes is for
        // the benchmarks to say).
        assert!(r.throughput <= 800.0 * 1.05 && r.ok > 0, "{r:?}");
        assert!(r.latency.p50 >= Duration::from_millis(5), "{r:?}");
        assert_eq!(r.error_count(), 0);
        assert!(r.send_lag_p99.is_none());
    }

    #[test]
    fn failures_are_counted_by_kind_not_as_latency() {
        let p = phase(Mode::Closed { concurrency: 1 }, 200);
        let r = smol::block_on(run_phase(&p, |_| Sleeper { pause: Duration::from_millis(1), calls: 0, fail_every: 2 }));
        assert!(r.errors.get("503").copied().unwrap_or(0) > 0, "{r:?}");
        assert_eq!(r.first_error.as_deref(), Some("503"));
        assert!(r.ok > 0);
    }

    #[test]
    fn open_loop_charges_queueing_to_latency_when_the_target_is_too_slow() {
        // One connection, 10 ms per call, asked for 500/s: the target can do 100/s, so requests
        // queue and their latency (from the due time) must grow far past the 10 ms service time.
        let p = phase(Mode::Open { rate: 500.0, connections: 1 }, 300);
        let r =
            smol::block_on(run_phase(&p, |_| Sleeper { pause: Duration::from_millis(10), calls: 0, fail_every: 0 }));
        assert!(r.throughput < 150.0, "{r:?}");
        assert!(r.latency.p99 > Duration::from_millis(100), "queueing is visible: {r:?}");
        assert!(r.send_lag_p99.unwrap() > Duration::from_millis(100), "{r:?}");
    }

    #[test]
    fn open_loop_under_capacity_keeps_the_rate_and_the_service_time() {
        let p = phase(Mode::Open { rate: 200.0, connections: 8 }, 500);
        let r = smol::block_on(run_phase(&p, |_| Sleeper { pause: Duration::from_millis(2), calls: 0, fail_every: 0 }));
        // Every slot due in the measured half second is sent and counted, however late a
        // loaded machine sends it (200/s × 0.5 s), and none answers before its service time.
        assert_eq!((r.ok, r.error_count()), (100, 0), "{r:?}");
        assert!(r.latency.p50 >= Duration::from_millis(2), "{r:?}");
    }
}

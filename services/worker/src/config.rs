use std::time::Duration;

use switchboard_ports::QueueOptions;
use switchboard_resilience::{Jitter, RetryPolicy};

/// Default name of the jobs queue.
pub const DEFAULT_JOBS_QUEUE: &str = switchboard_topology::JOBS_QUEUE;

/// Default name of the fanout exchange job events are broadcast on.
pub const DEFAULT_JOB_EVENTS_EXCHANGE: &str = switchboard_topology::JOB_EVENTS_EXCHANGE;

/// Worker settings; defaults match the documented names and limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Queue jobs are consumed from (`SWITCHBOARD_JOBS_QUEUE`).
    pub queue: String,
    /// How the queue is declared: must match the gateway's (same length bound and retry delays).
    pub queue_options: QueueOptions,
    /// Fanout exchange job events go to (`SWITCHBOARD_JOB_EVENTS_EXCHANGE`).
    pub events_exchange: String,
    /// Unsettled jobs the broker hands this worker at once (`SWITCHBOARD_WORKER_PREFETCH`).
    pub prefetch: u16,
    /// Jobs processed at once; at most `prefetch` (more could never be delivered).
    pub max_in_flight: usize,
    /// Attempts per job before it is dead-lettered (`SWITCHBOARD_JOB_MAX_ATTEMPTS`). A worker
    /// lost mid-job spends the attempt too, so a job that kills workers cannot loop forever.
    pub max_attempts: u32,
    /// gRPC deadline of one processor call, unless the job carries its own.
    pub attempt_timeout: Duration,
    /// Backoff before the second attempt; doubles per attempt (with jitter) up to `retry_max`.
    pub retry_base: Duration,
    /// Longest backoff between attempts.
    pub retry_max: Duration,
    /// Where the worker's spans go (off unless an OTLP endpoint is configured).
    pub tracer: switchboard_otlp::Tracer,
    /// How long a worker that claimed a job with an Idempotency-Key waits to hear other
    /// workers' claims on it before running it (`SWITCHBOARD_JOB_CLAIM_WAIT_MS`): two copies
    /// of one job both run only if their claims take longer than this to cross.
    pub claim_wait: Duration,
    /// Recent jobs a worker remembers claims and outcomes of, oldest forgotten first.
    pub claims_max: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            queue: DEFAULT_JOBS_QUEUE.into(),
            queue_options: QueueOptions::default(),
            events_exchange: DEFAULT_JOB_EVENTS_EXCHANGE.into(),
            prefetch: 16,
            max_in_flight: 16,
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            tracer: switchboard_otlp::Tracer::default(),
            claim_wait: Duration::from_millis(50),
            claims_max: 100_000,
        }
    }
}

impl WorkerConfig {
    /// Records the worker's spans through `tracer`.
    pub fn with_tracer(mut self, tracer: switchboard_otlp::Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// Sets the queue name.
    pub fn with_queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets the queue options.
    pub fn with_queue_options(mut self, options: QueueOptions) -> Self {
        self.queue_options = options;
        self
    }

    /// Sets the events exchange.
    pub fn with_events_exchange(mut self, exchange: impl Into<String>) -> Self {
        self.events_exchange = exchange.into();
        self
    }

    /// Sets the prefetch, and the jobs in flight to match.
    pub fn with_prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self.max_in_flight = usize::from(self.prefetch);
        self
    }

    /// Sets the attempts per job (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the per-call processor deadline.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets the backoff between attempts (`base` doubling up to `max`).
    pub fn with_retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.retry_base = base;
        self.retry_max = max.max(base);
        self
    }

    /// Sets how long a claim on a keyed job waits for the other workers' claims.
    pub fn with_claim_wait(mut self, wait: Duration) -> Self {
        self.claim_wait = wait;
        self
    }

    /// The backoff before the attempt after `attempt` (1-based): `retry_base × 2^(attempt-1)`
    /// capped at `retry_max`, then jittered to within its upper half so workers that failed
    /// together do not come back together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        RetryPolicy::new()
            .initial_delay(self.retry_base)
            .max_delay(self.retry_max)
            .jitter(Jitter::Equal)
            .delay(attempt.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let c = WorkerConfig::default().with_retry_backoff(Duration::from_millis(100), Duration::from_millis(500));
        for _ in 0..50 {
            let b1 = c.backoff(1);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&b1), "{b1:?}");
            let b3 = c.backoff(3);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&b3), "{b3:?}");
            let b9 = c.backoff(9);
            assert!((Duration::from_millis(250)..=Duration::from_millis(500)).contains(&b9), "{b9:?}");
        }
        assert!(c.backoff(u32::MAX) <= Duration::from_millis(500));
    }
}

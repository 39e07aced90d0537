use std::time::Duration;

use switchboard_topology::JobNames;

use crate::WorkerConfig;

/// Worker flags, each with an environment fallback.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Unsettled jobs the broker hands one worker at once (also the jobs run at once).
    #[arg(long, env = "SWITCHBOARD_WORKER_PREFETCH", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_prefetch: u16,
    /// Attempts per job before it is dead-lettered (a worker lost mid-job spends one too).
    #[arg(long, env = "SWITCHBOARD_JOB_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub job_max_attempts: u32,
    /// gRPC deadline of one processor call, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_JOB_ATTEMPT_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub job_attempt_timeout_ms: u64,
    /// Backoff before the second attempt in milliseconds; doubles per attempt, with jitter.
    #[arg(long, env = "SWITCHBOARD_JOB_RETRY_BASE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub job_retry_base_ms: u64,
    /// Longest backoff between attempts in milliseconds (the queue's longest retry delay, 30 s
    /// by default, caps it too).
    #[arg(long, env = "SWITCHBOARD_JOB_RETRY_MAX_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub job_retry_max_ms: u64,
    /// How long a worker that claimed a job with an Idempotency-Key waits to hear other
    /// workers' claims before running it, in milliseconds (two copies of one job both run only
    /// if their claims take longer than this to reach each other).
    #[arg(long, env = "SWITCHBOARD_JOB_CLAIM_WAIT_MS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub job_claim_wait_ms: u64,
    /// The processor breaker's settings.
    #[command(flatten)]
    pub breaker: WorkerBreaker,
}

switchboard_service::breaker_args!(
    /// The breaker around the worker's processor calls.
    WorkerBreaker, env = "SWITCHBOARD_WORKER_BREAKER", flag = "worker-breaker"
);

impl WorkerArgs {
    /// The worker configuration these flags describe, on the queue and exchange of `names`.
    pub fn config(&self, names: &JobNames) -> WorkerConfig {
        WorkerConfig::default()
            .with_queue(names.jobs_queue.clone())
            .with_events_exchange(names.job_events_exchange.clone())
            .with_prefetch(self.worker_prefetch)
            .with_max_attempts(self.job_max_attempts)
            .with_attempt_timeout(Duration::from_millis(self.job_attempt_timeout_ms))
            .with_retry_backoff(
                Duration::from_millis(self.job_retry_base_ms),
                Duration::from_millis(self.job_retry_max_ms),
            )
            .with_claim_wait(Duration::from_millis(self.job_claim_wait_ms))
    }
}

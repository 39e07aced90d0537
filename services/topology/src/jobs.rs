use crate::{JOBS_QUEUE, JOB_EVENTS_EXCHANGE};

/// Names of the jobs queue and the job-events exchange: shared by gateways and workers.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct JobNames {
    /// Work queue the gateway enqueues jobs on and the workers consume.
    #[arg(long, env = "SWITCHBOARD_JOBS_QUEUE", default_value = JOBS_QUEUE)]
    pub jobs_queue: String,
    /// Fanout exchange the workers broadcast job events on and every gateway listens to.
    #[arg(long, env = "SWITCHBOARD_JOB_EVENTS_EXCHANGE", default_value = JOB_EVENTS_EXCHANGE)]
    pub job_events_exchange: String,
}

impl Default for JobNames {
    fn default() -> Self {
        JobNames { jobs_queue: JOBS_QUEUE.into(), job_events_exchange: JOB_EVENTS_EXCHANGE.into() }
    }
}

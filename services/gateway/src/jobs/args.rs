use std::time::Duration;

use switchboard_topology::JobNames;

use crate::JobsConfig;

/// Flags of the gateway's jobs API, each with an environment fallback.
#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// The queue and exchange (the all-in-one's worker uses the same).
    #[command(flatten)]
    pub names: JobNames,
    /// Jobs whose status one gateway keeps; the oldest is forgotten beyond it.
    #[arg(long, env = "SWITCHBOARD_JOB_STORE_MAX", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub job_store_max: u64,
    /// Seconds a job's status is kept after the gateway first heard of it.
    #[arg(long, env = "SWITCHBOARD_JOB_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub job_ttl_secs: u64,
}

impl JobsArgs {
    /// The jobs configuration these flags describe.
    pub fn config(&self) -> JobsConfig {
        JobsConfig {
            queue: self.names.jobs_queue.clone(),
            events_exchange: self.names.job_events_exchange.clone(),
            store_max: self.job_store_max as usize,
            ttl: Duration::from_secs(self.job_ttl_secs),
            ..JobsConfig::default()
        }
    }
}

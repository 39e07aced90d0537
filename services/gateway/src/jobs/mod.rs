//! The jobs API: `POST /jobs` enqueues a job on the work queue and answers 202 once the broker
//! confirmed it and the gateway told every gateway (`queued` on the job-events fanout);
//! `GET /jobs/{id}` shows its status from a bounded store that every gateway fills from that
//! fanout, so any instance can answer for any job from the moment it was accepted.

mod args;
mod post;
mod store;

use std::sync::Arc;
use std::time::Duration;

use log::{info, warn};
use switchboard_ports::{Error, Fanout, FanoutListener, QueueOptions, WorkQueue};
use switchboard_proto::{JobEvent, JobStatus, ProtoMessage};
use tide::{Request, StatusCode};

use crate::errors::error;
use crate::idempotency::Replays;
use crate::routes::{json, State};

pub use args::JobsArgs;
pub use store::{JobState, JobStore, JobView};

/// Settings of the jobs API; defaults match the documented names and limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobsConfig {
    /// Work queue jobs go to (`SWITCHBOARD_JOBS_QUEUE`).
    pub queue: String,
    /// How the queue is declared: must match the workers' options.
    pub queue_options: QueueOptions,
    /// Fanout exchange the workers report on (`SWITCHBOARD_JOB_EVENTS_EXCHANGE`).
    pub events_exchange: String,
    /// Jobs whose status this gateway keeps (`SWITCHBOARD_JOB_STORE_MAX`).
    pub store_max: usize,
    /// How long a status is kept (`SWITCHBOARD_JOB_TTL_SECS`).
    pub ttl: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            queue: switchboard_topology::JOBS_QUEUE.into(),
            queue_options: QueueOptions::default(),
            events_exchange: switchboard_topology::JOB_EVENTS_EXCHANGE.into(),
            store_max: 100_000,
            ttl: Duration::from_secs(3600),
        }
    }
}

impl JobsConfig {
    /// Sets the queue and exchange names.
    pub fn with_names(mut self, queue: impl Into<String>, events_exchange: impl Into<String>) -> Self {
        self.queue = queue.into();
        self.events_exchange = events_exchange.into();
        self
    }

    /// Sets the queue options.
    pub fn with_queue_options(mut self, options: QueueOptions) -> Self {
        self.queue_options = options;
        self
    }
}

/// The jobs API of one gateway: its queue, its store, and the task feeding the store.
pub(crate) struct Jobs {
    config: JobsConfig,
    queue: Arc<dyn WorkQueue>,
    fanout: Arc<dyn Fanout>,
    store: Arc<JobStore>,
    /// `POST /jobs` by Idempotency-Key while in flight on this gateway (the store answers
    /// once it is accepted).
    in_flight: Arc<Replays>,
    // Dropping the task (with the last route holding `Jobs`) stops listening.
    _events: smol::Task<()>,
}

impl Jobs {
    /// Declares the queue and starts listening for job events: once this returns, the store
    /// hears about every job reported from now on.
    pub(crate) async fn start(
        config: JobsConfig,
        queue: Arc<dyn WorkQueue>,
        fanout: Arc<dyn Fanout>,
    ) -> Result<Arc<Jobs>, Error> {
        queue.declare(&config.queue, &config.queue_options).await?;
        let listener = fanout.listen(&config.events_exchange).await?;
        let store = Arc::new(JobStore::new(config.store_max, config.ttl));
        let events = smol::spawn(feed(listener, store.clone()));
        info!("jobs on queue {}, events from {}", config.queue, config.events_exchange);
        // Entries leave as their request ends; the TTL only backs that up.
        let in_flight = Replays::new(config.store_max, config.ttl);
        Ok(Arc::new(Jobs { config, queue, fanout, store, in_flight, _events: events }))
    }
}

/// Applies every job event heard to the store.
async fn feed(listener: FanoutListener, store: Arc<JobStore>) {
    while let Some(m) = listener.recv().await {
        match JobEvent::parse_from_bytes(&m.payload) {
            Ok(e) if !e.id.is_empty() => {
                let Some(view) = view_of(e) else { continue };
                store.apply(view);
            }
            Ok(_) => warn!("job event without id dropped"),
            Err(e) => warn!("undecodable job event dropped: {e}"),
        }
    }
    warn!("job events listener ended: job statuses are no longer updated");
}

fn view_of(e: JobEvent) -> Option<JobView> {
    let status = match e.status.enum_value() {
        Ok(JobStatus::JOB_STATUS_QUEUED) => JobState::Queued,
        Ok(JobStatus::JOB_STATUS_RUNNING) => JobState::Running,
        Ok(JobStatus::JOB_STATUS_DONE) => JobState::Done,
        Ok(JobStatus::JOB_STATUS_FAILED) => JobState::Failed,
        _ => {
            warn!("job event with unknown status dropped id={}", e.id);
            return None;
        }
    };
    let result = (status == JobState::Done).then_some(e.result);
    let error = (status == JobState::Failed).then_some(e.error);
    Some(JobView {
        id: e.id,
        status,
        result,
        error,
        attempt: e.attempt,
        redrives: e.redrives,
        fingerprint: e.request_fingerprint,
    })
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("config", &self.config).field("stored", &self.store.len()).finish()
    }
}

/// Registers `POST /jobs` and `GET /jobs/:id` on `app`.
pub(crate) fn routes(app: &mut tide::Server<State>, jobs: Arc<Jobs>) {
    let post = jobs.clone();
    app.at(crate::route_table::JOBS.path).post(move |req| post::post_job(post.clone(), req));
    app.at(crate::route_table::JOB.path).get(move |req| get_job(jobs.clone(), req));
}

async fn get_job(jobs: Arc<Jobs>, req: Request<State>) -> tide::Result {
    let id = req.param("id").unwrap_or_default();
    Ok(match jobs.store.get(id) {
        Some(view) => json(StatusCode::Ok, &view),
        None => error(StatusCode::NotFound, "not_found", &format!("no job {id} (unknown, or forgotten after its TTL)")),
    })
}

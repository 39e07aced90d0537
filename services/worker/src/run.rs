use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use futures_lite::{future, FutureExt};
use log::{info, warn};
use switchboard_ports::{Error, ErrorKind, Fanout, FanoutListener, JobStream, WorkQueue};
use switchboard_proto::ProcessorClient;
use switchboard_proto::{JobEvent, ProtoMessage};
use switchboard_resilience::CircuitBreaker;
use switchboard_telemetry::Metrics;

use crate::{Handled, JobHandler, WorkerConfig};

/// A worker's parts, ready to consume: its queue and the handler that runs each job.
pub struct Worker {
    queue: Arc<dyn WorkQueue>,
    fanout: Arc<dyn Fanout>,
    handler: JobHandler,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("handler", &self.handler).finish_non_exhaustive()
    }
}

impl Worker {
    /// Wires a worker: jobs from `queue`, events to `fanout`, processor calls through `client`
    /// guarded by `breaker`.
    pub fn new(
        config: WorkerConfig,
        queue: Arc<dyn WorkQueue>,
        fanout: Arc<dyn Fanout>,
        client: ProcessorClient,
        breaker: CircuitBreaker,
    ) -> Self {
        let handler = JobHandler::new(Arc::new(config), client, fanout.clone(), breaker, Metrics::new("worker"));
        Worker { queue, fanout, handler }
    }

    /// Records job, AMQP, gRPC and breaker metrics into `metrics` instead of a private registry.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        switchboard_telemetry::watch_breaker(&metrics, "worker_processor", self.handler.breaker());
        self.handler.record_into(metrics);
        self
    }

    /// The breaker around processor calls (clones share its state).
    pub fn breaker(&self) -> CircuitBreaker {
        self.handler.breaker().clone()
    }

    /// Declares the queue and starts consuming: once this returns, jobs reach this worker.
    pub async fn start(self) -> Result<ConsumingWorker, Error> {
        let Worker { queue, fanout, handler } = self;
        let config = handler.config().clone();
        queue.declare(&config.queue, &config.queue_options).await?;
        // Heard before the first job arrives: the other workers' claims and outcomes.
        let events = match fanout.listen(&config.events_exchange).await {
            Ok(events) => Some(events),
            Err(e) => {
                warn!("not listening to job events ({e}): a job enqueued twice may run twice");
                None
            }
        };
        let jobs = queue.consume(&config.queue, config.prefetch.max(1)).await?;
        info!("worker consuming {} (prefetch {}, {} attempts)", config.queue, config.prefetch, config.max_attempts);
        Ok(ConsumingWorker { config, handler, jobs, events })
    }

    /// Starts, then runs until `stop` completes (see [`ConsumingWorker::run`]).
    pub async fn run(self, stop: impl Future<Output = ()>, grace: Duration) -> Result<(), Error> {
        self.start().await?.run(stop, grace).await
    }
}

/// A worker whose consumer is started.
pub struct ConsumingWorker {
    config: Arc<WorkerConfig>,
    handler: JobHandler,
    jobs: JobStream,
    events: Option<FanoutListener>,
}

impl std::fmt::Debug for ConsumingWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumingWorker").field("config", &self.config).field("jobs", &self.jobs).finish()
    }
}

enum Step {
    Job(Option<switchboard_ports::Job>),
    Finished(Handled),
    Stop,
}

impl ConsumingWorker {
    /// Runs jobs, at most `max_in_flight` at once, until `stop` completes; then takes no new
    /// job, lets those in flight finish (broadcast, settle) for at most `grace`, and stops the
    /// consumer: jobs still unsettled go back to the queue for another worker.
    ///
    /// Every job runs inside this future, so dropping it is a crash as far as the broker is
    /// concerned: work stops at once and the held jobs are delivered again, flagged.
    ///
    /// Fails with `Closed` when the broker ended the consumer (after the same drain).
    pub async fn run(self, stop: impl Future<Output = ()>, grace: Duration) -> Result<(), Error> {
        let ConsumingWorker { config, handler, jobs, events } = self;
        let max_in_flight = config.max_in_flight.clamp(1, usize::from(config.prefetch.max(1)));
        let mut running = FuturesUnordered::new();
        let mut stop = pin!(stop);
        // Boxed so it can be dropped (ending its borrow of `events`) before the listener closes.
        let mut hear = Box::pin(hear(events.as_ref(), handler.clone()));
        let mut ended = None;
        loop {
            let room = running.len() < max_in_flight;
            let next_job = async {
                if room {
                    Step::Job(jobs.recv().await)
                } else {
                    future::pending().await
                }
            };
            let finished = async {
                match running.next().await {
                    Some(handled) => Step::Finished(handled),
                    None => future::pending().await,
                }
            };
            let stopped = async {
                stop.as_mut().await;
                Step::Stop
            };
            // Never completes: events are recorded as they come while the rest waits.
            let hearing = async {
                hear.as_mut().await;
                Step::Stop
            };
            match stopped.or(finished).or(next_job).or(hearing).await {
                Step::Job(Some(job)) => {
                    let handler = handler.clone();
                    running.push(async move { handler.handle(job).await });
                }
                Step::Job(None) => {
                    warn!("the broker stopped the consumer of {}", config.queue);
                    ended = Some(Error::new(ErrorKind::Closed, "the broker stopped the jobs consumer"));
                    break;
                }
                Step::Finished(handled) => log::debug!("job settled: {handled:?}"),
                Step::Stop => break,
            }
        }
        if !running.is_empty() {
            info!("worker stopping: finishing {} jobs in flight (grace {grace:?})", running.len());
        }
        let drained = async {
            while running.next().await.is_some() {}
            true
        }
        .or(async {
            async_io::Timer::after(grace).await;
            false
        })
        .await;
        if !drained {
            warn!("grace period over with {} jobs in flight: they go back to the queue", running.len());
        }
        // Dropping what is left releases those jobs before the consumer stops.
        drop(running);
        drop(hear);
        if let Some(events) = events {
            let _ = events.close().await;
        }
        jobs.close().await?;
        info!("worker stopped consuming {}", config.queue);
        ended.map_or(Ok(()), Err)
    }
}

/// Feeds every job event heard to `handler`'s claims; never ends (after the listener ends,
/// or without one, it waits forever).
async fn hear(events: Option<&FanoutListener>, handler: JobHandler) {
    if let Some(events) = events {
        while let Some(message) = events.recv().await {
            match JobEvent::parse_from_bytes(&message.payload) {
                Ok(event) => handler.heard(&event),
                Err(e) => log::debug!("undecodable job event ignored: {e}"),
            }
        }
        warn!("job events no longer heard: a job enqueued twice may run twice");
    }
    future::pending::<()>().await
}

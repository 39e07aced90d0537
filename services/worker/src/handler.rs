use std::sync::Arc;
use std::time::Duration;

use grpcio::{CallOption, RpcStatus, RpcStatusCode};
use log::{info, warn};
use switchboard_ports::{dead_letter_queue, redrives, Fanout, Job, TRACEPARENT_HEADER};
use switchboard_proto::convert::{now_micros, now_millis, Stage};
use switchboard_proto::{Envelope, JobEvent, JobStatus, ProcessRequest, ProcessorClient, ProtoMessage};
use switchboard_resilience::CircuitBreaker;
use switchboard_telemetry::{AckOutcome, Metrics};

use crate::claims::Claims;
use crate::spans::Trail;
use crate::WorkerConfig;

const SERVICE: &str = "worker";

/// Header naming the job on job events (the payload is a `JobEvent`).
pub const JOB_ID_HEADER: &str = "job-id";

/// Shortest deferral while the breaker is open, so a half-open breaker with every probe out
/// (retry-after zero) does not spin jobs through the queue.
const MIN_DEFER: Duration = Duration::from_millis(100);

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// Processed: `done` broadcast, then acked.
    Done,
    /// A transient failure (or a worker lost mid-job): delivered again after `after` as attempt
    /// `next_attempt`.
    Retried {
        /// The attempt number the job comes back with.
        next_attempt: u32,
        /// The backoff asked for.
        after: Duration,
    },
    /// Not tried (breaker open, events unavailable): delivered again after this long with the
    /// same attempt number.
    Deferred(Duration),
    /// Moved to the dead-letter queue with this reason (`failed` broadcast first when the job
    /// had an id).
    DeadLettered(String),
    /// Settling failed (the consumer went away, the broker is down): the broker delivers the
    /// job again.
    Released(String),
    /// A second copy of a job already run or running (see the `claims` module): acked
    /// without being run.
    Duplicate,
}

/// Runs one job: decode, call the processor through the breaker, broadcast the outcome, then
/// settle the job. Cheap to clone.
#[derive(Clone)]
pub struct JobHandler {
    config: Arc<WorkerConfig>,
    client: ProcessorClient,
    fanout: Arc<dyn Fanout>,
    breaker: CircuitBreaker,
    metrics: Metrics,
    /// What this worker heard of recent jobs: who runs each, which are finished.
    claims: Arc<Claims>,
    /// This worker's name in its claims.
    me: String,
}

impl std::fmt::Debug for JobHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandler").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Why the processor call did not produce a result.
enum CallFailure {
    /// Worth another attempt: the processor is down, overloaded or too slow.
    Transient(String),
    /// Another attempt would fail the same way.
    Permanent(String),
}

impl JobHandler {
    /// A handler calling the processor through `client` guarded by `breaker`, broadcasting job
    /// events on `fanout`.
    pub fn new(
        config: Arc<WorkerConfig>,
        client: ProcessorClient,
        fanout: Arc<dyn Fanout>,
        breaker: CircuitBreaker,
        metrics: Metrics,
    ) -> Self {
        let claims = Arc::new(Claims::new(config.claims_max));
        let me = uuid::Uuid::new_v4().simple().to_string();
        JobHandler { config, client, fanout, breaker, metrics, claims, me }
    }

    /// Records a job event heard on the fanout (every worker's, this one's included).
    pub fn heard(&self, event: &JobEvent) {
        self.claims.heard(event);
    }

    /// The worker's settings.
    pub(crate) fn config(&self) -> &Arc<WorkerConfig> {
        &self.config
    }

    /// The breaker around processor calls.
    pub(crate) fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Records into `metrics` from now on.
    pub(crate) fn record_into(&mut self, metrics: Metrics) {
        self.metrics = metrics;
    }

    /// Handles one job and settles it; never panics on bad input.
    pub async fn handle(&self, job: Job) -> Handled {
        let tracer = &self.config.tracer;
        let mut trail = Trail::new(tracer);
        if !trail.is_on() {
            return self.handle_traced(job, &mut trail).await;
        }
        let (queue, attempt) = (job.queue().to_owned(), job.attempt());
        let handled = self.handle_traced(job, &mut trail).await;
        crate::spans::finish(tracer, trail, &queue, attempt, &handled);
        handled
    }

    async fn handle_traced(&self, job: Job, trail: &mut Trail) -> Handled {
        let spec = match switchboard_proto::Job::parse_from_bytes(job.payload()) {
            Ok(spec) if spec.envelope.is_none() => {
                // Fields 1-4 of a job are reserved: a job written before jobs carried their
                // envelope decodes to nothing to run.
                let why = "job without envelope (written in the format before jobs carried one)";
                return self.dead_letter(job, why.into(), "invalid").await;
            }
            Ok(spec) if !spec.envelope.id.is_empty() => spec,
            Ok(_) => return self.dead_letter(job, "job without id".into(), "invalid").await,
            Err(e) => return self.dead_letter(job, format!("undecodable job: {e}"), "decode").await,
        };
        let id = spec.envelope.id.as_str();
        if trail.is_on() {
            trail.entered = Some(self.config.tracer.enter(spec.envelope.traceparent()));
            trail.id = id.to_owned();
        }
        let (attempt, max) = (job.attempt(), self.config.max_attempts);
        // Sent back from the dead-letter queue this many times: its events say so, so every
        // gateway shows the new run instead of the earlier final status.
        let redriven = redrives(job.message());
        // A first delivery at attempt 1 is either the job or a copy of one enqueued twice.
        // A redriven job is a deliberate new run of an id that already ended: never a copy.
        let fresh = attempt == 1 && !job.redelivered() && redriven == 0;
        if redriven == 0 && (self.claims.finished(id) || (fresh && self.claims.taken(id))) {
            info!("job already run or running on a worker: this copy is dropped id={id}");
            return self.drop_copy(job).await;
        }
        if job.redelivered() {
            // The worker holding it went away mid-job (crashed, killed, lost its connection).
            // The lost try counts as an attempt, so a job that kills workers ends in the
            // dead-letter queue instead of looping forever.
            if attempt >= max {
                let why = format!("worker lost during attempt {attempt} of {max}");
                return self.give_up(job, &spec, why, "redelivered").await;
            }
            warn!("job redelivered after a lost worker, attempt {attempt} of {max} spent id={id}");
            return self.retry(job, Duration::ZERO).await;
        }
        if attempt > max {
            let why = format!("attempt {attempt} past the limit of {max}");
            return self.give_up(job, &spec, why, "too_many_retries").await;
        }
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => {
                // The processor is known to be down: put the job off without spending an attempt.
                let after = rejected.retry_after().max(MIN_DEFER);
                info!("breaker open, job deferred {after:?} id={id}");
                return self.defer(job, after).await;
            }
        };
        // A job with an Idempotency-Key may have been enqueued by two gateways at once: its
        // first `running` is a claim, and the worker runs it only if its claim wins.
        let claim = (fresh && !spec.request_fingerprint.is_empty()).then(|| (now_micros(), self.me.clone()));
        if let Some(claim) = &claim {
            self.claims.claim(id, claim.clone());
        }
        let at = claim.as_ref().map_or_else(now_micros, |(at, _)| *at);
        if let Err(e) =
            self.emit(&spec, JobStatus::JOB_STATUS_RUNNING, (attempt, redriven), |e| e.at_unix_micros = at).await
        {
            // Only a progress report: the outcome below is what must not be lost.
            warn!("running event not broadcast id={id}: {e}");
        }
        if let Some(claim) = claim {
            async_io::Timer::after(self.config.claim_wait).await;
            if !self.claims.won(id, &claim) {
                permit.ignore();
                info!("job claimed first by another worker: this copy is dropped id={id}");
                return self.drop_copy(job).await;
            }
        }
        self.metrics.job("running");
        match self.call(&spec, trail).await {
            Ok(envelope) => {
                permit.success();
                let result = envelope.body.to_uppercase();
                info!("job done: {result} id={id}");
                let sent = self
                    .emit(&spec, JobStatus::JOB_STATUS_DONE, (attempt, redriven), |e| {
                        e.result = result.clone();
                        e.hops = envelope.hops.clone();
                    })
                    .await;
                if let Err(e) = sent {
                    // Acking now would lose the result: do it again later (the gateways keep
                    // the first `done` of a job, so a repeat is harmless).
                    warn!("done event not broadcast id={id}: {e}");
                    return self.defer(job, self.config.retry_base).await;
                }
                self.metrics.job("succeeded");
                self.ack(job).await
            }
            Err(CallFailure::Transient(why)) => {
                permit.failure();
                if attempt >= max {
                    let why = format!("gave up after {attempt} attempts: {why}");
                    return self.give_up(job, &spec, why, "too_many_retries").await;
                }
                let after = self.config.backoff(attempt);
                warn!("job attempt {attempt} of {max} failed, retry in {after:?} id={id}: {why}");
                self.retry(job, after).await
            }
            Err(CallFailure::Permanent(why)) => {
                permit.ignore();
                self.give_up(job, &spec, format!("rejected by the processor: {why}"), "invalid").await
            }
        }
    }

    /// Calls the processor with the job's envelope, within the attempt's deadline.
    async fn call(&self, spec: &switchboard_proto::Job, trail: &mut Trail) -> Result<Envelope, CallFailure> {
        let timeout = match spec.attempt_timeout_ms {
            0 => self.config.attempt_timeout,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let mut envelope = Envelope::clone(&spec.envelope);
        // The processor publishes to an envelope's reply topic and answers one without over
        // gRPC only: a job's result is the worker's to report, so whatever topic its envelope
        // names is dropped.
        envelope.reply_to.clear();
        envelope.reply_partition = None;
        envelope.deadline_unix_ms = now_millis() + timeout.as_millis() as i64;
        envelope.record(Stage::RabbitmqConsumer, SERVICE);
        info!("RABBITMQ Consumer: {} id={}", envelope.body, envelope.id);
        let call_span = trail.entered.map(|entered| {
            trail.body.clone_from(&envelope.body);
            // The call is a child span of this delivery's; the processor continues from it.
            let call = entered.ctx.child();
            envelope.set_traceparent(call.to_string());
            call
        });
        envelope.record(Stage::GrpcClient, SERVICE);
        info!("gRPC Client: {} id={}", envelope.body, envelope.id);
        let call_started = if call_span.is_some() { switchboard_otlp::now_unix_nanos() } else { 0 };

        let mut opt = CallOption::default().timeout(timeout);
        if let Some(headers) = switchboard_grpc::client::call_metadata(&envelope) {
            opt = opt.headers(headers);
        }
        let mut request = ProcessRequest::new();
        request.envelope = Some(envelope).into();
        let result = match self.client.process_async_opt(&request, opt) {
            Ok(receiver) => receiver.await,
            Err(e) => Err(e),
        };
        if let Some(ctx) = call_span {
            let (code, error): (i32, Option<String>) = match &result {
                Ok(_) => (0, None),
                Err(grpcio::Error::RpcFailure(st)) => (st.code().into(), Some(st.message().to_owned())),
                Err(e) => (RpcStatusCode::UNAVAILABLE.into(), Some(e.to_string())),
            };
            trail.call = Some((ctx, call_started, switchboard_otlp::now_unix_nanos(), code, error));
        }
        let status = match result {
            Ok(response) => {
                self.metrics.grpc_call(switchboard_proto::methods::PROCESS, RpcStatusCode::OK.into());
                return response
                    .envelope
                    .into_option()
                    .ok_or_else(|| CallFailure::Permanent("processor answered without an envelope".into()));
            }
            Err(grpcio::Error::RpcFailure(status)) => status,
            Err(e) => RpcStatus::with_message(RpcStatusCode::UNAVAILABLE, e.to_string()),
        };
        self.metrics.grpc_call(switchboard_proto::methods::PROCESS, status.code().into());
        let why = format!("{:?}: {}", status.code(), status.message());
        Err(if is_transient(status.code()) { CallFailure::Transient(why) } else { CallFailure::Permanent(why) })
    }

    /// Broadcasts a job event; `fill` sets the status-specific fields.
    async fn emit(
        &self,
        spec: &switchboard_proto::Job,
        status: JobStatus,
        (attempt, redriven): (u32, u32),
        fill: impl FnOnce(&mut JobEvent),
    ) -> Result<(), switchboard_ports::Error> {
        let mut event = JobEvent::new();
        event.id = spec.envelope.id.clone();
        event.status = status.into();
        event.attempt = attempt;
        event.redrives = redriven;
        event.at_unix_micros = now_micros();
        // Lets every gateway tell a reused Idempotency-Key, even one that missed `queued`.
        event.request_fingerprint = spec.request_fingerprint.clone();
        event.worker = self.me.clone();
        fill(&mut event);
        let mut message = switchboard_ports::Message::new(event.write_to_bytes().expect("in-memory message encodes"))
            .with_header(JOB_ID_HEADER, spec.envelope.id.as_bytes());
        if let Some(tp) = spec.envelope.traceparent() {
            message = message.with_header("traceparent", tp.as_bytes());
        }
        self.fanout.broadcast(&self.config.events_exchange, message).await.map_err(|e| e.error)
    }

    /// Broadcasts `failed`, then dead-letters the job; if the broadcast fails the job is
    /// deferred instead, so no job ends without its outcome being told.
    async fn give_up(&self, job: Job, spec: &switchboard_proto::Job, why: String, kind: &'static str) -> Handled {
        warn!("job failed id={}: {why}", spec.envelope.id);
        let at = (job.attempt(), redrives(job.message()));
        let sent = self.emit(spec, JobStatus::JOB_STATUS_FAILED, at, |e| e.error = why.clone()).await;
        if let Err(e) = sent {
            warn!("failed event not broadcast id={}: {e}", spec.envelope.id);
            return self.defer(job, self.config.retry_base).await;
        }
        self.metrics.job("failed");
        // The dead letter carries the job's trace, whoever enqueued it.
        let job = match spec.envelope.traceparent() {
            Some(tp) if job.message().header(TRACEPARENT_HEADER).is_none() => job.with_header(TRACEPARENT_HEADER, tp),
            _ => job,
        };
        self.dead_letter(job, why, kind).await
    }

    async fn dead_letter(&self, job: Job, reason: String, kind: &'static str) -> Handled {
        let dlq = dead_letter_queue(job.queue());
        warn!("dead-lettering a job to {dlq}: {reason}");
        match job.dead_letter(reason.clone()).await {
            Ok(()) => {
                self.metrics.amqp_ack(&self.config.queue, AckOutcome::DeadLetter);
                self.metrics.dead_lettered(&dlq, kind);
                Handled::DeadLettered(reason)
            }
            Err(e) => released("dead-letter", e),
        }
    }

    async fn retry(&self, job: Job, after: Duration) -> Handled {
        let next_attempt = job.attempt().saturating_add(1);
        match job.retry(after).await {
            Ok(()) => {
                self.metrics.amqp_ack(&self.config.queue, AckOutcome::Retry);
                self.metrics.job("retried");
                Handled::Retried { next_attempt, after }
            }
            Err(e) => released("retry", e),
        }
    }

    async fn defer(&self, job: Job, after: Duration) -> Handled {
        match job.defer(after).await {
            Ok(()) => {
                self.metrics.amqp_ack(&self.config.queue, AckOutcome::Retry);
                self.metrics.job("deferred");
                Handled::Deferred(after)
            }
            Err(e) => released("deferral", e),
        }
    }

    /// Acks a copy of a job that runs (or ran) elsewhere.
    async fn drop_copy(&self, job: Job) -> Handled {
        match job.ack().await {
            Ok(()) => {
                self.metrics.amqp_ack(&self.config.queue, AckOutcome::Ack);
                self.metrics.job("duplicate");
                Handled::Duplicate
            }
            Err(e) => released("ack", e),
        }
    }

    async fn ack(&self, job: Job) -> Handled {
        match job.ack().await {
            Ok(()) => {
                self.metrics.amqp_ack(&self.config.queue, AckOutcome::Ack);
                Handled::Done
            }
            Err(e) => released("ack", e),
        }
    }
}

fn released(what: &str, e: switchboard_ports::Error) -> Handled {
    // The port puts the job back in its queue when settling fails.
    warn!("job {what} failed, the broker will deliver it again: {e}");
    Handled::Released(format!("{what} failed: {e}"))
}

/// Statuses another attempt may cure.
fn is_transient(code: RpcStatusCode) -> bool {
    ![
        RpcStatusCode::INVALID_ARGUMENT,
        RpcStatusCode::NOT_FOUND,
        RpcStatusCode::ALREADY_EXISTS,
        RpcStatusCode::PERMISSION_DENIED,
        RpcStatusCode::FAILED_PRECONDITION,
        RpcStatusCode::OUT_OF_RANGE,
        RpcStatusCode::UNIMPLEMENTED,
        RpcStatusCode::UNAUTHENTICATED,
    ]
    .contains(&code)
}

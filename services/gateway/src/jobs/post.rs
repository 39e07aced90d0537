//! `POST /jobs`: admission, Idempotency-Key handling, and the enqueue bounded by the request's
//! budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use serde::Serialize;
use switchboard_ports::Message;
use switchboard_proto::convert::{now_micros, now_millis, Stage};
use switchboard_proto::{Envelope, JobEvent, JobStatus, ProtoMessage};
use switchboard_telemetry::{TraceContext, TRACEPARENT};
use tide::{Request, Response, StatusCode};

use super::{JobState, JobView, Jobs};
use crate::idempotency::{self, Claim, First, Stored, REPLAYED};
use crate::routes::{admit, json, publish_failed, unavailable, within, Admitted, State};
use crate::spans::{Publish, Trail};

const SERVICE: &str = "gateway";

/// Header naming the job on job events (as the worker sets it).
const JOB_ID_HEADER: &str = "job-id";

#[derive(Serialize)]
struct Accepted<'a> {
    id: &'a str,
    status: JobState,
}

pub(super) async fn post_job(jobs: Arc<Jobs>, mut req: Request<State>) -> tide::Result {
    let state = req.state().clone();
    // Every wait on the broker below ends by the deadline.
    let Admitted { deadline, text, key, traceparent } = match admit(&mut req).await {
        Ok(admitted) => admitted,
        Err(res) => return Ok(res),
    };
    let Some(key) = key else {
        let id = uuid::Uuid::new_v4().to_string();
        let job = Submission { id, text, claim: None, deadline };
        return Ok(submit(&jobs, &state, job, traceparent.as_deref()).await);
    };
    // Every gateway derives the same id from the key, and knows the job (with the fingerprint
    // of its request) once it is accepted anywhere.
    let id = idempotency::job_id(&key);
    let fingerprint = idempotency::fingerprint(crate::route_table::JOBS.path, &text);
    Ok(match jobs.in_flight.claim(&key, &fingerprint) {
        Claim::Conflict => idempotency::reused(),
        Claim::Replay(stored) => stored.response(true),
        Claim::Wait(waiting) => {
            // The same key in flight on this gateway: its outcome is ours.
            let Ok(_slot) = state.pending.slot() else {
                return Ok(unavailable("too many requests in flight", 1));
            };
            match waiting.outcome(deadline).await {
                Some(stored) => stored.response(true),
                None => unavailable("the request with this Idempotency-Key did not finish; retry", 1),
            }
        }
        Claim::First(first) => match jobs.store.get(&id) {
            // An empty fingerprint: heard only from a worker that does not carry it.
            Some(known) if known.fingerprint.is_empty() || known.fingerprint == fingerprint => {
                info!("POST /jobs repeats Idempotency-Key of job id={id}: nothing enqueued");
                // Not kept here: once accepted, the store (on every gateway) answers repeats.
                first.finish(Stored::capture(accepted(&id, known.status, None, false)).await, false);
                accepted(&id, known.status, None, true)
            }
            Some(_) => idempotency::reused(),
            None => {
                let job = Submission { id, text, claim: Some((first, fingerprint)), deadline };
                submit(&jobs, &state, job, traceparent.as_deref()).await
            }
        },
    })
}

/// A job to enqueue, as the request gave it.
struct Submission {
    id: String,
    text: String,
    /// The Idempotency-Key claim and the request's fingerprint.
    claim: Option<(First, String)>,
    /// The answer is due by then.
    deadline: Instant,
}

/// Enqueues `job`, tells every gateway it is queued, and answers 202; or the error, at the
/// latest at its deadline. Its spans are exported once the answer is known.
async fn submit(jobs: &Arc<Jobs>, state: &State, job: Submission, traceparent: Option<&str>) -> Response {
    let tracer = &state.config.tracer;
    let mut trail = Trail::new(tracer, &job.text);
    let entered = tracer.enter(traceparent);
    let res = enqueue(jobs, state, job, entered.ctx, &mut trail).await;
    if trail.is_on() {
        let to = Publish {
            route: crate::route_table::JOBS.path,
            system: "rabbitmq",
            destination: &jobs.config.queue,
            stage: Stage::RabbitmqPublisher,
        };
        crate::spans::transaction(tracer, &entered, trail, to, u16::from(res.status()));
    }
    res
}

async fn enqueue(jobs: &Arc<Jobs>, state: &State, job: Submission, trace: TraceContext, trail: &mut Trail) -> Response {
    let Submission { id, text, claim, deadline } = job;
    let fingerprint = claim.as_ref().map(|(_, f)| f.clone()).unwrap_or_default();
    // The job's envelope has no reply topic (the worker takes the answer from the processor's
    // gRPC response) and no deadline (the worker gives each attempt its own).
    let mut envelope = Envelope::start(&id, text, "", Duration::ZERO);
    envelope.deadline_unix_ms = 0;
    // The enqueue is a child span of this request's; the worker continues from it.
    let publish_span = trace.child();
    envelope.set_traceparent(publish_span.to_string());
    if trail.is_on() {
        trail.id.clone_from(&id);
    }
    envelope.record(Stage::RestRequest, SERVICE);
    info!("REST request: {} id={id}", envelope.body);
    envelope.record(Stage::RabbitmqPublisher, SERVICE);

    let publish_started = envelope.hops.last().map_or(0, |h| switchboard_otlp::micros_to_nanos(h.at_unix_micros));
    let mut job = switchboard_proto::Job::new();
    job.envelope = Some(envelope).into();
    job.created_unix_ms = now_millis();
    job.request_fingerprint = fingerprint.clone();
    let message = Message::new(job.write_to_bytes().expect("in-memory message encodes"))
        .with_header(JOB_ID_HEADER, id.as_bytes())
        .with_header(TRACEPARENT, publish_span.to_string().as_bytes());

    // The enqueue runs on its own task holding the request's slot and its key's claim: if the
    // budget ends first, the answer is 503, but a late confirm still records and announces the
    // job, and until then a retry with the same Idempotency-Key waits for this enqueue instead
    // of enqueuing the job again.
    let Ok(slot) = state.pending.slot() else {
        trail.fail("overloaded", "too many requests in flight");
        return unavailable("too many requests in flight", 1);
    };
    let (enqueued_tx, enqueued) = async_channel::bounded(1);
    let (announced_tx, announced) = async_channel::bounded::<()>(1);
    let task_jobs = jobs.clone();
    let task_id = id.clone();
    smol::spawn(async move {
        let _slot = slot;
        let jobs = task_jobs;
        let outcome = jobs.queue.enqueue(&jobs.config.queue, message).await.map_err(|e| e.error);
        let ok = outcome.is_ok();
        let failed = outcome.as_ref().err().map(enqueue_failed);
        let _ = enqueued_tx.try_send(outcome);
        if ok {
            announce(&jobs, &task_id, fingerprint).await;
        }
        drop(announced_tx);
        if let Some((first, _)) = claim {
            // What a request waiting on this key answers; the key is freed for later ones
            // (the store answers them once the job is known).
            let res = failed.unwrap_or_else(|| accepted(&task_id, JobState::Queued, None, false));
            first.finish(Stored::capture(res).await, false);
        }
    })
    .detach();

    let confirmed = within(deadline, enqueued.recv()).await;
    if trail.is_on() {
        trail.publish = Some((publish_span, publish_started, switchboard_otlp::now_unix_nanos()));
    }
    match confirmed {
        Some(Ok(Ok(()))) => {}
        Some(Ok(Err(e))) => {
            warn!("job not enqueued id={id}: {e}");
            trail.fail("publish_failed", &e.to_string());
            return enqueue_failed(&e);
        }
        Some(Err(_)) => {
            trail.fail("publish_failed", "job queue unavailable");
            return unavailable("job queue unavailable", 1);
        }
        None => {
            warn!("job not confirmed by the broker within the budget id={id}");
            trail.fail("deadline", "the job queue did not confirm in time");
            return unavailable(
                "the job queue did not confirm in time; the job may still be accepted: retry with the same Idempotency-Key",
                1,
            );
        }
    }
    info!("RABBITMQ Publisher: {} id={id}", job.envelope.body);
    state.metrics.job("accepted");
    // The job is accepted whatever happens now; answer once the other gateways were told (or
    // at the budget: they then learn of it when a worker starts it).
    if within(deadline, announced.recv()).await.is_none() {
        warn!("queued event not confirmed within the budget id={id}");
    }
    accepted(&id, JobState::Queued, Some(trace.to_string()), false)
}

fn enqueue_failed(e: &switchboard_ports::Error) -> Response {
    publish_failed(e, 1, "enqueue_rejected")
}

/// Records the job as queued here and broadcasts `queued` to every gateway.
async fn announce(jobs: &Jobs, id: &str, fingerprint: String) {
    jobs.store.apply(JobView::new(id, JobState::Queued, 0).with_fingerprint(fingerprint.clone()));
    let mut event = JobEvent::new();
    event.id = id.to_owned();
    event.status = JobStatus::JOB_STATUS_QUEUED.into();
    event.at_unix_micros = now_micros();
    event.request_fingerprint = fingerprint;
    let message = Message::new(event.write_to_bytes().expect("in-memory message encodes"))
        .with_header(JOB_ID_HEADER, id.as_bytes());
    if let Err(e) = jobs.fanout.broadcast(&jobs.config.events_exchange, message).await {
        warn!("queued event not broadcast id={id}: other gateways learn of the job when it runs: {e}");
    }
}

/// The 202 of an accepted (or already known) job.
fn accepted(id: &str, status: JobState, traceparent: Option<String>, replayed: bool) -> Response {
    let mut res = json(StatusCode::Accepted, &Accepted { id, status });
    res.insert_header("Location", format!("/jobs/{id}"));
    if let Some(tp) = traceparent {
        res.insert_header(TRACEPARENT, tp);
    }
    if replayed {
        res.insert_header(REPLAYED, "true");
    }
    res
}

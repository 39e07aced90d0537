use std::sync::Arc;

use futures_lite::AsyncReadExt;
use log::{info, warn};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_lite::FutureExt;
use switchboard_ports::{ErrorKind, Message, Publisher};
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope};
use switchboard_service::metrics_response;
use switchboard_telemetry::{Metrics, Readiness, TraceContext, TRACEPARENT};
use tide::{Request, Response, StatusCode};

use crate::errors::error;
use crate::idempotency::{self, Claim, Replays, Stored};
use crate::spans::{Publish, Trail};
use crate::{route_table, GatewayConfig, Pending, Wake};

const SERVICE: &str = "gateway";

/// The Go example's rule around the end-of-transaction lines (92 `#`), a constant rather than a
/// `String` built for each line.
const RULE: &str = "############################################################################################";

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct State {
    pub config: Arc<GatewayConfig>,
    /// The replies partition this instance reads: every envelope names it.
    pub reply_partition: i32,
    pub publisher: Arc<dyn Publisher>,
    pub pending: Arc<Pending>,
    pub breaker: switchboard_resilience::CircuitBreaker,
    pub metrics: Metrics,
    pub readiness: Readiness,
    /// Set when shutdown begins: new requests are refused, those in flight finish.
    pub draining: Arc<AtomicBool>,
}

pub(crate) fn app(state: State) -> tide::Server<State> {
    let replays = Replays::new(state.config.idempotency_max_keys, state.config.idempotency_ttl);
    let mut app = tide::with_state(state);
    app.with(Track);
    app.with(crate::errors::JsonErrors::GATEWAY);
    if let Some(tokens) = app.state().config.auth.clone() {
        app.with(crate::auth::Authenticate(tokens));
    }
    app.at(route_table::MESSAGES.path).post(move |req| post_message(replays.clone(), req));
    app.at(route_table::HEALTHZ.path).get(|_| async { Ok(json(StatusCode::Ok, &serde_json::json!({"status": "ok"}))) });
    app.at(route_table::READYZ.path).get(|req: Request<State>| async move {
        Ok(Response::from(req.state().readiness.report().await.into_response()))
    });
    app.at(route_table::METRICS.path)
        .get(|req: Request<State>| async move { Ok(Response::from(metrics_response(&req.state().metrics))) });
    app.at(route_table::OPENAPI.path).get(|_| async {
        let mut res = Response::new(StatusCode::Ok);
        res.set_content_type(tide::http::mime::JSON);
        res.set_body(crate::OPENAPI);
        Ok(res)
    });
    app
}

/// Records every request in the HTTP metrics, labelled by route template.
struct Track;

#[tide::utils::async_trait]
impl tide::Middleware<State> for Track {
    async fn handle(&self, req: Request<State>, next: tide::Next<'_, State>) -> tide::Result {
        let metrics = req.state().metrics.clone();
        let route = route_table::route_of(req.url().path()).map_or(switchboard_telemetry::OTHER, |r| r.path);
        let method = req.method();
        let _in_flight = metrics.http_in_flight();
        let started = Instant::now();
        let res = next.run(req).await;
        metrics.http_request(route, method.as_ref(), u16::from(res.status()), started.elapsed());
        Ok(res)
    }
}

#[derive(Deserialize)]
struct MessageRequest {
    message: Option<String>,
}

#[derive(Serialize)]
struct MessageReply<'a> {
    id: &'a str,
    message: String,
    hops: Vec<HopView<'a>>,
}

#[derive(Serialize)]
struct HopView<'a> {
    name: &'a str,
    service: &'a str,
    at_unix_micros: i64,
    /// Microseconds since the first hop: the transaction's timeline.
    elapsed_us: i64,
}

/// A request `/messages` or `/jobs` took on: its budget's end, message, key and trace.
pub(crate) struct Admitted {
    /// When the request's budget ends: every wait on the broker ends by it.
    pub deadline: Instant,
    pub text: String,
    pub key: Option<String>,
    pub traceparent: Option<String>,
}

/// What `/messages` and `/jobs` check first: the gateway is not draining, the body is a valid
/// message and the `Idempotency-Key`, if any, is well formed. Returns what the handler needs, or
/// the response refusing the request.
pub(crate) async fn admit(req: &mut Request<State>) -> Result<Admitted, Response> {
    let state = req.state().clone();
    // The budget starts now, before the body is read.
    let deadline = Instant::now() + state.config.request_timeout;
    if state.draining.load(Ordering::Relaxed) {
        let mut res = unavailable("shutting down", 1);
        res.insert_header("Connection", "close");
        return Err(res);
    }
    let text = read_message(req, state.config.max_body_bytes).await?;
    let key = idempotency::key_of(req)?;
    let traceparent = req.header(TRACEPARENT).map(|v| v.as_str().to_owned());
    Ok(Admitted { deadline, text, key, traceparent })
}

async fn post_message(replays: Arc<Replays>, mut req: Request<State>) -> tide::Result {
    let state = req.state().clone();
    // Every wait below (body, publish, reply) ends by the deadline.
    let Admitted { deadline, text, key, traceparent } = match admit(&mut req).await {
        Ok(admitted) => admitted,
        Err(res) => return Ok(res),
    };
    let Some(key) = key else {
        return Ok(transaction(&state, text, traceparent.as_deref(), deadline).await);
    };
    // A repeated key gets the first request's reply instead of a second transaction.
    match replays.claim(&key, &idempotency::fingerprint(route_table::MESSAGES.path, &text)) {
        Claim::Conflict => Ok(idempotency::reused()),
        Claim::Replay(stored) => Ok(stored.response(true)),
        Claim::Wait(waiting) => {
            // Waiting on the broker through the first request: it counts as in flight.
            let Ok(_slot) = state.pending.slot() else {
                return Ok(unavailable("too many requests in flight", 1));
            };
            Ok(match waiting.outcome(deadline).await {
                Some(stored) => stored.response(true),
                None if Instant::now() >= deadline => {
                    deadline_exceeded("the request with this Idempotency-Key did not finish in time")
                }
                None => unavailable("the request with this Idempotency-Key did not finish; retry", 1),
            })
        }
        Claim::First(first) => {
            let res = transaction(&state, text, traceparent.as_deref(), deadline).await;
            let stored = Stored::capture(res).await;
            // A final answer is kept; a 5xx is not, so a retry after the broker recovers runs anew.
            let keep = !stored.status().is_server_error();
            first.finish(stored.clone(), keep);
            Ok(stored.response(false))
        }
    }
}

/// One request through the chain: publish, then wait for its reply, all by `deadline`; its
/// spans are exported once the response is known.
async fn transaction(state: &State, text: String, traceparent: Option<&str>, deadline: Instant) -> Response {
    let tracer = &state.config.tracer;
    let mut trail = Trail::new(tracer, &text);
    // Continue the caller's W3C trace (or start one); this hop is a child span of it.
    let entered = tracer.enter(traceparent);
    let res = exchange(state, text, entered.ctx, deadline, &mut trail).await;
    if trail.is_on() {
        let to = Publish {
            route: route_table::MESSAGES.path,
            system: "kafka",
            destination: &state.config.requests_topic,
            stage: Stage::KafkaPublisher,
        };
        crate::spans::transaction(tracer, &entered, trail, to, u16::from(res.status()));
    }
    res
}

async fn exchange(state: &State, text: String, trace: TraceContext, deadline: Instant, trail: &mut Trail) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let budget = deadline.saturating_duration_since(Instant::now());
    let mut envelope = Envelope::start(&id, text, &state.config.replies_topic, budget);
    envelope.reply_partition = Some(state.reply_partition);
    // The publish is a child span of this request's; the relay continues from it.
    let publish_span = trace.child();
    envelope.set_traceparent(publish_span.to_string());
    envelope.record(Stage::RestRequest, SERVICE);
    info!("REST request: {} id={id}", envelope.body);
    if trail.is_on() {
        trail.id.clone_from(&id);
    }

    // The slot is held until this function returns: through the publish and the wait.
    let partition = state.pending.partition_of(&id);
    let Ok(waiter) = state.pending.register_on(&id, deadline, partition) else {
        trail.fail("overloaded", "too many requests in flight");
        return unavailable("too many requests in flight", 1);
    };
    envelope.record(Stage::KafkaPublisher, SERVICE);
    let message = request_message(&envelope, partition);
    let topic = &state.config.requests_topic;
    let publish_started = envelope.hops.last().map_or(0, |h| switchboard_otlp::micros_to_nanos(h.at_unix_micros));
    let published = within(deadline, state.publisher.publish(topic, message)).await;
    if trail.is_on() {
        trail.publish = Some((publish_span, publish_started, switchboard_otlp::now_unix_nanos()));
    }
    state.metrics.published(topic, matches!(published, Some(Ok(()))));
    match published {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            warn!("request not published id={id}: {e}");
            let rejected = std::error::Error::source(&e.error)
                .is_some_and(|s| s.downcast_ref::<switchboard_resilience::Rejected>().is_some());
            trail.fail(if rejected { "breaker_open" } else { "publish_failed" }, &e.error.to_string());
            return publish_failed(&e.error, retry_after_secs(&e.error), "publish_rejected");
        }
        None => {
            // Abandoned at the budget: the breaker counted the unanswered publish as failed.
            warn!("request not confirmed by the broker within the budget id={id}");
            trail.fail("deadline", "the broker did not confirm the request in time");
            return deadline_exceeded("the broker did not confirm the request in time");
        }
    }
    info!("KAFKA Publisher: {} id={id}", envelope.body);

    // `None` once the gateway's deadline sweeper ends the wait.
    let reply = loop {
        match waiter.next().await {
            Some(Wake::Reply(reply)) => break reply,
            Some(Wake::Republish(to)) => republish(state, &envelope, to, deadline).await,
            None => {
                warn!("no reply within {budget:?} id={id}");
                trail.fail("deadline", "the chain did not answer in time");
                return deadline_exceeded("the chain did not answer in time");
            }
        }
    };
    drop(waiter);
    if let Some(f) = reply.failure.as_ref() {
        trail.fail(failure_type(f.code.enum_value_or_default(), &f.message), &f.message);
    }
    let mut res = respond(reply);
    res.insert_header(TRACEPARENT, trace.to_string());
    res
}

/// The requests-topic record of `envelope`: keyed and correlated by its id, carrying its trace;
/// on `partition` when the gateway chose one.
fn request_message(envelope: &Envelope, partition: Option<i32>) -> Message {
    let id = envelope.id.as_bytes();
    let mut message = Message::new(envelope.encode()).with_key(id).with_header("correlation-id", id);
    if let Some(tp) = envelope.traceparent() {
        message = message.with_header("traceparent", tp.as_bytes());
    }
    message.partition = partition;
    message
}

/// The request's second chance: the same envelope (id, deadline, hops) once more, to a
/// partition that answers. Whichever reply comes first is the caller's; a failed publish
/// leaves the request waiting on its first one.
async fn republish(state: &State, envelope: &Envelope, to: i32, deadline: Instant) {
    let topic = &state.config.requests_topic;
    let published = within(deadline, state.publisher.publish(topic, request_message(envelope, Some(to)))).await;
    match published {
        Some(Ok(())) => {
            state.metrics.republished(topic);
            info!("request published again, to partition {to}: its own answered nothing since id={}", envelope.id);
        }
        Some(Err(e)) => warn!("request not published again id={}: {e}", envelope.id),
        None => warn!("request not published again within its budget id={}", envelope.id),
    }
}

/// The `error.type` of a failure reply: the relay says which, in its code and message.
fn failure_type(code: failure::Code, message: &str) -> &'static str {
    match code {
        failure::Code::UNAVAILABLE if message.contains("circuit open") => "breaker_open",
        failure::Code::UNAVAILABLE => "unavailable",
        failure::Code::DEADLINE_EXCEEDED => "deadline",
        failure::Code::INVALID => "refused",
        _ => "internal",
    }
}

/// `fut`'s output, or `None` once `deadline` passed first (dropping `fut`).
pub(crate) async fn within<T>(deadline: Instant, fut: impl std::future::Future<Output = T>) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    // A future ready at once (a publish to the embedded broker, an enqueue with room) needs no
    // timer: arming one wakes the reactor's thread, on every request.
    if let Some(out) = futures_lite::future::poll_once(fut.as_mut()).await {
        return Some(out);
    }
    async { Some(fut.await) }
        .or(async {
            async_io::Timer::at(deadline).await;
            None
        })
        .await
}

/// The answer to a failed publish or enqueue: 503 + Retry-After when retrying may help (the
/// broker is unavailable, timed out, or this instance is closing), else 500 with `code`.
pub(crate) fn publish_failed(e: &switchboard_ports::Error, retry_after_s: u32, code: &str) -> Response {
    if e.is_transient() || e.kind() == ErrorKind::Closed {
        return unavailable("broker unavailable", retry_after_s);
    }
    error(StatusCode::InternalServerError, code, &format!("the broker refused the message: {e}"))
}

pub(crate) fn deadline_exceeded(message: &str) -> Response {
    error(StatusCode::GatewayTimeout, "deadline_exceeded", message)
}

/// The body's `message`, or the 4xx response explaining why there is none.
async fn read_message(req: &mut Request<State>, max: usize) -> Result<String, Response> {
    let is_json = req.content_type().is_some_and(|m| m.essence() == "application/json");
    if !is_json {
        let mut res = error(StatusCode::UnsupportedMediaType, "unsupported_media_type", "send application/json");
        // The body stays unread: close rather than reuse the connection (as for 413).
        res.insert_header("Connection", "close");
        return Err(res);
    }
    if req.len().is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    // Read at most max+1 bytes: a body without Content-Length cannot grow past the limit.
    let mut bytes = Vec::new();
    let body = req.take_body();
    if let Err(e) = body.into_reader().take(max as u64 + 1).read_to_end(&mut bytes).await {
        if e.kind() == std::io::ErrorKind::TimedOut {
            let mut res = error(StatusCode::RequestTimeout, "request_timeout", "the body did not arrive in time");
            res.insert_header("Connection", "close");
            return Err(res);
        }
        return Err(error(StatusCode::BadRequest, "unreadable_body", &e.to_string()));
    }
    if bytes.len() > max {
        return Err(too_large(max));
    }
    let parsed: MessageRequest = serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BadRequest, "invalid_json", &format!("invalid JSON body: {e}")))?;
    match parsed.message {
        Some(m) if !m.trim().is_empty() => Ok(m),
        Some(_) => Err(error(StatusCode::BadRequest, "empty_message", "`message` must not be empty")),
        None => Err(error(StatusCode::BadRequest, "missing_message", "`message` is required")),
    }
}

fn respond(reply: Envelope) -> Response {
    if let Some(f) = reply.failure.as_ref() {
        let code = f.code.enum_value_or_default();
        return match code {
            failure::Code::UNAVAILABLE => unavailable(&f.message, f.retry_after_ms.div_ceil(1000).max(1)),
            failure::Code::DEADLINE_EXCEEDED => error(StatusCode::GatewayTimeout, "deadline_exceeded", &f.message),
            failure::Code::INVALID => error(StatusCode::UnprocessableEntity, "invalid", &f.message),
            _ => error(StatusCode::BadGateway, "upstream_failed", &f.message),
        };
    }
    info!("REST response: {} id={}", reply.body, reply.id);
    let upper = reply.body.to_uppercase();
    info!("{RULE}");
    info!("End of transaction with Message: id={}", reply.id);
    info!("{upper}");
    info!("{RULE}");
    let start = reply.hops.first().map(|h| h.at_unix_micros).unwrap_or(0);
    let body = MessageReply {
        id: &reply.id,
        message: upper,
        hops: reply
            .hops
            .iter()
            .map(|h| HopView {
                name: &h.name,
                service: &h.service,
                at_unix_micros: h.at_unix_micros,
                elapsed_us: h.at_unix_micros - start,
            })
            .collect(),
    };
    json(StatusCode::Ok, &body)
}

fn too_large(max: usize) -> Response {
    let mut res = error(StatusCode::PayloadTooLarge, "payload_too_large", &format!("body exceeds {max} bytes"));
    // The rest of the body is unread: close rather than reuse the connection (RFC 9110 15.5.14).
    res.insert_header("Connection", "close");
    res
}

/// Seconds until the breaker lets publishes through again, when it refused this one.
fn retry_after_secs(error: &switchboard_ports::Error) -> u32 {
    std::error::Error::source(error)
        .and_then(|s| s.downcast_ref::<switchboard_resilience::Rejected>())
        .map(|r| r.retry_after_secs() as u32)
        .unwrap_or(1)
}

pub(crate) fn unavailable(message: &str, retry_after_s: u32) -> Response {
    let mut res = error(StatusCode::ServiceUnavailable, "unavailable", message);
    res.insert_header("Retry-After", retry_after_s.to_string());
    res
}

pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut res = Response::new(status);
    res.set_content_type(tide::http::mime::JSON);
    res.set_body(serde_json::to_string(body).expect("serializable"));
    res
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn within_answers_a_ready_future_even_at_its_deadline_and_gives_up_on_one_that_never_ends() {
        assert_eq!(smol::block_on(within(Instant::now(), async { 7 })), Some(7));
        let never = futures_lite::future::pending::<()>();
        assert_eq!(smol::block_on(within(Instant::now() + Duration::from_millis(20), never)), None);
        // Pending at first, ready later: still its output, not the deadline's.
        let later = async_io::Timer::after(Duration::from_millis(5));
        assert!(smol::block_on(within(Instant::now() + Duration::from_secs(60), later)).is_some());
    }
}

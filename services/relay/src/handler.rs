use std::sync::Arc;
use std::time::{Duration, Instant};

use grpcio::RpcStatusCode;
use log::{error, info, warn};
use switchboard_ports::{stamp_dead_letter, ErrorKind, Message, Origin, Publisher};
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope, ProcessorClient};
use switchboard_resilience::{CircuitBreaker, Jitter, RetryBudget, RetryPolicy};
use switchboard_topology::topics::ReplyTopics;

use crate::batcher::{Answer, Calls, PROCESS_BATCH};
use crate::spans::{Received, Trail};
use crate::RelayConfig;

const SERVICE: &str = "relay";

/// What became of one request; every outcome but `Retry` lets the delivery be acked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The processor took it and published the reply.
    Processed,
    /// Answered with a failure reply (deadline passed, processor unavailable).
    Answered(failure::Code),
    /// Sent to the dead-letter topic with this reason.
    DeadLettered(String),
    /// Could not even be dead-lettered (the dead-letter topic refused it for good): logged at error and counted as
    /// `dead_lettered{destination="none",reason_kind="dead_letter_failed"}`, then acked so it
    /// cannot hold its partition forever.
    Dropped(String),
    /// Not handled because the publisher is closed (shutting down): leave it unacked for the
    /// next member of the group.
    Retry,
}

/// Longest wait between two tries of one publish.
const MAX_PUBLISH_BACKOFF: Duration = Duration::from_secs(5);

/// Longest pause between two calls of one request to the processor.
const MAX_CALL_BACKOFF: Duration = Duration::from_secs(1);

/// Handles one request message: decode, call the processor, answer failures.
#[derive(Clone)]
pub struct RequestHandler {
    config: Arc<RelayConfig>,
    calls: Calls,
    publisher: Arc<dyn Publisher>,
    breaker: CircuitBreaker,
    budget: Arc<RetryBudget>,
    /// The configured reply topics, never this relay's own requests or dead-letter topic.
    reply_topics: Arc<ReplyTopics>,
}

impl std::fmt::Debug for RequestHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHandler").field("config", &self.config).finish_non_exhaustive()
    }
}

impl RequestHandler {
    /// A handler calling the processor through `client` and publishing failures and dead
    /// letters through `publisher`. The calls go through a batching task on smol's executor
    /// (`config.batch_max` envelopes a call at most), which ends when the last clone of the
    /// handler is dropped.
    pub fn new(
        config: Arc<RelayConfig>,
        client: ProcessorClient,
        publisher: Arc<dyn Publisher>,
        breaker: CircuitBreaker,
    ) -> Self {
        // A budget below 1% or above 1000% is refused by the breaker crate; fall back to 20%.
        let budget = RetryBudget::new(config.retry_budget_percent, 10, Duration::from_secs(10)).unwrap_or_default();
        let reply_topics =
            Arc::new(config.reply_topics.clone().deny(&config.requests_topic).deny(&config.dead_letter_topic));
        let calls = Calls::new(client, config.batch_max, config.max_in_flight);
        RequestHandler { config, calls, publisher, breaker, budget: Arc::new(budget), reply_topics }
    }

    /// The breaker guarding the processor calls.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Handles one message whose partition and offset are unknown (its dead letter names only
    /// the requests topic as its origin).
    pub async fn handle(&self, message: &Message) -> Handled {
        self.handle_from(message, None).await
    }

    /// Handles one message taken from `from` (its topic, partition and offset): its span
    /// carries them, and a dead letter records them as its origin.
    pub async fn handle_from(&self, message: &Message, from: Option<Received<'_>>) -> Handled {
        let tracer = &self.config.tracer;
        let mut trail = Trail::new(tracer);
        let at = from.as_ref().map(|r| (r.partition, r.offset));
        let origin = Origin::record(&self.config.requests_topic, at);
        let outcome = self.handle_traced(message, &origin, &mut trail).await;
        if trail.is_on() {
            crate::spans::finish(tracer, trail, from, &self.config.group);
        }
        outcome
    }

    async fn handle_traced(&self, message: &Message, origin: &Origin, trail: &mut Trail) -> Handled {
        let mut envelope = match Envelope::decode(&message.payload) {
            Ok(e) if !e.id.is_empty() && !e.reply_to.is_empty() => e,
            Ok(_) => {
                return self.dead_letter(message, origin, "envelope without id or reply topic", "invalid", trail).await
            }
            Err(e) => {
                let why = format!("undecodable envelope: {e}");
                return self.dead_letter(message, origin, &why, "undecodable", trail).await;
            }
        };
        if envelope.is_reply() {
            // A reply written onto the requests topic: handling it would publish a reply to a
            // reply, and so on forever.
            let why = "a reply, not a request: it already carries a failure or the processor's hop";
            return self.dead_letter(message, origin, why, "reply", trail).await;
        }
        // Checked before anything is published there, failure answers included.
        if let Err(why) = self.reply_topics.check(&envelope.reply_to) {
            return self.dead_letter(message, origin, &why, "reply_topic", trail).await;
        }
        if envelope.deadline_unix_ms == 0 {
            envelope.deadline_unix_ms =
                switchboard_proto::convert::now_millis() + self.config.default_budget.as_millis() as i64;
        }
        envelope.record(Stage::KafkaConsumer, SERVICE);
        info!("KAFKA Consumer: {} id={}", envelope.body, envelope.id);
        // The relay's span: a child of the gateway's publish; its call, a child of it, is
        // carried on to the processor.
        let entered = self.config.tracer.enter(envelope.traceparent());
        let call = entered.ctx.child();
        envelope.set_traceparent(call.to_string());
        if trail.is_on() {
            trail.entered = Some(entered);
            trail.id.clone_from(&envelope.id);
            trail.body.clone_from(&envelope.body);
        }
        if envelope.expired() {
            let why = "deadline passed in the queue";
            trail.fail("deadline", why);
            return self.answer(envelope, origin, failure::Code::DEADLINE_EXCEEDED, why, None, trail).await;
        }
        envelope.record(Stage::GrpcClient, SERVICE);
        info!("gRPC Client: {} id={}", envelope.body, envelope.id);
        trail.calling(call);
        self.call_processor(envelope, message, origin, trail).await
    }

    async fn call_processor(
        &self,
        mut envelope: Envelope,
        original: &Message,
        origin: &Origin,
        trail: &mut Trail,
    ) -> Handled {
        // Unbounded in count: the deadline and the retry budget end the retries.
        let mut delays = RetryPolicy::new()
            .max_retries(u32::MAX)
            .initial_delay(self.config.retry_base)
            .max_delay(MAX_CALL_BACKOFF)
            .jitter(Jitter::Equal)
            .delays();
        self.budget.deposit();
        loop {
            let Some(remaining) = envelope.remaining().filter(|r| !r.is_zero()) else {
                let why = "processor did not answer in time";
                trail.call_failed("deadline", why);
                return self.answer(envelope, origin, failure::Code::DEADLINE_EXCEEDED, why, None, trail).await;
            };
            let permit = match self.breaker.try_acquire() {
                Ok(permit) => permit,
                Err(rejected) => {
                    // Fail fast: the caller hears 503 + Retry-After now, not at its deadline.
                    let why = "processor unavailable (circuit open)";
                    trail.call_failed("breaker_open", why);
                    let retry_after = Some(rejected.retry_after());
                    return self.answer(envelope, origin, failure::Code::UNAVAILABLE, why, retry_after, trail).await;
                }
            };
            let started = Instant::now();
            // The permit is this envelope's own, whatever else its call carried: the breaker
            // counts envelopes.
            let Some(Answer { envelope: sent, result, batch_len }) = self.calls.call(envelope, remaining).await else {
                permit.ignore();
                return Handled::Retry;
            };
            envelope = sent;
            let metrics = &self.config.metrics;
            metrics.hop("relay_grpc_call", started.elapsed());
            metrics.grpc_call(PROCESS_BATCH, grpc_code(&result));
            trail.attempt(grpc_code(&result), batch_len);
            let status = match result {
                Ok(_) => {
                    permit.success();
                    return Handled::Processed;
                }
                Err(grpcio::Error::RpcFailure(status)) => status,
                Err(e) => grpcio::RpcStatus::with_message(RpcStatusCode::UNAVAILABLE, e.to_string()),
            };
            match status.code() {
                RpcStatusCode::INVALID_ARGUMENT | RpcStatusCode::FAILED_PRECONDITION => {
                    // The request's fault, or a reply that can never be published (missing
                    // topic, too large): not the processor's health, so the breaker ignores it,
                    // and retrying cannot help.
                    permit.ignore();
                    // The envelope as sent (hops recorded), with the record's key and headers.
                    let refused = Message { payload: envelope.encode(), ..original.clone() };
                    let why = format!("refused by the processor: {}", status.message());
                    trail.call_failed("refused", &why);
                    return self.dead_letter(&refused, origin, &why, "invalid", trail).await;
                }
                RpcStatusCode::DEADLINE_EXCEEDED => {
                    permit.failure();
                    let why = "processor did not answer in time";
                    trail.call_failed("deadline", why);
                    return self.answer(envelope, origin, failure::Code::DEADLINE_EXCEEDED, why, None, trail).await;
                }
                _ => {
                    permit.failure();
                    warn!("processor call failed id={}: {:?} {}", envelope.id, status.code(), status.message());
                    // Idempotent by correlation id (the gateway keeps the first reply), so a
                    // retry is safe while the deadline leaves room and the budget allows it.
                    let pause = delays.next().unwrap_or(MAX_CALL_BACKOFF);
                    if envelope.remaining().is_none_or(|r| r <= pause) {
                        // The budget ran out retrying: the caller hears 504, not a fail-fast 503.
                        let why = format!("processor unavailable until the deadline: {}", status.message());
                        trail.call_failed("deadline", &why);
                        return self
                            .answer(envelope, origin, failure::Code::DEADLINE_EXCEEDED, &why, None, trail)
                            .await;
                    }
                    if !self.budget.try_withdraw() {
                        let why = "processor unavailable (retry budget exhausted)";
                        trail.call_failed("unavailable", why);
                        return self
                            .answer(envelope, origin, failure::Code::UNAVAILABLE, why, Some(pause), trail)
                            .await;
                    }
                    async_io::Timer::after(pause).await;
                }
            }
        }
    }

    /// Publishes a failure reply so the caller hears at once instead of at its deadline.
    async fn answer(
        &self,
        mut envelope: Envelope,
        origin: &Origin,
        code: failure::Code,
        why: &str,
        retry_after: Option<Duration>,
        trail: &mut Trail,
    ) -> Handled {
        warn!("answering id={} with {:?}: {}", envelope.id, code, why);
        envelope.fail(code, why, retry_after);
        let topic = envelope.reply_to.clone();
        let mut message = Message::new(envelope.encode())
            .with_key(envelope.id.as_bytes())
            .with_header("correlation-id", envelope.id.as_bytes());
        // To the partition the requesting gateway reads; the broker refuses one out of range.
        message.partition = envelope.reply_partition;
        match self.publish(&topic, message).await {
            Ok(()) => Handled::Answered(code),
            Err(Unsent::Closed) => Handled::Retry,
            Err(Unsent::Failed(e, message) | Unsent::Exhausted(e, message)) => {
                // Nobody will hear the answer: keep the request, with why, where an operator looks.
                let why = format!("failure reply ({code:?}: {why}) not published to {topic}: {e}");
                warn!("id={}: {why}", envelope.id);
                self.dead_letter(&message, origin, &why, "reply_unpublished", trail).await
            }
        }
    }

    async fn dead_letter(
        &self,
        message: &Message,
        origin: &Origin,
        reason: &str,
        kind: &'static str,
        trail: &mut Trail,
    ) -> Handled {
        warn!("dead-lettering a request from {}: {reason}", origin.describe());
        if trail.is_on() && trail.entered.is_none() {
            // A record the relay cannot read still gets a span, in the trace its header names.
            let header = message.header_str(switchboard_telemetry::TRACEPARENT);
            trail.entered = Some(self.config.tracer.enter(header));
        }
        let mut dead = message.clone();
        // The trace of the request, when it decodes and the record has none in its headers.
        let traceparent = Envelope::decode(&message.payload).ok().and_then(|e| e.traceparent().map(str::to_owned));
        stamp_dead_letter(&mut dead, origin, reason, 1, traceparent.as_deref());
        let topic = &self.config.dead_letter_topic;
        match self.publish(topic, dead).await {
            Ok(()) => {
                self.config.metrics.dead_lettered(topic, kind);
                trail.dead_lettered(reason);
                Handled::DeadLettered(reason.to_string())
            }
            Err(Unsent::Closed) => Handled::Retry,
            Err(Unsent::Exhausted(e, _)) => {
                // The broker is down for longer than the retries: keep the record unacked so it
                // comes back once the broker does, rather than lose it.
                warn!("dead letter not published to {topic} yet, leaving the record for redelivery: {e}");
                Handled::Retry
            }
            Err(Unsent::Failed(e, _)) => {
                // Refused for good: redelivering would fail the same way forever, so the record
                // is acked and lost, loudly.
                error!("request dropped: dead letter not published to {topic}: {e} (reason: {reason})");
                self.config.metrics.dead_lettered("none", "dead_letter_failed");
                Handled::Dropped(format!("{reason}; dead letter not published: {e}"))
            }
        }
    }

    /// Publishes, retrying transient errors a bounded number of times with backoff.
    async fn publish(&self, topic: &str, mut message: Message) -> Result<(), Unsent> {
        let mut delays = RetryPolicy::new()
            .max_retries(self.config.max_publish_retries)
            .initial_delay(self.config.publish_retry_base)
            .max_delay(MAX_PUBLISH_BACKOFF)
            .jitter(Jitter::Equal)
            .delays();
        let mut retries = 0;
        loop {
            let published = self.publisher.publish(topic, message).await;
            self.config.metrics.published(topic, published.is_ok());
            let e = match published {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if e.error.kind() == ErrorKind::Closed {
                return Err(Unsent::Closed);
            }
            if !e.error.is_transient() {
                return Err(Unsent::Failed(e.error.to_string(), e.into_inner()));
            }
            let Some(pause) = delays.next() else {
                let why = format!("{} (still failing after {retries} retries)", e.error);
                return Err(Unsent::Exhausted(why, e.into_inner()));
            };
            retries += 1;
            warn!("publish to {topic} failed, retry {retries} of {}: {}", self.config.max_publish_retries, e.error);
            message = e.into_inner();
            async_io::Timer::after(pause).await;
        }
    }
}

/// A publish that did not happen, with the message handed back.
enum Unsent {
    /// The publisher is closed: the service is stopping.
    Closed,
    /// Permanently refused.
    Failed(String, Message),
    /// Still failing transiently after every retry.
    Exhausted(String, Message),
}

fn grpc_code<T>(result: &Result<T, grpcio::Error>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(grpcio::Error::RpcFailure(s)) => s.code().into(),
        Err(_) => RpcStatusCode::UNAVAILABLE.into(),
    }
}

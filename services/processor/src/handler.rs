use std::sync::Arc;

use futures::future::join_all;
use grpcio::{RpcContext, RpcStatus, RpcStatusCode, UnarySink};
use log::{info, warn};
use switchboard_otlp::Tracer;
use switchboard_ports::{Message, Publisher};
use switchboard_proto::convert::Stage;
use switchboard_proto::methods::{PROCESS, PROCESS_BATCH};
use switchboard_proto::{
    Envelope, ProcessBatchRequest, ProcessBatchResponse, ProcessRequest, ProcessResponse, ProcessResult, Processor,
    MAX_BATCH,
};
use switchboard_telemetry::Metrics;
use switchboard_topology::topics::{ReplyTopics, Topics};

use crate::spans::Trail;

const SERVICE: &str = "processor";

/// Implements the generated `Processor` trait over a [`Publisher`]: an envelope with a reply
/// topic gets its reply published there before the call answers OK; one without is answered
/// over gRPC only. Replies go only to allowed reply topics.
///
/// The reply topic is where the answer goes, not what kind of work it is: the relay's requests
/// always name one (it dead-letters those that do not), and the worker clears it on its jobs because
/// it reports their results itself, on the job-events exchange.
#[derive(Clone)]
pub struct ProcessorHandler {
    publisher: Arc<dyn Publisher>,
    metrics: Metrics,
    reply_topics: Arc<ReplyTopics>,
    tracer: Tracer,
}

impl std::fmt::Debug for ProcessorHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorHandler").finish_non_exhaustive()
    }
}

impl ProcessorHandler {
    /// A handler publishing replies through `publisher`, to the default replies topic only.
    pub fn new(publisher: Arc<dyn Publisher>, metrics: Metrics) -> Self {
        ProcessorHandler {
            publisher,
            metrics,
            reply_topics: Arc::new(Topics::default().reply_allow_list()),
            tracer: Tracer::default(),
        }
    }

    /// Records a span per call and per reply publish through `tracer`.
    pub fn with_tracer(mut self, tracer: Tracer) -> Self {
        self.tracer = tracer;
        self
    }

    /// Publishes replies only to the topics `allowed` allows.
    pub fn with_reply_topics(mut self, allowed: ReplyTopics) -> Self {
        self.reply_topics = Arc::new(allowed);
        self
    }

    /// The work of one call, apart from gRPC plumbing; errors are gRPC statuses.
    pub async fn handle(&self, req: ProcessRequest) -> Result<ProcessResponse, RpcStatus> {
        let echo = !req.omit_envelope;
        let Some(envelope) = req.envelope.into_option() else {
            return Err(status(RpcStatusCode::INVALID_ARGUMENT, "missing envelope"));
        };
        let envelope = self.process_envelope(envelope, PROCESS).await?;
        let mut resp = ProcessResponse::new();
        if echo {
            resp.envelope = Some(envelope).into();
        }
        Ok(resp)
    }

    /// The work of one `ProcessBatch` call: every envelope handled as [`handle`] handles one,
    /// all at once (their publishes overlap), each answered by its own result in request
    /// order. More than [`MAX_BATCH`] envelopes are refused whole, before any is processed.
    ///
    /// [`handle`]: ProcessorHandler::handle
    pub async fn handle_batch(&self, req: ProcessBatchRequest) -> Result<ProcessBatchResponse, RpcStatus> {
        if req.envelopes.len() > MAX_BATCH {
            let why = format!("{} envelopes in one batch, at most {MAX_BATCH}", req.envelopes.len());
            return Err(status(RpcStatusCode::INVALID_ARGUMENT, &why));
        }
        let echo = !req.omit_envelopes;
        let results = join_all(req.envelopes.into_iter().map(|e| self.process_envelope(e, PROCESS_BATCH))).await;
        let mut resp = ProcessBatchResponse::new();
        resp.results = results
            .into_iter()
            .map(|r| {
                self.metrics.grpc_call(PROCESS_BATCH, r.as_ref().map_or_else(|st| st.code().into(), |_| 0));
                ProcessResult::from_outcome(r.map(|e| echo.then_some(e)))
            })
            .collect();
        Ok(resp)
    }

    /// One envelope, as `Process` handles it: the envelope as published, or why not; its spans
    /// are exported once that is known.
    async fn process_envelope(&self, envelope: Envelope, method: &'static str) -> Result<Envelope, RpcStatus> {
        let mut trail = Trail::new(&self.tracer, &envelope);
        let result = self.process_traced(envelope, &mut trail).await;
        if trail.is_on() {
            crate::spans::finish(&self.tracer, trail, method, &result);
        }
        result
    }

    async fn process_traced(&self, mut envelope: Envelope, trail: &mut Trail) -> Result<Envelope, RpcStatus> {
        if envelope.id.is_empty() {
            return Err(status(RpcStatusCode::INVALID_ARGUMENT, "envelope needs an id"));
        }
        if envelope.is_reply() {
            // Already processed (or failed): doing it again would publish a reply to a reply.
            return Err(status(RpcStatusCode::INVALID_ARGUMENT, "envelope already carries a reply"));
        }
        if !envelope.reply_to.is_empty() {
            // Checked before anything is done: a topic named by a message is never written to
            // (nor, on brokers that auto-create, created) unless configured.
            if let Err(why) = self.reply_topics.check(&envelope.reply_to) {
                return Err(status(RpcStatusCode::INVALID_ARGUMENT, &why));
            }
            // Beyond the topic's range the broker refuses it (nothing is created); a negative
            // one would let the partitioner pick, so it is refused here.
            if envelope.reply_partition.is_some_and(|p| p < 0) {
                return Err(status(RpcStatusCode::INVALID_ARGUMENT, "reply partition is negative"));
            }
        }
        if envelope.expired() {
            // Expired work is answered, not done: the caller has given up on it.
            return Err(status(RpcStatusCode::DEADLINE_EXCEEDED, "deadline passed before processing"));
        }
        envelope.record(Stage::GrpcServer, SERVICE);
        info!("gRPC Server: {} id={}", envelope.body, envelope.id);
        let entered = self.tracer.enter(envelope.traceparent());
        trail.served(entered, &envelope);
        if envelope.reply_to.is_empty() {
            // No reply topic (the worker's jobs): the gRPC answer is the reply.
            envelope.set_traceparent(entered.ctx.to_string());
            return Ok(envelope);
        }
        // The reply's publish is a child span of this call; the gateway's receipt follows it.
        let publish = entered.ctx.child();
        envelope.set_traceparent(publish.to_string());
        envelope.record(Stage::KafkaPublisher, SERVICE);
        let message = reply_message(&envelope);
        trail.publishing(publish, &envelope);
        let published = self.publisher.publish(&envelope.reply_to, message).await;
        trail.published(published.as_ref().err().map(|e| e.error.to_string()));
        self.metrics.published(&envelope.reply_to, published.is_ok());
        match published {
            Ok(()) => {
                info!("KAFKA Publisher: {} id={}", envelope.body, envelope.id);
                Ok(envelope)
            }
            Err(e) if e.error.is_transient() => {
                warn!("reply publish failed id={}: {}", envelope.id, e);
                Err(status(RpcStatusCode::UNAVAILABLE, &format!("reply not published: {}", e.error)))
            }
            Err(e) => {
                // Retrying cannot help (topic missing, reply too large…): the caller dead-letters.
                warn!("reply cannot be published id={}: {}", envelope.id, e);
                Err(status(RpcStatusCode::FAILED_PRECONDITION, &format!("reply cannot be published: {}", e.error)))
            }
        }
    }
}

fn reply_message(envelope: &Envelope) -> Message {
    let mut m = Message::new(envelope.encode())
        .with_key(envelope.id.as_bytes())
        .with_header("correlation-id", envelope.id.as_bytes());
    // The partition the requesting gateway instance reads (REPLY_PARTITION in Spring Kafka).
    m.partition = envelope.reply_partition;
    if let Some(tp) = envelope.traceparent() {
        m = m.with_header("traceparent", tp.as_bytes());
    }
    m
}

fn status(code: RpcStatusCode, msg: &str) -> RpcStatus {
    RpcStatus::with_message(code, msg.to_string())
}

impl Processor for ProcessorHandler {
    fn process(&mut self, ctx: RpcContext<'_>, req: ProcessRequest, sink: UnarySink<ProcessResponse>) {
        let this = self.clone();
        // Runs on grpcio's completion-queue thread: the publish future only waits on channels.
        ctx.spawn(async move {
            let sent = match this.handle(req).await {
                Ok(resp) => {
                    this.metrics.grpc_call(PROCESS, 0);
                    sink.success(resp).await
                }
                Err(st) => {
                    this.metrics.grpc_call(PROCESS, st.code().into());
                    sink.fail(st).await
                }
            };
            if let Err(e) = sent {
                warn!("gRPC reply not sent: {e}");
            }
        });
    }

    fn process_batch(&mut self, ctx: RpcContext<'_>, req: ProcessBatchRequest, sink: UnarySink<ProcessBatchResponse>) {
        let this = self.clone();
        ctx.spawn(async move {
            let sent = match this.handle_batch(req).await {
                // Each envelope was counted with its own status.
                Ok(resp) => sink.success(resp).await,
                Err(st) => {
                    this.metrics.grpc_call(PROCESS_BATCH, st.code().into());
                    sink.fail(st).await
                }
            };
            if let Err(e) = sent {
                warn!("gRPC batch reply not sent: {e}");
            }
        });
    }
}

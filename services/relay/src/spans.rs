//! The relay's spans of one request: its processing of the Kafka record (CONSUMER) and the
//! gRPC call to the processor inside it (CLIENT). Filled as the handler goes, built only when
//! the tracer keeps them.

use std::time::Duration;

use switchboard_otlp::{now_unix_nanos, Entered, Kind, Span, Tracer};
use switchboard_proto::convert::Stage;
use switchboard_telemetry::TraceContext;

/// Where a record came from, for the messaging attributes.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// What one request saw, for its spans; empty while export is off.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    /// When the record was taken, Unix nanoseconds; 0: export off.
    pub started: u64,
    pub entered: Option<Entered>,
    pub id: String,
    /// The body as the consumer hop logged it.
    pub body: String,
    /// The call: its span's context, start and end, and its last attempt's gRPC status and
    /// batch size.
    pub call: Option<Call>,
    /// Why the request failed before or without a call (dead-lettered, expired in the queue).
    pub error: Option<(&'static str, String)>,
    pub dead_letter_reason: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub ctx: TraceContext,
    pub start: u64,
    pub end: u64,
    pub code: Option<i32>,
    pub batch_len: usize,
    pub attempts: u32,
    pub error: Option<(&'static str, String)>,
}

impl Trail {
    pub fn new(tracer: &Tracer) -> Self {
        if tracer.is_enabled() {
            Trail { started: now_unix_nanos(), ..Trail::default() }
        } else {
            Trail::default()
        }
    }

    pub fn is_on(&self) -> bool {
        self.started != 0
    }

    /// The call is about to start under `ctx`.
    pub fn calling(&mut self, ctx: TraceContext) {
        if self.is_on() {
            let now = now_unix_nanos();
            self.call = Some(Call { ctx, start: now, end: now, code: None, batch_len: 0, attempts: 0, error: None });
        }
    }

    /// One attempt of the call ended with gRPC status `code` (0 = OK); its `ProcessBatch`
    /// carried `batch_len` envelopes, this one included.
    pub fn attempt(&mut self, code: i32, batch_len: usize) {
        if let Some(call) = &mut self.call {
            call.end = now_unix_nanos();
            call.code = Some(code);
            call.batch_len = batch_len;
            call.attempts += 1;
        }
    }

    /// The call failed: `error.type` and message on the CLIENT span.
    pub fn call_failed(&mut self, error_type: &'static str, message: &str) {
        if let Some(call) = &mut self.call {
            call.end = now_unix_nanos();
            call.error = Some((error_type, message.to_owned()));
        }
    }

    /// The request itself failed (on the CONSUMER span).
    pub fn fail(&mut self, error_type: &'static str, message: &str) {
        if self.is_on() {
            self.error = Some((error_type, message.to_owned()));
        }
    }

    pub fn dead_lettered(&mut self, reason: &str) {
        if self.is_on() {
            self.error = Some(("dead_lettered", format!("dead-lettered: {reason}")));
            self.dead_letter_reason = Some(reason.to_owned());
        }
    }
}

/// Exports the request's spans if the tracer keeps them.
pub(crate) fn finish(tracer: &Tracer, trail: Trail, from: Option<Received<'_>>, group: &str) {
    let Some(entered) = trail.entered.filter(|_| trail.is_on()) else { return };
    let end = now_unix_nanos();
    let call_failed = trail.call.as_ref().is_some_and(|c| c.error.is_some());
    let longest = Duration::from_nanos(end.saturating_sub(trail.started));
    if !tracer.keep(entered.sampled, trail.error.is_some() || call_failed, longest) {
        return;
    }
    let topic = from.map_or("", |r| r.topic);
    let mut consumer =
        Span::new(&entered.ctx, entered.parent, Kind::Consumer, format!("process {topic}"), trail.started, end)
            .hop(Stage::KafkaConsumer.label(), &trail.body, &trail.id)
            .attr("messaging.system", "kafka")
            .attr("messaging.operation.type", "process")
            .attr("messaging.operation.name", "process")
            .attr("messaging.consumer.group.name", group.to_owned());
    if let Some(r) = from {
        consumer = consumer
            .attr("messaging.destination.name", r.topic.to_owned())
            .attr("messaging.destination.partition.id", r.partition.to_string())
            .attr("messaging.kafka.destination.partition", r.partition)
            .attr("messaging.kafka.offset", r.offset);
    }
    if let Some(reason) = trail.dead_letter_reason {
        consumer = consumer.attr("switchboard.dead_letter.reason", reason);
    }
    if let Some((error_type, message)) = trail.error {
        consumer = consumer.failed(error_type, message);
    }
    let mut spans = vec![consumer];
    if let Some(call) = trail.call {
        // "switchboard.v1.Processor/ProcessBatch": the relay's only call.
        let name = crate::batcher::PROCESS_BATCH.trim_start_matches('/');
        let method = name.rsplit('/').next().unwrap_or(name);
        let body = format!("{}{}", trail.body, Stage::GrpcClient.suffix());
        let mut client = Span::new(&call.ctx, Some(entered.ctx.span_id()), Kind::Client, name, call.start, call.end)
            .hop(Stage::GrpcClient.label(), &body, &trail.id)
            .attr("rpc.system", "grpc")
            .attr("rpc.service", "switchboard.v1.Processor")
            .attr("rpc.method", method)
            .attr("switchboard.attempts", i64::from(call.attempts));
        if let Some(code) = call.code {
            client = client
                .attr("rpc.grpc.status_code", code)
                .attr("switchboard.batch_size", i64::try_from(call.batch_len).unwrap_or(i64::MAX));
        }
        if let Some((error_type, message)) = call.error {
            client = client.failed(error_type, message);
        }
        spans.push(client);
    }
    tracer.export(spans);
}

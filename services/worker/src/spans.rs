//! The worker's spans of one delivery of a job: its processing (CONSUMER) and the gRPC call to
//! the processor inside it (CLIENT). Built only when the tracer keeps them.

use std::time::Duration;

use switchboard_otlp::{now_unix_nanos, Entered, Kind, Span, Tracer};
use switchboard_proto::convert::Stage;
use switchboard_telemetry::TraceContext;

use crate::Handled;

/// What one delivery saw, for its spans; empty while export is off.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    /// When the job was taken, Unix nanoseconds; 0: export off.
    pub started: u64,
    pub entered: Option<Entered>,
    pub id: String,
    /// The body as the consumer hop logged it.
    pub body: String,
    /// The call: its span's context, start, end, gRPC status and why it failed.
    pub call: Option<(TraceContext, u64, u64, i32, Option<String>)>,
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
}

/// Exports the delivery's spans if the tracer keeps them.
pub(crate) fn finish(tracer: &Tracer, trail: Trail, queue: &str, attempt: u32, handled: &Handled) {
    let Some(entered) = trail.entered else { return };
    let end = now_unix_nanos();
    let failure: Option<(&'static str, String)> = match handled {
        Handled::Done | Handled::Retried { .. } | Handled::Duplicate => None,
        Handled::Deferred(after) => Some(("breaker_open", format!("processor unavailable: deferred {after:?}"))),
        Handled::DeadLettered(reason) => Some(("dead_lettered", format!("dead-lettered: {reason}"))),
        Handled::Released(why) => Some(("released", why.clone())),
    };
    let call_failed = trail.call.as_ref().is_some_and(|c| c.4.is_some());
    let longest = Duration::from_nanos(end.saturating_sub(trail.started));
    if !tracer.keep(entered.sampled, failure.is_some() || call_failed, longest) {
        return;
    }
    let mut consumer =
        Span::new(&entered.ctx, entered.parent, Kind::Consumer, format!("process {queue}"), trail.started, end)
            .hop(Stage::RabbitmqConsumer.label(), &trail.body, &trail.id)
            .attr("messaging.system", "rabbitmq")
            .attr("messaging.destination.name", queue.to_owned())
            .attr("messaging.operation.type", "process")
            .attr("messaging.operation.name", "process")
            .attr("switchboard.attempt", i64::from(attempt));
    if let Handled::DeadLettered(reason) = handled {
        consumer = consumer.attr("switchboard.dead_letter.reason", reason.clone());
    }
    if let Some((error_type, message)) = failure {
        consumer = consumer.failed(error_type, message);
    }
    let mut spans = vec![consumer];
    if let Some((ctx, start, call_end, code, error)) = trail.call {
        let body = format!("{}{}", trail.body, Stage::GrpcClient.suffix());
        let mut client = Span::new(
            &ctx,
            Some(entered.ctx.span_id()),
            Kind::Client,
            "switchboard.v1.Processor/Process",
            start,
            call_end,
        )
        .hop(Stage::GrpcClient.label(), &body, &trail.id)
        .attr("rpc.system", "grpc")
        .attr("rpc.service", "switchboard.v1.Processor")
        .attr("rpc.method", "Process")
        .attr("rpc.grpc.status_code", code);
        if let Some(why) = error {
            client = client.grpc_failed(code, why);
        }
        spans.push(client);
    }
    tracer.export(spans);
}

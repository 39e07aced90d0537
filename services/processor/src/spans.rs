//! The processor's spans of one envelope: the gRPC call (SERVER) and the reply's publish
//! (PRODUCER) inside it. Filled as the handler goes, built only when the tracer keeps them.

use std::time::Duration;

use grpcio::RpcStatus;
use switchboard_otlp::{micros_to_nanos, now_unix_nanos, Entered, Kind, Span, Tracer};
use switchboard_proto::convert::Stage;
use switchboard_proto::Envelope;
use switchboard_telemetry::TraceContext;

/// What one envelope saw, for its spans; empty while export is off.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    /// When the call took the envelope, Unix nanoseconds; 0: export off.
    started: u64,
    /// The `traceparent` the envelope came with (for a span of a refused envelope).
    incoming: Option<String>,
    entered: Option<Entered>,
    id: String,
    /// The body as the server hop logged it.
    body: String,
    publish: Option<Publish>,
}

#[derive(Debug)]
struct Publish {
    ctx: TraceContext,
    topic: String,
    partition: Option<i32>,
    start: u64,
    end: u64,
    error: Option<String>,
}

impl Trail {
    pub fn new(tracer: &Tracer, envelope: &Envelope) -> Self {
        if !tracer.is_enabled() {
            return Trail::default();
        }
        Trail {
            started: now_unix_nanos(),
            incoming: envelope.traceparent().map(str::to_owned),
            id: envelope.id.clone(),
            ..Trail::default()
        }
    }

    pub fn is_on(&self) -> bool {
        self.started != 0
    }

    /// The call was accepted, under `entered`.
    pub fn served(&mut self, entered: Entered, envelope: &Envelope) {
        if self.is_on() {
            self.entered = Some(entered);
            self.body.clone_from(&envelope.body);
        }
    }

    /// The reply is about to be published under `ctx`.
    pub fn publishing(&mut self, ctx: TraceContext, envelope: &Envelope) {
        if self.is_on() {
            let start = envelope.hops.last().map_or_else(now_unix_nanos, |h| micros_to_nanos(h.at_unix_micros));
            self.publish = Some(Publish {
                ctx,
                topic: envelope.reply_to.clone(),
                partition: envelope.reply_partition,
                start,
                end: start,
                error: None,
            });
        }
    }

    /// The publish ended, refused with `error` or not.
    pub fn published(&mut self, error: Option<String>) {
        if let Some(p) = &mut self.publish {
            p.end = now_unix_nanos();
            p.error = error;
        }
    }
}

/// Exports the envelope's spans if the tracer keeps them; `result` is what the call answered.
pub(crate) fn finish(tracer: &Tracer, trail: Trail, method: &'static str, result: &Result<Envelope, RpcStatus>) {
    let end = now_unix_nanos();
    let failed = result.is_err();
    let longest = Duration::from_nanos(end.saturating_sub(trail.started));
    let entered = trail.entered.unwrap_or_else(|| tracer.enter(trail.incoming.as_deref()));
    if !tracer.keep(entered.sampled, failed, longest) {
        return;
    }
    let rpc_method = method.rsplit('/').next().unwrap_or(method);
    let code: i32 = result.as_ref().err().map_or(0, |st| st.code().into());
    let mut server = Span::new(
        &entered.ctx,
        entered.parent,
        Kind::Server,
        format!("switchboard.v1.Processor/{rpc_method}"),
        trail.started,
        end,
    )
    .hop(Stage::GrpcServer.label(), &trail.body, &trail.id)
    .attr("rpc.system", "grpc")
    .attr("rpc.service", "switchboard.v1.Processor")
    .attr("rpc.method", rpc_method)
    .attr("rpc.grpc.status_code", code);
    if let Err(st) = result {
        server = server.grpc_failed(code, st.message().to_owned());
    }
    let mut spans = vec![server];
    if let Some(p) = trail.publish {
        let mut producer = Span::new(
            &p.ctx,
            Some(entered.ctx.span_id()),
            Kind::Producer,
            format!("publish {}", p.topic),
            p.start,
            p.end,
        )
        .hop(Stage::KafkaPublisher.label(), &format!("{}{}", trail.body, Stage::KafkaPublisher.suffix()), &trail.id)
        .attr("messaging.system", "kafka")
        .attr("messaging.destination.name", p.topic)
        .attr("messaging.operation.type", "publish")
        .attr("messaging.operation.name", "publish");
        if let Some(partition) = p.partition {
            producer = producer
                .attr("messaging.destination.partition.id", partition.to_string())
                .attr("messaging.kafka.destination.partition", partition);
        }
        if let Some(error) = p.error {
            producer = producer.failed("publish_failed", error);
        }
        spans.push(producer);
    }
    tracer.export(spans);
}

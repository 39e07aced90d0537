//! The gateway's spans of one transaction: the REST request (SERVER, the whole transaction), the
//! publish of the request (PRODUCER) and the receipt of its reply (CONSUMER). Built only when
//! the tracer keeps them; the times come from the hops and the few instants taken around them.

use std::time::Duration;

use switchboard_otlp::{micros_to_nanos, now_unix_nanos, Entered, Kind, Span, Tracer};
use switchboard_proto::convert::Stage;
use switchboard_proto::Envelope;
use switchboard_telemetry::TraceContext;

/// What one `/messages` transaction saw, for its spans; filled only when export is on.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    /// When the handler took the request, Unix nanoseconds; 0: export off.
    pub started: u64,
    /// The caller's message (the body before any hop).
    pub text: String,
    pub id: String,
    /// The publish: its span's context and when it began and ended.
    pub publish: Option<(TraceContext, u64, u64)>,
    /// Why the transaction failed, as `error.type` and message.
    pub error: Option<(&'static str, String)>,
}

impl Trail {
    pub fn new(tracer: &Tracer, text: &str) -> Self {
        if !tracer.is_enabled() {
            return Trail::default();
        }
        Trail { started: now_unix_nanos(), text: text.to_owned(), ..Trail::default() }
    }

    pub fn is_on(&self) -> bool {
        self.started != 0
    }

    pub fn fail(&mut self, error_type: &'static str, message: &str) {
        if self.is_on() {
            self.error = Some((error_type, message.to_owned()));
        }
    }
}

/// Where a request's publish went: the route it came on and the broker it was handed to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Publish<'a> {
    pub route: &'static str,
    /// `kafka` or `rabbitmq`.
    pub system: &'static str,
    /// The topic or queue.
    pub destination: &'a str,
    pub stage: Stage,
}

/// Exports the SERVER and PRODUCER spans of a finished `/messages` or `/jobs` request.
pub(crate) fn transaction(tracer: &Tracer, entered: &Entered, trail: Trail, to: Publish<'_>, status: u16) {
    let (route, topic) = (to.route, to.destination);
    if !trail.is_on() {
        return;
    }
    let end = now_unix_nanos();
    let failed = trail.error.is_some() || status >= 500;
    let longest = Duration::from_nanos(end.saturating_sub(trail.started));
    if !tracer.keep(entered.sampled, failed, longest) {
        return;
    }
    let rest = format!("{}{}", trail.text, Stage::RestRequest.suffix());
    let mut server = Span::new(&entered.ctx, entered.parent, Kind::Server, format!("POST {route}"), trail.started, end)
        .hop(Stage::RestRequest.label(), &rest, &trail.id)
        .attr("http.request.method", "POST")
        .attr("url.path", route)
        .attr("http.route", route)
        .attr("http.response.status_code", i64::from(status));
    if let Some((error_type, message)) = &trail.error {
        server = server.failed(error_type, message.clone());
    } else if status >= 500 {
        server = server.failed("http_5xx", format!("answered {status}"));
    }
    let mut spans = vec![server];
    if let Some((ctx, start, end)) = trail.publish {
        let published = format!("{rest}{}", to.stage.suffix());
        let mut producer =
            Span::new(&ctx, Some(entered.ctx.span_id()), Kind::Producer, format!("publish {topic}"), start, end)
                .hop(to.stage.label(), &published, &trail.id)
                .attr("messaging.system", to.system)
                .attr("messaging.destination.name", topic.to_owned())
                .attr("messaging.operation.type", "publish")
                .attr("messaging.operation.name", "publish");
        if let Some((error_type @ ("publish_failed" | "breaker_open" | "deadline"), message)) = &trail.error {
            producer = producer.failed(error_type, message.clone());
        }
        spans.push(producer);
    }
    tracer.export(spans);
}

/// Exports the CONSUMER span of a reply taken from `topic` at `partition`/`offset`, unless the
/// tracer drops it: kept when sampled, when the reply is a failure, or when the transaction
/// (first hop to now) was slow, as the SERVER span is.
pub(crate) fn reply(tracer: &Tracer, reply: &Envelope, topic: &str, partition: i32, offset: i64) {
    if !tracer.is_enabled() {
        return;
    }
    let Some(upstream) = reply.traceparent().and_then(|tp| TraceContext::parse(tp).ok()) else { return };
    let end = now_unix_nanos();
    let first = reply.hops.first().map_or(end, |h| micros_to_nanos(h.at_unix_micros));
    let failed = reply.failure.is_some();
    if !tracer.keep(upstream.is_sampled(), failed, Duration::from_nanos(end.saturating_sub(first))) {
        return;
    }
    let received = match reply.hops.last() {
        Some(h) if h.name == Stage::KafkaConsumer.label() && h.service == "gateway" => {
            micros_to_nanos(h.at_unix_micros)
        }
        _ => end,
    };
    let ctx = upstream.child();
    let span = Span::new(&ctx, Some(upstream.span_id()), Kind::Consumer, format!("receive {topic}"), received, end)
        .hop(Stage::KafkaConsumer.label(), &reply.body, &reply.id)
        .attr("messaging.system", "kafka")
        .attr("messaging.destination.name", topic.to_owned())
        .attr("messaging.operation.type", "receive")
        .attr("messaging.operation.name", "receive")
        .attr("messaging.destination.partition.id", partition.to_string())
        .attr("messaging.kafka.destination.partition", partition)
        .attr("messaging.kafka.offset", offset);
    tracer.export([span]);
}

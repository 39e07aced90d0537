//! Spans into an OTLP `ExportTraceServiceRequest`, on the exporter thread only.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans, Status};
use switchboard_telemetry::Metrics;

use crate::span::{Kind, Span, Status as SpanStatus, Value};
use crate::tracer::Queued;

/// The instrumentation scope every span is reported under.
const SCOPE: &str = "switchboard";

/// One service of this process: its OTLP resource and the registry its counts go to.
#[derive(Debug)]
pub(crate) struct ServiceResource {
    name: String,
    attributes: Vec<KeyValue>,
    metrics: Metrics,
}

impl ServiceResource {
    /// `service.name` = `name`, `service.instance.id`, `service.version`, the SDK's identity
    /// and `extra` (from `OTEL_RESOURCE_ATTRIBUTES`; those named above win over it).
    pub(crate) fn new(name: &str, instance: &str, version: &str, extra: &[(String, String)], metrics: Metrics) -> Self {
        let ours = [
            ("service.name", name),
            ("service.instance.id", instance),
            ("service.version", version),
            ("telemetry.sdk.name", "switchboard-otlp"),
            ("telemetry.sdk.language", "rust"),
            ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        let mut attributes: Vec<KeyValue> = ours.iter().map(|(k, v)| kv(k, string(v))).collect();
        for (k, v) in extra {
            if !ours.iter().any(|(ours, _)| ours == k) {
                attributes.push(kv(k, string(v)));
            }
        }
        ServiceResource { name: name.to_owned(), attributes, metrics }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The request carrying `batch`, one `ResourceSpans` per service, and how many spans each
/// service has in it (to count them once the collector answers).
pub(crate) fn request(batch: Vec<Queued>) -> (ExportTraceServiceRequest, Vec<(Arc<ServiceResource>, u64)>) {
    let mut groups: Vec<(Arc<ServiceResource>, Vec<opentelemetry_proto::tonic::trace::v1::Span>)> = Vec::new();
    for Queued { service, span } in batch {
        let proto = span_proto(span);
        match groups.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &service)) {
            Some((_, spans)) => spans.push(proto),
            None => groups.push((service, vec![proto])),
        }
    }
    let counts = groups.iter().map(|(s, spans)| (s.clone(), spans.len() as u64)).collect();
    let resource_spans = groups
        .into_iter()
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource { attributes: service.attributes.clone(), ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE.into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        })
        .collect();
    (ExportTraceServiceRequest { resource_spans }, counts)
}

fn span_proto(span: Span) -> opentelemetry_proto::tonic::trace::v1::Span {
    let kind = match span.kind {
        Kind::Internal => SpanKind::Internal,
        Kind::Server => SpanKind::Server,
        Kind::Client => SpanKind::Client,
        Kind::Producer => SpanKind::Producer,
        Kind::Consumer => SpanKind::Consumer,
    };
    let status = match span.status {
        SpanStatus::Unset => None,
        SpanStatus::Error(message) => Some(Status { message, code: StatusCode::Error as i32 }),
    };
    // The low byte is the W3C trace flags: an exported span is a recorded one.
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: span.trace_id.to_bytes().to_vec(),
        span_id: span.span_id.to_bytes().to_vec(),
        parent_span_id: span.parent.map(|p| p.to_bytes().to_vec()).unwrap_or_default(),
        flags: 0x01,
        name: span.name.into_owned(),
        kind: kind as i32,
        start_time_unix_nano: span.start_unix_nanos,
        end_time_unix_nano: span.end_unix_nanos,
        attributes: span
            .attributes
            .into_iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::Str(s) => any_value::Value::StringValue(s.into_owned()),
                    Value::Int(i) => any_value::Value::IntValue(i),
                };
                kv(k, value)
            })
            .collect(),
        status,
        ..Default::default()
    }
}

fn string(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.to_owned())
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_owned(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use switchboard_telemetry::TraceContext;

    use super::*;
    use crate::span::Kind;

    #[test]
    fn spans_are_grouped_by_service_and_round_trip_through_protobuf() {
        let metrics = Metrics::new("all");
        let extra = vec![("service.name".to_owned(), "ignored".to_owned()), ("team".to_owned(), "a".to_owned())];
        let gw = Arc::new(ServiceResource::new("gateway", "i-1", "1.0", &extra, metrics.clone()));
        let relay = Arc::new(ServiceResource::new("relay", "i-1", "1.0", &[], metrics));
        let ctx = TraceContext::new();
        let child = ctx.child();
        let root = Span::new(&ctx, None, Kind::Server, "POST /messages", 1, 9).attr("http.response.status_code", 200);
        let call = Span::new(&child, Some(ctx.span_id()), Kind::Client, "call", 2, 3).failed("deadline", "late");
        let batch = vec![
            Queued { service: gw.clone(), span: root },
            Queued { service: relay.clone(), span: call },
            Queued { service: gw, span: Span::new(&ctx.child(), Some(ctx.span_id()), Kind::Producer, "p", 1, 2) },
        ];
        let (req, counts) = request(batch);
        assert_eq!(
            counts.iter().map(|(s, n)| (s.name().to_owned(), *n)).collect::<Vec<_>>(),
            [("gateway".to_owned(), 2), ("relay".to_owned(), 1)]
        );
        let decoded = ExportTraceServiceRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.resource_spans.len(), 2);
        let resource = decoded.resource_spans[0].resource.as_ref().unwrap();
        let names: Vec<_> = resource.attributes.iter().filter(|a| a.key == "service.name").collect();
        assert_eq!(names.len(), 1, "OTEL_RESOURCE_ATTRIBUTES cannot rename a service");
        assert!(resource.attributes.iter().any(|a| a.key == "team"));
        let spans = &decoded.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans[0].trace_id, ctx.trace_id().to_bytes());
        assert!(spans[0].parent_span_id.is_empty());
        assert_eq!(spans[0].kind, SpanKind::Server as i32);
        let failed = &decoded.resource_spans[1].scope_spans[0].spans[0];
        assert_eq!(failed.parent_span_id, ctx.span_id().to_bytes());
        assert_eq!(failed.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
    }
}

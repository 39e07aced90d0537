//! Spans into the protobuf body of an OTLP `ExportTraceServiceRequest`.
//!
//! Each span is encoded into its `Span` message by [`span_message`] on the thread that recorded
//! it, where the span's strings are still in that core's cache; the exporter thread only puts
//! the messages of a batch together behind each service's resource and scope (encoded once, with
//! the `opentelemetry-proto` types, when its tracer is made). On the exporter thread, encoding
//! would read every string from another core's cache and free them there one by one: about half
//! of that thread's CPU under load.
//!
//! Spans are written straight from [`Span`] with prost's encoding functions and the field
//! numbers of `opentelemetry/proto/trace/v1/trace.proto`, not through the `opentelemetry-proto`
//! structs (a key and a value string to allocate per attribute). The tests decode the body with
//! the `opentelemetry-proto` types and compare it with the same spans built as those types.

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use switchboard_telemetry::Metrics;

use crate::span::{Kind, Span, Status, Value};
use crate::tracer::Queued;

/// The instrumentation scope every span is reported under.
const SCOPE: &str = "switchboard";

/// Field numbers of the OTLP messages written here, named `Message_field` as in the protos.
#[allow(non_upper_case_globals)]
mod tag {
    pub const ExportTraceServiceRequest_resource_spans: u32 = 1;
    pub const ResourceSpans_resource: u32 = 1;
    pub const ResourceSpans_scope_spans: u32 = 2;
    pub const ScopeSpans_scope: u32 = 1;
    pub const ScopeSpans_spans: u32 = 2;
    pub const Span_trace_id: u32 = 1;
    pub const Span_span_id: u32 = 2;
    pub const Span_parent_span_id: u32 = 4;
    pub const Span_name: u32 = 5;
    pub const Span_kind: u32 = 6;
    pub const Span_start_time_unix_nano: u32 = 7;
    pub const Span_end_time_unix_nano: u32 = 8;
    pub const Span_attributes: u32 = 9;
    pub const Span_status: u32 = 15;
    pub const Span_flags: u32 = 16;
    pub const Status_message: u32 = 2;
    pub const Status_code: u32 = 3;
    pub const KeyValue_key: u32 = 1;
    pub const KeyValue_value: u32 = 2;
    pub const AnyValue_string_value: u32 = 1;
    pub const AnyValue_int_value: u32 = 3;
}

/// One service of this process: its OTLP resource and scope, encoded once, and the registry
/// its counts go to.
#[derive(Debug)]
pub(crate) struct ServiceResource {
    name: String,
    /// `ResourceSpans.resource` as a whole field: key, length, message.
    resource_field: Vec<u8>,
    /// `ScopeSpans.scope` as a whole field.
    scope_field: Vec<u8>,
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
        let mut attributes: Vec<KeyValue> = ours.iter().map(|(k, v)| string_kv(k, v)).collect();
        for (k, v) in extra {
            if !ours.iter().any(|(ours, _)| ours == k) {
                attributes.push(string_kv(k, v));
            }
        }
        let resource = Resource { attributes, ..Default::default() };
        let scope = InstrumentationScope {
            name: SCOPE.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let mut resource_field = Vec::new();
        prost::encoding::message::encode(tag::ResourceSpans_resource, &resource, &mut resource_field);
        let mut scope_field = Vec::new();
        prost::encoding::message::encode(tag::ScopeSpans_scope, &scope, &mut scope_field);
        ServiceResource { name: name.to_owned(), resource_field, scope_field, metrics }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// The spans of one service in a batch, as their encoded messages.
struct Group {
    service: Arc<ServiceResource>,
    spans: Vec<Vec<u8>>,
}

impl Group {
    /// The lengths of its `ScopeSpans` message and of the `ResourceSpans` message around it.
    fn lens(&self) -> (usize, usize) {
        let spans: usize = self.spans.iter().map(|s| delimited_len(tag::ScopeSpans_spans, s.len())).sum();
        let scope_spans = self.service.scope_field.len() + spans;
        let resource_spans =
            self.service.resource_field.len() + delimited_len(tag::ResourceSpans_scope_spans, scope_spans);
        (scope_spans, resource_spans)
    }
}

/// Room for a span's message before its buffer has to grow.
const SPAN_BYTES: usize = 512;

/// The body of the request carrying `batch` (one `ResourceSpans` per service), and how many
/// spans each service has in it (to count them once the collector answers). The body is
/// allocated at its exact size: a message's length has to precede it, and every length is known
/// before the first byte is written.
pub(crate) fn request(batch: Vec<Queued>) -> (Vec<u8>, Vec<(Arc<ServiceResource>, u64)>) {
    let mut groups: Vec<Group> = Vec::new();
    for Queued { service, message } in batch {
        match groups.iter_mut().find(|g| Arc::ptr_eq(&g.service, &service)) {
            Some(group) => group.spans.push(message),
            None => groups.push(Group { service, spans: vec![message] }),
        }
    }
    let lens: Vec<(usize, usize)> = groups.iter().map(Group::lens).collect();
    let size = lens.iter().map(|&(_, r)| delimited_len(tag::ExportTraceServiceRequest_resource_spans, r)).sum();
    let mut body = Vec::with_capacity(size);
    for (group, &(scope_spans_len, resource_spans_len)) in groups.iter().zip(&lens) {
        header(tag::ExportTraceServiceRequest_resource_spans, resource_spans_len, &mut body);
        body.extend_from_slice(&group.service.resource_field);
        header(tag::ResourceSpans_scope_spans, scope_spans_len, &mut body);
        body.extend_from_slice(&group.service.scope_field);
        for span in &group.spans {
            length_delimited(tag::ScopeSpans_spans, span, &mut body);
        }
    }
    debug_assert_eq!(body.len(), size, "the body's size is computed before it is written");
    (body, groups.into_iter().map(|g| (g.service, g.spans.len() as u64)).collect())
}

/// One span's `Span` message (without its own key and length).
pub(crate) fn span_message(span: &Span) -> Vec<u8> {
    let mut buf = Vec::with_capacity(SPAN_BYTES);
    write_span(span, &mut buf);
    buf
}

/// One `Span` message (without its own key and length) into `buf`.
fn write_span(span: &Span, buf: &mut Vec<u8>) {
    length_delimited(tag::Span_trace_id, &span.trace_id.to_bytes(), buf);
    length_delimited(tag::Span_span_id, &span.span_id.to_bytes(), buf);
    if let Some(parent) = span.parent {
        length_delimited(tag::Span_parent_span_id, &parent.to_bytes(), buf);
    }
    length_delimited(tag::Span_name, span.name.as_bytes(), buf);
    prost::encoding::int32::encode(tag::Span_kind, &(span_kind(span.kind) as i32), buf);
    prost::encoding::fixed64::encode(tag::Span_start_time_unix_nano, &span.start_unix_nanos, buf);
    prost::encoding::fixed64::encode(tag::Span_end_time_unix_nano, &span.end_unix_nanos, buf);
    for (key, value) in &span.attributes {
        key_value(key, value, buf);
    }
    if let Status::Error(message) = &span.status {
        let code = StatusCode::Error as i32;
        let len = string_field_len(tag::Status_message, message)
            + key_len(tag::Status_code)
            + encoded_len_varint(code as u64);
        header(tag::Span_status, len, buf);
        length_delimited(tag::Status_message, message.as_bytes(), buf);
        prost::encoding::int32::encode(tag::Status_code, &code, buf);
    }
    // The low byte is the W3C trace flags: an exported span is a recorded one.
    prost::encoding::fixed32::encode(tag::Span_flags, &0x01, buf);
}

fn span_kind(kind: Kind) -> SpanKind {
    match kind {
        Kind::Internal => SpanKind::Internal,
        Kind::Server => SpanKind::Server,
        Kind::Client => SpanKind::Client,
        Kind::Producer => SpanKind::Producer,
        Kind::Consumer => SpanKind::Consumer,
    }
}

/// One `Span.attributes` entry: a `KeyValue` whose `AnyValue` is a string or an int.
fn key_value(key: &str, value: &Value, buf: &mut Vec<u8>) {
    let any_len = match value {
        Value::Str(s) => string_field_len(tag::AnyValue_string_value, s),
        Value::Int(i) => key_len(tag::AnyValue_int_value) + encoded_len_varint(*i as u64),
    };
    let len = string_field_len(tag::KeyValue_key, key) + delimited_len(tag::KeyValue_value, any_len);
    header(tag::Span_attributes, len, buf);
    length_delimited(tag::KeyValue_key, key.as_bytes(), buf);
    header(tag::KeyValue_value, any_len, buf);
    match value {
        Value::Str(s) => length_delimited(tag::AnyValue_string_value, s.as_bytes(), buf),
        Value::Int(i) => prost::encoding::int64::encode(tag::AnyValue_int_value, i, buf),
    }
}

/// The key and length of a length-delimited field whose content follows.
fn header(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// A whole length-delimited field (bytes, string or an encoded message).
fn length_delimited(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    header(tag, bytes.len(), buf);
    buf.extend_from_slice(bytes);
}

/// How many bytes a length-delimited field of `len` content bytes takes, key and length included.
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn string_field_len(tag: u32, s: &str) -> usize {
    delimited_len(tag, s.len())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1 as proto;
    use prost::Message;
    use switchboard_telemetry::TraceContext;

    use super::*;
    use crate::span::Kind;

    fn queued(service: &Arc<ServiceResource>, span: &Span) -> Queued {
        Queued { service: service.clone(), message: span_message(span) }
    }

    /// The span as the `opentelemetry-proto` types say it, built independently of the encoder.
    fn expected(span: &Span) -> proto::Span {
        proto::Span {
            trace_id: span.trace_id.to_bytes().to_vec(),
            span_id: span.span_id.to_bytes().to_vec(),
            parent_span_id: span.parent.map(|p| p.to_bytes().to_vec()).unwrap_or_default(),
            flags: 0x01,
            name: span.name.to_string(),
            kind: span_kind(span.kind) as i32,
            start_time_unix_nano: span.start_unix_nanos,
            end_time_unix_nano: span.end_unix_nanos,
            attributes: span
                .attributes
                .iter()
                .map(|(k, v)| KeyValue {
                    key: (*k).to_owned(),
                    value: Some(AnyValue {
                        value: Some(match v {
                            Value::Str(s) => any_value::Value::StringValue(s.to_string()),
                            Value::Int(i) => any_value::Value::IntValue(*i),
                        }),
                    }),
                    ..Default::default()
                })
                .collect(),
            status: match &span.status {
                Status::Unset => None,
                Status::Error(m) => Some(proto::Status { message: m.clone(), code: StatusCode::Error as i32 }),
            },
            ..Default::default()
        }
    }

    #[test]
    fn spans_are_grouped_by_service_and_decode_as_the_opentelemetry_types_say() {
        let metrics = Metrics::new("all");
        let extra = vec![("service.name".to_owned(), "ignored".to_owned()), ("team".to_owned(), "a".to_owned())];
        let gw = Arc::new(ServiceResource::new("gateway", "i-1", "1.0", &extra, metrics.clone()));
        let relay = Arc::new(ServiceResource::new("relay", "i-1", "1.0", &[], metrics));
        let ctx = TraceContext::new();
        let child = ctx.child();
        let long = "é".repeat(200);
        let root = Span::new(&ctx, None, Kind::Server, "POST /messages", 1, 9)
            .attr("http.response.status_code", 200)
            .attr("negative", -7)
            .hop("REST request", &long, "id-1");
        let call = Span::new(&child, Some(ctx.span_id()), Kind::Client, "call", 2, 3).failed("deadline", long.clone());
        let produce = Span::new(&ctx.child(), Some(ctx.span_id()), Kind::Producer, "p", u64::MAX - 1, u64::MAX)
            .attr("messaging.system", "kafka");
        let spans = [root, call, produce];
        let batch = vec![queued(&gw, &spans[0]), queued(&relay, &spans[1]), queued(&gw, &spans[2])];
        let (body, counts) = request(batch);
        assert_eq!(
            counts.iter().map(|(s, n)| (s.name().to_owned(), *n)).collect::<Vec<_>>(),
            [("gateway".to_owned(), 2), ("relay".to_owned(), 1)]
        );
        let decoded = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        assert_eq!(decoded.resource_spans.len(), 2);
        let resource = decoded.resource_spans[0].resource.as_ref().unwrap();
        let names: Vec<_> = resource.attributes.iter().filter(|a| a.key == "service.name").collect();
        assert_eq!(names.len(), 1, "OTEL_RESOURCE_ATTRIBUTES cannot rename a service");
        assert_eq!(names[0].value, Some(AnyValue { value: Some(any_value::Value::StringValue("gateway".into())) }));
        assert!(resource.attributes.iter().any(|a| a.key == "team"));
        let scope = decoded.resource_spans[1].scope_spans[0].scope.as_ref().unwrap();
        assert_eq!(scope.name, SCOPE);
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans, [expected(&spans[0]), expected(&spans[2])]);
        assert_eq!(decoded.resource_spans[1].scope_spans[0].spans, [expected(&spans[1])]);
        let failed = &decoded.resource_spans[1].scope_spans[0].spans[0];
        assert_eq!(failed.parent_span_id, ctx.span_id().to_bytes());
        assert_eq!(failed.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
    }

    #[test]
    fn a_large_batch_of_interleaved_services_decodes_whole_and_in_order() {
        let metrics = Metrics::new("all");
        let gw = Arc::new(ServiceResource::new("gateway", "i-1", "1.0", &[], metrics.clone()));
        let relay = Arc::new(ServiceResource::new("relay", "i-1", "1.0", &[], metrics));
        let ctx = TraceContext::new();
        // Some messages past 16 KiB and groups past 2 MiB: lengths of every varint width.
        let big = "x".repeat(30_000);
        let spans: Vec<Span> = (0..600u64)
            .map(|i| {
                let why = if i.is_multiple_of(5) { big.clone() } else { format!("refused {i}") };
                Span::new(&ctx.child(), Some(ctx.span_id()), Kind::Internal, format!("span {i}"), i, i + 1)
                    .failed("refused", why)
            })
            .collect();
        let service = |i: usize| if i.is_multiple_of(3) { &relay } else { &gw };
        let batch = spans.iter().enumerate().map(|(i, s)| queued(service(i), s));
        let (body, counts) = request(batch.collect());
        assert_eq!(counts.iter().map(|(s, n)| (s.name(), *n)).collect::<Vec<_>>(), [("relay", 200), ("gateway", 400)]);
        let decoded = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        for (r, name) in decoded.resource_spans.iter().zip(["relay", "gateway"]) {
            let want: Vec<_> = spans
                .iter()
                .enumerate()
                .filter(|(i, _)| service(*i).name() == name)
                .map(|(_, s)| expected(s))
                .collect();
            assert_eq!(r.scope_spans[0].spans, want, "{name}");
        }
    }

    #[test]
    fn an_empty_batch_is_an_empty_request() {
        let (body, counts) = request(Vec::new());
        assert!(counts.is_empty());
        assert_eq!(ExportTraceServiceRequest::decode(body.as_slice()).unwrap(), ExportTraceServiceRequest::default());
    }
}

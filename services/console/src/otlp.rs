//! OTLP/HTTP trace export decoding: an `ExportTraceServiceRequest` (protobuf) becomes the
//! spans the store keeps, every string capped so one request cannot take unbounded memory.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message as _;

/// Largest span, event or attribute name kept, in bytes.
const MAX_NAME: usize = 256;
/// Largest attribute value or status message kept, in bytes.
const MAX_VALUE: usize = 1024;
/// Attributes kept per span (and per event).
const MAX_ATTRIBUTES: usize = 64;
/// Events kept per span.
const MAX_EVENTS: usize = 16;

/// A trace id.
pub(crate) type TraceId = [u8; 16];

/// The kind of a span, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
        }
    }
}

/// A span's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Unset,
    Ok,
    Error,
}

impl Status {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

/// An event on a span.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub name: String,
    pub time: u64,
    pub attributes: Vec<(String, String)>,
}

/// One span as the store keeps it.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub trace_id: TraceId,
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub service: Arc<str>,
    pub instance: Arc<str>,
    pub kind: Kind,
    pub start: u64,
    pub end: u64,
    pub status: Status,
    pub status_message: String,
    pub attributes: Vec<(String, String)>,
    pub events: Vec<Event>,
}

impl Span {
    /// The value of attribute `key`.
    pub(crate) fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What one export request held.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The spans with valid ids.
    pub spans: Vec<Span>,
    /// Spans refused: a trace id that is not 16 bytes (or all zero), a span id not 8 bytes.
    pub rejected: usize,
}

/// Decodes an `ExportTraceServiceRequest`.
pub(crate) fn decode(body: &[u8]) -> Result<Decoded, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(body)?;
    let mut out = Decoded { spans: Vec::new(), rejected: 0 };
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
        let service: Arc<str> = resource_value(&resource, "service.name").unwrap_or_else(|| "unknown".into()).into();
        let instance: Arc<str> = resource_value(&resource, "service.instance.id").unwrap_or_default().into();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let (Some(trace_id), Some(span_id)) = (id::<16>(&span.trace_id), id::<8>(&span.span_id)) else {
                    out.rejected += 1;
                    continue;
                };
                let kind = match SpanKind::try_from(span.kind) {
                    Ok(SpanKind::Server) => Kind::Server,
                    Ok(SpanKind::Client) => Kind::Client,
                    Ok(SpanKind::Producer) => Kind::Producer,
                    Ok(SpanKind::Consumer) => Kind::Consumer,
                    _ => Kind::Internal,
                };
                let (status, status_message) = match span.status {
                    Some(s) => {
                        let code = match StatusCode::try_from(s.code) {
                            Ok(StatusCode::Error) => Status::Error,
                            Ok(StatusCode::Ok) => Status::Ok,
                            _ => Status::Unset,
                        };
                        (code, capped(s.message, MAX_VALUE))
                    }
                    None => (Status::Unset, String::new()),
                };
                let events = span
                    .events
                    .into_iter()
                    .take(MAX_EVENTS)
                    .map(|e| Event {
                        name: capped(e.name, MAX_NAME),
                        time: e.time_unix_nano,
                        attributes: attributes(e.attributes),
                    })
                    .collect();
                out.spans.push(Span {
                    trace_id,
                    span_id,
                    parent: id::<8>(&span.parent_span_id),
                    name: capped(span.name, MAX_NAME),
                    service: service.clone(),
                    instance: instance.clone(),
                    kind,
                    start: span.start_time_unix_nano,
                    end: span.end_time_unix_nano.max(span.start_time_unix_nano),
                    status,
                    status_message,
                    attributes: attributes(span.attributes),
                    events,
                });
            }
        }
    }
    Ok(out)
}

/// The protobuf answer to an export: empty, or saying how many spans were refused.
pub(crate) fn response(rejected: usize) -> Vec<u8> {
    let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: rejected as i64,
        error_message: "spans without a valid trace id or span id".into(),
    });
    ExportTraceServiceResponse { partial_success }.encode_to_vec()
}

/// An id of `N` bytes that is not all zero (the spec's invalid id).
fn id<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let id: [u8; N] = bytes.try_into().ok()?;
    id.iter().any(|b| *b != 0).then_some(id)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The trace id written as 32 hex digits (either case).
pub(crate) fn parse_trace_id(text: &str) -> Option<TraceId> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

fn resource_value(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).map(|v| capped(text(v), MAX_NAME))
}

fn attributes(list: Vec<KeyValue>) -> Vec<(String, String)> {
    list.into_iter()
        .take(MAX_ATTRIBUTES)
        .map(|kv| (capped(kv.key, MAX_NAME), kv.value.as_ref().map(|v| capped(text(v), MAX_VALUE)).unwrap_or_default()))
        .collect()
}

/// An attribute value as text: strings as they are, numbers and booleans written out,
/// arrays and maps as JSON, bytes as hex.
fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(&b[..b.len().min(MAX_VALUE / 2)]),
        Some(any_value::Value::ArrayValue(a)) => {
            serde_json::Value::Array(a.values.iter().take(MAX_ATTRIBUTES).map(|v| text(v).into()).collect()).to_string()
        }
        Some(any_value::Value::KvlistValue(kv)) => serde_json::Value::Object(
            kv.values
                .iter()
                .take(MAX_ATTRIBUTES)
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map(text).unwrap_or_default().into()))
                .collect(),
        )
        .to_string(),
        _ => String::new(),
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn capped(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_have_their_length_and_not_be_zero() {
        assert_eq!(id::<8>(&[1, 2, 3, 4, 5, 6, 7, 8]), Some([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(id::<8>(&[0; 8]), None);
        assert_eq!(id::<8>(&[1; 7]), None);
        assert_eq!(id::<16>(&[]), None);
    }

    #[test]
    fn trace_ids_round_trip_through_hex() {
        let id = [0xab; 16];
        assert_eq!(parse_trace_id(&hex(&id)), Some(id));
        assert_eq!(parse_trace_id(&hex(&id).to_uppercase()), Some(id));
        assert_eq!(parse_trace_id("xyz"), None);
        assert_eq!(parse_trace_id(&"é".repeat(16)), None);
    }

    #[test]
    fn strings_are_cut_on_character_boundaries() {
        assert_eq!(capped("héllo".into(), 2), "h");
        assert_eq!(capped("hello".into(), 10), "hello");
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
        assert_eq!(decode(&[]).unwrap().spans.len(), 0);
    }
}

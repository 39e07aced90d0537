//! A finished span as the services hand it over: plain data, built only for a transaction the
//! tracer keeps, and encoded by [`Tracer::export`](crate::Tracer::export) on the same thread.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_telemetry::{SpanId, TraceContext, TraceId};

/// Longest `switchboard.log` value: a hop's log line with the body cut at a character boundary.
pub const LOG_LINE_CAP: usize = 256;

/// What a span is to its trace: OpenTelemetry's `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Work inside one service.
    Internal,
    /// Handling a request from a caller (HTTP, gRPC).
    Server,
    /// Calling another service and waiting for its answer (gRPC).
    Client,
    /// Handing a message to a broker.
    Producer,
    /// Receiving or processing a message from a broker.
    Consumer,
}

/// A span's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// Nothing said: the default for a span that did its work.
    #[default]
    Unset,
    /// Failed, with why (shown by trace viewers).
    Error(String),
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(Cow<'static, str>),
    /// An integer (status codes, partitions, offsets).
    Int(i64),
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Cow::Owned(s))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id: the `parent-id` sent downstream while it was open.
    pub span_id: SpanId,
    /// The span that caused it, in this service or upstream; `None` for a trace's root.
    pub parent: Option<SpanId>,
    /// Its name, e.g. `POST /messages`, `publish switchboard.requests`.
    pub name: Cow<'static, str>,
    /// Its kind.
    pub kind: Kind,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Its outcome.
    pub status: Status,
    /// Semantic-convention and switchboard attributes.
    pub attributes: Vec<(&'static str, Value)>,
}

impl Span {
    /// A span of `kind` named `name` with the ids of `ctx` (its own span id) under `parent`,
    /// from `start` to `end` (Unix nanoseconds), status unset and no attributes yet.
    pub fn new(
        ctx: &TraceContext,
        parent: Option<SpanId>,
        kind: Kind,
        name: impl Into<Cow<'static, str>>,
        start_unix_nanos: u64,
        end_unix_nanos: u64,
    ) -> Self {
        Span {
            trace_id: ctx.trace_id(),
            span_id: ctx.span_id(),
            parent,
            name: name.into(),
            kind,
            start_unix_nanos,
            end_unix_nanos: end_unix_nanos.max(start_unix_nanos),
            status: Status::Unset,
            attributes: Vec::with_capacity(8),
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.attributes.push((key, value.into()));
        self
    }

    /// Marks the span failed: status ERROR with `message`, and `error.type` = `error_type`.
    pub fn failed(mut self, error_type: &'static str, message: impl Into<String>) -> Self {
        self.status = Status::Error(message.into());
        self.attributes.push(("error.type", error_type.into()));
        self
    }

    /// Marks a gRPC span failed with status `code` (its number): `error.type` is `deadline`
    /// for DEADLINE_EXCEEDED, `unavailable` for UNAVAILABLE, `refused` for any other status.
    pub fn grpc_failed(self, code: i32, message: impl Into<String>) -> Self {
        let error_type = match code {
            4 => "deadline",
            14 => "unavailable",
            _ => "refused",
        };
        self.failed(error_type, message)
    }

    /// The hop attributes every switchboard span carries: `switchboard.hop` (the hop's label in
    /// the Go example's transaction log), `switchboard.log` (the hop's log line, capped at
    /// [`LOG_LINE_CAP`] bytes) and `switchboard.message_id`.
    pub fn hop(self, label: &'static str, body: &str, message_id: &str) -> Self {
        self.attr("switchboard.hop", label)
            .attr("switchboard.log", log_line(label, body))
            .attr("switchboard.message_id", message_id.to_owned())
    }

    /// Whether its status is ERROR.
    pub fn is_error(&self) -> bool {
        matches!(self.status, Status::Error(_))
    }

    /// How long it lasted, in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }
}

/// `"{label}: {body}"` as the hop's log line shows it, at most [`LOG_LINE_CAP`] bytes.
pub fn log_line(label: &str, body: &str) -> String {
    let mut line = String::with_capacity(LOG_LINE_CAP.min(label.len() + 2 + body.len()));
    line.push_str(label);
    line.push_str(": ");
    let room = LOG_LINE_CAP.saturating_sub(line.len());
    let mut cut = body.len().min(room);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    line.push_str(&body[..cut]);
    line
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Unix microseconds (the envelope's hop clock) as Unix nanoseconds.
pub fn micros_to_nanos(micros: i64) -> u64 {
    (micros.max(0) as u64).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_is_the_transaction_log_form_capped_at_a_char_boundary() {
        assert_eq!(log_line("KAFKA Publisher", "hello world from rest"), "KAFKA Publisher: hello world from rest");
        let long = "é".repeat(300);
        let line = log_line("gRPC Server", &long);
        assert!(line.len() <= LOG_LINE_CAP, "{}", line.len());
        assert!(line.starts_with("gRPC Server: é"));
        assert!(line.len() >= LOG_LINE_CAP - 1);
    }

    #[test]
    fn a_failed_span_has_error_status_and_type() {
        let ctx = TraceContext::new();
        let span = Span::new(&ctx, None, Kind::Client, "call", 10, 5).failed("breaker_open", "circuit open");
        assert!(span.is_error());
        assert_eq!(span.end_unix_nanos, 10, "an end before the start is clamped");
        assert_eq!(span.attributes, vec![("error.type", Value::from("breaker_open"))]);
    }

    #[test]
    fn a_failed_grpc_span_is_typed_by_its_status() {
        let ctx = TraceContext::new();
        for (code, error_type) in [(4, "deadline"), (14, "unavailable"), (3, "refused"), (9, "refused")] {
            let span = Span::new(&ctx, None, Kind::Server, "call", 0, 1).grpc_failed(code, "why");
            assert!(span.is_error());
            assert_eq!(span.attributes, vec![("error.type", Value::from(error_type))], "code {code}");
        }
    }
}

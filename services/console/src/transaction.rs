//! What a transaction shows: its status (ok, error, partial), where and why it failed, its
//! waterfall and its hop log, derived from its spans.

use std::collections::HashSet;

use serde::Serialize;

use crate::otlp::{hex, Span, Status};
use crate::store::Transaction;

/// Attribute holding the hop label, as in the log ("gRPC Client").
pub(crate) const HOP: &str = "switchboard.hop";
/// Attribute holding the hop's log line in the form of the Go example's transaction log.
pub(crate) const LOG: &str = "switchboard.log";
/// Attribute holding the envelope or job id.
pub(crate) const MESSAGE_ID: &str = "switchboard.message_id";
/// Attribute naming the kind of failure (semantic conventions).
pub(crate) const ERROR_TYPE: &str = "error.type";
/// Attribute holding a dead letter's reason.
pub(crate) const DEAD_LETTER_REASON: &str = "switchboard.dead_letter.reason";

/// One line of the transactions list (`GET /api/transactions`, the `transaction` event).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub trace_id: String,
    pub status: &'static str,
    pub duration_ms: f64,
    pub start_unix_ms: u64,
    pub name: String,
    pub services: Vec<String>,
    pub span_count: usize,
    pub error: Option<String>,
    pub body: Option<String>,
}

/// A transaction with its waterfall and hop log (`GET /api/transactions/<id>`).
#[derive(Debug, Serialize)]
pub(crate) struct Detail {
    pub trace_id: String,
    pub status: &'static str,
    pub duration_ms: f64,
    pub start_unix_nanos: String,
    pub error: Option<String>,
    pub spans: Vec<SpanView>,
    pub log: Vec<LogLine>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SpanView {
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub service: String,
    pub instance: String,
    pub kind: &'static str,
    pub start_unix_nanos: String,
    pub end_unix_nanos: String,
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub status: &'static str,
    pub status_message: String,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub events: Vec<EventView>,
}

#[derive(Debug, Serialize)]
pub(crate) struct EventView {
    pub name: String,
    pub offset_ms: f64,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub(crate) struct LogLine {
    pub offset_ms: f64,
    pub service: String,
    pub line: String,
}

/// The list filters of `GET /api/transactions`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filter {
    pub failed: bool,
    pub slower_ms: Option<f64>,
    pub q: Option<String>,
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

fn start_end(spans: &[Span]) -> (u64, u64) {
    let start = spans.iter().map(|s| s.start).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end).max().unwrap_or(start);
    (start, end)
}

/// The span the transaction hangs from: one without a parent, or an HTTP server span whose
/// parent is outside the trace (a caller's own traceparent). Another span whose parent has
/// not arrived is not one: its parent's spans are still coming.
fn root(spans: &[Span]) -> Option<&Span> {
    let ids: HashSet<[u8; 8]> = spans.iter().map(|s| s.span_id).collect();
    spans.iter().find(|s| match s.parent {
        None => true,
        Some(parent) => {
            !ids.contains(&parent)
                && s.kind == crate::otlp::Kind::Server
                && s.attribute("http.request.method").is_some()
        }
    })
}

/// `error` if any span failed, `partial` while the root span is missing, else `ok`.
pub(crate) fn status(spans: &[Span]) -> &'static str {
    if spans.iter().any(|s| s.status == Status::Error) {
        "error"
    } else if root(spans).is_none() {
        "partial"
    } else {
        "ok"
    }
}

/// Where and why the transaction failed: the failed span below which nothing failed (the hop
/// where it stopped; the spans above it failed because of it), the earliest such one.
/// "breaker open at gRPC Client", "dead-lettered (decode: …) at KAFKA Consumer".
pub(crate) fn failure(spans: &[Span]) -> Option<String> {
    let parents: std::collections::HashMap<[u8; 8], [u8; 8]> =
        spans.iter().filter_map(|s| Some((s.span_id, s.parent?))).collect();
    // Every ancestor of a failed span; the walk is bounded by the span count (ids may loop).
    let mut above_a_failure: HashSet<[u8; 8]> = HashSet::new();
    for failed in spans.iter().filter(|s| s.status == Status::Error) {
        let mut at = failed.span_id;
        for _ in 0..spans.len() {
            match parents.get(&at) {
                Some(&parent) if above_a_failure.insert(parent) => at = parent,
                _ => break,
            }
        }
    }
    let culprit = spans
        .iter()
        .filter(|s| s.status == Status::Error && !above_a_failure.contains(&s.span_id))
        .min_by_key(|s| s.start)?;
    let hop = culprit.attribute(HOP).unwrap_or(&culprit.name);
    let why = match culprit.attribute(ERROR_TYPE) {
        Some("breaker_open") => "breaker open".to_owned(),
        Some("deadline") => "deadline exceeded".to_owned(),
        Some("refused") => "refused".to_owned(),
        Some("dead_lettered") => match culprit.attribute(DEAD_LETTER_REASON) {
            Some(reason) => format!("dead-lettered ({reason})"),
            None => "dead-lettered".to_owned(),
        },
        Some(other) if !culprit.status_message.is_empty() => format!("{other}: {}", culprit.status_message),
        Some(other) => other.to_owned(),
        None if !culprit.status_message.is_empty() => culprit.status_message.clone(),
        None => "error".to_owned(),
    };
    Some(format!("{why} at {hop}"))
}

/// The hop log: every span's `switchboard.log` line, by time.
fn log_lines(spans: &[Span]) -> Vec<&Span> {
    let mut lines: Vec<&Span> = spans.iter().filter(|s| s.attribute(LOG).is_some()).collect();
    lines.sort_by_key(|s| s.start);
    lines
}

/// The message the transaction carried: the text of its first hop log line, after the hop
/// label ("REST request: hello world from rest" → "hello world from rest").
fn body(spans: &[Span]) -> Option<String> {
    let first = log_lines(spans).into_iter().next()?.attribute(LOG)?;
    Some(first.split_once(": ").map_or(first, |(_, text)| text).to_owned())
}

pub(crate) fn summary(tx: &Transaction) -> Summary {
    let spans = &tx.spans;
    let (start, end) = start_end(spans);
    let mut services: Vec<String> = Vec::new();
    let mut by_start: Vec<&Span> = spans.iter().collect();
    by_start.sort_by_key(|s| s.start);
    for s in &by_start {
        if !services.iter().any(|known| **known == *s.service) {
            services.push(s.service.to_string());
        }
    }
    let name = root(spans).or(by_start.first().copied()).map(|s| s.name.clone()).unwrap_or_default();
    Summary {
        trace_id: hex(&tx.trace_id),
        status: status(spans),
        duration_ms: ms(end - start),
        start_unix_ms: start / 1_000_000,
        name,
        services,
        span_count: spans.len(),
        error: failure(spans),
        body: body(spans),
    }
}

fn attribute_map(attributes: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    attributes.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect()
}

pub(crate) fn detail(tx: &Transaction) -> Detail {
    let (start, end) = start_end(&tx.spans);
    let mut spans: Vec<&Span> = tx.spans.iter().collect();
    spans.sort_by_key(|s| (s.start, s.end));
    let views = spans
        .iter()
        .map(|s| SpanView {
            span_id: hex(&s.span_id),
            parent_span_id: s.parent.map(|p| hex(&p)).unwrap_or_default(),
            name: s.name.clone(),
            service: s.service.to_string(),
            instance: s.instance.to_string(),
            kind: s.kind.name(),
            start_unix_nanos: s.start.to_string(),
            end_unix_nanos: s.end.to_string(),
            offset_ms: ms(s.start.saturating_sub(start)),
            duration_ms: ms(s.end - s.start),
            status: s.status.name(),
            status_message: s.status_message.clone(),
            attributes: attribute_map(&s.attributes),
            events: s
                .events
                .iter()
                .map(|e| EventView {
                    name: e.name.clone(),
                    offset_ms: ms(e.time.saturating_sub(start)),
                    attributes: attribute_map(&e.attributes),
                })
                .collect(),
        })
        .collect();
    let log = log_lines(&tx.spans)
        .into_iter()
        .map(|s| LogLine {
            offset_ms: ms(s.start.saturating_sub(start)),
            service: s.service.to_string(),
            line: s.attribute(LOG).unwrap_or_default().to_owned(),
        })
        .collect();
    Detail {
        trace_id: hex(&tx.trace_id),
        status: status(&tx.spans),
        duration_ms: ms(end - start),
        start_unix_nanos: start.to_string(),
        error: failure(&tx.spans),
        spans: views,
        log,
    }
}

impl Filter {
    /// Whether `tx`, summarised as `summary`, passes the filters: failed only, slower than,
    /// and `q` as a trace id prefix, a message id, or text of the body or a log line.
    pub(crate) fn matches(&self, tx: &Transaction, summary: &Summary) -> bool {
        if self.failed && summary.status != "error" {
            return false;
        }
        if self.slower_ms.is_some_and(|min| summary.duration_ms < min) {
            return false;
        }
        let Some(q) = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
            return true;
        };
        let lower = q.to_lowercase();
        summary.trace_id.starts_with(&lower)
            || tx.spans.iter().any(|s| {
                s.attribute(MESSAGE_ID) == Some(q)
                    || s.attribute(LOG).is_some_and(|line| line.to_lowercase().contains(&lower))
            })
    }
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;

use std::sync::Arc;

use super::*;
use crate::otlp::{Kind, Span, Status};

fn span(id: u8, parent: Option<u8>, service: &str, hop: &str, start: u64, end: u64) -> Span {
    Span {
        trace_id: [9; 16],
        span_id: [id; 8],
        parent: parent.map(|p| [p; 8]),
        name: hop.into(),
        service: Arc::from(service),
        instance: Arc::from("i-1"),
        kind: Kind::Internal,
        start,
        end,
        status: Status::Unset,
        status_message: String::new(),
        attributes: vec![(HOP.into(), hop.into()), (LOG.into(), format!("{hop}: hello world"))],
        events: Vec::new(),
    }
}

fn failed(mut s: Span, error_type: &str) -> Span {
    s.status = Status::Error;
    s.status_message = "it broke".into();
    s.attributes.push((ERROR_TYPE.into(), error_type.into()));
    s
}

fn tx(spans: Vec<Span>) -> Transaction {
    Transaction { trace_id: [9; 16], spans, dropped_spans: 0 }
}

/// The chain of one message: the gateway's root, its publish, the relay's consume and gRPC
/// client, the processor's server.
fn chain() -> Vec<Span> {
    vec![
        span(1, None, "gateway", "REST request", 0, 10_000_000),
        span(2, Some(1), "gateway", "KAFKA Publisher", 1_000_000, 2_000_000),
        span(3, Some(2), "relay", "KAFKA Consumer", 3_000_000, 4_000_000),
        span(4, Some(3), "relay", "gRPC Client", 4_000_000, 6_000_000),
        span(5, Some(4), "processor", "gRPC Server", 4_500_000, 5_500_000),
    ]
}

#[test]
fn a_complete_chain_is_ok_with_its_services_in_order() {
    let s = summary(&tx(chain()));
    assert_eq!(s.status, "ok");
    assert_eq!(s.services, ["gateway", "relay", "processor"]);
    assert_eq!((s.span_count, s.duration_ms), (5, 10.0));
    assert_eq!(s.name, "REST request");
    assert_eq!(s.body.as_deref(), Some("hello world"));
    assert_eq!(s.error, None);
}

#[test]
fn without_its_root_a_transaction_is_partial() {
    let spans: Vec<Span> = chain().into_iter().skip(2).collect();
    assert_eq!(status(&spans), "partial");
}

#[test]
fn an_http_server_span_under_a_callers_traceparent_is_a_root() {
    let mut spans = chain();
    spans[0].parent = Some([77; 8]);
    spans[0].kind = Kind::Server;
    spans[0].attributes.push(("http.request.method".into(), "POST".into()));
    assert_eq!(status(&spans), "ok");
    // Any other span whose parent is missing is not.
    spans[0].attributes.retain(|(k, _)| k != "http.request.method");
    assert_eq!(status(&spans), "partial");
}

#[test]
fn a_failure_is_placed_at_the_deepest_failed_hop() {
    let mut spans = chain();
    spans[0] = failed(spans[0].clone(), "unavailable");
    spans[3] = failed(spans[3].clone(), "breaker_open");
    let s = summary(&tx(spans));
    assert_eq!(s.status, "error");
    assert_eq!(s.error.as_deref(), Some("breaker open at gRPC Client"));
}

#[test]
fn dead_letters_name_their_reason() {
    let mut spans = chain();
    let mut dead = failed(spans[2].clone(), "dead_lettered");
    dead.attributes.push((DEAD_LETTER_REASON.into(), "decode: bad envelope".into()));
    spans[2] = dead;
    assert_eq!(failure(&spans).as_deref(), Some("dead-lettered (decode: bad envelope) at KAFKA Consumer"));
    let mut plain = chain();
    plain[4].status = Status::Error;
    plain[4].status_message = "boom".into();
    assert_eq!(failure(&plain).as_deref(), Some("boom at gRPC Server"));
}

#[test]
fn the_detail_sorts_spans_and_log_lines_by_time() {
    let mut spans = chain();
    spans.reverse();
    let d = detail(&tx(spans));
    let starts: Vec<f64> = d.spans.iter().map(|s| s.offset_ms).collect();
    assert_eq!(starts, [0.0, 1.0, 3.0, 4.0, 4.5]);
    assert_eq!(d.spans[1].parent_span_id, "0101010101010101");
    assert_eq!(d.spans[0].parent_span_id, "");
    let lines: Vec<&str> = d.log.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(lines[0], "REST request: hello world");
    assert_eq!(lines[4], "gRPC Server: hello world");
    assert_eq!(d.log[2].service, "relay");
}

#[test]
fn filters_pick_failed_slow_and_matching_transactions() {
    let t = tx(chain());
    let s = summary(&t);
    assert!(Filter::default().matches(&t, &s));
    assert!(!Filter { failed: true, ..Filter::default() }.matches(&t, &s));
    assert!(Filter { slower_ms: Some(10.0), ..Filter::default() }.matches(&t, &s));
    assert!(!Filter { slower_ms: Some(10.5), ..Filter::default() }.matches(&t, &s));
    let q = |q: &str| Filter { q: Some(q.into()), ..Filter::default() }.matches(&t, &s);
    assert!(q("0909"), "trace id prefix");
    assert!(q("HELLO"), "log text, any case");
    assert!(!q("goodbye"));
}

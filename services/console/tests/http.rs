//! The console over HTTP: the OTLP receiver, the transactions API, the event stream, the
//! security headers and authentication.

mod support;

use http_types::Method;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use switchboard_console::{ConsoleConfig, Sources, CONTENT_SECURITY_POLICY};

use support::*;

#[test]
fn an_exported_trace_becomes_a_transaction_with_its_waterfall_and_hop_log() {
    run(async {
        let addr = start(ConsoleConfig::default(), Sources::default()).await;
        let trace = [0x11; 16];
        let relay = vec![
            span(trace, 3, Some(2), "KAFKA Consumer", SpanKind::Consumer, 3, 4),
            span(trace, 4, Some(3), "gRPC Client", SpanKind::Client, 4, 6),
        ];
        // The relay's spans arrive first: the transaction is partial until the root comes.
        let answer = export(addr, &request("relay", relay), &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let response = ExportTraceServiceResponse::decode(answer.body.as_slice()).expect("a protobuf answer");
        assert!(response.partial_success.is_none());
        let id = hex(&trace);
        let detail = get(addr, &format!("/api/transactions/{id}"), &[]).await.json();
        assert_eq!(detail["status"], "partial");
        assert_eq!(export(addr, &request("gateway", gateway_spans(trace)), &[]).await.status, 200);

        let list = get(addr, "/api/transactions", &[]).await.json();
        let item = &list["transactions"][0];
        assert_eq!(item["trace_id"], id.as_str());
        assert_eq!(item["status"], "ok");
        assert_eq!(item["span_count"], 4);
        assert_eq!(item["services"], serde_json::json!(["gateway", "relay"]));
        assert_eq!(item["duration_ms"], 10.0);

        let detail = get(addr, &format!("/api/transactions/{id}"), &[]).await.json();
        assert_eq!(detail["status"], "ok");
        let hops: Vec<&str> = detail["spans"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(hops, ["REST request", "KAFKA Publisher", "KAFKA Consumer", "gRPC Client"]);
        assert_eq!(detail["spans"][2]["kind"], "consumer");
        assert_eq!(detail["spans"][2]["instance"], "relay-0");
        assert_eq!(detail["spans"][1]["parent_span_id"], "0101010101010101");
        assert_eq!(detail["log"][3]["line"], "gRPC Client: hello world");
        assert_eq!(detail["log"][3]["service"], "relay");
        assert_eq!(detail["log"][3]["offset_ms"], 4.0);
        assert_eq!(get(addr, &format!("/api/transactions/{}", hex(&[0x22; 16])), &[]).await.status, 404);
    });
}

#[test]
fn a_failed_hop_marks_the_transaction_and_filters_find_it() {
    run(async {
        let addr = start(ConsoleConfig::default(), Sources::default()).await;
        let (good, bad) = ([0x31; 16], [0x32; 16]);
        export(addr, &request("gateway", gateway_spans(good)), &[]).await;
        let mut spans = gateway_spans(bad);
        spans[0] = failed(spans[0].clone(), "unavailable");
        spans.push(failed(span(bad, 4, Some(2), "gRPC Client", SpanKind::Client, 4, 5), "breaker_open"));
        export(addr, &request("gateway", spans), &[]).await;
        let failed = get(addr, "/api/transactions?failed=1", &[]).await.json();
        let list = failed["transactions"].as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["trace_id"], hex(&bad).as_str());
        assert_eq!(list[0]["error"], "breaker open at gRPC Client");
        let all = get(addr, "/api/transactions?q=HELLO&limit=1", &[]).await.json();
        assert_eq!(all["transactions"].as_array().unwrap().len(), 1);
        let by_id = get(addr, &format!("/api/transactions?q={}", &hex(&good)[..8]), &[]).await.json();
        assert_eq!(by_id["transactions"][0]["trace_id"], hex(&good).as_str());
        assert_eq!(get(addr, "/api/transactions?slower_ms=abc", &[]).await.status, 400);
    });
}

#[test]
fn bad_exports_get_clear_errors() {
    run(async {
        let addr = start(ConsoleConfig::default(), Sources::default()).await;
        let garbage =
            send(addr, Method::Post, "/v1/traces", &[("content-type", "application/x-protobuf")], vec![0xff; 64]).await;
        assert_eq!(garbage.status, 400);
        assert_eq!(garbage.json()["error"]["code"], "bad_request");
        let json =
            send(addr, Method::Post, "/v1/traces", &[("content-type", "application/json")], b"{}".to_vec()).await;
        assert_eq!(json.status, 415);
        // A body announced over 4 MiB is refused before it is read.
        let mut stream = async_std::net::TcpStream::connect(addr).await.unwrap();
        let head = "POST /v1/traces HTTP/1.1\r\nhost: console\r\ncontent-type: application/x-protobuf\r\ncontent-length: 4194305\r\n\r\n";
        futures_lite::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
        let mut seen = String::new();
        read_stream_until(&mut stream, &mut seen, "payload_too_large").await;
        assert!(seen.starts_with("HTTP/1.1 413"), "{seen}");
        // Spans without valid ids are refused, and the answer says how many.
        let mut bad = span([0; 16], 1, None, "x", SpanKind::Internal, 0, 1);
        bad.trace_id = vec![0; 16];
        let answer = export(addr, &request("gateway", vec![bad]), &[]).await;
        let response = ExportTraceServiceResponse::decode(answer.body.as_slice()).unwrap();
        assert_eq!(response.partial_success.map(|p| p.rejected_spans), Some(1));
        assert_eq!(get(addr, "/nowhere", &[]).await.json()["error"]["code"], "not_found");
    });
}

#[test]
fn every_response_carries_the_security_headers() {
    run(async {
        let addr = start(ConsoleConfig::default(), Sources::default()).await;
        for path in ["/", "/api/overview", "/nowhere", "/login"] {
            let answer = get(addr, path, &[]).await;
            assert_eq!(answer.header("content-security-policy"), Some(CONTENT_SECURITY_POLICY), "{path}");
            assert_eq!(answer.header("x-content-type-options"), Some("nosniff"), "{path}");
            assert_eq!(answer.header("referrer-policy"), Some("no-referrer"), "{path}");
        }
        assert!(
            CONTENT_SECURITY_POLICY.contains("script-src 'self'") && !CONTENT_SECURITY_POLICY.contains("unsafe-inline")
        );
        let index = get(addr, "/", &[]).await;
        assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(index.text().contains("<html"));
        let text = get(addr, "/healthz", &[]).await;
        assert_eq!((text.status, text.text().as_str()), (200, "ok"));
    });
}

#[test]
fn the_event_stream_delivers_a_new_transaction() {
    run(async {
        let addr = start(ConsoleConfig::default(), Sources::default()).await;
        let mut stream = open_stream(addr, "/api/events", "").await;
        let mut seen = String::new();
        read_stream_until(&mut stream, &mut seen, "retry: ").await;
        assert!(seen.contains("content-type: text/event-stream"), "{seen}");
        let trace = [0x44; 16];
        export(addr, &request("gateway", gateway_spans(trace)), &[]).await;
        read_stream_until(&mut stream, &mut seen, &hex(&trace)).await;
        let event = seen.split("\n\n").find(|e| e.contains(&hex(&trace))).unwrap();
        assert!(event.contains("event: transaction"), "{event}");
        let data = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let item: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(item["status"], "ok");
        // The overview follows every second.
        read_stream_until(&mut stream, &mut seen, "event: overview").await;
    });
}

#[test]
fn dead_letters_answer_until_a_handler_is_wired() {
    run(async {
        let addr = start(ConsoleConfig::default(), Sources::default()).await;
        let list = get(addr, "/api/dead-letters?source=all", &[]).await;
        assert_eq!(list.status, 503);
        assert_eq!(list.json()["error"]["message"], "dead letters not configured");
        let body = br#"{"source":"jobs","ids":["jobs:1"]}"#.to_vec();
        let redrive =
            send(addr, Method::Post, "/api/dead-letters/redrive", &[("content-type", "application/json")], body).await;
        assert_eq!(redrive.status, 403, "no token file and no --allow-redrive");
    });
}

//! A console on a free port, a tiny HTTP client, and OTLP requests built with the official
//! protobuf messages.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use async_std::net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use http_types::{Method, Request, Url};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;
use switchboard_console::{Console, ConsoleConfig, Sources};

/// A hang is a failure: no case may run forever.
pub const HANG: Duration = Duration::from_secs(120);

/// Runs `case`, failing it if it hangs.
pub fn run(case: impl std::future::Future<Output = ()>) {
    smol::block_on(futures_lite::future::or(case, async {
        async_io::Timer::after(HANG).await;
        panic!("the case hung for {HANG:?}");
    }));
}

/// Starts a console with `config` (on a free loopback port) and `sources`.
pub async fn start(config: ConsoleConfig, sources: Sources) -> SocketAddr {
    let config = ConsoleConfig { addr: "127.0.0.1:0".parse().unwrap(), ..config };
    let console = Console::bind(config, sources).await.expect("bind the console");
    let addr = console.local_addr().unwrap();
    smol::spawn(console.serve(futures_lite::future::pending())).detach();
    addr
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a connection of its own.
pub async fn send(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = Request::new(method, Url::parse(&format!("http://{addr}{path}")).unwrap());
    for (k, v) in headers {
        req.insert_header(*k, *v);
    }
    req.set_body(body);
    let mut res = async_h1::connect(stream, req).await.expect("exchange");
    let headers = res.iter().map(|(k, v)| (k.as_str().to_owned(), v.last().as_str().to_owned())).collect();
    let body = res.body_bytes().await.expect("body");
    Answer { status: u16::from(res.status()), headers, body }
}

pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(addr, Method::Get, path, headers, Vec::new()).await
}

/// Posts an OTLP export request.
pub async fn export(addr: SocketAddr, request: &ExportTraceServiceRequest, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("content-type", "application/x-protobuf")];
    all.extend_from_slice(headers);
    send(addr, Method::Post, "/v1/traces", &all, request.encode_to_vec()).await
}

pub fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// A span of trace `trace`: id `id`, parent `parent`, hop label and log line, times in ms.
pub fn span(
    trace: [u8; 16],
    id: u8,
    parent: Option<u8>,
    hop: &str,
    kind: span::SpanKind,
    start_ms: u64,
    end_ms: u64,
) -> Span {
    const BASE: u64 = 1_700_000_000_000_000_000;
    Span {
        trace_id: trace.to_vec(),
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: hop.into(),
        kind: kind as i32,
        start_time_unix_nano: BASE + start_ms * 1_000_000,
        end_time_unix_nano: BASE + end_ms * 1_000_000,
        attributes: vec![
            string("switchboard.hop", hop),
            string("switchboard.log", &format!("{hop}: hello world")),
            string("switchboard.message_id", "msg-1"),
        ],
        ..Default::default()
    }
}

/// Marks `span` failed with `error_type`.
pub fn failed(mut s: Span, error_type: &str) -> Span {
    s.status = Some(Status { message: "failed".into(), code: status::StatusCode::Error as i32 });
    s.attributes.push(string("error.type", error_type));
    s
}

/// An export request of `spans` from `service`.
pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service),
                    string("service.instance.id", &format!("{service}-0")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// The gateway's root (an HTTP server span) and its publish.
pub fn gateway_spans(trace: [u8; 16]) -> Vec<Span> {
    let mut root = span(trace, 1, None, "REST request", span::SpanKind::Server, 0, 10);
    root.attributes.push(string("http.request.method", "POST"));
    vec![root, span(trace, 2, Some(1), "KAFKA Publisher", span::SpanKind::Producer, 1, 2)]
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the raw stream of `GET path` until `until` is in it; returns all read.
pub async fn read_stream_until(stream: &mut TcpStream, seen: &mut String, until: &str) {
    let mut buf = [0u8; 8192];
    while !seen.contains(until) {
        let n = stream.read(&mut buf).await.expect("read the stream");
        assert!(n > 0, "the stream ended before {until:?}; got: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// Opens `GET path` and returns the raw stream after sending the request.
pub async fn open_stream(addr: SocketAddr, path: &str, headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream
}

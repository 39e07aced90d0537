//! Every error at the REST edge is the documented JSON error object, whoever produces it
//! (router, handler, body decoder), and the API describes itself at `/openapi.json`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;

use async_std::net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use switchboard::{Chain, ChainConfig, ChainJobs, HttpClient};
use switchboard_embedded::pubsub::MemoryBroker;

async fn start() -> Chain {
    let mut config = ChainConfig::default();
    config.gateway.addr = "127.0.0.1:0".parse().unwrap();
    config.processor.addr = "127.0.0.1:0".parse().unwrap();
    config.jobs = Some(ChainJobs::embedded());
    let broker = MemoryBroker::new();
    Chain::start(config, Arc::new(broker.clone()), Arc::new(broker)).await.expect("chain starts")
}

struct Raw {
    status: u16,
    /// Header lines, lower-cased.
    head: String,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    }

    /// The `{"error": {"code", "message"}}` object's code; panics on any other body.
    fn error_code(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.head);
        let body: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body));
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.body);
        assert_eq!(body.as_object().unwrap().len(), 1, "only `error`: {}", self.body);
        body["error"]["code"].as_str().expect("error.code").to_owned()
    }
}

async fn raw(addr: SocketAddr, method: &str, path: &str) -> Raw {
    let req = format!("{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    raw_bytes(addr, req.as_bytes()).await
}

#[test]
fn unknown_routes_and_wrong_methods_answer_json_errors_with_allow() {
    smol::block_on(async {
        let chain = start().await;
        let addr = chain.gateway_addr();
        for path in ["/nope", "/", "/messages/extra", "/jobs/a/b"] {
            let res = raw(addr, "GET", path).await;
            assert_eq!(res.status, 404, "GET {path}");
            assert_eq!(res.error_code(), "not_found", "GET {path}");
        }
        let cases = [
            ("GET", "/messages", "post"),
            ("PUT", "/messages", "post"),
            ("GET", "/jobs", "post"),
            ("DELETE", "/jobs/some-id", "get, head"),
            ("POST", "/healthz", "get, head"),
            ("POST", "/readyz", "get, head"),
            ("PATCH", "/metrics", "get, head"),
            ("POST", "/openapi.json", "get, head"),
            // Methods the HTTP parser does not know are answered the same way.
            ("QUERY", "/messages", "post"),
            ("QUERY", "/healthz", "get, head"),
            ("FROB", "/jobs/some-id", "get, head"),
        ];
        for (method, path, allow) in cases {
            let res = raw(addr, method, path).await;
            assert_eq!(res.status, 405, "{method} {path}");
            assert_eq!(res.error_code(), "method_not_allowed", "{method} {path}");
            assert_eq!(res.header("allow"), Some(allow), "{method} {path}");
        }
        let res = raw(addr, "QUERY", "/nope").await;
        assert_eq!((res.status, res.error_code().as_str()), (404, "not_found"));
        // A handler's own JSON error passes unchanged.
        let res = raw(addr, "GET", "/jobs/unknown").await;
        assert_eq!((res.status, res.error_code().as_str()), (404, "not_found"));
        chain.stop().await;
    });
}

#[test]
fn the_openapi_document_is_served_and_names_every_route() {
    smol::block_on(async {
        let chain = start().await;
        let res = raw(chain.gateway_addr(), "GET", "/openapi.json").await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("application/json"));
        let doc: serde_json::Value = serde_json::from_str(&res.body).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for path in ["/messages", "/jobs", "/jobs/{id}", "/healthz", "/readyz", "/metrics", "/openapi.json"] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        chain.stop().await;
    });
}

/// Bodies the decoder gets: arbitrary bytes, and near-JSON built from message-shaped pieces.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let near_json = (
        prop::sample::select(vec!["{\"message\":", "{\"message\": ", "{\"msg\":", "[", "{", "\"message\":"]),
        prop::sample::select(vec!["\"", "", "1", "null", "[", "{", "true"]),
        any::<String>(),
        prop::sample::select(vec!["\"}", "}", "\"", "", "]", "\"}}", "\", \"message\": 1}"]),
    )
        .prop_map(|(a, b, text, c)| format!("{a}{b}{text}{c}").into_bytes());
    prop_oneof![prop::collection::vec(any::<u8>(), 0..300), near_json]
}

#[test]
fn any_body_gets_a_json_answer_and_never_breaks_the_gateway() {
    let chain = smol::block_on(start());
    let client = RefCell::new(HttpClient::new(chain.gateway_addr()));
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    let strategy = (bodies(), prop::bool::ANY, prop::sample::select(vec!["application/json", "text/plain"]));
    runner
        .run(&strategy, |(body, jobs, content_type)| {
            let path = if jobs { "/jobs" } else { "/messages" };
            let reply = smol::block_on(client.borrow_mut().send(
                http_types::Method::Post,
                path,
                Some(content_type),
                body.clone(),
            ))
            .map_err(|e| TestCaseError::fail(format!("no answer to {path} {body:?}: {e:#}")))?;
            let json: serde_json::Value = serde_json::from_str(&reply.body)
                .map_err(|e| TestCaseError::fail(format!("{} not JSON ({e}): {:?}", reply.status, reply.body)))?;
            match reply.status {
                200 => prop_assert!(json["message"].is_string() && json["id"].is_string(), "{json}"),
                202 => prop_assert!(json["id"].is_string() && json["status"] == "queued", "{json}"),
                400 | 413 | 415 => {
                    prop_assert!(json["error"]["code"].is_string() && json["error"]["message"].is_string(), "{json}")
                }
                other => prop_assert!(false, "{path} {body:?} answered {other}: {json}"),
            }
            if content_type != "application/json" {
                prop_assert_eq!(reply.status, 415);
            }
            Ok(())
        })
        .unwrap();
    smol::block_on(chain.stop());
}

async fn raw_bytes(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    let got = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = got.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no answer: {got:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    Raw { status, head: head.to_ascii_lowercase(), body: body.to_owned() }
}

#[test]
fn heads_the_parser_refuses_get_a_json_error_before_the_close() {
    smol::block_on(async {
        let chain = start().await;
        let addr = chain.gateway_addr();
        let huge = format!("GET /healthz HTTP/1.1\r\nhost: t\r\nx-big: {}\r\n\r\n", "a".repeat(9000));
        let many: String = (0..130).map(|i| format!("x-{i}: v\r\n")).collect();
        let many = format!("GET /healthz HTTP/1.1\r\nhost: t\r\n{many}\r\n");
        let cases: [(&[u8], u16, &str); 5] = [
            (b"GET /healthz HTTP/1.0\r\nhost: t\r\n\r\n", 505, "http_version_not_supported"),
            (b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-latin: caf\xe9\r\n\r\n", 400, "bad_request"),
            (b"NOT A REQUEST\r\n\r\n", 400, "bad_request"),
            (huge.as_bytes(), 431, "headers_too_large"),
            (many.as_bytes(), 431, "headers_too_large"),
        ];
        for (request, status, code) in cases {
            let res = raw_bytes(addr, request).await;
            let shown = String::from_utf8_lossy(&request[..request.len().min(40)]).into_owned();
            assert_eq!(res.status, status, "{shown}");
            assert_eq!(res.error_code(), code, "{shown}");
        }
        // The gateway still serves.
        assert_eq!(raw(addr, "GET", "/healthz").await.status, 200);
        chain.stop().await;
    });
}

#[test]
fn a_header_that_may_come_once_sent_twice_is_refused_before_any_handler() {
    smol::block_on(async {
        let chain = start().await;
        let addr = chain.gateway_addr();
        let body = r#"{"message":"twice"}"#;
        let len = body.len();
        let cases = [
            format!("authorization: Bearer a\r\nauthorization: Bearer b\r\ncontent-type: application/json\r\ncontent-length: {len}"),
            format!("content-type: application/json\r\ncontent-length: {len}\r\ncontent-length: {len}"),
            format!("content-type: application/json\r\nContent-Type: text/plain\r\ncontent-length: {len}"),
            format!("content-type: application/json\r\ncontent-length: {len}\r\nidempotency-key: twice-1\r\nIdempotency-Key: twice-2"),
        ];
        for headers in cases {
            for path in ["/jobs", "/messages"] {
                let request = format!("POST {path} HTTP/1.1\r\nhost: t\r\n{headers}\r\n\r\n{body}");
                let res = raw_bytes(addr, request.as_bytes()).await;
                assert_eq!(res.status, 400, "POST {path} with {headers:?}: {}", res.body);
                assert_eq!(res.error_code(), "duplicate_header", "{headers:?}");
                assert_eq!(res.header("connection"), Some("close"), "{headers:?}");
            }
        }
        // Once each, the same request is served.
        let request = format!(
            "POST /jobs HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n{body}"
        );
        assert_eq!(raw_bytes(addr, request.as_bytes()).await.status, 202);
        chain.stop().await;
    });
}

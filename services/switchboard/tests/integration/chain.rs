//! End to end on the embedded broker: the real gateway, relay and processor (real gRPC),
//! through `Chain`, driven over HTTP.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hello::CHAIN_RESULT;
use serde_json::json;
use switchboard::{Chain, ChainConfig, HttpClient};
use switchboard_embedded::pubsub::MemoryBroker;

fn free_port_config() -> ChainConfig {
    let mut c = ChainConfig::default();
    c.gateway.addr = "127.0.0.1:0".parse().unwrap();
    c.processor.addr = "127.0.0.1:0".parse().unwrap();
    c
}

async fn start(config: ChainConfig) -> Chain {
    start_with_broker(config).await.0
}

async fn start_with_broker(config: ChainConfig) -> (Chain, MemoryBroker) {
    let broker = MemoryBroker::new();
    let chain = Chain::start(config, Arc::new(broker.clone()), Arc::new(broker.clone())).await.expect("chain starts");
    (chain, broker)
}

#[test]
fn hello_world_comes_back_upper_cased_with_every_hop() {
    smol::block_on(async {
        let chain = start(free_port_config()).await;
        let mut client = HttpClient::new(chain.gateway_addr());
        let reply = client.post_json("/messages", &json!({"message": "hello world"})).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["message"], CHAIN_RESULT);
        assert!(!body["id"].as_str().unwrap().is_empty());
        let hops: Vec<(String, String)> = body["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h["name"].as_str().unwrap().to_string(), h["service"].as_str().unwrap().to_string()))
            .collect();
        let expected = [
            ("REST request", "gateway"),
            ("KAFKA Publisher", "gateway"),
            ("KAFKA Consumer", "relay"),
            ("gRPC Client", "relay"),
            ("gRPC Server", "processor"),
            ("KAFKA Publisher", "processor"),
            ("KAFKA Consumer", "gateway"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(hops, expected);
        let elapsed: Vec<i64> =
            body["hops"].as_array().unwrap().iter().map(|h| h["elapsed_us"].as_i64().unwrap()).collect();
        assert!(elapsed.windows(2).all(|w| w[0] <= w[1]), "timeline goes forward: {elapsed:?}");
        chain.stop().await;
    });
}

#[test]
fn a_hundred_concurrent_requests_each_get_their_own_reply() {
    smol::block_on(async {
        let chain = start(free_port_config()).await;
        let addr = chain.gateway_addr();
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                smol::spawn(async move {
                    let mut client = HttpClient::new(addr);
                    let reply = client
                        .post_json("/messages", &json!({"message": format!("message number {i}")}))
                        .await
                        .unwrap();
                    (i, reply)
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            let (i, reply) = t.await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let body = reply.json();
            let expected = format!("MESSAGE NUMBER {i} FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER");
            assert_eq!(body["message"], expected.as_str());
            assert!(ids.insert(body["id"].as_str().unwrap().to_string()), "ids are unique");
        }
        assert_eq!(chain.pending_requests(), 0);
        chain.stop().await;
    });
}

#[track_caller]
fn assert_json_error(reply: &switchboard::HttpReply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], code, "{}", reply.body);
    assert!(reply.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn bad_input_gets_a_4xx_with_a_json_error_body() {
    use http_types::Method;
    smol::block_on(async {
        let chain = start(free_port_config()).await;
        let mut c = HttpClient::new(chain.gateway_addr());
        let json_ct = Some("application/json");
        let r = c.send(Method::Post, "/messages", json_ct, b"{\"message\": ".to_vec()).await.unwrap();
        assert_json_error(&r, 400, "invalid_json");
        let r = c.send(Method::Post, "/messages", json_ct, b"{\"text\": \"hi\"}".to_vec()).await.unwrap();
        assert_json_error(&r, 400, "missing_message");
        let r = c.send(Method::Post, "/messages", json_ct, b"{\"message\": \"  \"}".to_vec()).await.unwrap();
        assert_json_error(&r, 400, "empty_message");
        let r = c.send(Method::Post, "/messages", json_ct, b"{\"message\": 42}".to_vec()).await.unwrap();
        assert_json_error(&r, 400, "invalid_json");
        let r = c.send(Method::Post, "/messages", Some("text/plain"), b"hello world".to_vec()).await.unwrap();
        assert_json_error(&r, 415, "unsupported_media_type");
        let r = c.send(Method::Post, "/messages", None, b"{\"message\": \"hi\"}".to_vec()).await.unwrap();
        assert_json_error(&r, 415, "unsupported_media_type");
        let big = serde_json::to_vec(&json!({"message": "x".repeat(70 * 1024)})).unwrap();
        let r = c.send(Method::Post, "/messages", json_ct, big).await.unwrap();
        assert_json_error(&r, 413, "payload_too_large");
        let ok = c.post_json("/messages", &json!({"message": "still fine"})).await.unwrap();
        assert_eq!(ok.status, 200, "bad requests leave the gateway serving: {}", ok.body);
        let health = c.get("/healthz").await.unwrap();
        assert_eq!(health.status, 200);
        assert_eq!(health.json()["status"], "ok");
        chain.stop().await;
    });
}

fn unused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn no_processor_means_504_within_the_deadline_and_the_pending_entry_is_freed() {
    smol::block_on(async {
        let mut config = free_port_config();
        config.without_processor = true;
        config.processor.addr = unused_addr();
        config.gateway.request_timeout = Duration::from_millis(800);
        let chain = start(config).await;
        let mut client = HttpClient::new(chain.gateway_addr());
        let started = Instant::now();
        let reply = client.post_json("/messages", &json!({"message": "hello world"})).await.unwrap();
        let took = started.elapsed();
        assert_json_error(&reply, 504, "deadline_exceeded");
        assert!(took < Duration::from_secs(3), "answered near the 800 ms deadline, took {took:?}");
        assert_eq!(chain.pending_requests(), 0, "the pending entry is freed");
        chain.stop().await;
    });
}

#[test]
fn a_poison_request_is_dead_lettered_with_its_reason_and_the_chain_keeps_serving() {
    use switchboard_ports::{Message, Publisher, Subscriber};
    smol::block_on(async {
        let config = free_port_config();
        let (requests, dlq) = (config.relay.requests_topic.clone(), config.relay.dead_letter_topic.clone());
        let (chain, broker) = start_with_broker(config).await;
        let dead = broker.subscribe(&dlq, "dlq-reader").await.unwrap();
        broker.publish(&requests, Message::new(b"\xff\x00not protobuf".to_vec()).with_key("bad")).await.unwrap();
        let d = dead.recv().await.unwrap();
        assert_eq!(d.message().payload, b"\xff\x00not protobuf");
        assert!(d.message().header_str("x-switchboard-error").is_some_and(|r| r.contains("undecodable")));
        d.ack();
        let mut client = HttpClient::new(chain.gateway_addr());
        let reply = client.post_json("/messages", &json!({"message": "hello world"})).await.unwrap();
        assert_eq!(reply.json()["message"], CHAIN_RESULT);
        chain.stop().await;
    });
}

#[test]
fn metrics_readiness_and_trace_context_after_one_transaction() {
    use http_types::Method;
    smol::block_on(async {
        let chain = start(free_port_config()).await;
        let mut c = HttpClient::new(chain.gateway_addr());
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let body = serde_json::to_vec(&json!({"message": "hello world"})).unwrap();
        let reply = c
            .send_with(Method::Post, "/messages", Some("application/json"), &[("traceparent", incoming)], body)
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let tp = reply.traceparent.expect("traceparent in the reply");
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "same trace: {tp}");
        assert_ne!(tp, incoming, "the gateway's own span");

        let ready = c.get("/readyz").await.unwrap();
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_eq!(ready.json()["ready"], true);

        let expected = [
            r#"http_requests_total{route="/messages",method="POST",status="200"} 1"#,
            r#"messages_published_total{topic="switchboard.requests",outcome="ok"} 1"#,
            r#"messages_published_total{topic="switchboard.replies",outcome="ok"} 1"#,
            r#"messages_consumed_total{topic="switchboard.requests"} 1"#,
            r#"messages_consumed_total{topic="switchboard.replies"} 1"#,
            r#"grpc_calls_total{method="/switchboard.v1.Processor/ProcessBatch",code="OK"} 2"#,
            r#"breaker_state{breaker="relay_processor"} 0"#,
            r#"breaker_state{breaker="gateway_publish"} 0"#,
            r#"hop_duration_seconds_count{hop="grpc_call"} 1"#,
            r#"hop_duration_seconds_count{hop="reply_queue"} 1"#,
            "http_requests_in_flight",
        ];
        // The relay counts its gRPC call when the answer arrives, which may be just after the
        // caller got the reply: poll briefly.
        let mut text = String::new();
        for _ in 0..50 {
            let metrics = c.get("/metrics").await.unwrap();
            assert_eq!(metrics.status, 200);
            text = metrics.body;
            if expected.iter().all(|series| text.contains(series)) {
                break;
            }
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
        for series in expected {
            assert!(text.contains(series), "missing {series} in\n{text}");
        }
        chain.stop().await;
    });
}

#[test]
fn connections_beyond_the_limit_wait_until_one_closes() {
    smol::block_on(async {
        let mut config = free_port_config();
        config.gateway.max_connections = 1;
        let chain = start(config).await;
        let addr = chain.gateway_addr();
        let mut first = HttpClient::new(addr);
        assert_eq!(first.get("/healthz").await.unwrap().status, 200);
        let second = smol::spawn(async move { HttpClient::new(addr).get("/healthz").await.map(|r| r.status).ok() });
        async_io::Timer::after(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "served beyond the connection limit");
        drop(first); // frees the only slot
        assert_eq!(second.await, Some(200));
        chain.stop().await;
    });
}

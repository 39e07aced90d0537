//! Trace export end to end on the embedded broker: the chain's services export their spans over
//! OTLP/HTTP to a receiver in this test, which decodes them with the OpenTelemetry messages.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_types::Method;
use prost::Message;
use serde_json::json;
use switchboard::{Chain, ChainConfig, ChainJobs, HttpClient, HttpReply};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
use switchboard_otlp::proto::common::v1::any_value::Value;
use switchboard_otlp::proto::common::v1::KeyValue;
use switchboard_otlp::proto::trace::v1::span::SpanKind;
use switchboard_otlp::proto::trace::v1::status::StatusCode;
use switchboard_otlp::{ExportConfig, Exporter, Policy, Sampler};

/// One received span with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: switchboard_otlp::proto::trace::v1::Span,
}

impl Received {
    fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn span_id(&self) -> String {
        Self::hex(&self.span.span_id)
    }

    fn parent(&self) -> String {
        Self::hex(&self.span.parent_span_id)
    }
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    })
}

/// A minimal OTLP/HTTP receiver: POST /v1/traces, protobuf body, 200 with an empty answer.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let store = spans.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let store = store.clone();
                std::thread::spawn(move || serve(conn, store));
            }
        });
        Receiver { addr, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// The spans of `trace_id` once `count` of them arrived; fails after 20 s.
    fn wait_for(&self, trace_id: &str, count: usize) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let found: Vec<Received> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|r| Received::hex(&r.span.trace_id) == trace_id)
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} of {count} spans of {trace_id}: {found:#?}",
                found.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(conn: TcpStream, store: Arc<Mutex<Vec<Received>>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
            head.push_str(&line);
        }
        assert!(head.starts_with("POST /v1/traces HTTP/1.1"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/x-protobuf"), "{head}");
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an ExportTraceServiceRequest");
        {
            let mut store = store.lock().unwrap();
            for rs in request.resource_spans {
                let service = attr(&rs.resource.unwrap_or_default().attributes, "service.name").unwrap_or_default();
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        store.push(Received { service: service.clone(), span });
                    }
                }
            }
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// A chain on free ports, with `jobs`, whose services export their spans to `receiver`.
fn traced_chain(receiver: &Receiver, sampler: Sampler, jobs: Option<ChainJobs>) -> (ChainConfig, Exporter) {
    let exporter = Exporter::start(ExportConfig {
        endpoint: Some(receiver.endpoint()),
        delay: Duration::from_millis(20),
        policy: Policy { sampler, ..Policy::default() },
        ..ExportConfig::default()
    })
    .unwrap();
    let mut config = ChainConfig::default();
    config.gateway.addr = "127.0.0.1:0".parse().unwrap();
    config.processor.addr = "127.0.0.1:0".parse().unwrap();
    // Before traced_by, which gives the worker its tracer only when there is one.
    config.jobs = jobs;
    (config.traced_by(&exporter), exporter)
}

/// The spans linked from the caller's span: its child, that span's child, and so on; each
/// span's child is the next hop.
fn connected_from<'a>(spans: &'a [Received], caller: &str) -> Vec<&'a Received> {
    let mut order = Vec::new();
    let mut parent = caller.to_string();
    while let Some(next) = spans.iter().find(|s| s.parent() == parent) {
        order.push(next);
        parent = next.span_id();
    }
    order
}

/// The hops (service, hop, span kind) from the gateway's REST request to the processor: published
/// on `broker` (`KAFKA`, `RABBITMQ`) and consumed by `consumer`, which calls the processor.
fn hops_to_processor(broker: &str, consumer: &'static str) -> Vec<(&'static str, String, SpanKind)> {
    vec![
        ("gateway", "REST request".into(), SpanKind::Server),
        ("gateway", format!("{broker} Publisher"), SpanKind::Producer),
        (consumer, format!("{broker} Consumer"), SpanKind::Consumer),
        (consumer, "gRPC Client".into(), SpanKind::Client),
        ("processor", "gRPC Server".into(), SpanKind::Server),
    ]
}

/// The chain on one in-memory broker, and the reply to a POST of `{"message": "hello world"}` to
/// `path` that carries the caller's `traceparent`.
async fn start_and_post(config: ChainConfig, path: &str, traceparent: &str) -> (Chain, HttpReply) {
    let broker = MemoryBroker::new();
    let chain = Chain::start(config, Arc::new(broker.clone()), Arc::new(broker)).await.unwrap();
    let body = serde_json::to_vec(&json!({"message": "hello world"})).unwrap();
    let reply = HttpClient::new(chain.gateway_addr())
        .send_with(Method::Post, path, Some("application/json"), &[("traceparent", traceparent)], body)
        .await
        .unwrap();
    (chain, reply)
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn one_transaction_is_seven_connected_spans_across_gateway_relay_and_processor() {
    let receiver = Receiver::start();
    // The default sampler at ratio 0: only the caller's sampled flag makes this trace exported.
    let (config, exporter) = traced_chain(&receiver, Sampler::ParentBasedTraceIdRatio(0.0), None);
    let (chain, reply) = smol::block_on(start_and_post(config, "/messages", &format!("00-{TRACE}-{CALLER_SPAN}-01")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply_tp = reply.traceparent.expect("traceparent in the reply");
    let mut spans = receiver.wait_for(TRACE, 7);
    assert_eq!(spans.len(), 7, "{spans:#?}");
    spans.sort_by_key(|s| s.span.start_time_unix_nano);

    let chain_order = connected_from(&spans, CALLER_SPAN);
    let seen: Vec<(String, Option<String>)> =
        chain_order.iter().map(|s| (s.service.clone(), s.attr("switchboard.hop"))).collect();
    assert_eq!(chain_order.len(), 7, "a connected chain of every span: {seen:?}");
    // Then the reply's way back: the processor publishes it, the gateway consumes it.
    let mut expected = hops_to_processor("KAFKA", "relay");
    expected.push(("processor", "KAFKA Publisher".into(), SpanKind::Producer));
    expected.push(("gateway", "KAFKA Consumer".into(), SpanKind::Consumer));
    for (span, (service, hop, kind)) in chain_order.iter().zip(expected) {
        assert_eq!((span.service.as_str(), span.attr("switchboard.hop").unwrap().as_str()), (service, hop.as_str()));
        assert_eq!(span.span.kind, kind as i32, "{hop} on {service}");
        assert!(span.span.status.as_ref().is_none_or(|s| s.code != StatusCode::Error as i32), "{span:?}");
        assert!(span.attr("switchboard.message_id").is_some_and(|id| !id.is_empty()));
        assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
    }
    let root = &chain_order[0];
    assert_eq!(reply_tp, format!("00-{TRACE}-{}-01", root.span_id()), "the reply names the root span");
    assert_eq!(root.attr("http.request.method").as_deref(), Some("POST"));
    assert_eq!(root.attr("http.route").as_deref(), Some("/messages"));
    assert_eq!(root.attr("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(root.attr("switchboard.log").as_deref(), Some("REST request: hello world from rest"));
    // Every hop starts within the root span; the relay's may end after it (the processor
    // publishes the reply before it answers the relay's call).
    let (root_start, root_end) = (root.span.start_time_unix_nano, root.span.end_time_unix_nano);
    assert!(chain_order.iter().all(|s| (root_start..=root_end).contains(&s.span.start_time_unix_nano)));
    assert!(chain_order[6].span.end_time_unix_nano <= root_end, "the reply is received before the response");
    for messaging in [&chain_order[1], &chain_order[2], &chain_order[5], &chain_order[6]] {
        assert_eq!(messaging.attr("messaging.system").as_deref(), Some("kafka"), "{messaging:?}");
        assert!(messaging.attr("messaging.destination.name").is_some(), "{messaging:?}");
    }
    assert_eq!(chain_order[2].attr("messaging.consumer.group.name").as_deref(), Some("switchboard-relay"));
    assert!(chain_order[2].attr("messaging.kafka.offset").is_some());
    for rpc in [&chain_order[3], &chain_order[4]] {
        assert_eq!(rpc.attr("rpc.system").as_deref(), Some("grpc"));
        assert_eq!(rpc.attr("rpc.service").as_deref(), Some("switchboard.v1.Processor"));
        assert_eq!(rpc.attr("rpc.grpc.status_code").as_deref(), Some("0"));
    }
    let last = chain_order[6].attr("switchboard.log").unwrap();
    assert!(last.starts_with("KAFKA Consumer: hello world from rest and Kafka publisher"), "{last}");

    let metrics = chain.metrics().clone();
    smol::block_on(chain.stop());
    exporter.shutdown();
    let text = metrics.encode();
    assert!(text.contains("otlp_spans_exported_total 7"), "{text}");
}

#[test]
fn an_unsampled_failure_is_still_exported_where_it_failed() {
    let receiver = Receiver::start();
    let (mut config, exporter) = traced_chain(&receiver, Sampler::ParentBasedTraceIdRatio(0.0), None);
    // No processor: the relay's calls fail and, once the breaker opens, fail fast.
    config.without_processor = true;
    config.processor.addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    config.gateway.request_timeout = Duration::from_secs(2);
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let statuses = smol::block_on(async {
        let (chain, reply) = start_and_post(config, "/messages", &format!("00-{trace}-b7ad6b7169203331-00")).await;
        chain.stop().await;
        reply.status
    });
    assert!(statuses >= 500, "the chain cannot answer without a processor: {statuses}");
    // The gateway's three spans and the relay's two, all kept for the failure alone.
    let spans = receiver.wait_for(trace, 5);
    let by_service: HashMap<&str, Vec<&Received>> = spans.iter().fold(HashMap::new(), |mut m, s| {
        m.entry(s.service.as_str()).or_default().push(s);
        m
    });
    let root = by_service["gateway"].iter().find(|s| s.span.kind == SpanKind::Server as i32).expect("root span");
    assert_eq!(root.span.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
    assert!(root.attr("error.type").is_some(), "{root:?}");
    let call = by_service["relay"].iter().find(|s| s.span.kind == SpanKind::Client as i32).expect("the failed call");
    assert_eq!(call.span.status.as_ref().map(|s| s.code), Some(StatusCode::Error as i32));
    let error_type = call.attr("error.type").unwrap();
    assert!(["deadline", "breaker_open", "unavailable"].contains(&error_type.as_str()), "{error_type}");
    assert!(!by_service.contains_key("processor"));
    exporter.shutdown();
}

#[test]
fn a_job_is_connected_spans_from_the_gateway_through_the_worker_to_the_processor() {
    let receiver = Receiver::start();
    let (config, exporter) =
        traced_chain(&receiver, Sampler::ParentBasedTraceIdRatio(0.0), Some(ChainJobs::embedded()));
    let trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    let caller = "10f067aa0ba902b7";
    let (chain, reply) = smol::block_on(start_and_post(config, "/jobs", &format!("00-{trace}-{caller}-01")));
    assert_eq!(reply.status, 202, "{}", reply.body);
    // Gateway SERVER and PRODUCER, worker CONSUMER and CLIENT, processor SERVER.
    let spans = receiver.wait_for(trace, 5);
    let order: Vec<_> = connected_from(&spans, caller)
        .iter()
        .map(|s| (s.service.clone(), s.attr("switchboard.hop").unwrap_or_default(), s.span.kind))
        .collect();
    let expected: Vec<_> =
        hops_to_processor("RABBITMQ", "worker").into_iter().map(|(s, h, k)| (s.to_string(), h, k as i32)).collect();
    assert_eq!(order, expected, "{spans:#?}");
    let publish = spans.iter().find(|s| s.span.kind == SpanKind::Producer as i32).unwrap();
    assert_eq!(publish.attr("messaging.system").as_deref(), Some("rabbitmq"));
    smol::block_on(chain.stop());
    exporter.shutdown();
}

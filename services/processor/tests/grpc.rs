//! The processor over real gRPC on loopback, with the embedded broker behind it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use grpcio::{CallOption, ChannelBuilder, Environment, RpcStatusCode};
use switchboard_embedded::pubsub::{BrokerConfig, MemoryBroker};
use switchboard_grpc::client::ProcessorClientBuilder;
use switchboard_ports::Subscriber;
use switchboard_processor::{ProcessorServer, ServerConfig, HEALTH_SERVICE_NAME};
use switchboard_proto::convert::Stage;
use switchboard_proto::health::{HealthCheckRequest, HealthClient, ServingStatus};
use switchboard_proto::{Envelope, ProcessRequest, ProcessorClient};
use switchboard_topology::topics::ReplyTopics;

/// A processor on a free port that may reply to `replies` only, publishing to `broker`.
fn start_on(broker: &MemoryBroker) -> ProcessorServer {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        reply_topics: ReplyTopics::only("replies"),
        ..ServerConfig::default()
    };
    ProcessorServer::start(&config, Arc::new(broker.clone())).unwrap()
}

/// Runs `test` with a gRPC client of a processor publishing to `broker` (passed on too), then
/// shuts the processor down.
fn with_processor<T: Future<Output = ()>>(broker: MemoryBroker, test: impl FnOnce(ProcessorClient, MemoryBroker) -> T) {
    let server = start_on(&broker);
    smol::block_on(async {
        test(ProcessorClientBuilder::new(server.local_addr().to_string()).connect(), broker).await;
        server.shutdown().await;
    });
}

fn code_of(err: &grpcio::Error) -> Option<RpcStatusCode> {
    match err {
        grpcio::Error::RpcFailure(s) => Some(s.code()),
        _ => None,
    }
}

fn request(envelope: Envelope) -> ProcessRequest {
    let mut r = ProcessRequest::new();
    r.envelope = Some(envelope).into();
    r
}

#[test]
fn process_appends_its_hops_and_publishes_the_reply_before_answering() {
    with_processor(MemoryBroker::new(), |client, broker| async move {
        let replies = broker.subscribe("replies", "test").await.unwrap();
        let mut envelope = Envelope::start("id-1", "x", "replies", Duration::from_secs(5));
        envelope.record(Stage::GrpcClient, "test");
        let resp = client.process_async(&request(envelope)).unwrap().await.unwrap();
        let answered = resp.envelope.unwrap();
        assert_eq!(answered.body, "x and gRPC client and gRPC server and Kafka publisher");
        let published = replies.recv().await.unwrap();
        assert_eq!(Envelope::decode(&published.message().payload).unwrap(), answered);
        assert_eq!(published.message().header_str("correlation-id"), Some("id-1"));
        published.ack();
        let job = Envelope::start("job-1", "y", "", Duration::from_secs(5));
        let answered = client.process_async(&request(job)).unwrap().await.unwrap().envelope.unwrap();
        assert_eq!(answered.body, "y and gRPC server", "no reply topic: answered over gRPC, nothing published");
    });
}

#[test]
fn invalid_and_expired_envelopes_get_proper_status_codes() {
    with_processor(MemoryBroker::new(), |client, _| async move {
        let missing = client.process_async(&ProcessRequest::new()).unwrap().await.unwrap_err();
        assert!(
            matches!(missing, grpcio::Error::RpcFailure(ref s) if s.code() == RpcStatusCode::INVALID_ARGUMENT),
            "{missing:?}"
        );
        let mut expired = Envelope::start("id-2", "x", "replies", Duration::from_secs(5));
        expired.deadline_unix_ms = switchboard_proto::convert::now_millis() - 10;
        let err = client.process_async(&request(expired)).unwrap().await.unwrap_err();
        assert!(
            matches!(err, grpcio::Error::RpcFailure(ref s) if s.code() == RpcStatusCode::DEADLINE_EXCEEDED),
            "{err:?}"
        );
    });
}

#[test]
fn standard_health_service_reports_serving() {
    let server = start_on(&MemoryBroker::new());
    let env = Arc::new(Environment::new(1));
    let channel = ChannelBuilder::new(env).connect(&server.local_addr().to_string());
    let health = HealthClient::new(channel);
    let mut req = HealthCheckRequest::new();
    req.service = HEALTH_SERVICE_NAME.to_string();
    let resp = health.check_opt(&req, CallOption::default().timeout(Duration::from_secs(5))).unwrap();
    assert_eq!(resp.status.enum_value(), Ok(ServingStatus::SERVING));
    req.service = "no.such.Service".into();
    let err = health.check_opt(&req, CallOption::default().timeout(Duration::from_secs(5))).unwrap_err();
    assert!(matches!(err, grpcio::Error::RpcFailure(ref s) if s.code() == RpcStatusCode::NOT_FOUND), "{err:?}");
    smol::block_on(server.shutdown());
}

#[test]
fn replies_go_only_to_allowed_topics_and_never_create_one() {
    with_processor(MemoryBroker::new(), |client, broker| async move {
        for topic in ["switchboard.requests", "no.such.topic", "replies.other"] {
            let e = Envelope::start("id-5", "x", topic, Duration::from_secs(5));
            let err = client.process_async(&request(e)).unwrap().await.unwrap_err();
            assert_eq!(code_of(&err), Some(RpcStatusCode::INVALID_ARGUMENT), "{topic}: {err:?}");
            assert!(err.to_string().contains("not an allowed reply topic"), "{err}");
            assert_eq!(broker.partitions(topic), None, "{topic} was created by a message");
        }
    });
}

#[test]
fn an_envelope_that_already_carries_a_reply_is_refused() {
    with_processor(MemoryBroker::new(), |client, broker| async move {
        let mut processed = Envelope::start("id-6", "x", "replies", Duration::from_secs(5));
        processed.record(Stage::GrpcServer, "processor");
        let mut failed = Envelope::start("id-7", "x", "replies", Duration::from_secs(5));
        failed.fail(switchboard_proto::failure::Code::INTERNAL, "boom", None);
        for e in [processed, failed] {
            let err = client.process_async(&request(e)).unwrap().await.unwrap_err();
            assert_eq!(code_of(&err), Some(RpcStatusCode::INVALID_ARGUMENT), "{err:?}");
        }
        assert_eq!(broker.end_offsets("replies"), None, "no reply to a reply");
    });
}

#[test]
fn a_reply_that_can_never_be_published_is_failed_precondition_not_unavailable() {
    // The allowed topic does not exist and the broker does not create topics: permanent.
    let broker = MemoryBroker::with_config(BrokerConfig { auto_create_topics: false, ..BrokerConfig::default() });
    with_processor(broker, |client, _| async move {
        let e = Envelope::start("id-8", "x", "replies", Duration::from_secs(5));
        let err = client.process_async(&request(e)).unwrap().await.unwrap_err();
        assert_eq!(code_of(&err), Some(RpcStatusCode::FAILED_PRECONDITION), "{err:?}");
    });
}

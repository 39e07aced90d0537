//! `grpc.health.v1.Health/Watch` on the processor: the stream its callers' channels health-check
//! over.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use grpcio::{ChannelBuilder, ClientSStreamReceiver, Environment, RpcStatusCode};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_processor::{ProcessorServer, ServerConfig, HEALTH_SERVICE_NAME};
use switchboard_proto::health::{HealthCheckRequest, HealthCheckResponse, HealthClient, ServingStatus};
use switchboard_testkit::block_on_within;
use switchboard_topology::topics::ReplyTopics;

const LIMIT: Duration = Duration::from_secs(30);

fn start() -> ProcessorServer {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        reply_topics: ReplyTopics::only("replies"),
        ..ServerConfig::default()
    };
    ProcessorServer::start(&config, Arc::new(MemoryBroker::new())).unwrap()
}

fn health_client(server: &ProcessorServer) -> HealthClient {
    let env = Arc::new(Environment::new(1));
    HealthClient::new(ChannelBuilder::new(env).connect(&server.local_addr().to_string()))
}

fn watch(client: &HealthClient, service: &str) -> ClientSStreamReceiver<HealthCheckResponse> {
    let mut req = HealthCheckRequest::new();
    req.service = service.to_string();
    client.watch(&req).unwrap()
}

/// The next status the stream reports other than `skip` (the periodic resend of the status
/// already seen); `None` once the stream ended.
async fn next_other_than(
    stream: &mut ClientSStreamReceiver<HealthCheckResponse>,
    skip: Option<ServingStatus>,
) -> Option<ServingStatus> {
    loop {
        let resp = stream.next().await?.expect("a health message");
        let status = resp.status.enum_value().expect("a known status");
        if Some(status) != skip {
            return Some(status);
        }
    }
}

#[test]
fn watch_sends_the_status_at_once_then_each_change_and_ends_at_shutdown() {
    let server = start();
    let client = health_client(&server);
    let health = server.health().clone();
    block_on_within(LIMIT, async {
        for service in ["", HEALTH_SERVICE_NAME] {
            let mut stream = watch(&client, service);
            assert_eq!(next_other_than(&mut stream, None).await, Some(ServingStatus::SERVING), "{service:?}");
        }
        let mut stream = watch(&client, HEALTH_SERVICE_NAME);
        assert_eq!(next_other_than(&mut stream, None).await, Some(ServingStatus::SERVING));
        health.set(ServingStatus::NOT_SERVING);
        let seen = next_other_than(&mut stream, Some(ServingStatus::SERVING)).await;
        assert_eq!(seen, Some(ServingStatus::NOT_SERVING));
        health.set(ServingStatus::SERVING);
        let seen = next_other_than(&mut stream, Some(ServingStatus::NOT_SERVING)).await;
        assert_eq!(seen, Some(ServingStatus::SERVING));

        // Read while the server stops: it says NOT_SERVING, then ends the stream (with OK,
        // not an error), and its shutdown is not held up by the open watch.
        let rest = async {
            let last = next_other_than(&mut stream, Some(ServingStatus::SERVING)).await;
            (last, next_other_than(&mut stream, Some(ServingStatus::NOT_SERVING)).await)
        };
        let ((last, after), ()) = futures_lite::future::zip(rest, server.shutdown()).await;
        assert_eq!(last, Some(ServingStatus::NOT_SERVING), "told before the end");
        assert_eq!(after, None, "the stream ended");
    });
}

#[test]
fn watching_an_unknown_service_reports_service_unknown_and_checking_it_is_not_found() {
    let server = start();
    let client = health_client(&server);
    block_on_within(LIMIT, async {
        // Watch: SERVICE_UNKNOWN on a stream that stays open (the health protocol's rule), and
        // ends when the server stops.
        let mut stream = watch(&client, "no.such.Service");
        assert_eq!(next_other_than(&mut stream, None).await, Some(ServingStatus::SERVICE_UNKNOWN));
        let rest = next_other_than(&mut stream, Some(ServingStatus::SERVICE_UNKNOWN));
        let (after, ()) = futures_lite::future::zip(rest, server.shutdown()).await;
        assert_eq!(after, None, "the stream ended at shutdown");
    });
    let server = start();
    let client = health_client(&server);
    let mut req = HealthCheckRequest::new();
    req.service = "no.such.Service".to_string();
    match client.check(&req) {
        Err(grpcio::Error::RpcFailure(status)) => assert_eq!(status.code(), RpcStatusCode::NOT_FOUND),
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
    block_on_within(LIMIT, server.shutdown());
}

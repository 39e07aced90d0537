//! Transient publish failures are retried a bounded number of times, then the request is
//! dead-lettered (or, when the dead-letter topic is what fails, dropped and counted): never a
//! loop.

use std::sync::Arc;
use std::time::Duration;

use switchboard_embedded::pubsub::{MemoryBroker, StartFrom};
use switchboard_ports::{ErrorKind, Message, Subscriber};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::convert::Stage;
use switchboard_proto::Envelope;
use switchboard_relay::{Handled, RelayConfig, RequestHandler};
use switchboard_testkit::fault::{Effect, FaultyPublisher, Trigger};

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    switchboard_testkit::block_on_within(Duration::from_secs(60), f)
}

fn config(retries: u32) -> RelayConfig {
    RelayConfig { max_publish_retries: retries, publish_retry_base: Duration::from_millis(1), ..RelayConfig::default() }
}

fn handler(
    config: RelayConfig,
    publisher: Arc<FaultyPublisher<MemoryBroker>>,
    processor: &ProcessorServer,
) -> RequestHandler {
    let client = switchboard_grpc::client::ProcessorClientBuilder::new(processor.local_addr().to_string()).connect();
    let breaker = switchboard_resilience::CircuitBreaker::new(config.breaker.clone());
    RequestHandler::new(Arc::new(config), client, publisher, breaker)
}

fn processor(broker: &MemoryBroker) -> ProcessorServer {
    let config = ServerConfig { addr: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() };
    ProcessorServer::start(&config, Arc::new(broker.clone())).unwrap()
}

fn expired_request(id: &str) -> Message {
    let mut e = Envelope::start(id, "hello", "switchboard.replies", Duration::from_secs(10));
    e.record(Stage::RestRequest, "gateway");
    e.deadline_unix_ms = switchboard_proto::convert::now_millis() - 1;
    Message::new(e.encode())
}

#[test]
fn a_dead_letter_that_keeps_failing_transiently_is_retried_a_bounded_number_of_times_then_left_unacked() {
    run(async {
        let broker = MemoryBroker::new();
        let processor = processor(&broker);
        let publisher = FaultyPublisher::failing(Arc::new(broker.clone()), ErrorKind::Unavailable);
        let handler = handler(config(3), publisher.clone(), &processor);
        let outcome = handler.handle(&Message::new(&b"\x00garbage"[..])).await;
        // Not lost during an outage: the record stays unacked and comes back later.
        assert_eq!(outcome, Handled::Retry);
        assert_eq!(publisher.stats().calls(), 4, "one try and three retries");
        processor.shutdown().await;
    });
}

#[test]
fn a_failure_answer_failing_transiently_is_retried_then_dead_lettered_with_the_reason() {
    run(async {
        let broker = MemoryBroker::new();
        let processor = processor(&broker);
        // The answer's first 3 publishes fail (1 try + 2 retries), the dead letter gets through.
        let publisher = Arc::new(
            FaultyPublisher::new(Arc::new(broker.clone()))
                .with_rule(Trigger::Nth(1), Effect::Fail(ErrorKind::Timeout))
                .with_rule(Trigger::Nth(2), Effect::Fail(ErrorKind::Unavailable))
                .with_rule(Trigger::Nth(3), Effect::Fail(ErrorKind::Unavailable)),
        );
        let dlq = broker.subscribe_from("switchboard.requests.dlq", "t", StartFrom::Earliest).await.unwrap();
        let handler = handler(config(2), publisher.clone(), &processor);
        let outcome = handler.handle(&expired_request("late-1")).await;
        let Handled::DeadLettered(why) = outcome else { panic!("{outcome:?}") };
        assert!(why.contains("not published") && why.contains("after 2 retries"), "{why}");
        let dead = dlq.recv().await.unwrap();
        assert_eq!(dead.message().header_str("x-switchboard-error"), Some(why.as_str()));
        assert_eq!(Envelope::decode(&dead.message().payload).unwrap().id, "late-1");
        processor.shutdown().await;
    });
}

#[test]
fn a_failure_answer_published_on_a_retry_is_answered() {
    run(async {
        let broker = MemoryBroker::new();
        let processor = processor(&broker);
        let publisher = Arc::new(
            FaultyPublisher::new(Arc::new(broker.clone())).with_rule(Trigger::Nth(1), Effect::Fail(ErrorKind::Timeout)),
        );
        let replies = broker.subscribe("switchboard.replies", "t").await.unwrap();
        let handler = handler(config(2), publisher, &processor);
        let outcome = handler.handle(&expired_request("late-2")).await;
        assert!(matches!(outcome, Handled::Answered(_)), "{outcome:?}");
        let reply = Envelope::decode(&replies.recv().await.unwrap().message().payload).unwrap();
        assert_eq!(reply.id, "late-2");
        assert!(reply.is_reply());
        processor.shutdown().await;
    });
}

//! The relay's edges on the embedded broker, with the real processor over loopback gRPC:
//! envelopes that would loop the chain, reply topics named by a message, and publishes that
//! fail for good.

use std::sync::Arc;
use std::time::Duration;

use switchboard_embedded::pubsub::{BrokerConfig, MemoryBroker, StartFrom};
use switchboard_ports::{Message, Publisher, TopicAdmin};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope};
use switchboard_relay::{Handled, Relay, RelayConfig, RequestHandler};

const REQUESTS: &str = "switchboard.requests";
const REPLIES: &str = "switchboard.replies";
const DLQ: &str = "switchboard.requests.dlq";

/// Fails the test instead of hanging it (the bugs these tests name are loops).
fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    switchboard_testkit::block_on_within(Duration::from_secs(60), f)
}

/// A processor (default settings: replies to `switchboard.replies` only) publishing to `broker`.
fn processor(broker: &MemoryBroker) -> ProcessorServer {
    let config = ServerConfig { addr: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() };
    ProcessorServer::start(&config, Arc::new(broker.clone())).unwrap()
}

fn handler(broker: &MemoryBroker, processor: &ProcessorServer) -> RequestHandler {
    let client = switchboard_grpc::client::ProcessorClientBuilder::new(processor.local_addr().to_string()).connect();
    let config = RelayConfig::default();
    let breaker = switchboard_resilience::CircuitBreaker::new(config.breaker.clone());
    RequestHandler::new(Arc::new(config), client, Arc::new(broker.clone()), breaker)
}

/// A request as the gateway writes it, with `reply_to`.
fn request(id: &str, reply_to: &str) -> Envelope {
    let mut e = Envelope::start(id, "hello", reply_to, Duration::from_secs(10));
    e.record(Stage::RestRequest, "gateway");
    e.record(Stage::KafkaPublisher, "gateway");
    e
}

fn message(e: &Envelope) -> Message {
    Message::new(e.encode()).with_key(e.id.as_bytes())
}

/// Messages ever written to `topic` (0 when it does not exist).
fn written(broker: &MemoryBroker, topic: &str) -> i64 {
    broker.end_offsets(topic).map_or(0, |e| e.iter().sum())
}

/// The reasons of the dead letters on the DLQ, read from the start.
async fn dead_letters(broker: &MemoryBroker, n: usize) -> Vec<String> {
    let sub = broker.subscribe_from(DLQ, "test-dlq", StartFrom::Earliest).await.unwrap();
    let mut reasons = Vec::new();
    for _ in 0..n {
        let d = sub.recv().await.unwrap();
        reasons.push(d.message().header_str("x-switchboard-error").unwrap_or_default().to_string());
        d.ack();
    }
    reasons
}

#[test]
fn a_request_naming_the_requests_topic_as_its_reply_topic_is_dead_lettered_not_processed() {
    run(async {
        let broker = MemoryBroker::new();
        let processor = processor(&broker);
        let handler = handler(&broker, &processor);
        let outcome = handler.handle(&message(&request("loop-1", REQUESTS))).await;
        let Handled::DeadLettered(why) = outcome else { panic!("processed a request whose reply loops: {outcome:?}") };
        assert!(why.contains("not an allowed reply topic"), "{why}");
        assert_eq!(written(&broker, REQUESTS), 0, "nothing written back onto the requests topic");
        assert_eq!(dead_letters(&broker, 1).await, vec![why]);
        processor.shutdown().await;
    });
}

#[test]
fn a_reply_topic_named_by_a_message_is_never_written_to_nor_created() {
    run(async {
        let broker = MemoryBroker::new();
        let processor = processor(&broker);
        let handler = handler(&broker, &processor);
        let outcome = handler.handle(&message(&request("create-1", "no.such.topic"))).await;
        assert!(matches!(outcome, Handled::DeadLettered(ref why) if why.contains("no.such.topic")), "{outcome:?}");
        // Expired too: the failure answer must not go there either.
        let mut late = request("create-2", "other.topic");
        late.deadline_unix_ms = switchboard_proto::convert::now_millis() - 1;
        let outcome = handler.handle(&message(&late)).await;
        assert!(matches!(outcome, Handled::DeadLettered(_)), "{outcome:?}");
        assert_eq!(broker.partitions("no.such.topic"), None, "topic created by a message");
        assert_eq!(broker.partitions("other.topic"), None, "topic created by a failure answer");
        processor.shutdown().await;
    });
}

#[test]
fn an_envelope_already_carrying_a_reply_is_dead_lettered_not_processed_again() {
    run(async {
        let broker = MemoryBroker::new();
        let processor = processor(&broker);
        let handler = handler(&broker, &processor);
        // A processed reply, replayed onto the requests topic.
        let mut processed = request("replayed-1", REPLIES);
        processed.record(Stage::KafkaConsumer, "relay");
        processed.record(Stage::GrpcClient, "relay");
        processed.record(Stage::GrpcServer, "processor");
        processed.record(Stage::KafkaPublisher, "processor");
        // A failure answer, replayed.
        let mut failed = request("replayed-2", REPLIES);
        failed.fail(failure::Code::UNAVAILABLE, "circuit open", None);
        for e in [processed, failed] {
            let outcome = handler.handle(&message(&e)).await;
            assert!(
                matches!(outcome, Handled::DeadLettered(ref why) if why.contains("a reply, not a request")),
                "{}: {outcome:?}",
                e.id
            );
        }
        assert_eq!(written(&broker, REPLIES), 0, "no reply to a reply");
        assert_eq!(dead_letters(&broker, 2).await.len(), 2);
        processor.shutdown().await;
    });
}

#[test]
fn a_failure_answer_that_can_never_be_published_dead_letters_the_request() {
    run(async {
        // No auto-creation and no replies topic: publishing the answer fails for good.
        let broker = MemoryBroker::with_config(BrokerConfig { auto_create_topics: false, ..BrokerConfig::default() });
        broker.ensure_topic(DLQ, 1).await.unwrap();
        let processor = processor(&broker);
        let handler = handler(&broker, &processor);
        let mut late = request("late-1", REPLIES);
        late.deadline_unix_ms = switchboard_proto::convert::now_millis() - 1;
        let outcome = handler.handle(&message(&late)).await;
        let Handled::DeadLettered(why) = outcome else { panic!("a permanent publish error retried: {outcome:?}") };
        assert!(why.contains("not published"), "{why}");
        assert_eq!(dead_letters(&broker, 1).await, vec![why]);
        processor.shutdown().await;
    });
}

#[test]
fn a_dead_letter_refused_for_good_is_dropped_loudly_not_retried() {
    run(async {
        // Not even the dead-letter topic exists.
        let broker = MemoryBroker::with_config(BrokerConfig { auto_create_topics: false, ..BrokerConfig::default() });
        let processor = processor(&broker);
        let handler = handler(&broker, &processor);
        let outcome = handler.handle(&Message::new(&b"\xff\xff garbage"[..])).await;
        assert_ne!(outcome, Handled::Retry, "a permanent error is retried forever");
        let shown = format!("{outcome:?}");
        assert!(shown.contains("dead letter not published"), "{shown}");
        processor.shutdown().await;
    });
}

#[test]
fn a_request_that_cannot_be_dead_lettered_does_not_hold_its_partition() {
    run(async {
        let broker = MemoryBroker::with_config(BrokerConfig { auto_create_topics: false, ..BrokerConfig::default() });
        broker.ensure_topic(REQUESTS, 1).await.unwrap();
        let processor = processor(&broker);
        let client =
            switchboard_grpc::client::ProcessorClientBuilder::new(processor.local_addr().to_string()).connect();
        let config = RelayConfig::default();
        let relay = Relay::new(config, Arc::new(broker.clone()), Arc::new(broker.clone()), client);
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let relay = smol::spawn(relay.run(async move {
            let _ = stopped.recv().await;
        }));
        // Wait for the relay's group before publishing (it starts at the log end).
        while broker.member_count(REQUESTS, "switchboard-relay") == 0 {
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
        broker.publish(REQUESTS, Message::new(&b"poison"[..])).await.unwrap();
        broker.publish(REQUESTS, Message::new(&b"more poison"[..])).await.unwrap();
        // The commit watermark moves past both: nothing is nacked round and round. Polled for a
        // while, then asserted, so a relay that holds the partition fails here with what it did.
        for _ in 0..500 {
            if broker.committed_offsets(REQUESTS, "switchboard-relay") == Some(vec![2]) {
                break;
            }
            async_io::Timer::after(Duration::from_millis(20)).await;
        }
        assert_eq!(broker.committed_offsets(REQUESTS, "switchboard-relay"), Some(vec![2]), "partition held by poison");
        stop.close();
        relay.await.unwrap();
        processor.shutdown().await;
    });
}

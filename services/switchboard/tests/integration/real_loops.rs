//! The messaging edges on a real Kafka (`make test-real` starts tansu): hostile records on the
//! requests topic are dead-lettered once and never loop or create topics; permanent publish
//! errors are dead-lettered or dropped, never retried forever. Needs `KAFKA_BROKERS`; fails
//! when it is missing or the broker does not answer.

use std::sync::Arc;
use std::time::Duration;

use crate::edges_support::with_run_id;
use futures_lite::future;
use switchboard::{Chain, ChainConfig};
use switchboard_ports::{ErrorKind, Message, Publisher, Subscription};
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope};
use switchboard_relay::{Handled, RelayConfig, RequestHandler};
use switchboard_topology::topics::ReplyTopics;
use switchboard_wiring::{BrokerArgs, PubSub};

/// Kafka ports with `topics` created; librdkafka gives up on a missing topic after 2 s.
async fn kafka(topics: &[&str]) -> PubSub {
    let brokers = std::env::var("KAFKA_BROKERS")
        .expect("KAFKA_BROKERS must point at a Kafka broker (make test-real starts tansu)");
    let args = BrokerArgs {
        kafka_set: vec![("topic.metadata.propagation.max.ms".into(), "2000".into())],
        ..BrokerArgs::on_kafka(brokers, 2)
    };
    let ports = args.connect(topics).await.expect("kafka reachable");
    assert_eq!(ports.kind, "kafka");
    ports
}

async fn within<T>(wait: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        async_io::Timer::after(wait).await;
        None
    })
    .await
}

/// The next delivery's payload and `x-switchboard-error`, acked; fails after 30 s.
async fn next(sub: &Subscription) -> (Vec<u8>, String) {
    let d = within(Duration::from_secs(30), sub.recv()).await.flatten().expect("a delivery within 30 s");
    let out = (d.message().payload.clone(), d.message().header_str("x-switchboard-error").unwrap_or("").to_string());
    d.ack();
    out
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn hostile_records_on_the_requests_topic_are_dead_lettered_once_and_create_no_topic() {
    with_run_id(|run| async move {
        let (requests, replies, dlq) =
            (format!("test.requests.{run}"), format!("test.replies.{run}"), format!("test.requests.dlq.{run}"));
        let ports = kafka(&[&requests, &replies, &dlq]).await;
        let (publisher, subscriber) = (ports.publisher.clone(), ports.requests.clone());
        let mut config = ChainConfig::default();
        config.gateway.addr = "127.0.0.1:0".parse().unwrap();
        config.processor.addr = "127.0.0.1:0".parse().unwrap();
        config.gateway.requests_topic = requests.clone();
        config.gateway.replies_topic = replies.clone();
        config.relay.requests_topic = requests.clone();
        config.relay.dead_letter_topic = dlq.clone();
        config.relay.group = format!("test-relay-{run}");
        let chain = Chain::start_on(config, ports).await.expect("chain starts on kafka");

        let missing = format!("test.created-by-a-message.{run}");
        let looping = Envelope::start("loop", "x", &requests, Duration::from_secs(60));
        let mut failed = Envelope::start("fail-loop", "x", &requests, Duration::from_secs(60));
        failed.fail(failure::Code::UNAVAILABLE, "replayed", None);
        let mut replayed = Envelope::start("replayed", "x", &replies, Duration::from_secs(60));
        replayed.record(Stage::GrpcServer, "processor");
        let creating = Envelope::start("create", "x", &missing, Duration::from_secs(60));
        for e in [&looping, &failed, &replayed, &creating] {
            publisher.publish(&requests, Message::new(e.encode()).with_key(e.id.as_bytes())).await.unwrap();
        }

        let dead = subscriber.subscribe(&dlq, &format!("test-dlq-{run}")).await.unwrap();
        let mut reasons = Vec::new();
        for _ in 0..4 {
            let (payload, why) = next(&dead).await;
            reasons.push((Envelope::decode(&payload).unwrap().id, why));
        }
        reasons.sort();
        let expect = [
            ("create", "not an allowed reply topic"),
            ("fail-loop", "a reply, not a request"),
            ("loop", "not an allowed reply topic"),
            ("replayed", "a reply, not a request"),
        ];
        for ((id, why), (want_id, want)) in reasons.iter().zip(expect) {
            assert_eq!(id, want_id);
            assert!(why.contains(want), "{id}: {why}");
        }

        // The requests topic holds the four records and nothing the chain wrote back.
        let all = subscriber.subscribe(&requests, &format!("test-count-{run}")).await.unwrap();
        for _ in 0..4 {
            next(&all).await;
        }
        let extra = within(Duration::from_secs(3), all.recv()).await;
        assert!(extra.is_none(), "the chain wrote onto the requests topic: {extra:?}");
        let err = subscriber.subscribe(&missing, "g").await.expect_err("a message created a topic");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        all.close().await.unwrap();
        dead.close().await.unwrap();
        chain.stop().await;
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn permanent_publish_errors_are_dead_lettered_or_dropped_not_retried() {
    with_run_id(|run| async move {
        let dlq = format!("test.requests.dlq.{run}");
        let ports = kafka(&[&dlq]).await;
        // Allowed, yet never created: every publish to it fails for good.
        let missing = format!("test.missing-replies.{run}");
        let handler = |dead_letter_topic: &str| {
            let config = RelayConfig {
                dead_letter_topic: dead_letter_topic.to_string(),
                reply_topics: ReplyTopics::only(&missing),
                ..RelayConfig::default()
            };
            let breaker = switchboard_resilience::CircuitBreaker::new(config.breaker.clone());
            let client = switchboard_grpc::client::ProcessorClientBuilder::new("127.0.0.1:9").connect();
            RequestHandler::new(Arc::new(config), client, ports.publisher.clone(), breaker)
        };
        let mut late = Envelope::start("late", "x", &missing, Duration::from_secs(10));
        late.deadline_unix_ms = switchboard_proto::convert::now_millis() - 1;
        let request = Message::new(late.encode());

        let outcome = handler(&dlq).handle(&request).await;
        let Handled::DeadLettered(why) = outcome else { panic!("{outcome:?}") };
        assert!(why.contains("not published"), "{why}");
        let dead = ports.requests.subscribe(&dlq, &format!("test-dlq-{run}")).await.unwrap();
        let (payload, header) = next(&dead).await;
        assert_eq!(Envelope::decode(&payload).unwrap().id, "late");
        assert_eq!(header, why);

        // Not even the dead-letter topic exists: dropped (logged, counted), not retried.
        let outcome = handler(&format!("test.missing-dlq.{run}")).handle(&request).await;
        assert!(matches!(outcome, Handled::Dropped(_)), "{outcome:?}");
        dead.close().await.unwrap();
        ports.publisher.close().await.unwrap();
    });
}

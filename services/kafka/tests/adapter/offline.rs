//! Behaviour without a reachable broker: errors are transient and come in bounded time.

use std::time::{Duration, Instant};

use switchboard_kafka::{KafkaAdmin, KafkaConfig, KafkaPublisher, KafkaSubscriber};
use switchboard_ports::{ErrorKind, Message, Publisher, Subscriber, TopicAdmin};

/// Port 1 on loopback: nothing listens, connects are refused at once.
fn dead_broker() -> KafkaConfig {
    let mut c = KafkaConfig::new("127.0.0.1:1");
    c.delivery_timeout = Duration::from_millis(800);
    c.request_timeout = Duration::from_millis(800);
    c.close_timeout = Duration::from_secs(2);
    c
}

#[test]
fn publish_to_an_unreachable_broker_fails_transiently_and_hands_the_message_back() {
    smol::block_on(async {
        let publisher = KafkaPublisher::new(&dead_broker()).unwrap();
        let started = Instant::now();
        let err = publisher.publish("t", Message::new("p").with_key("k")).await.expect_err("no broker");
        assert!(err.error.is_transient(), "kind {:?}: {}", err.error.kind(), err.error);
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        assert_eq!(err.into_inner(), Message::new("p").with_key("k"));
        publisher.close().await.unwrap();
        let after = publisher.publish("t", Message::new("late")).await.expect_err("closed");
        assert_eq!(after.error.kind(), ErrorKind::Closed);
    });
}

#[test]
fn subscribe_to_an_unreachable_broker_fails_transiently() {
    smol::block_on(async {
        let err = KafkaSubscriber::new(&dead_broker()).subscribe("t", "g").await.expect_err("no broker");
        assert!(err.is_transient(), "kind {:?}: {}", err.kind(), err);
    });
}

#[test]
fn ensure_topic_on_an_unreachable_broker_fails_transiently() {
    smol::block_on(async {
        let admin = KafkaAdmin::new(&dead_broker()).unwrap();
        let err = admin.ensure_topic("t", 1).await.expect_err("no broker");
        assert!(err.is_transient(), "kind {:?}: {}", err.kind(), err);
        let bad = admin.ensure_topic("t", 0).await.expect_err("zero partitions");
        assert_eq!(bad.kind(), ErrorKind::Invalid);
    });
}

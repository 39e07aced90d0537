//! Transient publish failures are retried a bounded number of times, then the request is
//! dead-lettered (or, when the dead-letter topic is what fails, dropped and counted): never a
//! loop.

use std::sync::Arc;
use std::time::Duration;

use support::with_handler;
use switchboard_embedded::pubsub::{MemoryBroker, StartFrom};
use switchboard_ports::{ErrorKind, Message, Subscriber};
use switchboard_proto::convert::Stage;
use switchboard_proto::Envelope;
use switchboard_relay::{Handled, RelayConfig};
use switchboard_testkit::fault::{Effect, FaultyPublisher, Trigger};

mod support;

fn config(retries: u32) -> RelayConfig {
    RelayConfig { max_publish_retries: retries, publish_retry_base: Duration::from_millis(1), ..RelayConfig::default() }
}

fn expired_request(id: &str) -> Message {
    let mut e = Envelope::start(id, "hello", "switchboard.replies", Duration::from_secs(10));
    e.record(Stage::RestRequest, "gateway");
    e.deadline_unix_ms = switchboard_proto::convert::now_millis() - 1;
    Message::new(e.encode())
}

#[test]
fn a_dead_letter_that_keeps_failing_transiently_is_retried_a_bounded_number_of_times_then_left_unacked() {
    let broker = MemoryBroker::new();
    let publisher = FaultyPublisher::failing(Arc::new(broker.clone()), ErrorKind::Unavailable);
    with_handler(Arc::new(broker), config(3), publisher.clone(), |handler| async move {
        let outcome = handler.handle(&Message::new(&b"\x00garbage"[..])).await;
        // Not lost during an outage: the record stays unacked and comes back later.
        assert_eq!(outcome, Handled::Retry);
        assert_eq!(publisher.stats().calls(), 4, "one try and three retries");
    });
}

#[test]
fn a_failure_answer_failing_transiently_is_retried_then_dead_lettered_with_the_reason() {
    let broker = MemoryBroker::new();
    // The answer's first 3 publishes fail (1 try + 2 retries), the dead letter gets through.
    let publisher = FaultyPublisher::new(Arc::new(broker.clone()))
        .with_rule(Trigger::Nth(1), Effect::Fail(ErrorKind::Timeout))
        .with_rule(Trigger::Nth(2), Effect::Fail(ErrorKind::Unavailable))
        .with_rule(Trigger::Nth(3), Effect::Fail(ErrorKind::Unavailable));
    with_handler(Arc::new(broker.clone()), config(2), Arc::new(publisher), |handler| async move {
        let dlq = broker.subscribe_from("switchboard.requests.dlq", "t", StartFrom::Earliest).await.unwrap();
        let outcome = handler.handle(&expired_request("late-1")).await;
        let Handled::DeadLettered(why) = outcome else { panic!("{outcome:?}") };
        assert!(why.contains("not published") && why.contains("after 2 retries"), "{why}");
        let dead = dlq.recv().await.unwrap();
        assert_eq!(dead.message().header_str("x-switchboard-error"), Some(why.as_str()));
        assert_eq!(Envelope::decode(&dead.message().payload).unwrap().id, "late-1");
    });
}

#[test]
fn a_failure_answer_published_on_a_retry_is_answered() {
    let broker = MemoryBroker::new();
    let publisher =
        FaultyPublisher::new(Arc::new(broker.clone())).with_rule(Trigger::Nth(1), Effect::Fail(ErrorKind::Timeout));
    with_handler(Arc::new(broker.clone()), config(2), Arc::new(publisher), |handler| async move {
        let replies = broker.subscribe("switchboard.replies", "t").await.unwrap();
        let outcome = handler.handle(&expired_request("late-2")).await;
        assert!(matches!(outcome, Handled::Answered(_)), "{outcome:?}");
        let reply = Envelope::decode(&replies.recv().await.unwrap().message().payload).unwrap();
        assert_eq!(reply.id, "late-2");
        assert!(reply.is_reply());
    });
}

//! The relay's processor calls in batches of up to 64 and of one, over the embedded broker and
//! the real processor on loopback: every request gets its own reply, ack and breaker outcome.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_ports::{ErrorKind, Message, Publisher, Subscriber};
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope};
use switchboard_relay::{Handled, Relay, RelayConfig};
use switchboard_telemetry::Metrics;
use switchboard_testkit::fault::FaultyPublisher;

const REQUESTS: &str = "switchboard.requests";
const REPLIES: &str = "switchboard.replies";
const PROCESS: &str = "/switchboard.v1.Processor/Process";
const PROCESS_BATCH: &str = "/switchboard.v1.Processor/ProcessBatch";

mod support;

fn config(batch_max: usize) -> RelayConfig {
    RelayConfig { batch_max, metrics: Metrics::new("relay"), ..RelayConfig::default() }
}

fn request(id: &str, budget: Duration) -> Message {
    let mut e = Envelope::start(id, "hello", REPLIES, budget);
    e.record(Stage::RestRequest, "gateway");
    e.record(Stage::KafkaPublisher, "gateway");
    Message::new(e.encode()).with_key(e.id.as_bytes())
}

/// The value of the `grpc_calls` sample for `method` and `code`, 0 when absent.
fn calls(metrics: &Metrics, method: &str, code: &str) -> u64 {
    let text = metrics.encode();
    let method = format!("method=\"{method}\"");
    text.lines()
        .find(|l| l.starts_with("grpc_calls") && l.contains(&method) && l.contains(&format!("code=\"{code}\"")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// 200 requests at once through a running relay: each one's reply once, every offset
/// committed, and each envelope counted once, whichever call carried it.
fn many_requests_each_get_their_own_reply_and_ack(batch_max: usize) {
    let broker = MemoryBroker::new();
    support::with_processor(Arc::new(broker.clone()), |client| async move {
        let config = config(batch_max);
        let metrics = config.metrics.clone();
        let relay = Relay::new(config, Arc::new(broker.clone()), Arc::new(broker.clone()), client).subscribe();
        let relay = relay.await.unwrap();
        let replies = broker.subscribe(REPLIES, "test").await.unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let relay = smol::spawn(relay.run(async move {
            let _ = stopped.recv().await;
        }));
        let ids: BTreeSet<String> = (0..200).map(|i| format!("req-{i}")).collect();
        for id in &ids {
            broker.publish(REQUESTS, request(id, Duration::from_secs(30))).await.unwrap();
        }
        let mut answered = BTreeSet::new();
        while answered.len() < ids.len() {
            let d = replies.recv().await.unwrap();
            let reply = Envelope::decode(&d.message().payload).unwrap();
            let hops =
                "from rest and Kafka publisher and Kafka consumer and gRPC client and gRPC server and Kafka publisher";
            assert_eq!(reply.body, format!("hello {hops}"));
            assert!(answered.insert(reply.id.clone()), "{} answered twice", reply.id);
            d.ack();
        }
        assert_eq!(answered, ids);
        // Acked only after the outcome: the group's watermark reaches every request.
        while broker.committed_offsets(REQUESTS, "switchboard-relay").map(|o| o.iter().sum::<i64>()) != Some(200) {
            async_io::Timer::after(Duration::from_millis(20)).await;
        }
        // Every call is a `ProcessBatch`, a lone envelope a batch of one.
        assert_eq!(calls(&metrics, PROCESS_BATCH, "OK"), 200, "each envelope counted once");
        assert_eq!(calls(&metrics, PROCESS, "OK"), 0, "never a plain Process call");
        stop.close();
        relay.await.unwrap();
    });
}

#[test]
fn with_batching_many_requests_each_get_their_own_reply_and_ack() {
    many_requests_each_get_their_own_reply_and_ack(64);
}

#[test]
fn in_batches_of_one_many_requests_each_get_their_own_reply_and_ack() {
    many_requests_each_get_their_own_reply_and_ack(1);
}

#[test]
fn a_lone_request_goes_at_once_as_a_batch_of_one() {
    let (broker, config) = (MemoryBroker::new(), config(64));
    let metrics = config.metrics.clone();
    support::with_handler(Arc::new(broker.clone()), config, Arc::new(broker), |handler| async move {
        // Nothing else is ready: no company to wait for, and none is waited for (the deadline
        // is far; a linger would show as a timeout only in a slower test, so the outcome and
        // the call that carried it are what is checked).
        let outcome = handler.handle(&request("alone", Duration::from_secs(30))).await;
        assert_eq!(outcome, Handled::Processed);
        assert_eq!(calls(&metrics, PROCESS_BATCH, "OK"), 1);
        assert_eq!(calls(&metrics, PROCESS, "OK"), 0);
    });
}

#[test]
fn a_failing_processor_fails_each_envelope_and_the_breaker_counts_each() {
    let broker = MemoryBroker::new();
    // Every reply publish of the processor fails transiently: UNAVAILABLE for each envelope.
    let faulty = FaultyPublisher::failing(Arc::new(broker.clone()), ErrorKind::Unavailable);
    let mut config = config(64);
    // A breaker that never opens, so every envelope reaches the processor.
    config.breaker = switchboard_resilience::Config::builder().min_calls(1_000_000).build().unwrap();
    config.retry_base = Duration::from_millis(1);
    support::with_handler(faulty.clone(), config, Arc::new(broker.clone()), |handler| async move {
        let replies = broker.subscribe(REPLIES, "test").await.unwrap();
        let ids: Vec<String> = (0..16).map(|i| format!("fail-{i}")).collect();
        let messages: Vec<Message> = ids.iter().map(|id| request(id, Duration::from_secs(20))).collect();
        let outcomes = futures::future::join_all(messages.iter().map(|m| handler.handle(m))).await;
        for (id, outcome) in ids.iter().zip(&outcomes) {
            assert!(
                matches!(outcome, Handled::Answered(failure::Code::UNAVAILABLE | failure::Code::DEADLINE_EXCEEDED)),
                "{id}: {outcome:?}"
            );
        }
        let mut failed = BTreeSet::new();
        for _ in &ids {
            let d = replies.recv().await.unwrap();
            let reply = Envelope::decode(&d.message().payload).unwrap();
            assert!(reply.is_reply(), "a failure answer");
            assert!(failed.insert(reply.id.clone()), "{} answered twice", reply.id);
            d.ack();
        }
        assert_eq!(failed, ids.iter().cloned().collect());
        // One breaker failure per envelope per call, batched or not: exactly the processor's
        // publish attempts, and at least one per envelope.
        let breaker = handler.breaker().metrics();
        assert_eq!(breaker.failures, faulty.stats().calls(), "{breaker:?}");
        assert!(breaker.failures >= ids.len() as u64, "{breaker:?}");
        assert_eq!(breaker.successes, 0);
    });
}

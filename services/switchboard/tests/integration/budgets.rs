//! The request budget binds every wait on a broker, on the embedded brokers with test-local
//! wrappers that stall or fail publishes and enqueues: the gateway answers at the budget (504, or
//! 503 with Retry-After), never after the broker's own timeout; `max_pending` bounds handlers
//! still publishing; a permanent broker error is a 500, not a retryable 503; a RabbitMQ
//! connection attempt has a timeout; with no Kafka broker
//! reachable the gateway's breaker opens after its minimum calls and answers 503 at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::edges_support::{
    gateway_config, planned_jobs_gateway, post, Act, Blackhole, Plan, PlannedPublisher, Raw, Served,
};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_gateway::{Gateway, GatewayConfig};
use switchboard_kafka::{KafkaConfig, KafkaPublisher};
use switchboard_ports::{ErrorKind, Publisher};

/// Far longer than any budget here: a caller still waiting after it waited for the broker.
const STALL: Duration = Duration::from_secs(20);
const BUDGET: Duration = Duration::from_millis(500);

fn config() -> GatewayConfig {
    // An abandoned enqueue keeps its slot until the broker answers: do not wait for it.
    gateway_config(BUDGET, Duration::from_millis(200))
}

async fn gateway(config: GatewayConfig, publisher: Arc<dyn Publisher>, broker: &MemoryBroker) -> Gateway {
    Gateway::bind(config, publisher, Arc::new(broker.clone())).await.expect("gateway binds")
}

/// A gateway whose every publish to the requests topic does `act`, and that publisher.
async fn publishing(act: Act, config: GatewayConfig) -> (Served, Arc<PlannedPublisher>) {
    let broker = MemoryBroker::new();
    let publisher = PlannedPublisher::new(Arc::new(broker.clone()), "switchboard.requests", Plan::always(act));
    (Served::start(gateway(config, publisher.clone(), &broker).await), publisher)
}

#[test]
fn a_stalled_publish_answers_at_the_budget_not_at_the_brokers_timeout() {
    smol::block_on(async {
        let (served, publisher) = publishing(Act::Delay(STALL), config()).await;
        let started = Instant::now();
        let reply = post(served.addr, "/messages", "hello world", None).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 504, "{}", reply.body);
        assert_eq!(reply.code(), "deadline_exceeded");
        assert!(took >= BUDGET, "answered before the budget: {took:?}");
        assert!(took < STALL / 2, "answered after {took:?}: the {BUDGET:?} budget did not bind the publish");
        assert_eq!(publisher.in_flight.now(), 0, "the abandoned publish is not left running");
        served.stop().await;
    });
}

#[test]
fn max_pending_bounds_handlers_that_are_still_publishing() {
    smol::block_on(async {
        let (served, publisher) = publishing(Act::Delay(STALL), GatewayConfig { max_pending: 1, ..config() }).await;
        let addr = served.addr;
        let first = smol::spawn(post(addr, "/messages", "first", None));
        // Past the first request's deadline, while its publish would still be stalled.
        async_io::Timer::after(BUDGET * 3).await;
        let second = smol::spawn(post(addr, "/messages", "second", None));
        let (first, second) = (first.await, second.await);
        assert_ne!(first.status, 200, "{}", first.body);
        assert_ne!(second.status, 200, "{}", second.body);
        assert_eq!(publisher.in_flight.max(), 1, "two publishes in flight with max_pending 1");
        served.stop().await;
    });
}

/// The reply to a POST /messages whose publish fails with `kind`.
async fn reply_when_publish_fails(kind: ErrorKind) -> Raw {
    let (served, _) = publishing(Act::Fail(kind), config()).await;
    let reply = post(served.addr, "/messages", "hello world", None).await;
    served.stop().await;
    reply
}

#[test]
fn a_permanent_publish_error_is_a_500_without_retry_after() {
    let reply = smol::block_on(reply_when_publish_fails(ErrorKind::Invalid));
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.code(), "publish_rejected");
    assert_eq!(reply.header("Retry-After"), None, "retrying will not help");
}

#[test]
fn a_transient_publish_error_stays_a_503_with_retry_after() {
    let reply = smol::block_on(reply_when_publish_fails(ErrorKind::Unavailable));
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.header("Retry-After"), Some("1"));
}

#[test]
fn a_stalled_enqueue_answers_503_at_the_budget() {
    smol::block_on(async {
        let (served, _) =
            planned_jobs_gateway(config(), &MemoryWorkQueue::new(), Plan::always(Act::Delay(STALL))).await;
        let started = Instant::now();
        let reply = post(served.addr, "/jobs", "hello world", None).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(reply.header("Retry-After"), Some("1"));
        assert!(took < STALL / 2, "answered after {took:?}: the {BUDGET:?} budget did not bind the enqueue");
        served.stop().await;
    });
}

#[test]
fn a_permanent_enqueue_error_is_a_500_without_retry_after() {
    smol::block_on(async {
        let plan = Plan::always(Act::Fail(ErrorKind::Invalid));
        let (served, _) = planned_jobs_gateway(config(), &MemoryWorkQueue::new(), plan).await;
        let reply = post(served.addr, "/jobs", "hello world", None).await;
        assert_eq!(reply.status, 500, "{}", reply.body);
        assert_eq!(reply.code(), "enqueue_rejected");
        assert_eq!(reply.header("Retry-After"), None);
        served.stop().await;
    });
}

/// A RabbitMQ host that accepts the connection and never answers: without a connect timeout
/// amiquip waits for the handshake forever (the connection thread, and every enqueue behind
/// it, with it). The default config now gives up.
#[test]
fn an_amqp_connection_attempt_to_a_stalled_broker_times_out() {
    let hole = Blackhole::start();
    let url = format!("amqp://guest:guest@{}/%2f", hole.addr);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(switchboard_amqp::AmqpWorkQueue::connect(switchboard_amqp::AmqpConfig::new(url)).map(|_| ()));
    });
    let outcome = rx.recv_timeout(Duration::from_secs(60)).expect("connect returned within 60 s (default timeout 5 s)");
    let err = outcome.expect_err("nothing answered");
    assert!(err.is_transient(), "{err}: a broker that does not answer is worth retrying");
}

#[test]
fn with_no_kafka_broker_reachable_the_breaker_answers_503_at_once_after_its_minimum_calls() {
    smol::block_on(async {
        // Nothing listens there: librdkafka holds every publish, the gateway abandons each at
        // the budget and counts it as a failure of its breaker.
        let publisher = Arc::new(KafkaPublisher::new(&KafkaConfig::new("127.0.0.1:1")).expect("producer"));
        let broker = MemoryBroker::new();
        let config = config();
        let min_calls = config.breaker.min_calls() as usize;
        let served = Served::start(gateway(config, publisher, &broker).await);
        let started = Instant::now();
        let tasks: Vec<_> =
            (0..min_calls).map(|_| smol::spawn(post(served.addr, "/messages", "hello world", None))).collect();
        for t in tasks {
            let reply = t.await;
            assert_eq!(reply.status, 504, "{}", reply.body);
            assert_eq!(reply.code(), "deadline_exceeded");
        }
        eprintln!("{min_calls} requests at the budget ({BUDGET:?}) took {:?} together", started.elapsed());
        // Enough failures seen: the breaker is open and answers without publishing.
        for _ in 0..3 {
            let started = Instant::now();
            let reply = post(served.addr, "/messages", "hello world", None).await;
            assert_eq!(reply.status, 503, "{}", reply.body);
            assert!(reply.header("Retry-After").is_some(), "{:?}", reply.headers);
            eprintln!("503 from the open breaker after {:?}", started.elapsed());
        }
        served.stop().await;
    });
}

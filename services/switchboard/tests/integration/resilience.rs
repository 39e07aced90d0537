//! Resilience of the chain on the embedded broker, driven by testkit's fault injection: the
//! breakers open on failures and slow calls, the caller fails fast with 503 + Retry-After, and
//! the chain recovers once the dependency is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hello::CHAIN_RESULT;
use serde_json::json;
use switchboard::{Chain, ChainConfig, HttpClient, HttpReply};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_ports::{ErrorKind, Publisher, Subscriber};
use switchboard_resilience::{CircuitBreaker as Breaker, Config, Metrics, SlidingWindow, State};
use switchboard_testkit::fault::{Effect, FaultyPublisher, Switch, Trigger};

const WAIT_OPEN: Duration = Duration::from_millis(800);

fn breaker_config() -> Config {
    Config::builder()
        .window(SlidingWindow::Count(10))
        .min_calls(4)
        .failure_rate(50.0)
        .slow_call_rate(50.0)
        .slow_call_duration(Duration::from_millis(150))
        .wait_open(WAIT_OPEN)
        .half_open_calls(1)
        .build()
        .unwrap()
}

/// The chain on a fresh in-memory broker (kept, for faults on it) and a client of its gateway.
async fn start() -> (MemoryBroker, Chain, HttpClient) {
    let broker = MemoryBroker::new();
    let chain = Chain::start(config(), Arc::new(broker.clone()), Arc::new(broker.clone())).await.unwrap();
    let client = HttpClient::new(chain.gateway_addr());
    (broker, chain, client)
}

/// The chain, started as `start` does, then its processor restarted to publish its replies
/// through a `FaultyPublisher` that does `effect` on `trigger`; and a client of its gateway.
async fn start_with_faulty_replies(trigger: Trigger, effect: Effect) -> (Chain, HttpClient) {
    let (broker, mut chain, client) = start().await;
    let faulty = FaultyPublisher::new(Arc::new(broker)).with_rule(trigger, effect);
    restart_processor(&mut chain, Some(Arc::new(faulty))).await;
    (chain, client)
}

/// The processor stopped and started again, publishing its replies through `replies` (`None`:
/// straight to the chain's broker).
async fn restart_processor(chain: &mut Chain, replies: Option<Arc<dyn Publisher>>) {
    chain.stop_processor().await;
    chain.start_processor(replies).unwrap();
}

fn config() -> ChainConfig {
    let mut c = ChainConfig::default();
    c.gateway.addr = "127.0.0.1:0".parse().unwrap();
    c.processor.addr = "127.0.0.1:0".parse().unwrap();
    c.gateway.request_timeout = Duration::from_secs(2);
    c.gateway.breaker = breaker_config();
    c.relay.breaker = breaker_config();
    c
}

async fn post(client: &mut HttpClient) -> HttpReply {
    client.post_json("/messages", &json!({"message": "hello world"})).await.expect("gateway answers")
}

/// Sends requests until one answers `status`; panics after `tries`.
async fn until_status(client: &mut HttpClient, status: u16, tries: usize) -> HttpReply {
    for _ in 0..tries {
        let reply = post(client).await;
        if reply.status == status {
            return reply;
        }
    }
    panic!("no {status} within {tries} requests");
}

/// One request while `breaker` is open: it must be refused by the breaker itself (its rejected
/// count rises: the dependency was never called, nothing waited on a timeout) with 503 +
/// Retry-After. That the
/// refusal is fast follows from it never waiting on the dependency; the benchmarks measure how
/// fast, a test on a busy machine only checks that it happened this way.
#[track_caller]
fn assert_refused_by(breaker: &Breaker, reply: &HttpReply, before: Metrics) {
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "unavailable");
    let retry_after: u64 = reply.retry_after.as_deref().expect("Retry-After set").parse().unwrap();
    assert!(retry_after >= 1);
    assert!(breaker.metrics().rejected > before.rejected, "refused by the open breaker");
}

/// Sends one request while `breaker` is open and checks the breaker refused it.
async fn post_refused_by(client: &mut HttpClient, breaker: &Breaker) {
    let before = breaker.metrics();
    let reply = post(client).await;
    assert_refused_by(breaker, &reply, before);
}

/// Polls until the chain answers 200. The limit only keeps a broken build from hanging: it is
/// far above any recovery a loaded machine shows.
async fn recovers(client: &mut HttpClient) {
    let limit = WAIT_OPEN + Duration::from_secs(30);
    let started = Instant::now();
    while started.elapsed() < limit {
        if post(client).await.status == 200 {
            return;
        }
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
    panic!("the chain did not recover within {limit:?}");
}

/// True once `condition` holds; gives up after 10 s (a hang guard, not a speed bound).
async fn settles(condition: impl Fn() -> bool) -> bool {
    for _ in 0..1000 {
        if condition() {
            return true;
        }
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
    condition()
}

#[test]
fn processor_down_opens_the_relay_breaker_then_the_breaker_refuses_then_recovery() {
    smol::block_on(async {
        let (_, mut chain, mut client) = start().await;
        assert_eq!(post(&mut client).await.status, 200);
        assert_eq!(chain.relay_breaker().state(), State::Closed);

        chain.stop_processor().await;
        until_status(&mut client, 503, 10).await;
        assert_eq!(chain.relay_breaker().state(), State::Open, "closed → open on failures");

        post_refused_by(&mut client, chain.relay_breaker()).await;

        chain.start_processor(None).unwrap();
        // Open → half-open after the wait, half-open → closed on a successful probe.
        recovers(&mut client).await;
        // The reply reaches the caller before the relay records the probe's gRPC answer.
        assert!(settles(|| chain.relay_breaker().state() == State::Closed).await, "half-open → closed");
        assert_eq!(post(&mut client).await.json()["message"], CHAIN_RESULT);
        chain.stop().await;
    });
}

#[test]
fn a_failed_probe_reopens_the_breaker() {
    smol::block_on(async {
        let (_, mut chain, mut client) = start().await;
        chain.stop_processor().await;
        until_status(&mut client, 503, 10).await;
        assert_eq!(chain.relay_breaker().state(), State::Open);
        async_io::Timer::after(WAIT_OPEN + Duration::from_millis(50)).await;
        // The probe goes to a processor that is still down: half-open → open.
        let reply = post(&mut client).await;
        assert_ne!(reply.status, 200);
        assert_eq!(chain.relay_breaker().state(), State::Open, "half-open → open on a failed probe");
        assert!(chain.relay_breaker().metrics().transitions >= 3, "closed→open→half-open→open");
        chain.stop().await;
    });
}

#[test]
fn a_processor_failing_most_calls_opens_the_breaker() {
    smol::block_on(async {
        // The processor's reply publishes fail 80% of the time (seeded): it answers UNAVAILABLE.
        let (mut chain, mut client) = start_with_faulty_replies(
            Trigger::Fraction { fraction: 0.8, seed: 7 },
            Effect::Fail(ErrorKind::Unavailable),
        )
        .await;
        until_status(&mut client, 503, 20).await;
        assert_eq!(chain.relay_breaker().state(), State::Open);
        post_refused_by(&mut client, chain.relay_breaker()).await;

        restart_processor(&mut chain, None).await;
        recovers(&mut client).await;
        chain.stop().await;
    });
}

#[test]
fn a_slow_processor_opens_the_breaker_on_the_slow_call_rate() {
    smol::block_on(async {
        // Every reply publish takes 250 ms: calls succeed, but slower than the 150 ms threshold.
        let (chain, mut client) =
            start_with_faulty_replies(Trigger::Always, Effect::Delay(Duration::from_millis(250))).await;
        for _ in 0..4 {
            assert_eq!(post(&mut client).await.status, 200, "slow calls still succeed");
        }
        // The fourth slow call is recorded once its gRPC answer is in, just after its reply.
        assert!(settles(|| chain.relay_breaker().state() == State::Open).await, "closed → open on the slow-call rate");
        assert!(chain.relay_breaker().metrics().slow >= 4);
        post_refused_by(&mut client, chain.relay_breaker()).await;
        chain.stop().await;
    });
}

#[test]
fn broker_publish_failures_open_the_gateway_breaker_and_recover() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        let switch = Switch::new();
        let publisher = FaultyPublisher::new(Arc::new(broker.clone())).with_switch(switch.clone());
        let chain = Chain::start(config(), Arc::new(publisher), Arc::new(broker)).await.unwrap();
        let mut client = HttpClient::new(chain.gateway_addr());
        assert_eq!(post(&mut client).await.status, 200);

        switch.disconnect();
        for _ in 0..4 {
            assert_eq!(post(&mut client).await.status, 503, "publish failures answer 503 at once");
        }
        assert_eq!(chain.gateway_breaker().state(), State::Open);
        post_refused_by(&mut client, chain.gateway_breaker()).await;

        switch.reconnect();
        recovers(&mut client).await;
        assert!(settles(|| chain.gateway_breaker().state() == State::Closed).await);
        chain.stop().await;
    });
}

/// A relay killed without leaving its group holds its partitions until the broker's session
/// timeout, longer than a budget: here a second member of the relay group that takes half the
/// partitions and never reads, acks or leaves. Requests published there are published once more,
/// to a partition that answers, and every caller gets its reply.
#[test]
fn requests_on_a_hung_relays_partitions_get_a_second_chance() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        let mut config = config();
        config.gateway.request_timeout = Duration::from_secs(3);
        let (requests, group) = (config.relay.requests_topic.clone(), config.relay.group.clone());
        let chain = Chain::start(config, Arc::new(broker.clone()), Arc::new(broker.clone())).await.unwrap();
        let hung = broker.subscribe(&requests, &group).await.unwrap();
        assert_eq!(broker.member_count(&requests, &group), 2, "the hung member holds half the partitions");

        // Concurrent, so requests on the live partitions answer while the others wait: the
        // evidence a second chance needs (all 16 on the hung half: 1 run in 65 536).
        let addr = chain.gateway_addr();
        let calls: Vec<_> =
            (0..16).map(|_| smol::spawn(async move { post(&mut HttpClient::new(addr)).await })).collect();
        for call in calls {
            let reply = call.await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.json()["message"], CHAIN_RESULT);
        }
        let metrics = chain.metrics().encode();
        let republished: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("requests_republished_total{{topic=\"{requests}\"}} ")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(republished > 0, "answered only because they were published again:\n{metrics}");
        drop(hung);
        chain.stop().await;
    });
}

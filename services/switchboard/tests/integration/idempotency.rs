//! "Any gateway answers" and `Idempotency-Key` on the embedded brokers: a queued job is known to
//! every gateway sharing the job-events fanout; a repeated key returns the same job (any gateway)
//! or the same reply (`/messages`, same gateway) without doing the work again; a key reused with
//! another body is a 422; a malformed key a 400.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::edges_support::{
    drain_jobs, gateway_config, planned_jobs_gateway, post, until_known, Act, Plan, PlannedPublisher, PlannedQueue,
    Served,
};
use serde_json::json;
use switchboard::{Chain, ChainConfig, ChainJobs};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::Fanout;
use switchboard_proto::{JobEvent, JobStatus, ProtoMessage};
use switchboard_wiring::Queues;
use switchboard_worker::DEFAULT_JOB_EVENTS_EXCHANGE;

const QUEUE: &str = "switchboard.jobs";
const LEARN: Duration = Duration::from_secs(5);
/// An abandoned enqueue keeps its slot until the broker answers: do not wait long for it at stop.
const GRACE: Duration = Duration::from_millis(200);

/// A gateway on `fake` with the budget the tests here use, each enqueue done as `plan` says.
async fn jobs_gateway(fake: &MemoryWorkQueue, plan: Plan) -> (Served, Arc<PlannedQueue>) {
    planned_jobs_gateway(gateway_config(Duration::from_secs(5), GRACE), fake, plan).await
}

/// Runs `test` against two gateways on one fresh queue and fanout (passed in too), each with
/// the wrapper counting its enqueues, then stops both.
fn on_two_gateways<T: Future<Output = ()>>(
    test: impl FnOnce(MemoryWorkQueue, [(SocketAddr, Arc<PlannedQueue>); 2]) -> T,
) {
    smol::block_on(async {
        let fake = MemoryWorkQueue::new();
        let (a, qa) = jobs_gateway(&fake, Plan::always(Act::Pass)).await;
        let (b, qb) = jobs_gateway(&fake, Plan::always(Act::Pass)).await;
        test(fake, [(a.addr, qa), (b.addr, qb)]).await;
        a.stop().await;
        b.stop().await;
    });
}

#[test]
fn a_queued_job_is_known_to_every_gateway() {
    on_two_gateways(|_, [(a, _), (b, _)]| async move {
        let accepted = post(a, "/jobs", "hello world", None).await;
        assert_eq!(accepted.status, 202, "{}", accepted.body);
        // No worker runs it: only the accepting gateway's `queued` can tell gateway B.
        let seen = until_known(b, &accepted.id(), LEARN).await;
        assert_eq!(seen.status, 200, "gateway B does not know the queued job: {}", seen.body);
        assert_eq!(seen.json()["status"], "queued");
        assert_eq!(seen.json()["id"], accepted.id().as_str());
    });
}

#[test]
fn the_same_key_returns_the_same_job_on_any_gateway_and_enqueues_once() {
    on_two_gateways(|fake, [(a, qa), (b, qb)]| async move {
        let key = Some("order-4711");
        let first = post(a, "/jobs", "hello world", key).await;
        assert_eq!(first.status, 202, "{}", first.body);
        assert_eq!(first.header("Idempotent-Replayed"), None);
        let again = post(a, "/jobs", "hello world", key).await;
        assert_eq!(again.status, 202, "{}", again.body);
        assert_eq!(again.id(), first.id(), "same key, same gateway: same job");
        assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
        assert_eq!(again.header("Location"), Some(format!("/jobs/{}", first.id()).as_str()));

        // Gateway B hears of the job on the fanout, then answers the key with it.
        assert_eq!(until_known(b, &first.id(), LEARN).await.status, 200);
        let on_b = post(b, "/jobs", "hello world", key).await;
        assert_eq!(on_b.status, 202, "{}", on_b.body);
        assert_eq!(on_b.id(), first.id(), "same key, other gateway: same job");
        assert_eq!((qa.calls(), qb.calls()), (1, 0), "one enqueue in all");

        // The same body in another JSON layout is the same request.
        let body = json!({"message": "hello world"}).to_string().replace(':', " : ");
        let mut client = switchboard::HttpClient::new(b);
        let spaced = client
            .send_with(
                http_types::Method::Post,
                "/jobs",
                Some("application/json"),
                &[("Idempotency-Key", "order-4711")],
                body.into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(spaced.status, 202, "{}", spaced.body);
        assert_eq!(drain_jobs(&fake, QUEUE).await.len(), 1, "one job on the queue");
    });
}

#[test]
fn a_key_reused_with_another_body_is_a_422_on_any_gateway() {
    on_two_gateways(|_, [(a, qa), (b, qb)]| async move {
        let first = post(a, "/jobs", "hello world", Some("k-1")).await;
        assert_eq!(first.status, 202, "{}", first.body);
        let other = post(a, "/jobs", "goodbye world", Some("k-1")).await;
        assert_eq!(other.status, 422, "{}", other.body);
        assert_eq!(other.code(), "idempotency_key_reused");
        assert_eq!(until_known(b, &first.id(), LEARN).await.status, 200);
        let on_b = post(b, "/jobs", "goodbye world", Some("k-1")).await;
        assert_eq!(on_b.status, 422, "{}", on_b.body);
        assert_eq!(on_b.code(), "idempotency_key_reused");
        assert_eq!(qa.calls() + qb.calls(), 1);
    });
}

#[test]
fn a_malformed_key_is_a_json_400() {
    smol::block_on(async {
        let fake = MemoryWorkQueue::new();
        let (g, queue) = jobs_gateway(&fake, Plan::always(Act::Pass)).await;
        let long = "k".repeat(256);
        for key in ["", "\"\"", "with space", "tab\there", "\"unterminated", long.as_str()] {
            for path in ["/jobs", "/messages"] {
                let reply = post(g.addr, path, "hello world", Some(key)).await;
                assert_eq!(reply.status, 400, "{path} key {key:?}: {}", reply.body);
                assert_eq!(reply.code(), "invalid_idempotency_key", "{}", reply.body);
            }
        }
        // The draft's form: a structured-field string; and the longest accepted key.
        let quoted = post(g.addr, "/jobs", "hello world", Some("\"8e03978e-40d5-43e8-bc93-6894a57f9324\"")).await;
        assert_eq!(quoted.status, 202, "{}", quoted.body);
        let bare = post(g.addr, "/jobs", "hello world", Some("8e03978e-40d5-43e8-bc93-6894a57f9324")).await;
        assert_eq!(bare.id(), quoted.id(), "quoted and bare are the same key");
        assert_eq!(post(g.addr, "/jobs", "x", Some(&"k".repeat(255))).await.status, 202);
        assert_eq!(queue.calls(), 2);
        g.stop().await;
    });
}

#[test]
fn concurrent_submissions_with_one_key_on_one_gateway_enqueue_once() {
    smol::block_on(async {
        let fake = MemoryWorkQueue::new();
        // The first enqueue is slow, so the others arrive while it is in flight.
        let (g, queue) = jobs_gateway(&fake, Plan::new(vec![Act::Delay(Duration::from_millis(300))], Act::Pass)).await;
        let addr = g.addr;
        let tasks: Vec<_> = (0..8).map(|_| smol::spawn(post(addr, "/jobs", "hello world", Some("burst")))).collect();
        let mut ids = Vec::new();
        for t in tasks {
            let reply = t.await;
            assert_eq!(reply.status, 202, "{}", reply.body);
            ids.push(reply.id());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one job for one key: {ids:?}");
        assert_eq!(queue.calls(), 1, "one enqueue");
        g.stop().await;
    });
}

/// A lost confirm: the enqueue outlives the budget (503), the broker stores the job anyway,
/// and the client's retry with the same key gets that job instead of a second one.
#[test]
fn a_retry_after_a_timed_out_submission_gets_the_job_the_broker_stored() {
    smol::block_on(async {
        let fake = MemoryWorkQueue::new();
        let plan = Plan::new(vec![Act::Delay(Duration::from_millis(1500))], Act::Pass);
        let (g, queue) = planned_jobs_gateway(gateway_config(Duration::from_millis(300), GRACE), &fake, plan).await;
        let first = post(g.addr, "/jobs", "hello world", Some("retry-me")).await;
        assert_eq!(first.status, 503, "{}", first.body);
        assert_eq!(first.header("Retry-After"), Some("1"));
        // The late confirm still records the job (and tells every gateway).
        let mut retry = post(g.addr, "/jobs", "hello world", Some("retry-me")).await;
        for _ in 0..100 {
            if retry.status == 202 {
                break;
            }
            async_io::Timer::after(Duration::from_millis(50)).await;
            retry = post(g.addr, "/jobs", "hello world", Some("retry-me")).await;
        }
        assert_eq!(retry.status, 202, "{}", retry.body);
        assert_eq!(retry.header("Idempotent-Replayed"), Some("true"), "the stored job, not a new one");
        assert_eq!(queue.confirmed(), 1, "one job stored");
        assert_eq!(drain_jobs(&fake, QUEUE).await.len(), 1);
        g.stop().await;
    });
}

async fn chain(publisher: Arc<PlannedPublisher>, broker: &MemoryBroker) -> Chain {
    let mut c = ChainConfig::default();
    c.gateway.addr = "127.0.0.1:0".parse().unwrap();
    c.processor.addr = "127.0.0.1:0".parse().unwrap();
    Chain::start(c, publisher, Arc::new(broker.clone())).await.expect("chain starts")
}

#[test]
fn a_repeated_key_on_messages_gets_the_first_reply_without_a_second_transaction() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        // Requests are slow to publish, so the repeats arrive while the first is in flight.
        let publisher = PlannedPublisher::new(
            Arc::new(broker.clone()),
            "switchboard.requests",
            Plan::always(Act::Delay(Duration::from_millis(200))),
        );
        let chain = chain(publisher.clone(), &broker).await;
        let addr = chain.gateway_addr();
        let tasks: Vec<_> = (0..4).map(|_| smol::spawn(post(addr, "/messages", "hello world", Some("m-1")))).collect();
        let mut replies = Vec::new();
        for t in tasks {
            replies.push(t.await);
        }
        let later = post(addr, "/messages", "hello world", Some("m-1")).await;
        replies.push(later.clone());
        for r in &replies {
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.id(), replies[0].id(), "one transaction's reply for every repeat");
            assert!(r.json()["message"].as_str().unwrap().starts_with("HELLO WORLD FROM REST"));
        }
        assert_eq!(later.header("Idempotent-Replayed"), Some("true"));
        assert_eq!(publisher.calls(), 1, "one request published");

        let other = post(addr, "/messages", "goodbye world", Some("m-1")).await;
        assert_eq!(other.status, 422, "{}", other.body);
        assert_eq!(other.code(), "idempotency_key_reused");
        let fresh = post(addr, "/messages", "hello world", Some("m-2")).await;
        assert_eq!(fresh.status, 200);
        assert_ne!(fresh.id(), replies[0].id(), "another key is another transaction");
        assert_eq!(publisher.calls(), 2);
        chain.stop().await;
    });
}

/// A chain (gateway, relay, processor, worker) whose jobs go over `queue`, shared with others.
async fn jobs_chain(queue: &MemoryWorkQueue) -> Chain {
    let mut c = ChainConfig::default();
    c.gateway.addr = "127.0.0.1:0".parse().unwrap();
    c.processor.addr = "127.0.0.1:0".parse().unwrap();
    let mut jobs = ChainJobs::new(Queues::embedded(queue.clone()));
    // Far above the fanout's delay even on a loaded machine: this test is about the rule, the
    // default (50 ms) bounds the window on a real deployment.
    jobs.worker = jobs.worker.with_claim_wait(Duration::from_millis(500));
    c.jobs = Some(jobs);
    let broker = MemoryBroker::new();
    Chain::start(c, Arc::new(broker.clone()), Arc::new(broker)).await.expect("chain starts")
}

#[test]
fn a_key_submitted_concurrently_on_two_gateways_runs_once() {
    smol::block_on(async {
        let queue = MemoryWorkQueue::new();
        let (a, b) = (jobs_chain(&queue).await, jobs_chain(&queue).await);
        // Every job event, heard as a gateway hears them.
        let events = queue.listen(DEFAULT_JOB_EVENTS_EXCHANGE).await.unwrap();
        const KEYS: usize = 20;
        let addrs = [a.gateway_addr(), b.gateway_addr()];
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                // Each key goes to both gateways in turn.
                let (addr, key) = (addrs[(i / KEYS) % 2], format!("once-{}", i % KEYS));
                smol::spawn(async move { post(addr, "/jobs", &format!("job {}", i % KEYS), Some(&key)).await })
            })
            .collect();
        let mut ids = HashSet::new();
        for t in tasks {
            let reply = t.await;
            assert_eq!(reply.status, 202, "{}", reply.body);
            ids.insert(reply.id());
        }
        assert_eq!(ids.len(), KEYS, "one job id per key");

        // Until every job is done, then a while longer for any second run to report.
        let mut done: HashMap<String, usize> = HashMap::new();
        let mut quiet_until: Option<std::time::Instant> = None;
        loop {
            let wait = match quiet_until {
                None => Duration::from_secs(30),
                Some(until) => until.saturating_duration_since(std::time::Instant::now()),
            };
            let event = smol::future::or(async { events.recv().await }, async {
                async_io::Timer::after(wait).await;
                None
            })
            .await;
            let Some(event) = event else { break };
            let event = JobEvent::parse_from_bytes(&event.payload).unwrap();
            if event.status.enum_value_or_default() == JobStatus::JOB_STATUS_DONE {
                *done.entry(event.id.clone()).or_default() += 1;
            }
            if quiet_until.is_none() && ids.iter().all(|id| done.contains_key(id)) {
                quiet_until = Some(std::time::Instant::now() + Duration::from_secs(1));
            }
        }
        for id in &ids {
            assert_eq!(done.get(id), Some(&1), "job {id} ran {:?} times: {done:?}", done.get(id));
        }
        a.stop().await;
        b.stop().await;
    });
}

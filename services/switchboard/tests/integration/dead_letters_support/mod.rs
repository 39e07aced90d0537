//! Dead-letter scenarios written once over any brokers: the embedded ones (`dead_letters.rs`)
//! and tansu + RabbitMQ (`real_dead_letters.rs`). Each drives the real chain (gateway, relay,
//! processor, worker) and the `switchboard-dead-letters` operations the CLI and console use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hello::JOB_RESULT;
use serde_json::{json, Value};
use switchboard::{Chain, ChainConfig, ChainJobs, HttpClient};
use switchboard_dead_letters::{DeadLetters, Filter, Run, Settings, Source, SourceKind};
use switchboard_ports::{
    dead_letter_queue, Browse, Message, Publisher, QueueOptions, ATTEMPTS_HEADER, ERROR_HEADER, FIRST_FAILED_HEADER,
    ORIGIN_HEADER, ORIGIN_OFFSET_HEADER, ORIGIN_PARTITION_HEADER, REDRIVES_HEADER, TRACEPARENT_HEADER,
};
use switchboard_wiring::{PubSub, Queues};

/// How long something that must happen may take before the test fails (a hang, not speed).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One `#[test]` per `test => scenario` pair, each running the scenario on a fresh rig: `$rig`,
/// evaluated in the test's async block (so it may `.await`), and the attributes in the leading
/// brackets on every test.
macro_rules! scenario_tests {
    (@test [$(#[$attr:meta])*] $rig:expr; $test:ident => $scenario:ident) => {
        #[test]
        $(#[$attr])*
        fn $test() {
            smol::block_on(async { $crate::dead_letters_support::$scenario(&$rig).await });
        }
    };
    ($attrs:tt $rig:expr; $($test:ident => $scenario:ident;)*) => {
        $($crate::dead_letters_support::scenario_tests!(@test $attrs $rig; $test => $scenario);)*
    };
}
pub(crate) use scenario_tests;

/// Brokers and names of one scenario.
pub struct Rig {
    pub ports: PubSub,
    pub queues: Queues,
    /// The requests' dead-letter topic, browsed under the tool's group.
    pub topics: Arc<dyn Browse>,
    /// The jobs' dead-letter queue.
    pub queue_browse: Arc<dyn Browse>,
    pub requests_topic: String,
    pub replies_topic: String,
    pub requests_dlq: String,
    pub jobs_queue: String,
    pub relay_group: String,
}

impl Rig {
    pub fn config(&self) -> ChainConfig {
        let mut c = ChainConfig::default();
        c.gateway.addr = "127.0.0.1:0".parse().unwrap();
        c.processor.addr = "127.0.0.1:0".parse().unwrap();
        c.gateway.requests_topic = self.requests_topic.clone();
        c.gateway.replies_topic = self.replies_topic.clone();
        c.gateway.request_timeout = Duration::from_secs(20);
        c.relay.requests_topic = self.requests_topic.clone();
        c.relay.dead_letter_topic = self.requests_dlq.clone();
        c.relay.group = self.relay_group.clone();
        // Two quick attempts, so a job fails for good fast while the processor is down.
        let options = QueueOptions::default().with_retry_delays([Duration::from_millis(50)]);
        let mut jobs = ChainJobs::new(self.queues.clone());
        jobs.gateway = jobs.gateway.with_names(&self.jobs_queue, format!("{}.events", self.jobs_queue));
        jobs.gateway = jobs.gateway.with_queue_options(options.clone());
        jobs.worker = jobs
            .worker
            .with_queue(&self.jobs_queue)
            .with_events_exchange(format!("{}.events", self.jobs_queue))
            .with_queue_options(options)
            .with_max_attempts(2);
        jobs.worker.retry_base = Duration::from_millis(20);
        jobs.worker.retry_max = Duration::from_millis(50);
        jobs.worker.attempt_timeout = Duration::from_secs(2);
        c.jobs = Some(jobs);
        c
    }

    pub async fn start(&self) -> Chain {
        Chain::start_on(self.config(), self.ports.clone()).await.expect("chain starts")
    }

    pub fn dead_letters(&self, settings: Settings) -> DeadLetters {
        DeadLetters::new(
            vec![
                Source { kind: SourceKind::Requests, dlq: self.requests_dlq.clone(), browse: self.topics.clone() },
                Source {
                    kind: SourceKind::Jobs,
                    dlq: dead_letter_queue(&self.jobs_queue),
                    browse: self.queue_browse.clone(),
                },
            ],
            settings,
        )
    }
}

pub fn jobs_only(reason: &str) -> Run {
    Run {
        source: Some(SourceKind::Jobs),
        filter: Filter { reason: Some(reason.into()), ..Filter::default() },
        ..Run::default()
    }
}

/// Posts a job and returns its id.
pub async fn post_job(client: &mut HttpClient, message: &str) -> String {
    let reply = client.post_json("/jobs", &json!({"message": message})).await.expect("gateway answers");
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.json()["id"].as_str().expect("an id").to_owned()
}

/// Polls `GET /jobs/{id}` until `done(status)` holds.
pub async fn wait_job(client: &mut HttpClient, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = client.get(&format!("/jobs/{id}")).await.expect("gateway answers");
        if reply.status == 200 && done(&reply.json()) {
            return reply.json();
        }
        assert!(Instant::now() < deadline, "job {id} not {what}: {} {}", reply.status, reply.body);
        async_io::Timer::after(Duration::from_millis(25)).await;
    }
}

/// Lists until `n` dead letters of `source` are there (a dead letter lands after the failed
/// event, so the store may say failed a moment before).
pub async fn wait_listed(ops: &DeadLetters, source: SourceKind, n: usize) -> Vec<switchboard_dead_letters::Entry> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let entries = ops.list(Some(source), &Filter::default()).await.expect("list").entries;
        if entries.len() == n {
            return entries;
        }
        assert!(Instant::now() < deadline, "{} dead letters of {source:?} listed, expected {n}", entries.len());
        async_io::Timer::after(Duration::from_millis(50)).await;
    }
}

/// After the processor is back: posts probe jobs until one is done (the worker's channel
/// reconnects on gRPC's backoff, so the first may still fail), then purges the probes that
/// failed meanwhile, so the dead-letter queue holds only what the scenario put there.
pub async fn wait_worker_serves(client: &mut HttpClient, ops: &DeadLetters) {
    let deadline = Instant::now() + PATIENCE;
    let mut failed = Vec::new();
    loop {
        let id = post_job(client, "probe").await;
        let end = wait_job(client, &id, "final", |j| j["status"] == "done" || j["status"] == "failed").await;
        if end["status"] == "done" {
            break;
        }
        failed.push(format!("jobs:{id}"));
        assert!(Instant::now() < deadline, "the worker does not reach the restarted processor");
    }
    if failed.is_empty() {
        return;
    }
    // A failed probe's dead letter lands just after its failed event.
    let probes = Filter { ids: failed.clone(), ..Filter::default() };
    let deadline = Instant::now() + PATIENCE;
    while ops.list(Some(SourceKind::Jobs), &probes).await.expect("list").entries.len() < failed.len() {
        assert!(Instant::now() < deadline, "the failed probes' dead letters did not arrive");
        async_io::Timer::after(Duration::from_millis(50)).await;
    }
    let run = Run { source: Some(SourceKind::Jobs), filter: probes, ..Run::default() };
    let purged = ops.purge(&run, "test").await.expect("purge probes");
    assert_eq!(purged.done, failed.len(), "{:?}", purged.details);
}

/// A job failing every attempt reaches the DLQ with its origin; `--dry-run` changes nothing;
/// once the processor is back, a redrive by reason brings it back and `GET /jobs/{id}` shows
/// it done.
pub async fn failed_job_is_redriven_once_fixed(rig: &Rig) {
    let mut chain = rig.start().await;
    chain.stop_processor().await;
    let mut client = HttpClient::new(chain.gateway_addr());
    let id = post_job(&mut client, "hello world").await;
    let failed = wait_job(&mut client, &id, "failed", |j| j["status"] == "failed").await;
    assert_eq!(failed["attempt"], 2, "{failed}");

    let ops = rig.dead_letters(Settings::default());
    let listed = wait_listed(&ops, SourceKind::Jobs, 1).await;
    let dead = &listed[0];
    assert_eq!(dead.id, format!("jobs:{id}"));
    assert_eq!(dead.origin.as_deref(), Some(rig.jobs_queue.as_str()));
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.redrives, 0);
    assert!(dead.reason.starts_with("gave up after 2 attempts"), "{}", dead.reason);
    let m = &dead.message;
    assert_eq!(m.header_str(ERROR_HEADER), Some(dead.reason.as_str()));
    assert_eq!(m.header_str(ORIGIN_HEADER), Some(rig.jobs_queue.as_str()));
    assert_eq!(m.header_str(ATTEMPTS_HEADER), Some("2"));
    assert!(m.header_str(FIRST_FAILED_HEADER).and_then(|t| t.parse::<u64>().ok()).is_some());
    assert!(m.header_str(TRACEPARENT_HEADER).is_some_and(|t| t.starts_with("00-")), "{:?}", m.headers);

    let dry = ops.redrive(&Run { dry_run: true, ..jobs_only("gave up") }, "test").await.unwrap();
    assert_eq!((dry.done, dry.refused), (1, 0), "{:?}", dry.details);
    assert_eq!(dry.details[0]["outcome"], "would_redrive");
    assert_eq!(dry.details[0]["to"], rig.jobs_queue.as_str());
    assert_eq!(wait_listed(&ops, SourceKind::Jobs, 1).await[0].id, dead.id, "a dry run changes nothing");
    let still = client.get(&format!("/jobs/{id}")).await.unwrap().json();
    assert_eq!(still["status"], "failed", "{still}");

    chain.start_processor(None).unwrap();
    wait_worker_serves(&mut client, &ops).await;
    let report = ops.redrive(&jobs_only("gave up"), "test").await.unwrap();
    assert_eq!((report.done, report.refused, report.error.clone()), (1, 0, None), "{:?}", report.details);
    let done = wait_job(&mut client, &id, "done", |j| j["status"] == "done").await;
    assert_eq!(done["result"], JOB_RESULT, "{done}");
    assert_eq!(done["attempt"], 1, "the redriven run starts again at attempt 1: {done}");
    assert!(ops.list(Some(SourceKind::Jobs), &Filter::default()).await.unwrap().entries.is_empty());
    chain.stop().await;
}

/// A job that fails again after each redrive stops at `--max-redrives`: refused, and it stays.
pub async fn redrive_stops_at_max_redrives(rig: &Rig) {
    let mut chain = rig.start().await;
    chain.stop_processor().await;
    let mut client = HttpClient::new(chain.gateway_addr());
    let id = post_job(&mut client, "still broken").await;
    wait_job(&mut client, &id, "failed", |j| j["status"] == "failed").await;
    let ops = rig.dead_letters(Settings { max_redrives: 2, ..Settings::default() });
    for round in 1..=2u32 {
        wait_listed(&ops, SourceKind::Jobs, 1).await;
        let report = ops.redrive(&jobs_only("gave up"), "test").await.unwrap();
        assert_eq!((report.done, report.refused), (1, 0), "round {round}: {:?}", report.details);
        // Back in the DLQ with one more redrive counted.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let entries = ops.list(Some(SourceKind::Jobs), &Filter::default()).await.unwrap().entries;
            if entries.len() == 1 && entries[0].redrives == round {
                assert_eq!(entries[0].message.header_str(REDRIVES_HEADER), Some(round.to_string().as_str()));
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: not back in the DLQ with redrives {round}");
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
    }
    let refused = ops.redrive(&jobs_only("gave up"), "test").await.unwrap();
    assert_eq!((refused.done, refused.refused), (0, 1), "{:?}", refused.details);
    assert!(refused.details[0]["why"].as_str().unwrap().contains("--max-redrives 2"), "{:?}", refused.details);
    let left = ops.list(Some(SourceKind::Jobs), &Filter::default()).await.unwrap().entries;
    assert_eq!(left.len(), 1, "a refused dead letter stays");
    assert_eq!(left[0].id, format!("jobs:{id}"));
    chain.stop().await;
}

/// A poison request lands on the requests' dead-letter topic with its origin record; it can be
/// listed and shown; a redrive is refused without `allow_requests`; a dry-run purge changes
/// nothing; a purge removes it.
pub async fn poison_request_list_show_purge(rig: &Rig) {
    let chain = rig.start().await;
    let poison = Message::new(&b"\xff\x00 not an envelope"[..]).with_key("poison-1");
    rig.ports.publisher.publish(&rig.requests_topic, poison).await.expect("published");
    let ops = rig.dead_letters(Settings::default());
    let listed = wait_listed(&ops, SourceKind::Requests, 1).await;
    let dead = &listed[0];
    assert!(dead.id.starts_with("requests:"), "{}", dead.id);
    assert!(dead.reason.starts_with("undecodable envelope"), "{}", dead.reason);
    assert_eq!(dead.origin.as_deref(), Some(rig.requests_topic.as_str()));
    let m = &dead.message;
    let partition: i32 = m.header_str(ORIGIN_PARTITION_HEADER).expect("origin partition").parse().unwrap();
    let offset: i64 = m.header_str(ORIGIN_OFFSET_HEADER).expect("origin offset").parse().unwrap();
    assert_eq!(dead.origin_shown, format!("{}/{partition}@{offset}", rig.requests_topic));
    assert_eq!(m.key.as_deref(), Some(&b"poison-1"[..]));

    let shown = ops.show(&dead.id).await.unwrap().expect("shown by id");
    let detail = shown.detail_json(switchboard_ports::unix_millis(), 8);
    assert_eq!(detail["decoded"]["kind"], "undecodable", "{detail}");
    assert_eq!(detail["payload_truncated"], true, "payload capped at 8 bytes: {detail}");

    let all = Run { source: Some(SourceKind::Requests), ..Run::default() };
    let refused = ops.redrive(&all, "test").await.unwrap();
    assert_eq!((refused.done, refused.refused), (0, 1), "{:?}", refused.details);
    assert!(refused.details[0]["why"].as_str().unwrap().contains("--allow-requests"));

    let dry = ops.purge(&Run { dry_run: true, ..all.clone() }, "test").await.unwrap();
    assert_eq!(dry.done, 1);
    assert_eq!(wait_listed(&ops, SourceKind::Requests, 1).await[0].id, dead.id, "a dry run changes nothing");
    let purged = ops.purge(&all, "test").await.unwrap();
    assert_eq!((purged.done, purged.error.clone()), (1, None), "{:?}", purged.details);
    assert!(ops.list(Some(SourceKind::Requests), &Filter::default()).await.unwrap().entries.is_empty());
    chain.stop().await;
}

/// With `allow_requests`, a poison request redriven poisons again and lands back with one more
/// redrive, until `max_redrives` refuses it.
pub async fn poison_request_redrive_stops_at_max_redrives(rig: &Rig) {
    let chain = rig.start().await;
    rig.ports.publisher.publish(&rig.requests_topic, Message::new(&b"\x00junk"[..])).await.expect("published");
    let ops = rig.dead_letters(Settings { allow_requests: true, max_redrives: 1, ..Settings::default() });
    wait_listed(&ops, SourceKind::Requests, 1).await;
    let all = Run { source: Some(SourceKind::Requests), ..Run::default() };
    let report = ops.redrive(&all, "test").await.unwrap();
    assert_eq!((report.done, report.refused), (1, 0), "{:?}", report.details);
    let deadline = Instant::now() + PATIENCE;
    let again = loop {
        let entries = ops.list(Some(SourceKind::Requests), &Filter::default()).await.unwrap().entries;
        if entries.len() == 1 && entries[0].redrives == 1 {
            break entries;
        }
        assert!(Instant::now() < deadline, "the redriven poison did not come back: {}", entries.len());
        async_io::Timer::after(Duration::from_millis(50)).await;
    };
    assert!(again[0].reason.starts_with("undecodable envelope"));
    let refused = ops.redrive(&all, "test").await.unwrap();
    assert_eq!((refused.done, refused.refused), (0, 1), "{:?}", refused.details);
    assert_eq!(ops.list(Some(SourceKind::Requests), &Filter::default()).await.unwrap().entries.len(), 1);
    chain.stop().await;
}

//! Dead letters on tansu (Kafka) and RabbitMQ (`make test-real`): the scenarios of
//! `dead_letters.rs` on real brokers, and a redrive by the `switchboard dlq` binary killed with
//! SIGKILL mid-way then run again: every job ends done or still in the dead-letter queue, none
//! lost. Needs `KAFKA_BROKERS` and `AMQP_URL`; fails when either is missing or unreachable.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dead_letters_support::*;
use switchboard::HttpClient;
use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};
use switchboard_dead_letters::{Filter, Settings, SourceKind};
use switchboard_kafka::{KafkaPublisher, KafkaTopicLog};
use switchboard_wiring::{BrokerArgs, Queues};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must point at a real broker (make test-real sets it)"))
}

/// Fresh topics, queue and groups per run, and the tool group of this run.
async fn rig() -> (Rig, String) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let brokers = env("KAFKA_BROKERS");
    let requests_topic = format!("test.dl.requests.{run}");
    let replies_topic = format!("test.dl.replies.{run}");
    let requests_dlq = format!("test.dl.requests.dlq.{run}");
    let args = BrokerArgs::on_kafka(brokers.clone(), 2);
    let ports = args.connect(&[&requests_topic, &replies_topic, &requests_dlq]).await.expect("kafka reachable");
    assert_eq!(ports.kind, "kafka");
    let config = args.kafka_config(&brokers).unwrap();
    let group = format!("test-dlq-{run}");
    let topics = KafkaTopicLog::new(&config, Arc::new(KafkaPublisher::new(&config).unwrap())).browser(&group);
    let url = env("AMQP_URL");
    let amqp = smol::unblock(move || AmqpWorkQueue::connect(AmqpConfig::new(url))).await.expect("rabbitmq reachable");
    let rig = Rig {
        ports,
        queues: Queues::rabbitmq(amqp.clone()),
        topics: Arc::new(topics),
        queue_browse: Arc::new(amqp),
        requests_topic,
        replies_topic,
        requests_dlq,
        jobs_queue: format!("test.dl.jobs.{run}"),
        relay_group: format!("test-dl-relay-{run}"),
    };
    (rig, group)
}

scenario_tests! { [#[ignore = "needs tansu and RabbitMQ: make test-real"]] rig().await.0;
    real_failed_job_is_redriven_once_fixed => failed_job_is_redriven_once_fixed;
    real_job_failing_again_stops_at_max_redrives => redrive_stops_at_max_redrives;
    real_poison_request_is_listed_shown_and_purged => poison_request_list_show_purge;
    real_poison_request_redriven_stops_at_max_redrives => poison_request_redrive_stops_at_max_redrives;
}

/// The `switchboard dlq` binary against this rig's names.
fn dlq(rig: &Rig, group: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.arg("dlq")
        .args(args)
        .env("KAFKA_BROKERS", env("KAFKA_BROKERS"))
        .env("AMQP_URL", env("AMQP_URL"))
        .env("SWITCHBOARD_REQUESTS_DLQ", &rig.requests_dlq)
        .env("SWITCHBOARD_JOBS_QUEUE", &rig.jobs_queue)
        .env("SWITCHBOARD_DLQ_GROUP", group)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    c
}

#[test]
#[ignore = "needs tansu and RabbitMQ: make test-real"]
fn real_redrive_killed_mid_way_then_rerun_loses_nothing() {
    smol::block_on(async {
        let (rig, group) = rig().await;
        let mut chain = rig.start().await;
        chain.stop_processor().await;
        let mut client = HttpClient::new(chain.gateway_addr());
        const JOBS: usize = 12;
        let mut ids = Vec::new();
        for i in 0..JOBS {
            ids.push(post_job(&mut client, &format!("job {i}")).await);
        }
        for id in &ids {
            wait_job(&mut client, id, "failed", |j| j["status"] == "failed").await;
        }
        let ops = rig.dead_letters(Settings::default());
        wait_listed(&ops, SourceKind::Jobs, JOBS).await;

        // What the CLI prints for scripts is JSON.
        let out = dlq(&rig, &group, &["list", "--by-reason", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let counts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
        let jobs_count: u64 = counts["by_reason"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["source"] == "jobs")
            .map(|r| r["count"].as_u64().unwrap())
            .sum();
        assert_eq!(jobs_count, JOBS as u64, "{counts}");

        chain.start_processor(None).unwrap();
        wait_worker_serves(&mut client, &ops).await;
        // Two per second: killed after a few are through, with one possibly in flight.
        let mut child = dlq(&rig, &group, &["redrive", "--source", "jobs", "--reason", "gave up", "--rate", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = ops.list(Some(SourceKind::Jobs), &Filter::default()).await.unwrap().entries.len();
            if left <= JOBS - 3 {
                break;
            }
            assert!(Instant::now() < deadline, "the redrive made no progress: {left} left");
            async_io::Timer::after(Duration::from_millis(100)).await;
        }
        // SIGKILL: no cleanup, the broker takes back what the dead tool held.
        child.kill().unwrap();
        child.wait().unwrap();

        // Every job is done or still a dead letter: none lost.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let listed: Vec<String> = ops
                .list(Some(SourceKind::Jobs), &Filter::default())
                .await
                .unwrap()
                .entries
                .into_iter()
                .map(|e| e.id)
                .collect();
            let mut unaccounted = Vec::new();
            for id in &ids {
                let status = client.get(&format!("/jobs/{id}")).await.unwrap().json();
                if status["status"] != "done" && !listed.contains(&format!("jobs:{id}")) {
                    unaccounted.push(format!("{id}: {}", status["status"]));
                }
            }
            if unaccounted.is_empty() {
                assert!(!listed.is_empty(), "killed before the end, some must be left");
                break;
            }
            assert!(Instant::now() < deadline, "neither done nor in the DLQ: {unaccounted:?}");
            async_io::Timer::after(Duration::from_millis(100)).await;
        }

        let out = dlq(&rig, &group, &["redrive", "--source", "jobs", "--reason", "gave up", "--rate", "0", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
        assert_eq!(report["refused"], 0, "{report}");
        for id in &ids {
            let done = wait_job(&mut client, id, "done", |j| j["status"] == "done").await;
            let result = done["result"].as_str().unwrap_or_default();
            assert!(result.starts_with("JOB ") && result.ends_with(" AND GRPC CLIENT AND GRPC SERVER"), "{done}");
        }
        assert!(ops.list(Some(SourceKind::Jobs), &Filter::default()).await.unwrap().entries.is_empty());
        chain.stop().await;
    });
}

//! The gateway's job-events feed given whatever can arrive on the fanout: arbitrary bytes and
//! events with unknown statuses are dropped with a warning, never panic the feed, and the
//! gateway keeps reporting real jobs afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hello::JOB_RESULT;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use switchboard::{Chain, ChainConfig, ChainJobs, HttpClient};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::{Fanout, Message};
use switchboard_proto::{JobEvent, ProtoMessage};
use switchboard_wiring::Queues;

const EVENTS: &str = "switchboard.job-events";

/// Posts a job and polls it until done; fails after 20 s.
async fn job_completes(client: &mut HttpClient) {
    let accepted = client.post_json("/jobs", &json!({"message": "hello world"})).await.unwrap();
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.json()["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = client.get(&format!("/jobs/{id}")).await.unwrap().json();
        if status["status"] == "done" {
            assert_eq!(status["result"], JOB_RESULT);
            return;
        }
        assert!(Instant::now() < deadline, "job {id} not done in 20 s: {status}");
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
}

/// Event payloads: arbitrary bytes, or well-formed events with any status number.
fn events() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (".{0,30}", any::<i32>(), ".{0,30}").prop_map(|(id, status, result)| {
            let mut e = JobEvent::new();
            e.id = id;
            e.status = protobuf::EnumOrUnknown::from_i32(status);
            e.result = result;
            e.write_to_bytes().unwrap()
        }),
    ]
}

#[test]
fn arbitrary_job_events_never_stop_the_gateway_reporting_jobs() {
    let queue = MemoryWorkQueue::new();
    let mut config = ChainConfig::default();
    config.gateway.addr = "127.0.0.1:0".parse().unwrap();
    config.processor.addr = "127.0.0.1:0".parse().unwrap();
    config.jobs = Some(ChainJobs::new(Queues::embedded(queue.clone())));
    let broker = MemoryBroker::new();
    let chain = smol::block_on(Chain::start(config, Arc::new(broker.clone()), Arc::new(broker))).unwrap();
    let mut client = HttpClient::new(chain.gateway_addr());
    let mut runner = TestRunner::new(Config { cases: 64, ..Config::default() });
    runner
        .run(&proptest::collection::vec(events(), 1..16), |payloads| {
            let status = smol::block_on(async {
                for p in payloads {
                    queue.broadcast(EVENTS, Message::new(p)).await.unwrap();
                }
                // After every case the gateway still answers a job query with its JSON error
                // body: whatever the feed carried, it neither crashed nor wedged the gateway.
                let reply = HttpClient::new(chain.gateway_addr()).get("/jobs/no-such-job").await;
                reply.map(|r| (r.status, r.json()["error"]["code"].as_str().map(str::to_owned)))
            });
            prop_assert_eq!(status.ok(), Some((404, Some("not_found".to_owned()))));
            Ok(())
        })
        .unwrap();
    smol::block_on(async {
        // The feed is still alive: a real job's events reach the store.
        job_completes(&mut client).await;
        chain.stop().await;
    });
}

//! The worker given whatever can land on its work queue: arbitrary payloads that are not a job
//! never panic, never reach the processor, and end in the dead-letter queue with the reason;
//! the worker keeps serving real jobs after them.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::*;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::{Message, WorkQueue};
use switchboard_proto::{JobStatus, ProtoMessage};

/// Payloads that do not decode to a job with an id: the worker's poison.
fn poison() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..256).prop_filter("decodes to a job with an id", |bytes| {
        switchboard_proto::Job::parse_from_bytes(bytes).map_or(true, |j| j.envelope.id.is_empty())
    })
}

#[test]
fn arbitrary_payloads_are_dead_lettered_and_the_worker_keeps_going() {
    let q = MemoryWorkQueue::new();
    let config = test_config("fuzz");
    let processor = TestProcessor::start();
    let (w, mut events) = smol::block_on(async {
        let events = Events::listen(&q, &config.events_exchange).await;
        (Running::start(worker(&q, config.clone(), &processor)).await, events)
    });
    let mut runner = TestRunner::new(Config { cases: 24, ..Config::default() });
    runner
        .run(&proptest::collection::vec(poison(), 1..12), |payloads| {
            run(async {
                for p in &payloads {
                    q.enqueue(&config.queue, Message::new(p.clone())).await.unwrap();
                }
                let mut dead = dead_letters(&q, &config.queue, payloads.len()).await;
                dead.sort();
                let mut sent = payloads.clone();
                sent.sort();
                let got: Vec<Vec<u8>> = dead.iter().map(|(p, _)| p.clone()).collect();
                assert_eq!(got, sent, "every payload dead-lettered as it came");
                for (_, why) in &dead {
                    let known = ["undecodable job", "job without envelope", "job without id"];
                    assert!(known.iter().any(|k| why.starts_with(k)), "{why}");
                }
            });
            Ok(())
        })
        .unwrap();
    run(async {
        let id = enqueue(&q, &config.queue, "hello world").await;
        assert_eq!(events.wait_for(&id, JobStatus::JOB_STATUS_DONE).await.result, HELLO_RESULT);
        assert_eq!(processor.calls(), 1, "poison never reached the processor");
        w.stop().await;
    });
    smol::block_on(processor.stop());
}

//! The operations over the embedded brokers' ports alone (no chain): ordering, filters, the
//! Kafka-style offset rules of a filtered redrive, and what a dropped pass leaves.

use std::sync::Arc;

use switchboard_dead_letters::{DeadLetters, Filter, Run, Settings, Source, SourceKind, TOOL_GROUP};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::{
    stamp_dead_letter, Browse, Message, Origin, Publisher, QueueOptions, TopicAdmin, WorkQueue, REDRIVES_HEADER,
};

const DLQ: &str = "requests.dlq";

fn dead(reason: &str, offset: i64) -> Message {
    let mut m = Message::new(format!("payload {offset}")).with_key("k");
    stamp_dead_letter(&mut m, &Origin::record("requests", Some((0, offset))), reason, 1, None);
    m
}

async fn topic_with(reasons: &[&str]) -> (MemoryBroker, DeadLetters) {
    let broker = MemoryBroker::new();
    broker.ensure_topic(DLQ, 1).await.unwrap();
    broker.ensure_topic("requests", 1).await.unwrap();
    for (i, r) in reasons.iter().enumerate() {
        broker.publish(DLQ, dead(r, i as i64)).await.unwrap();
    }
    let source = Source { kind: SourceKind::Requests, dlq: DLQ.into(), browse: Arc::new(broker.browser(TOOL_GROUP)) };
    let ops = DeadLetters::new(vec![source], Settings { allow_requests: true, ..Settings::default() });
    (broker, ops)
}

fn by_reason(reason: &str) -> Run {
    Run { filter: Filter { reason: Some(reason.into()), ..Filter::default() }, ..Run::default() }
}

#[test]
fn a_filtered_redrive_keeps_the_skipped_older_record_and_commits_past_both() {
    smol::block_on(async {
        let (broker, ops) = topic_with(&["keep me", "send me", "keep me too"]).await;
        let report = ops.redrive(&by_reason("send"), "test").await.unwrap();
        assert_eq!((report.done, report.refused), (1, 0), "{:?}", report.details);
        // The redriven copy is at the origin with its count; the dead-letter marks are gone.
        let origin = broker.browser("reader").browse("requests", 10).await.unwrap();
        assert_eq!(origin.entries().len(), 1);
        let copy = &origin.entries()[0].message;
        assert_eq!(copy.payload, b"payload 1");
        assert_eq!(copy.header_str(REDRIVES_HEADER), Some("1"));
        assert_eq!(copy.header_str("x-switchboard-error"), None);
        // The skipped older one was appended again; the group committed past offset 1.
        assert_eq!(broker.committed_offsets(DLQ, TOOL_GROUP), Some(vec![2]));
        let left = ops.list(None, &Filter::default()).await.unwrap();
        let mut reasons: Vec<&str> = left.entries.iter().map(|e| e.reason.as_str()).collect();
        reasons.sort();
        assert_eq!(reasons, ["keep me", "keep me too"]);
        assert!(left.entries.iter().any(|e| e.id == "requests:0:3"), "moved to the end: {:?}", left.entries);
    });
}

#[test]
fn list_is_newest_first_with_counts_by_reason_and_changes_nothing() {
    smol::block_on(async {
        let (broker, ops) = topic_with(&["a", "b", "a"]).await;
        let listing = ops.list(None, &Filter::default()).await.unwrap();
        assert_eq!(listing.entries.len(), 3);
        assert!(listing.entries.windows(2).all(|w| w[0].failed_unix_ms >= w[1].failed_unix_ms));
        assert_eq!(listing.by_reason[0], (SourceKind::Requests, "a".to_string(), 2));
        assert_eq!(broker.committed_offsets(DLQ, TOOL_GROUP), None, "reading commits nothing");
        let json = listing.to_json(2);
        assert_eq!(json["items"].as_array().unwrap().len(), 2);
        assert_eq!(json["by_reason"].as_array().unwrap().len(), 2);
    });
}

#[test]
fn max_and_ids_bound_a_redrive_and_a_dry_run_sends_nothing() {
    smol::block_on(async {
        let (broker, ops) = topic_with(&["x", "x", "x"]).await;
        let dry = ops.redrive(&Run { dry_run: true, ..Run::default() }, "test").await.unwrap();
        assert_eq!(dry.done, 3);
        assert_eq!(broker.end_offsets("requests"), Some(vec![0]), "a dry run publishes nothing");
        let two = ops.redrive(&Run { max: Some(2), ..Run::default() }, "test").await.unwrap();
        assert_eq!(two.done, 2);
        let one = ops
            .redrive(
                &Run { filter: Filter { ids: vec!["requests:0:2".into()], ..Filter::default() }, ..Run::default() },
                "test",
            )
            .await
            .unwrap();
        assert_eq!(one.done, 1, "{:?}", one.details);
        assert_eq!(broker.end_offsets("requests"), Some(vec![3]));
        assert!(ops.list(None, &Filter::default()).await.unwrap().entries.is_empty());
    });
}

#[test]
fn a_dropped_queue_pass_puts_everything_back_in_order() {
    smol::block_on(async {
        let q = MemoryWorkQueue::new();
        q.declare("jobs", &QueueOptions::default()).await.unwrap();
        for i in 0..3 {
            q.enqueue("jobs", Message::new(vec![i])).await.unwrap();
        }
        let mut pass = q.browse("jobs", 10).await.unwrap();
        assert_eq!(pass.entries().len(), 3);
        pass.remove(1).await.unwrap();
        drop(pass);
        let again = q.browse("jobs", 10).await.unwrap();
        let payloads: Vec<Vec<u8>> = again.entries().iter().map(|e| e.message.payload.clone()).collect();
        assert_eq!(payloads, [vec![0], vec![2]]);
    });
}

#[test]
fn a_redrive_to_a_missing_origin_stops_and_the_dead_letter_stays() {
    smol::block_on(async {
        let q = MemoryWorkQueue::new();
        q.declare("jobs", &QueueOptions::default()).await.unwrap();
        let mut m = Message::new("job");
        stamp_dead_letter(&mut m, &Origin::queue("gone"), "boom", 3, None);
        q.enqueue("jobs.dlq", m).await.unwrap();
        let source = Source { kind: SourceKind::Jobs, dlq: "jobs.dlq".into(), browse: Arc::new(q.clone()) };
        let ops = DeadLetters::new(vec![source], Settings::default());
        let report = ops.redrive(&Run::default(), "test").await.unwrap();
        assert_eq!(report.done, 0);
        assert!(report.error.as_deref().unwrap_or_default().contains("gone"), "{report:?}");
        assert_eq!(ops.list(None, &Filter::default()).await.unwrap().entries.len(), 1);
    });
}

//! The inspection port: watermarks and a group's committed offsets, read without consuming.

use std::time::Instant;

use switchboard_ports::{Message, PartitionOffsets};

use super::support::{expect, publish, skip, subscribe, topic, within};
use super::Backend;

/// After three messages on partition 0 and one of them acked by a group, inspecting shows
/// partition 0 with end 3, committed 1 and lag 2, every other partition without lag; the
/// group then still receives the other two (inspecting consumed nothing); an unknown topic
/// is an error.
pub async fn inspect_reports_lag(b: &dyn Backend) {
    let Some(inspect) = b.inspect() else {
        skip("inspect_reports_lag", "inspect", false);
        return;
    };
    within(b, "inspect_reports_lag", async {
        let p = b.publisher();
        let topic = topic(b, "inspect").await;
        let group_sub = subscribe(b, &topic, "inspect").await;
        let group = format!("{topic}.inspect");
        for i in 0..3 {
            publish(&*p, &topic, Message::new(format!("m{i}")).to_partition(0)).await;
        }
        let first = expect(&group_sub, b, "the first message").await;
        assert_eq!(first.message().payload, b"m0");
        first.ack();
        // Commits may be asynchronous: wait for the one that covers the ack.
        let deadline = Instant::now() + b.config().receive;
        let offsets: Vec<PartitionOffsets> = loop {
            let offsets = inspect.topic_offsets(&topic, &group).await.expect("topic_offsets");
            let p0 = offsets.iter().find(|p| p.partition == 0).copied();
            if p0.is_some_and(|p| p.end == 3 && p.committed == Some(1)) {
                break offsets;
            }
            assert!(Instant::now() < deadline, "partition 0 never showed end 3, committed 1: {offsets:?}");
            smol::Timer::after(std::time::Duration::from_millis(100)).await;
        };
        let partitions: Vec<i32> = offsets.iter().map(|p| p.partition).collect();
        assert_eq!(partitions, (0..b.config().partitions).collect::<Vec<_>>(), "every partition, in order");
        assert_eq!(offsets[0].lag(), 2);
        assert!(offsets[1..].iter().all(|p| p.end == 0 && p.lag() == 0), "{offsets:?}");
        for want in ["m1", "m2"] {
            let d = expect(&group_sub, b, "the messages inspecting left alone").await;
            assert_eq!(d.message().payload, want.as_bytes());
            d.ack();
        }
        let missing = format!("{topic}.missing");
        assert!(inspect.topic_offsets(&missing, &group).await.is_err(), "an unknown topic is an error");
    })
    .await;
}

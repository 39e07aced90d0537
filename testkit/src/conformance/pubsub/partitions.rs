//! Cases of the partition-level ports: publishing to a named partition and reading given
//! partitions without a group (the gateway's own share of the replies).

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_ports::{ErrorKind, Message, Publisher, Subscriber};

use super::support::{assert_quiet, expect, publish, subscribe, topic, within};
use super::Backend;

/// A publisher, a fresh topic named after `case`, the backend's subscriber, and the topic's
/// partition count.
async fn partitioned_topic(b: &dyn Backend, case: &str) -> (Arc<dyn Publisher>, String, Arc<dyn Subscriber>, i32) {
    let p = b.publisher();
    let topic = topic(b, case).await;
    let s = b.subscriber();
    let count = s.partition_count(&topic).await.expect("partition_count");
    (p, topic, s, count)
}

/// A reader assigned partition 0 gets what is published to partition 0 after `assign`
/// returned, nothing published before, nothing of partition 1; a group member of the topic
/// sees both, each on the partition named.
pub async fn assigned_partition_reads_only_its_own(b: &dyn Backend) {
    within(b, "assigned_partition_reads_only_its_own", async {
        let (p, topic, s, count) = partitioned_topic(b, "assigned_partition").await;
        assert!(count >= 2, "the case needs 2 partitions, the topic has {count}");
        publish(&*p, &topic, Message::new("before").to_partition(0)).await;
        let group = subscribe(b, &topic, "all").await;
        let reader = s.assign(&topic, &[0]).await.expect("assign");
        for (i, part) in [(0, 0), (1, 1), (2, 0)] {
            publish(&*p, &topic, Message::new(format!("m{i}")).with_key(format!("k{i}")).to_partition(part)).await;
        }
        for want in ["m0", "m2"] {
            let d = expect(&reader, b, "a message of partition 0").await;
            assert_eq!((d.partition(), d.message().payload.as_slice()), (0, want.as_bytes()));
            d.ack();
        }
        assert_quiet(&reader, b).await;
        let mut seen = BTreeMap::new();
        while seen.len() < 3 {
            let d = expect(&group, b, "every message, to the group").await;
            seen.insert(String::from_utf8_lossy(&d.message().payload).into_owned(), d.partition());
            d.ack();
        }
        let want: BTreeMap<String, i32> = [("m0", 0), ("m1", 1), ("m2", 0)].map(|(m, p)| (m.to_string(), p)).into();
        assert_eq!(seen, want, "each message on the partition it named");
    })
    .await
}

/// A partition outside the topic's range is refused (`Invalid`, message handed back) for
/// publishing and for reading; nothing is created, and the topic keeps its partitions.
pub async fn partition_out_of_range_is_refused(b: &dyn Backend) {
    within(b, "partition_out_of_range_is_refused", async {
        let (p, topic, s, count) = partitioned_topic(b, "partition_range").await;
        for bad in [count, count + 100, -1] {
            let err = p.publish(&topic, Message::new("stray").to_partition(bad)).await.expect_err("out of range");
            assert_eq!(err.error.kind(), ErrorKind::Invalid, "partition {bad}: {}", err.error);
            assert_eq!(err.into_inner().payload, b"stray", "the message is handed back");
            let err = s.assign(&topic, &[bad]).await.expect_err("assign out of range");
            assert_eq!(err.kind(), ErrorKind::Invalid, "assign {bad}: {err}");
        }
        assert_eq!(s.assign(&topic, &[]).await.expect_err("assign nothing").kind(), ErrorKind::Invalid);
        assert_eq!(s.partition_count(&topic).await.expect("partition_count"), count, "no partition was added");
    })
    .await
}

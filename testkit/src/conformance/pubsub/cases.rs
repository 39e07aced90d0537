//! The cases, one `pub async fn` each.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures_lite::future;
use smol::Timer;
use switchboard_ports::{Delivery, ErrorKind, Message};

use super::support::{
    assert_quiet, expect, number, numbered, one_subscription, publish, receive_from_both, subscribe, topic,
    two_members_after, within, within_needing,
};
use super::Backend;

/// Every case in turn, for a backend that prefers one test.
pub async fn run_all(b: &dyn Backend) {
    publish_subscribe(b).await;
    headers_and_key_round_trip(b).await;
    many_messages(b).await;
    consumer_group_sharing(b).await;
    redelivery_on_member_leave(b).await;
    nack_redelivers(b).await;
    order_per_key(b).await;
    continue_after_close(b).await;
    topic_isolation(b).await;
    publisher_close(b).await;
    super::assigned_partition_reads_only_its_own(b).await;
    super::partition_out_of_range_is_refused(b).await;
}

/// A subscribed message arrives intact; published right after `subscribe` returned.
pub async fn publish_subscribe(b: &dyn Backend) {
    within(b, "publish_subscribe", async {
        let (p, topic, sub) = one_subscription(b, "publish_subscribe").await;
        publish(&*p, &topic, Message::new("hello")).await;
        let d = expect(&sub, b, "the published message").await;
        assert_eq!(d.message().payload, b"hello");
        assert_eq!(d.topic(), topic);
        d.ack();
    })
    .await
}

/// Keys (binary), headers (order, duplicates, empty values) and payloads come back as sent;
/// a keyless message comes back keyless. Extra headers added by the backend are tolerated.
pub async fn headers_and_key_round_trip(b: &dyn Backend) {
    within(b, "headers_and_key_round_trip", async {
        let (p, topic, sub) = one_subscription(b, "headers_and_key_round_trip").await;
        let keyed = Message::new(vec![0u8, 1, 255, 0])
            .with_key(vec![0u8, 255, 7])
            .with_header("a", "1")
            .with_header("bin", vec![0u8, 1, 2])
            .with_header("a", "2")
            .with_header("empty", Vec::new());
        let keyless = Message::new("no key")
            .with_header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        publish(&*p, &topic, keyed.clone()).await;
        publish(&*p, &topic, keyless.clone()).await;
        let mut got = vec![expect(&sub, b, "first").await, expect(&sub, b, "second").await];
        got.sort_by_key(|d| d.message().key.is_none());
        for (d, sent) in got.iter().zip([&keyed, &keyless]) {
            let m = d.message();
            assert_eq!(m.key, sent.key);
            assert_eq!(m.payload, sent.payload);
            let names: BTreeSet<&str> = sent.headers.iter().map(|(n, _)| n.as_str()).collect();
            let ours: Vec<_> = m.headers.iter().filter(|(n, _)| names.contains(n.as_str())).cloned().collect();
            assert_eq!(ours, sent.headers, "headers in order");
        }
        got.into_iter().for_each(Delivery::ack);
    })
    .await
}

/// [`SuiteConfig::messages`](super::SuiteConfig::messages) keyed messages through one subscriber: none lost, none twice.
pub async fn many_messages(b: &dyn Backend) {
    within(b, "many_messages", async {
        let n = b.config().messages;
        let topic = topic(b, "many_messages").await;
        let sub = subscribe(b, &topic, "g").await;
        let publisher = b.publisher();
        for i in 0..n {
            let m = numbered(i).with_key(format!("key-{}", i % 17));
            publisher.publish(&topic, m).await.expect("publish");
        }
        let mut seen = BTreeMap::new();
        while seen.len() < n {
            let d = expect(&sub, b, &format!("message {} of {n}", seen.len() + 1)).await;
            *seen.entry(number(d.message())).or_insert(0) += 1;
            d.ack();
        }
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), (0..n).collect::<Vec<_>>());
        let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).map(|(i, _)| *i).collect();
        assert!(twice.is_empty(), "delivered twice: {twice:?}");
        assert_quiet(&sub, b).await;
    })
    .await
}

/// Two members of one group share the messages: both get some, together all, none twice.
pub async fn consumer_group_sharing(b: &dyn Backend) {
    within_needing(b, "consumer_group_sharing", &[("consumer_groups", b.features().consumer_groups)], async {
        let n = 60;
        let (first, second) = two_members_after(b, "consumer_group_sharing", n).await;
        let got = receive_from_both(b, &first, &second, n).await;
        let (a, c) = (&got[0], &got[1]);
        assert!(!a.is_empty() && !c.is_empty(), "both members get partitions: {} and {}", a.len(), c.len());
        let both: BTreeSet<_> = a.intersection(c).collect();
        assert!(both.is_empty(), "delivered to both members: {both:?}");
        assert_eq!(a.len() + c.len(), n);
    })
    .await
}

/// Messages a member received but never acked reach the other member after it leaves.
pub async fn redelivery_on_member_leave(b: &dyn Backend) {
    let f = b.features();
    let needs = [("consumer_groups", f.consumer_groups), ("redelivery_on_member_leave", f.redelivery_on_member_leave)];
    within_needing(b, "redelivery_on_member_leave", &needs, async {
        let n = 40;
        let (leaving, staying) = two_members_after(b, "redelivery_on_member_leave", n).await;
        // The leaving member holds its deliveries unacked; the staying one acks.
        let held = RefCell::new(Vec::new());
        let mut acked = BTreeSet::new();
        let deadline = Instant::now() + b.config().receive;
        while held.borrow().len() + acked.len() < n {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let next = future::or(
                async { Some((true, leaving.recv().await)) },
                future::or(async { Some((false, staying.recv().await)) }, async {
                    Timer::after(remaining).await;
                    None
                }),
            )
            .await;
            match next {
                Some((true, Some(d))) => held.borrow_mut().push(d),
                Some((false, Some(d))) => {
                    acked.insert(number(d.message()));
                    d.ack();
                }
                Some((_, None)) => panic!("a subscription closed early"),
                None => {
                    panic!("only {} of {n} messages within {:?}", held.borrow().len() + acked.len(), b.config().receive)
                }
            }
        }
        let unacked: BTreeSet<usize> = held.borrow().iter().map(|d| number(d.message())).collect();
        assert!(!unacked.is_empty(), "the leaving member got no partition");
        drop(leaving);
        drop(held);
        Timer::after(b.config().settle).await;
        let mut again = BTreeSet::new();
        while !unacked.is_subset(&again) {
            let missing = unacked.difference(&again).count();
            let d = expect(&staying, b, &format!("{missing} unacked messages of the member that left")).await;
            again.insert(number(d.message()));
            d.ack();
        }
    })
    .await
}

/// A nacked or dropped delivery comes back to the same subscription; an acked one does not.
pub async fn nack_redelivers(b: &dyn Backend) {
    within_needing(b, "nack_redelivers", &[("nack_redelivers", b.features().nack_redelivers)], async {
        let (p, topic, sub) = one_subscription(b, "nack_redelivers").await;
        publish(&*p, &topic, Message::new("again").with_key("k")).await;
        let first = expect(&sub, b, "the message").await;
        let offset = first.offset();
        first.nack();
        let second = expect(&sub, b, "the message after nack").await;
        assert_eq!((second.message().payload.as_slice(), second.offset()), (&b"again"[..], offset));
        drop(second);
        let third = expect(&sub, b, "the message after drop").await;
        assert_eq!((third.message().payload.as_slice(), third.offset()), (&b"again"[..], offset));
        third.ack();
        assert_quiet(&sub, b).await;
    })
    .await
}

/// Messages with one key arrive in publish order.
pub async fn order_per_key(b: &dyn Backend) {
    within_needing(b, "order_per_key", &[("guaranteed_order_per_key", b.features().guaranteed_order_per_key)], async {
        let (p, topic, sub) = one_subscription(b, "order_per_key").await;
        let (keys, per_key) = (5, (b.config().messages / 5).max(10));
        for i in 0..keys * per_key {
            publish(&*p, &topic, numbered(i).with_key(format!("key-{}", i % keys))).await;
        }
        let mut last: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for _ in 0..keys * per_key {
            let d = expect(&sub, b, "the next message").await;
            let (key, i) = (d.message().key.clone().expect("key kept"), number(d.message()));
            if let Some(prev) = last.insert(key.clone(), i) {
                assert!(prev < i, "key {:?}: message {i} after {prev}", String::from_utf8_lossy(&key));
            }
            d.ack();
        }
        assert_eq!(last.len(), keys);
    })
    .await
}

/// After a subscription closes, the next member of the group continues after the last ack:
/// nothing lost, nothing acked delivered again.
pub async fn continue_after_close(b: &dyn Backend) {
    within_needing(b, "continue_after_close", &[("persistent", b.features().persistent)], async {
        let (p, topic, sub) = one_subscription(b, "continue_after_close").await;
        for i in 0..10 {
            publish(&*p, &topic, numbered(i).with_key(format!("key-{i}"))).await;
        }
        // Acks in receive order, which is offset order per partition: the watermark covers them.
        let mut acked = BTreeSet::new();
        for _ in 0..5 {
            let d = expect(&sub, b, "one of the first messages").await;
            acked.insert(number(d.message()));
            d.ack();
        }
        sub.close().await.expect("close commits acked offsets");
        for i in 10..20 {
            publish(&*p, &topic, numbered(i).with_key(format!("key-{i}"))).await;
        }
        let sub = subscribe(b, &topic, "g").await;
        let expected: BTreeSet<usize> = (0..20).filter(|i| !acked.contains(i)).collect();
        let mut got = BTreeSet::new();
        while got.len() < expected.len() {
            let d = expect(&sub, b, "the messages not acked before close").await;
            let i = number(d.message());
            assert!(!acked.contains(&i), "message {i} was acked before close, yet delivered again");
            got.insert(i);
            d.ack();
        }
        assert_eq!(got, expected);
        assert_quiet(&sub, b).await;
    })
    .await
}

/// Subscribers get only their own topic's messages.
pub async fn topic_isolation(b: &dyn Backend) {
    within(b, "topic_isolation", async {
        // One publisher per case: a real broker pays a handshake per producer.
        let p = b.publisher();
        let (one, two) = (topic(b, "topic_isolation").await, topic(b, "topic_isolation").await);
        let (sub_one, sub_two) = (subscribe(b, &one, "g").await, subscribe(b, &two, "g").await);
        publish(&*p, &one, Message::new("for one")).await;
        publish(&*p, &two, Message::new("for two")).await;
        let d = expect(&sub_one, b, "topic one's message").await;
        assert_eq!(d.message().payload, b"for one");
        d.ack();
        let d = expect(&sub_two, b, "topic two's message").await;
        assert_eq!(d.message().payload, b"for two");
        d.ack();
        assert_quiet(&sub_one, b).await;
        assert_quiet(&sub_two, b).await;
    })
    .await
}

/// `close` keeps what was accepted before it and refuses later publishes with `Closed`,
/// handing the message back.
pub async fn publisher_close(b: &dyn Backend) {
    within(b, "publisher_close", async {
        let topic = topic(b, "publisher_close").await;
        let sub = subscribe(b, &topic, "g").await;
        let publisher = b.publisher();
        for i in 0..10 {
            publisher.publish(&topic, numbered(i)).await.expect("publish before close");
        }
        publisher.close().await.expect("close");
        let err = publisher.publish(&topic, Message::new("late")).await.expect_err("publish after close");
        assert_eq!(err.error.kind(), ErrorKind::Closed);
        assert_eq!(err.into_inner().payload, b"late");
        let mut got = BTreeSet::new();
        while got.len() < 10 {
            let d = expect(&sub, b, "messages published before close").await;
            got.insert(number(d.message()));
            d.ack();
        }
        assert_quiet(&sub, b).await;
    })
    .await
}

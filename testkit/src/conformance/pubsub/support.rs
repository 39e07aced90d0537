//! What the cases share: unique topics, numbered messages, receiving with deadlines.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use smol::Timer;
use switchboard_ports::{Delivery, Message, Publisher, Subscription};

use super::Backend;

pub(super) fn skip(case: &str, feature: &str, supported: bool) -> bool {
    if !supported {
        println!("skipped {case}: backend lacks feature {feature}");
    }
    !supported
}

/// `within`, unless the backend lacks one of the features the case `needs` (name, supported):
/// then the case is skipped, saying which.
pub(super) async fn within_needing(
    b: &dyn Backend,
    case: &str,
    needs: &[(&str, bool)],
    body: impl Future<Output = ()>,
) {
    if needs.iter().any(|&(feature, supported)| skip(case, feature, supported)) {
        return;
    }
    within(b, case, body).await
}

/// Fails the case after the backend's `case_timeout`.
pub(super) fn within<'a>(
    b: &dyn Backend,
    case: &'a str,
    body: impl Future<Output = ()> + 'a,
) -> impl Future<Output = ()> + 'a {
    let timeout = b.config().case_timeout;
    future::or(body, async move {
        Timer::after(timeout).await;
        panic!("case {case} timed out after {timeout:?}");
    })
}

pub(super) async fn topic(b: &dyn Backend, case: &str) -> String {
    let topic = b.unique_topic(case);
    if let Some(admin) = b.admin() {
        admin.ensure_topic(&topic, b.config().partitions).await.expect("ensure_topic");
    }
    topic
}

/// What most cases start with: one publisher (a real broker pays a handshake per producer), a
/// fresh topic named after the case, and one subscription of group `g` on it.
pub(super) async fn one_subscription(b: &dyn Backend, case: &str) -> (Arc<dyn Publisher>, String, Subscription) {
    let p = b.publisher();
    let topic = topic(b, case).await;
    let sub = subscribe(b, &topic, "g").await;
    (p, topic, sub)
}

/// Two members of group `g` on a fresh topic named after the case, once the group settled, and
/// then `n` numbered messages published to it, each with a key of its own.
pub(super) async fn two_members_after(b: &dyn Backend, case: &str, n: usize) -> (Subscription, Subscription) {
    // One publisher per case: a real broker pays a handshake per producer.
    let p = b.publisher();
    let topic = topic(b, case).await;
    let first = subscribe(b, &topic, "g").await;
    let second = subscribe(b, &topic, "g").await;
    Timer::after(b.config().settle).await;
    for i in 0..n {
        publish(&*p, &topic, numbered(i).with_key(format!("key-{i}"))).await;
    }
    (first, second)
}

/// Subscribes with a group name unique to the topic.
pub(super) async fn subscribe(b: &dyn Backend, topic: &str, group: &str) -> Subscription {
    b.subscriber().subscribe(topic, &format!("{topic}.{group}")).await.expect("subscribe")
}

pub(super) async fn publish(p: &dyn Publisher, topic: &str, m: Message) {
    p.publish(topic, m).await.expect("publish");
}

pub(super) fn numbered(i: usize) -> Message {
    Message::new(i.to_string())
}

pub(super) fn number(m: &Message) -> usize {
    std::str::from_utf8(&m.payload).ok().and_then(|s| s.parse().ok()).expect("payload is a message number")
}

pub(super) async fn recv_within(sub: &Subscription, wait: Duration) -> Option<Delivery> {
    future::or(sub.recv(), async {
        Timer::after(wait).await;
        None
    })
    .await
}

pub(super) async fn expect(sub: &Subscription, b: &dyn Backend, what: &str) -> Delivery {
    let wait = b.config().receive;
    match recv_within(sub, wait).await {
        Some(d) => d,
        None => panic!("expected {what} within {wait:?}"),
    }
}

pub(super) async fn assert_quiet(sub: &Subscription, b: &dyn Backend) {
    if let Some(d) = recv_within(sub, b.config().quiet).await {
        panic!("unexpected extra delivery at offset {} of partition {}", d.offset(), d.partition());
    }
}

/// Receives (and acks) from two members until `n` messages arrived; returns each member's numbers.
pub(super) async fn receive_from_both(
    b: &dyn Backend,
    a: &Subscription,
    c: &Subscription,
    n: usize,
) -> [BTreeSet<usize>; 2] {
    let mut got = [BTreeSet::new(), BTreeSet::new()];
    while got[0].len() + got[1].len() < n {
        let wait = b.config().receive;
        let next = future::or(
            async { Some((0, a.recv().await)) },
            future::or(async { Some((1, c.recv().await)) }, async {
                Timer::after(wait).await;
                None
            }),
        )
        .await;
        let Some((member, d)) = next else {
            panic!("only {} of {n} messages within {wait:?}", got[0].len() + got[1].len());
        };
        let d = d.expect("subscription open");
        assert!(got[member].insert(number(d.message())), "member {member} got a message twice");
        d.ack();
    }
    got
}

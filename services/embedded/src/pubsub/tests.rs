use std::time::Duration;

use futures_lite::future;
use smol::Timer;
use switchboard_ports::{Delivery, ErrorKind, Message, Publisher, Subscriber, Subscription, TopicAdmin};

use super::{BrokerConfig, MemoryBroker, StartFrom};

const WAIT: Duration = Duration::from_secs(5);

async fn recv(sub: &Subscription) -> Delivery {
    future::or(async { sub.recv().await.expect("subscription closed") }, async {
        Timer::after(WAIT).await;
        panic!("no delivery within {WAIT:?}")
    })
    .await
}

/// A broker with topic `t` of one partition, a subscription of group `g` on it, and then `n`
/// messages published: the bytes 0, 1, …, n - 1.
async fn one_partition_holding(n: u8) -> (MemoryBroker, Subscription) {
    let broker = MemoryBroker::new();
    broker.ensure_topic("t", 1).await.unwrap();
    let sub = broker.subscribe("t", "g").await.unwrap();
    for i in 0..n {
        broker.publish("t", Message::new(vec![i])).await.unwrap();
    }
    (broker, sub)
}

/// True when nothing arrives within `quiet`.
async fn stays_quiet(sub: &Subscription, quiet: Duration) -> bool {
    future::or(async { sub.recv().await.is_none() }, async {
        Timer::after(quiet).await;
        true
    })
    .await
}

#[test]
fn round_trip_keeps_key_headers_and_payload() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        let sub = broker.subscribe("t", "g").await.unwrap();
        let sent = Message::new("p").with_key("k").with_header("h", "v");
        broker.publish("t", sent.clone()).await.unwrap();
        let d = recv(&sub).await;
        assert_eq!(d.message(), &sent);
        assert_eq!(d.topic(), "t");
        assert_eq!(d.offset(), 0);
        let p = d.partition();
        d.ack();
        Timer::after(Duration::from_millis(20)).await;
        assert_eq!(broker.committed_offsets("t", "g").unwrap()[p as usize], 1);
    });
}

#[test]
fn new_group_starts_at_latest_unless_asked_for_earliest() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        broker.ensure_topic("t", 1).await.unwrap();
        broker.publish("t", Message::new("old")).await.unwrap();
        let latest = broker.subscribe("t", "late").await.unwrap();
        let earliest = broker.subscribe_from("t", "early", StartFrom::Earliest).await.unwrap();
        broker.publish("t", Message::new("new")).await.unwrap();
        // Each delivery is acked: one dropped unacked would be redelivered, and could come
        // again before "new" when the delivery task fetched "old" on its own.
        for (sub, expected) in [(&latest, "new"), (&earliest, "old"), (&earliest, "new")] {
            let d = recv(sub).await;
            assert_eq!(d.message().payload, expected.as_bytes());
            d.ack();
        }
    });
}

#[test]
fn out_of_order_acks_commit_the_watermark() {
    smol::block_on(async {
        let (broker, sub) = one_partition_holding(3).await;
        let (a, b, c) = (recv(&sub).await, recv(&sub).await, recv(&sub).await);
        c.ack();
        b.ack();
        Timer::after(Duration::from_millis(20)).await;
        assert_eq!(broker.committed_offsets("t", "g").unwrap(), vec![0]);
        a.ack();
        assert_eq!(broker.committed_offsets("t", "g").unwrap(), vec![3]);
    });
}

#[test]
fn nack_and_drop_redeliver_to_the_same_subscription() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        let sub = broker.subscribe("t", "g").await.unwrap();
        broker.publish("t", Message::new("x")).await.unwrap();
        recv(&sub).await.nack();
        let again = recv(&sub).await;
        assert_eq!(again.message().payload, b"x");
        drop(again);
        let third = recv(&sub).await;
        assert_eq!((third.offset(), third.message().payload.as_slice()), (0, &b"x"[..]));
        third.ack();
        assert!(stays_quiet(&sub, Duration::from_millis(100)).await);
    });
}

#[test]
fn members_share_partitions_and_unacked_messages_move_on_leave() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        broker.ensure_topic("t", 4).await.unwrap();
        let a = broker.subscribe("t", "g").await.unwrap();
        let b = broker.subscribe("t", "g").await.unwrap();
        assert_eq!(broker.member_count("t", "g"), 2);
        for i in 0..40u8 {
            broker.publish("t", Message::new(vec![i]).with_key(vec![i])).await.unwrap();
        }
        let mut from_a = Vec::new();
        let mut from_b = Vec::new();
        while from_a.len() + from_b.len() < 40 {
            future::or(async { from_a.push(recv(&a).await) }, async { from_b.push(recv(&b).await) }).await;
        }
        assert!(!from_a.is_empty() && !from_b.is_empty(), "both members get partitions");
        let parts_a: Vec<i32> = from_a.iter().map(Delivery::partition).collect();
        assert!(from_b.iter().all(|d| !parts_a.contains(&d.partition())), "partitions are disjoint");
        // a acks nothing and leaves: b now owns everything and gets a's messages again.
        let unacked: Vec<Vec<u8>> = from_a.iter().map(|d| d.message().payload.clone()).collect();
        from_a.clear();
        drop(a);
        assert_eq!(broker.member_count("t", "g"), 1);
        for d in from_b {
            d.ack();
        }
        let mut again = Vec::new();
        for _ in 0..unacked.len() {
            let d = recv(&b).await;
            again.push(d.message().payload.clone());
            d.ack();
        }
        again.sort();
        let mut expected = unacked;
        expected.sort();
        assert_eq!(again, expected);
        assert!(stays_quiet(&b, Duration::from_millis(100)).await, "acked messages are not redelivered");
    });
}

#[test]
fn in_flight_limit_pauses_fetching_until_acks() {
    smol::block_on(async {
        let config = BrokerConfig { max_in_flight: 2, default_partitions: 1, ..BrokerConfig::default() };
        let broker = MemoryBroker::with_config(config);
        let sub = broker.subscribe("t", "g").await.unwrap();
        for i in 0..5u8 {
            broker.publish("t", Message::new(vec![i])).await.unwrap();
        }
        let first = recv(&sub).await;
        let second = recv(&sub).await;
        assert!(stays_quiet(&sub, Duration::from_millis(100)).await, "limit of 2 reached");
        first.ack();
        assert_eq!(recv(&sub).await.offset(), 2);
        second.ack();
    });
}

#[test]
fn retention_drops_the_oldest_and_late_groups_skip_forward() {
    smol::block_on(async {
        let config = BrokerConfig { retention_messages: 3, default_partitions: 1, ..BrokerConfig::default() };
        let broker = MemoryBroker::with_config(config);
        for i in 0..10u8 {
            broker.publish("t", Message::new(vec![i])).await.unwrap();
        }
        assert_eq!(broker.end_offsets("t").unwrap(), vec![10]);
        let sub = broker.subscribe_from("t", "g", StartFrom::Earliest).await.unwrap();
        let d = recv(&sub).await;
        assert_eq!((d.offset(), d.message().payload.clone()), (7, vec![7]));
    });
}

#[test]
fn closed_broker_refuses_publishes_and_unknown_topics_can_be_refused() {
    smol::block_on(async {
        let broker = MemoryBroker::with_config(BrokerConfig { auto_create_topics: false, ..BrokerConfig::default() });
        let err = broker.publish("nope", Message::new("x")).await.unwrap_err();
        assert_eq!(err.error.kind(), ErrorKind::Invalid);
        assert_eq!(err.into_inner().payload, b"x", "message handed back");
        assert_eq!(broker.subscribe("nope", "g").await.unwrap_err().kind(), ErrorKind::Invalid);
        assert_eq!(broker.ensure_topic("t", 0).await.unwrap_err().kind(), ErrorKind::Invalid);
        broker.ensure_topic("t", 2).await.unwrap();
        assert_eq!(broker.partitions("t"), Some(2));

        let own = broker.publisher();
        own.close().await.unwrap();
        assert_eq!(own.publish("t", Message::new("x")).await.unwrap_err().error.kind(), ErrorKind::Closed);
        broker.publish("t", Message::new("x")).await.unwrap();
        broker.close().await.unwrap();
        assert_eq!(broker.publish("t", Message::new("x")).await.unwrap_err().error.kind(), ErrorKind::Closed);
    });
}

#[test]
fn closing_a_subscription_keeps_acked_offsets_for_the_next_member() {
    smol::block_on(async {
        let (broker, sub) = one_partition_holding(4).await;
        recv(&sub).await.ack();
        recv(&sub).await.ack();
        sub.close().await.unwrap();
        assert_eq!(broker.member_count("t", "g"), 0);
        let next = broker.subscribe("t", "g").await.unwrap();
        assert_eq!(recv(&next).await.message().payload, vec![2]);
    });
}

#[test]
fn a_slow_group_behind_by_more_than_the_retention_gets_every_message() {
    smol::block_on(async {
        // Retention 20 per partition, and the group holds at most 4 unacked: it is soon far
        // behind a publisher of 400.
        let config = BrokerConfig {
            retention_messages: 20,
            default_partitions: 2,
            max_in_flight: 4,
            subscription_buffer: 1,
            ..BrokerConfig::default()
        };
        let broker = MemoryBroker::with_config(config);
        let sub = broker.subscribe("t", "slow").await.unwrap();
        let total = 400u32;
        let publisher = {
            let broker = broker.clone();
            smol::spawn(async move {
                for i in 0..total {
                    broker.publish("t", Message::new(i.to_be_bytes().to_vec())).await.expect("publish waits for room");
                }
            })
        };
        let mut got = std::collections::BTreeSet::new();
        while got.len() < total as usize {
            let d = recv(&sub).await;
            if d.offset() % 50 == 0 {
                // Slower now and then: the publisher meets full partitions and waits.
                Timer::after(Duration::from_millis(20)).await;
            }
            got.insert(u32::from_be_bytes(d.message().payload.as_slice().try_into().unwrap()));
            d.ack();
        }
        publisher.await;
        assert_eq!(got, (0..total).collect(), "every message, none lost to retention");
        assert_eq!(broker.end_offsets("t").unwrap().iter().sum::<i64>(), total as i64);
    });
}

#[test]
fn a_partition_full_of_owed_messages_refuses_with_a_transient_error_until_the_group_goes() {
    smol::block_on(async {
        let config = BrokerConfig {
            retention_messages: 3,
            default_partitions: 1,
            publish_timeout: Duration::from_millis(50),
            ..BrokerConfig::default()
        };
        let broker = MemoryBroker::with_config(config);
        let sub = broker.subscribe("t", "stuck").await.unwrap();
        for i in 0..3u8 {
            broker.publish("t", Message::new(vec![i])).await.unwrap();
        }
        let err = broker.publish("t", Message::new("4th")).await.unwrap_err();
        assert!(err.error.is_transient(), "{}", err.error);
        assert!(err.error.to_string().contains("full"), "{}", err.error);
        assert_eq!(err.into_inner().payload, b"4th", "handed back");
        assert_eq!(broker.end_offsets("t").unwrap(), vec![3], "memory stays bounded");
        // One ack makes room for one more.
        recv(&sub).await.ack();
        broker.publish("t", Message::new("4th")).await.unwrap();
        // A group without members owes nothing: the log trims again.
        drop(sub);
        for i in 0..10u8 {
            broker.publish("t", Message::new(vec![i])).await.unwrap();
        }
        assert_eq!(broker.end_offsets("t").unwrap(), vec![14]);
    });
}

#[test]
fn a_message_over_the_size_limit_is_refused_for_good() {
    smol::block_on(async {
        let broker = MemoryBroker::with_config(BrokerConfig { max_message_bytes: 10, ..BrokerConfig::default() });
        broker.publish("t", Message::new("0123456789")).await.unwrap();
        let err = broker.publish("t", Message::new("0123456789").with_key("k")).await.unwrap_err();
        assert_eq!(err.error.kind(), ErrorKind::Invalid, "{}", err.error);
        assert!(!err.error.is_transient());
    });
}

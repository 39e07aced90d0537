//! Against a real Kafka broker (tansu in development). Opt-in: `--include-ignored`; then an
//! unreachable broker fails the test.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use switchboard_kafka::{KafkaPublisher, KafkaSubscriber, OffsetReset};
use switchboard_ports::{ErrorKind, Message, Publisher, Subscriber};

use crate::support::{fresh_group, fresh_topic, next, real_config, within};

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn round_trip_carries_key_payload_and_headers() {
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "roundtrip", 4).await;
        let sub = KafkaSubscriber::new(&config).subscribe(&topic, &fresh_group("rt")).await.unwrap();
        let publisher = KafkaPublisher::new(&config).unwrap();
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sent = Message::new(&b"hello \x00 bytes"[..])
            .with_key("order-17")
            .with_header("correlation-id", "c-42")
            .with_header("traceparent", traceparent);
        publisher.publish(&topic, sent.clone()).await.unwrap();

        let d = next(&sub).await;
        assert_eq!(d.message(), &sent);
        assert_eq!(d.message().header_str("traceparent"), Some(traceparent));
        assert_eq!(d.topic(), topic);
        d.ack();
        sub.close().await.unwrap();
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn acked_messages_are_committed_and_not_read_again_by_the_group() {
    let config = real_config();
    smol::block_on(async {
        // One partition: the group reads in order, so the first message after rejoining
        // tells where the committed offset was.
        let topic = fresh_topic(&config, "commit", 1).await;
        let group = fresh_group("commit");
        let subscriber = KafkaSubscriber::new(&config);
        let publisher = KafkaPublisher::new(&config).unwrap();
        for i in 0..3 {
            publisher.publish(&topic, Message::new(format!("old-{i}"))).await.unwrap();
        }
        let sub = subscriber.subscribe_from(&topic, &group, OffsetReset::Earliest).await.unwrap();
        for i in 0..3 {
            let d = next(&sub).await;
            assert_eq!(d.message().payload, format!("old-{i}").into_bytes());
            d.ack();
        }
        sub.close().await.unwrap();

        // Earliest again: without the commit the group would start over at old-0.
        let sub = subscriber.subscribe_from(&topic, &group, OffsetReset::Earliest).await.unwrap();
        publisher.publish(&topic, Message::new("fresh")).await.unwrap();
        let d = next(&sub).await;
        assert_eq!(d.message().payload, b"fresh", "an acked message came back");
        d.ack();
        let extra = within(Duration::from_millis(1500), sub.recv()).await;
        assert!(extra.is_none(), "unexpected delivery {extra:?}");
        sub.close().await.unwrap();
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn nacked_message_comes_back_to_the_same_subscription() {
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "nack", 2).await;
        let sub = KafkaSubscriber::new(&config).subscribe(&topic, &fresh_group("nack")).await.unwrap();
        let publisher = KafkaPublisher::new(&config).unwrap();
        publisher.publish(&topic, Message::new("again").with_key("k")).await.unwrap();
        let first = next(&sub).await;
        let (partition, offset) = (first.partition(), first.offset());
        first.nack();
        let second = next(&sub).await;
        assert_eq!((second.partition(), second.offset()), (partition, offset));
        assert_eq!(second.message().payload, b"again");
        // Dropping counts as nack too.
        drop(second);
        let third = next(&sub).await;
        assert_eq!(third.offset(), offset);
        third.ack();
        sub.close().await.unwrap();
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn unacked_message_is_redelivered_after_the_consumer_closes() {
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "redeliver", 1).await;
        let group = fresh_group("redeliver");
        let subscriber = KafkaSubscriber::new(&config);
        let publisher = KafkaPublisher::new(&config).unwrap();
        publisher.publish(&topic, Message::new("done")).await.unwrap();
        publisher.publish(&topic, Message::new("not done")).await.unwrap();

        let sub = subscriber.subscribe_from(&topic, &group, OffsetReset::Earliest).await.unwrap();
        let done = next(&sub).await;
        assert_eq!(done.message().payload, b"done");
        done.ack();
        let held = next(&sub).await;
        assert_eq!(held.message().payload, b"not done");
        let held_offset = held.offset();
        // The member leaves while the handler still holds the message (a crash, a timeout).
        sub.close().await.unwrap();
        held.ack(); // too late: the consumer is gone, this must not commit

        let sub = subscriber.subscribe_from(&topic, &group, OffsetReset::Earliest).await.unwrap();
        let again = next(&sub).await;
        assert_eq!(again.message().payload, b"not done");
        assert_eq!(again.offset(), held_offset);
        again.ack();
        sub.close().await.unwrap();
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn two_members_of_a_group_share_the_partitions() {
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "share", 4).await;
        let group = fresh_group("share");
        let subscriber = KafkaSubscriber::new(&config);
        let a = subscriber.subscribe_from(&topic, &group, OffsetReset::Earliest).await.unwrap();
        let b = subscriber.subscribe_from(&topic, &group, OffsetReset::Earliest).await.unwrap();
        let publisher = KafkaPublisher::new(&config).unwrap();
        let total = 60;
        for i in 0..total {
            publisher.publish(&topic, Message::new(format!("m{i}")).with_key(format!("key-{i}"))).await.unwrap();
        }

        let mut seen: HashMap<&str, BTreeSet<i32>> = HashMap::new();
        let mut payloads = BTreeSet::new();
        while payloads.len() < total {
            let got = within(
                Duration::from_secs(20),
                futures_lite::future::or(async { ("a", a.recv().await) }, async { ("b", b.recv().await) }),
            )
            .await;
            let (member, d) = match got {
                Some((member, Some(d))) => (member, d),
                Some((member, None)) => panic!("subscription {member} ended"),
                None => panic!("only {} of {total} messages arrived", payloads.len()),
            };
            seen.entry(member).or_default().insert(d.partition());
            payloads.insert(d.message().payload.clone());
            d.ack();
        }
        let (pa, pb) = (&seen["a"], &seen["b"]);
        assert!(!pa.is_empty() && !pb.is_empty(), "one member got everything: {seen:?}");
        assert!(pa.is_disjoint(pb), "a partition went to both members: {seen:?}");
        a.close().await.unwrap();
        b.close().await.unwrap();
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn subscribing_to_a_missing_topic_is_invalid() {
    let config = real_config();
    smol::block_on(async {
        let err = KafkaSubscriber::new(&config)
            .subscribe(&fresh_group("no-such-topic"), "g")
            .await
            .expect_err("topic does not exist");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn a_slow_handler_gets_every_message_in_order_through_a_small_buffer() {
    let mut config = real_config();
    config.subscription_buffer = 4;
    smol::block_on(async {
        let topic = fresh_topic(&config, "backpressure", 1).await;
        let publisher = KafkaPublisher::new(&config).unwrap();
        let total = 300;
        for i in 0..total {
            publisher.publish(&topic, Message::new(i.to_string())).await.unwrap();
        }
        let sub = KafkaSubscriber::new(&config)
            .subscribe_from(&topic, &fresh_group("backpressure"), OffsetReset::Earliest)
            .await
            .unwrap();
        for i in 0..total {
            if i % 50 == 0 {
                // The consumer thread meets a full buffer here and pauses fetching.
                async_io::Timer::after(Duration::from_millis(300)).await;
            }
            let d = next(&sub).await;
            assert_eq!(d.message().payload, i.to_string().into_bytes(), "out of order or lost");
            d.ack();
        }
        let extra = within(Duration::from_millis(500), sub.recv()).await;
        assert!(extra.is_none(), "duplicate delivery {extra:?}");
        sub.close().await.unwrap();
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn publishing_to_a_missing_topic_is_invalid_and_creates_no_topic() {
    // librdkafka waits this long for a topic to appear before failing the record (default 30 s).
    let config = real_config().set("topic.metadata.propagation.max.ms", "2000");
    smol::block_on(async {
        let topic = fresh_group("named-by-a-message");
        let publisher = KafkaPublisher::new(&config).unwrap();
        let err = publisher.publish(&topic, Message::new("x")).await.expect_err("the topic does not exist");
        assert_eq!(err.error.kind(), ErrorKind::Invalid, "{}", err.error);
        assert!(!err.error.is_transient());
        // The broker was not asked to create it (allow.auto.create.topics=false).
        let sub = KafkaSubscriber::new(&config).subscribe(&topic, "g").await;
        assert_eq!(sub.expect_err("topic created by a publish").kind(), ErrorKind::Invalid);
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn a_missing_topic_is_a_permanent_error_not_a_wait_for_the_delivery_timeout() {
    // Without its own bound librdkafka waits 30 s for a missing topic to appear, longer
    // than this delivery timeout: the publish would end as a timeout (transient) instead.
    let mut config = real_config();
    config.delivery_timeout = Duration::from_secs(10);
    smol::block_on(async {
        let topic = fresh_group("missing");
        let publisher = KafkaPublisher::new(&config).unwrap();
        let started = std::time::Instant::now();
        let err = publisher.publish(&topic, Message::new("x")).await.expect_err("the topic does not exist");
        eprintln!("a publish to a missing topic failed after {:?}: {}", started.elapsed(), err.error);
        assert_eq!(err.error.kind(), ErrorKind::Invalid, "{}", err.error);
        assert!(!err.error.is_transient());
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn a_message_over_the_size_limit_is_invalid_not_transient() {
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "too-large", 1).await;
        let publisher = KafkaPublisher::new(&config).unwrap();
        let big = Message::new(vec![b'x'; 2 * 1024 * 1024]);
        let err = publisher.publish(&topic, big).await.expect_err("over message.max.bytes");
        assert_eq!(err.error.kind(), ErrorKind::Invalid, "{}", err.error);
        assert_eq!(err.into_inner().payload.len(), 2 * 1024 * 1024, "handed back");
        // The publisher still works.
        publisher.publish(&topic, Message::new("small")).await.unwrap();
        publisher.close().await.unwrap();
    });
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn an_assigned_reader_reads_its_partition_and_leaves_no_group_on_the_broker() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "assigned", 3).await;
        let subscriber = KafkaSubscriber::new(&config);
        let reader = subscriber.assign(&topic, &[2]).await.unwrap();
        let publisher = KafkaPublisher::new(&config).unwrap();
        publisher.publish(&topic, Message::new("to 1").to_partition(1)).await.unwrap();
        publisher.publish(&topic, Message::new("to 2").to_partition(2)).await.unwrap();
        let d = next(&reader).await;
        assert_eq!((d.partition(), d.message().payload.as_slice()), (2, &b"to 2"[..]));
        d.ack();
        reader.close().await.unwrap();
        publisher.close().await.unwrap();
    });
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let admin: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let groups = admin.fetch_group_list(None, Duration::from_secs(10)).expect("list groups");
    let names: Vec<&str> = groups.groups().iter().map(|g| g.name()).collect();
    assert!(!names.iter().any(|n| n.starts_with("switchboard-reader")), "reader groups left: {names:?}");
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn list_groups_shows_a_joined_group_with_its_member() {
    use switchboard_kafka::KafkaAdmin;
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "listed", 2).await;
        let group = fresh_group("listed");
        let sub = KafkaSubscriber::new(&config).subscribe(&topic, &group).await.unwrap();
        let admin = KafkaAdmin::new(&config).unwrap();
        let groups = admin.list_groups().expect("list groups");
        let listed = groups.iter().find(|g| g.name == group).unwrap_or_else(|| panic!("{group} not in {groups:?}"));
        assert_eq!((listed.state.as_str(), listed.members), ("Stable", 1), "{listed:?}");
        assert_eq!(listed.protocol_type, "consumer");
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "listed by name");
        sub.close().await.unwrap();
    });
}

/// Producers appending to one partition at once: every record reaches the assigned readers (a
/// gateway reads its replies so) and a group member (a relay). tansu 0.6 answers a fetch that
/// races two appends with the later batch and without the earlier one (here a few times in
/// 4 500 records); a consumer that does not read such a gap again loses the earlier batch.
#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn records_of_producers_racing_on_one_partition_all_arrive() {
    const PRODUCERS: usize = 3;
    const READERS: usize = 2;
    const EACH: usize = 1500;
    let total = PRODUCERS * EACH;
    let config = real_config();
    smol::block_on(async {
        let topic = fresh_topic(&config, "racing", 1).await;
        let subscriber = KafkaSubscriber::new(&config);
        let mut subs = Vec::new();
        for _ in 0..READERS {
            subs.push(subscriber.assign(&topic, &[0]).await.unwrap());
        }
        let group = fresh_group("racing");
        subs.push(subscriber.subscribe_from(&topic, &group, OffsetReset::Earliest).await.unwrap());
        let collectors: Vec<_> = subs
            .into_iter()
            .map(|sub| {
                smol::spawn(async move {
                    let mut got = BTreeSet::new();
                    while got.len() < total {
                        let Some(Some(d)) = within(Duration::from_secs(10), sub.recv()).await else { break };
                        got.insert(String::from_utf8_lossy(&d.message().payload).into_owned());
                        d.ack();
                    }
                    sub.close().await.unwrap();
                    got
                })
            })
            .collect();
        // Each producer sends one record at a time: as many appends as possible, each racing
        // the other producers' appends and the consumers' fetches.
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (config, topic) = (config.clone(), topic.clone());
                smol::spawn(async move {
                    let publisher = KafkaPublisher::new(&config).unwrap();
                    for i in 0..EACH {
                        publisher.publish(&topic, Message::new(format!("{p}-{i}")).to_partition(0)).await.unwrap();
                    }
                    publisher.close().await.unwrap();
                })
            })
            .collect();
        for producer in producers {
            producer.await;
        }
        let mut missed = Vec::new();
        for (n, collector) in collectors.into_iter().enumerate() {
            let got = collector.await;
            let who = if n < READERS { format!("reader {n}") } else { "the group member".to_owned() };
            let lost: Vec<String> = (0..PRODUCERS)
                .flat_map(|p| (0..EACH).map(move |i| format!("{p}-{i}")))
                .filter(|r| !got.contains(r))
                .collect();
            if !lost.is_empty() {
                missed.push(format!("{who} missed {} of {total}: {:?}", lost.len(), &lost[..lost.len().min(5)]));
            }
        }
        assert!(missed.is_empty(), "{}", missed.join("; "));
    });
}

//! Raw produce→consume latency through a real broker: one message at a time, measuring how
//! long `publish` takes (until the broker's ack) and how long until the subscriber receives
//! it. Run: `scripts/brokers.sh start` then
//! `KAFKA_BROKERS=127.0.0.1:9092 cargo run --release -p switchboard-kafka --example latency -- 2000`
//! (further arguments `key=value` are librdkafka properties, e.g. `fetch.wait.max.ms=10`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchboard_kafka::{KafkaAdmin, KafkaConfig, KafkaPublisher, KafkaSubscriber};
use switchboard_ports::{Message, Publisher, Subscriber, TopicAdmin};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(2000);
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let mut config = KafkaConfig::new(brokers);
    for kv in std::env::args().skip(2) {
        let (k, v) = kv.split_once('=').ok_or("properties are key=value")?;
        config = config.set(k, v);
    }
    smol::block_on(async {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let topic = format!("sbbench.latency.{nanos}");
        KafkaAdmin::new(&config)?.ensure_topic(&topic, 1).await?;
        let sub = KafkaSubscriber::new(&config).subscribe(&topic, &topic).await?;
        let publisher = KafkaPublisher::new(&config)?;
        let warmup = 100;
        let (mut acked, mut received) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for i in 0..warmup + count {
            let message =
                Message::new(vec![0u8; 100]).with_key(i.to_string()).with_header("correlation-id", i.to_string());
            let start = Instant::now();
            publisher.publish(&topic, message).await?;
            let ack = start.elapsed();
            let d = sub.recv().await.ok_or("subscription ended")?;
            let got = start.elapsed();
            assert_eq!(d.message().header_str("correlation-id"), Some(i.to_string().as_str()));
            d.ack();
            if i >= warmup {
                acked.push(ack);
                received.push(got);
            }
        }
        println!(
            "{count} messages of 100 B, linger.ms={}, fetch.wait.max.ms={}, acks=all, idempotent, overrides {:?}",
            config.linger.as_millis(),
            config.fetch_wait_max.as_millis(),
            config.overrides
        );
        report("publish → broker ack", &mut acked);
        report("publish → subscriber recv", &mut received);
        sub.close().await?;
        publisher.close().await?;
        Ok(())
    })
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!("{what:28} p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}", at(0.50), at(0.99), samples[samples.len() - 1]);
}

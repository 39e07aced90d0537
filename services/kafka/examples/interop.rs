//! Talks to the same topics as any Kafka client (kcat, Kafka's own tools): `publish` sends one
//! message with a key and headers, `consume` prints what a group reads, then acks it.
//! Run: `KAFKA_BROKERS=127.0.0.1:9092 cargo run -p switchboard-kafka --example interop -- publish TOPIC KEY PAYLOAD [NAME=VALUE...]`
//! or `... -- consume TOPIC GROUP COUNT` (reads from the earliest uncommitted offset).

use std::time::Duration;

use switchboard_kafka::{KafkaConfig, KafkaPublisher, KafkaSubscriber, OffsetReset};
use switchboard_ports::{Message, Publisher};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let config = KafkaConfig::new(brokers);
    smol::block_on(async {
        match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["publish", topic, key, payload, headers @ ..] => {
                let mut message = Message::new(payload.as_bytes()).with_key(key.as_bytes());
                for h in headers {
                    let (name, value) = h.split_once('=').ok_or("headers are NAME=VALUE")?;
                    message = message.with_header(name, value);
                }
                let publisher = KafkaPublisher::new(&config)?;
                publisher.publish(topic, message).await?;
                publisher.close().await?;
                println!("published to {topic}");
            }
            ["consume", topic, group, count] => {
                let count: usize = count.parse()?;
                let sub = KafkaSubscriber::new(&config).subscribe_from(topic, group, OffsetReset::Earliest).await?;
                for _ in 0..count {
                    let d = futures_lite::future::or(async { sub.recv().await }, async {
                        async_io::Timer::after(Duration::from_secs(10)).await;
                        None
                    })
                    .await
                    .ok_or("no message within 10 s")?;
                    let m = d.message();
                    let headers: Vec<String> =
                        m.headers.iter().map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v))).collect();
                    println!(
                        "partition={} offset={} key={} headers=[{}] payload={}",
                        d.partition(),
                        d.offset(),
                        String::from_utf8_lossy(m.key.as_deref().unwrap_or_default()),
                        headers.join(","),
                        String::from_utf8_lossy(&m.payload)
                    );
                    d.ack();
                }
                sub.close().await?;
            }
            _ => {
                return Err(
                    "usage: interop publish TOPIC KEY PAYLOAD [NAME=VALUE...] | consume TOPIC GROUP COUNT".into()
                )
            }
        }
        Ok(())
    })
}

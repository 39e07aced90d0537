//! Throughput and latency of the embedded Kafka-style broker.
//!
//! Run: `cargo bench -p switchboard-embedded --bench pubsub` (optionally `SMOL_THREADS=2`).
//! 1. produce → consume: N keyed messages on 4 partitions, one group member acking each.
//! 2. chain: a transaction is publish request → consume (processor) → publish reply → consume
//!    (gateway), as in the switchboard chain, with a window of transactions in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_ports::{Message, Publisher, Subscriber, TopicAdmin};

const MESSAGES: usize = 500_000;

fn main() {
    smol::block_on(async {
        produce_consume().await;
        // Throughput with many transactions in flight, then latency of one at a time.
        chain(200_000, 512).await;
        chain(20_000, 1).await;
    });
}

async fn produce_consume() {
    let broker = MemoryBroker::new();
    broker.ensure_topic("bench", 4).await.unwrap();
    let sub = broker.subscribe("bench", "g").await.unwrap();
    let consumer = smol::spawn(async move {
        for _ in 0..MESSAGES {
            sub.recv().await.expect("subscription open").ack();
        }
    });
    let start = Instant::now();
    for i in 0..MESSAGES {
        let key = (i % 1024).to_be_bytes();
        let message = Message::new(vec![0u8; 100]).with_key(key).with_header("correlation-id", "0123456789abcdef");
        broker.publish("bench", message).await.unwrap();
    }
    let published = start.elapsed();
    consumer.await;
    let total = start.elapsed();
    println!(
        "produce→consume: {MESSAGES} msgs of 100 B, publish {:.0} msg/s, end-to-end {:.0} msg/s ({total:.2?})",
        MESSAGES as f64 / published.as_secs_f64(),
        MESSAGES as f64 / total.as_secs_f64()
    );
}

async fn chain(transactions: usize, window: usize) {
    let broker = MemoryBroker::new();
    broker.ensure_topic("requests", 4).await.unwrap();
    broker.ensure_topic("replies", 4).await.unwrap();

    let processor_in = broker.subscribe("requests", "processor").await.unwrap();
    let processor_out = broker.clone();
    let processor = smol::spawn(async move {
        while let Some(d) = processor_in.recv().await {
            let m = d.message();
            let reply = Message { key: m.key.clone(), payload: m.payload.clone(), headers: m.headers.clone() };
            processor_out.publish("replies", reply).await.unwrap();
            d.ack();
        }
    });

    let replies = broker.subscribe("replies", "gateway").await.unwrap();
    let (tokens_tx, tokens_rx) = async_channel::bounded::<()>(window);
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let gateway = {
        let done = done.clone();
        smol::spawn(async move {
            let mut latencies = Vec::with_capacity(transactions);
            while latencies.len() < transactions {
                let d = replies.recv().await.expect("replies open");
                let sent = u64::from_be_bytes(d.message().payload[..8].try_into().unwrap());
                latencies.push(start.elapsed().as_nanos() as u64 - sent);
                d.ack();
                done.fetch_add(1, Ordering::Relaxed);
                let _ = tokens_rx.recv().await;
            }
            latencies
        })
    };
    for i in 0..transactions {
        tokens_tx.send(()).await.unwrap();
        let mut payload = (start.elapsed().as_nanos() as u64).to_be_bytes().to_vec();
        payload.resize(100, 0);
        let request = Message::new(payload)
            .with_key((i as u64).to_be_bytes())
            .with_header("correlation-id", format!("{i:016x}"))
            .with_header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        broker.publish("requests", request).await.unwrap();
    }
    let mut latencies = gateway.await;
    let elapsed = start.elapsed();
    drop(processor);
    latencies.sort_unstable();
    let pct = |q: f64| Duration::from_nanos(latencies[((latencies.len() - 1) as f64 * q) as usize]);
    println!(
        "chain (2 publishes + 2 consumes per tx, window {window}): {} tx in {elapsed:.2?} = {:.0} tx/s; latency p50 {:?} p99 {:?} max {:?}",
        done.load(Ordering::Relaxed),
        transactions as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

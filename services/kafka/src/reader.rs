//! Reading given partitions by manual assignment, without a consumer group: a gateway reads
//! only its own reply partition, and leaves no group behind on the broker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use switchboard_ports::{Closer, Delivery, Error, ErrorKind, Message, Settle, Subscription};

use crate::consumer_loop::to_message;
use crate::error::port_error;
use crate::gaps::{OffsetGaps, Verdict};
use crate::KafkaConfig;

/// Partitions of `topic`, from the broker's metadata (`Invalid` when the topic is unknown).
pub(crate) fn partition_count(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> Result<i32, Error> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| port_error("topic metadata", e))?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
        _ => Err(Error::new(ErrorKind::Invalid, format!("unknown topic {topic}"))),
    }
}

/// Starts a reader of `partitions` of `topic` from their current end; returns once the end
/// offsets are fixed, so everything appended after this returns is delivered.
pub(crate) fn assign(config: &KafkaConfig, topic: &str, partitions: &[i32]) -> Result<Subscription, Error> {
    let consumer: BaseConsumer = config.reader().create().map_err(|e| port_error("create reader", e))?;
    let count = partition_count(&consumer, topic, config.request_timeout)?;
    if partitions.is_empty() || partitions.iter().any(|&p| p < 0 || p >= count) {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!("assign {topic}: partitions {partitions:?} outside 0..{count}"),
        ));
    }
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    let mut gaps = OffsetGaps::default();
    for &p in partitions {
        // The end is read now rather than left to `Offset::End`, which librdkafka resolves at
        // the first fetch: a reply appended in between would be skipped.
        let (_, high) =
            consumer.fetch_watermarks(topic, p, config.request_timeout).map_err(|e| port_error("watermarks", e))?;
        tpl.add_partition_offset(topic, p, Offset::Offset(high)).map_err(|e| port_error("assign", e))?;
        gaps.start(p, 0, high);
    }
    consumer.assign(&tpl).map_err(|e| port_error("assign", e))?;

    let (tx, rx) = async_channel::bounded(config.subscription_buffer.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = async_channel::bounded(1);
    let topic_name: Arc<str> = topic.into();
    let poll = config.poll_interval;
    let stopping = stop.clone();
    thread::Builder::new()
        .name(format!("kafka-reader-{topic}"))
        .spawn(move || {
            let settle: Arc<dyn Settle> = Arc::new(NoCommit);
            while !stopping.load(Ordering::Acquire) && !tx.is_closed() {
                let m = match consumer.poll(poll) {
                    None => continue,
                    Some(Err(e)) => {
                        log::warn!("kafka reader of {topic_name}: {e}");
                        continue;
                    }
                    Some(Ok(m)) => m,
                };
                // A record after a gap the broker's fetch left: read the gap again first.
                match gaps.check(m.partition(), 0, m.offset(), Instant::now()) {
                    Verdict::Deliver => {}
                    Verdict::Refetch(from) => {
                        let (partition, found) = (m.partition(), m.offset());
                        drop(m);
                        crate::gaps::seek_back(&consumer, &topic_name, partition, from, found);
                        continue;
                    }
                }
                let delivery =
                    Delivery::new(to_message(&m), topic_name.clone(), m.partition(), m.offset(), settle.clone());
                // A full buffer holds the reader back (the gateway is behind): bounded.
                if tx.send_blocking(delivery).is_err() {
                    break;
                }
            }
            drop(consumer);
            let _ = done_tx.try_send(());
        })
        .map_err(|e| Error::new(ErrorKind::Other, "spawn reader thread").with_source(e))?;
    Ok(Subscription::new(rx, ReaderCloser { stop, done, timeout: config.close_timeout }))
}

/// No group, nothing to commit: acks and nacks only release the delivery.
struct NoCommit;

impl Settle for NoCommit {
    fn ack(&self, _partition: i32, _offset: i64) {}
    fn nack(&self, _partition: i32, _offset: i64, _message: Message) {}
}

struct ReaderCloser {
    stop: Arc<AtomicBool>,
    done: async_channel::Receiver<()>,
    timeout: Duration,
}

#[async_trait]
impl Closer for ReaderCloser {
    async fn close(self: Box<Self>) -> Result<(), Error> {
        self.stop.store(true, Ordering::Release);
        let done = self.done.clone();
        let ended = futures_lite::future::or(
            async {
                // Ok or closed: either way the thread is gone.
                let _ = done.recv().await;
                true
            },
            async {
                async_io::Timer::after(self.timeout).await;
                false
            },
        );
        if ended.await {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Timeout, "close: reader thread did not stop in time"))
        }
    }
}

impl Drop for ReaderCloser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

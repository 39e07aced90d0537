use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_lock::Semaphore;
use async_trait::async_trait;
use futures_lite::future;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use switchboard_ports::{Error, ErrorKind, Message, PublishError, Publisher};

use crate::error::port_error;
use crate::KafkaConfig;

/// One-shot channel carried through librdkafka as the record's opaque pointer; the delivery
/// report completes it.
type Completion = Box<async_channel::Sender<KafkaResult<()>>>;

/// Routes each delivery report to the publish that is waiting for it.
struct DeliveryContext;

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Completion;

    fn delivery(&self, result: &DeliveryResult<'_>, done: Completion) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.clone()),
        };
        // The waiting publish may have been cancelled (future dropped): nobody to tell.
        let _ = done.try_send(outcome);
    }
}

/// [`Publisher`] over an idempotent rdkafka `BaseProducer` (`enable.idempotence=true`,
/// `acks=all`).
///
/// A dedicated thread polls the producer so delivery reports arrive while callers await them;
/// [`publish`](Publisher::publish) returns only after the broker acknowledged the record.
/// At most [`KafkaConfig::max_in_flight`] publishes wait for a report at once, later ones wait
/// for a slot, so memory stays bounded when the broker is slow. With the idempotent producer,
/// retries inside librdkafka neither duplicate nor reorder records of one partition.
pub struct KafkaPublisher {
    producer: Arc<BaseProducer<DeliveryContext>>,
    slots: Semaphore,
    max_in_flight: usize,
    closed: AtomicBool,
    stop: Arc<AtomicBool>,
    delivery_timeout: Duration,
    close_timeout: Duration,
}

impl KafkaPublisher {
    /// Connects a producer (connection happens lazily: an unreachable broker shows up as a
    /// publish timing out after [`KafkaConfig::delivery_timeout`]).
    pub fn new(config: &KafkaConfig) -> Result<Self, Error> {
        let producer: BaseProducer<DeliveryContext> =
            config.producer().create_with_context(DeliveryContext).map_err(|e| port_error("create producer", e))?;
        let producer = Arc::new(producer);
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (producer, stop) = (producer.clone(), stop.clone());
            let close_timeout = config.close_timeout;
            thread::Builder::new()
                .name("kafka-producer".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        producer.poll(Duration::from_millis(50));
                    }
                    if let Err(e) = producer.flush(close_timeout) {
                        log::warn!("kafka publisher: flush on shutdown: {e}");
                    }
                })
                .map_err(|e| Error::new(ErrorKind::Other, "spawn producer thread").with_source(e))?;
        }
        let max_in_flight = config.max_in_flight.max(1);
        Ok(KafkaPublisher {
            producer,
            slots: Semaphore::new(max_in_flight),
            max_in_flight,
            closed: AtomicBool::new(false),
            stop,
            delivery_timeout: config.delivery_timeout,
            close_timeout: config.close_timeout,
        })
    }

    async fn send(&self, topic: &str, message: &Message) -> KafkaResult<()> {
        let (done, report) = async_channel::bounded(1);
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (name, value) in &message.headers {
            headers = headers.insert(Header { key: name, value: Some(value.as_slice()) });
        }
        let mut record: BaseRecord<'_, [u8], [u8], Completion> =
            BaseRecord::with_opaque_to(topic, Box::new(done)).payload(message.payload.as_slice()).headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_slice());
        }
        if let Some(partition) = message.partition {
            // librdkafka refuses a partition beyond the topic's (UnknownPartition, Invalid);
            // a negative one would mean "let the partitioner pick", so it is refused up front.
            if partition < 0 {
                return Err(KafkaError::MessageProduction(RDKafkaErrorCode::UnknownPartition));
            }
            record = record.partition(partition);
        }
        let deadline = Instant::now() + self.delivery_timeout;
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                // Only when other producers share nothing with us; wait for room, bounded.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    record = back;
                    Timer::after(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
        // The report always comes: librdkafka fails a record after message.timeout.ms.
        report.recv().await.unwrap_or(Err(KafkaError::Canceled))
    }
}

#[async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        let _slot = self.slots.acquire().await;
        if self.closed.load(Ordering::Acquire) {
            return Err(PublishError::new(Error::closed(), message));
        }
        match self.send(topic, &message).await {
            Ok(()) => Ok(()),
            Err(e) => Err(PublishError::new(port_error("publish", e), message)),
        }
    }

    async fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        let drain = async {
            // Every publish holds a slot until its report arrived: owning all slots means
            // every accepted publish was acknowledged (or failed) and no new one can start.
            let mut held = Vec::with_capacity(self.max_in_flight);
            for _ in 0..self.max_in_flight {
                held.push(self.slots.acquire().await);
            }
            Ok(())
        };
        let timeout = async {
            Timer::after(self.close_timeout).await;
            Err(Error::new(ErrorKind::Timeout, "close: publishes still unacknowledged"))
        };
        future::or(drain, timeout).await?;
        self.stop.store(true, Ordering::Release);
        Ok(())
    }
}

impl Drop for KafkaPublisher {
    fn drop(&mut self) {
        // Not joined: dropping must not block an executor thread. The poller flushes what is
        // queued (bounded by close_timeout) and exits on its own; `close` is the way to wait.
        self.stop.store(true, Ordering::Release);
    }
}

impl fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("in_flight", &(self.max_in_flight - self.slots.available_permits()))
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

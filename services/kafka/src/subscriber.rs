use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use async_channel::Receiver;
use async_io::Timer;
use async_trait::async_trait;
use futures_lite::future;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use switchboard_ports::{Closer, Error, ErrorKind, Subscriber, Subscription};

use crate::consumer_loop::ConsumerLoop;
use crate::error::port_error;
use crate::group_state::GroupState;
use crate::rebalance::GroupContext;
use crate::{KafkaConfig, OffsetReset};

/// [`Subscriber`] over rdkafka `BaseConsumer`s: one consumer and one thread per subscription.
///
/// **At-least-once.** Auto-commit and auto offset store are off. An offset is committed only
/// once the handler acked it and every earlier offset of its partition (the
/// [`OffsetTracker`](switchboard_ports::OffsetTracker) watermark), asynchronously within
/// [`KafkaConfig::poll_interval`] of the ack, and synchronously on close and before partitions
/// are revoked. A nacked (or dropped) delivery is handed to the same subscription again. When
/// a partition moves to another member, acks of its still-buffered or in-flight deliveries are
/// ignored and the new owner re-reads everything after the last commit, so a crash or
/// rebalance can deliver a message twice but never loses one.
///
/// **Start position** of a group without committed offsets: [`KafkaConfig::auto_offset_reset`]
/// (default `latest`, what a reply subscription wants) or per subscription with
/// [`subscribe_from`](KafkaSubscriber::subscribe_from) (`earliest` for a work group such as
/// the relay's requests).
#[derive(Debug, Clone)]
pub struct KafkaSubscriber {
    config: KafkaConfig,
}

impl KafkaSubscriber {
    /// A subscriber with `config`; consumers are created per subscription.
    pub fn new(config: &KafkaConfig) -> Self {
        KafkaSubscriber { config: config.clone() }
    }

    /// Like [`Subscriber::subscribe`], starting a group without committed offsets at `reset`.
    pub async fn subscribe_from(&self, topic: &str, group: &str, reset: OffsetReset) -> Result<Subscription, Error> {
        let state = Arc::new(GroupState::default());
        let context = GroupContext {
            state: state.clone(),
            topic: topic.to_owned(),
            reset,
            request_timeout: self.config.request_timeout,
        };
        let consumer: BaseConsumer<GroupContext> = self
            .config
            .consumer(group, reset)
            .create_with_context(context)
            .map_err(|e| port_error("create consumer", e))?;
        let (ready_tx, ready) = async_channel::bounded(1);
        let (deliveries, receiver) = async_channel::bounded(self.config.subscription_buffer.max(1));
        let (done_tx, done) = async_channel::bounded(1);
        let run = ConsumerLoop {
            consumer,
            state: state.clone(),
            topic: topic.into(),
            deliveries,
            ready: ready_tx.clone(),
            poll_interval: self.config.poll_interval,
        };
        let topic_name = topic.to_owned();
        let request_timeout = self.config.request_timeout;
        thread::Builder::new()
            .name(format!("kafka-consumer-{topic}"))
            .spawn(move || {
                let outcome = match check_topic(&run.consumer, &topic_name, request_timeout) {
                    Ok(()) => match run.consumer.subscribe(&[&topic_name]) {
                        Ok(()) => run.run(),
                        Err(e) => Err(port_error("subscribe", e)),
                    },
                    Err(e) => Err(e),
                };
                // Before the group assigned anything, the failure is the subscribe's answer.
                if let Err(e) = &outcome {
                    let _ = ready_tx.try_send(Err(Error::new(e.kind(), e.to_string())));
                }
                let _ = done_tx.try_send(outcome);
            })
            .map_err(|e| Error::new(ErrorKind::Other, "spawn consumer thread").with_source(e))?;

        let closer = KafkaCloser { state, done, timeout: self.config.close_timeout };
        let waited = within(self.config.subscribe_timeout, async {
            ready.recv().await.unwrap_or_else(|_| Err(Error::closed()))
        })
        .await;
        match waited {
            Some(Ok(())) => Ok(Subscription::new(receiver, closer)),
            Some(Err(e)) => Err(e),
            None => {
                // Leave in the background; the caller only learns that the join timed out.
                drop(closer);
                Err(Error::new(ErrorKind::Timeout, "subscribe: no partitions assigned in time"))
            }
        }
    }
}

#[async_trait]
impl Subscriber for KafkaSubscriber {
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Subscription, Error> {
        self.subscribe_from(topic, group, self.config.auto_offset_reset).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, Error> {
        let (config, topic) = (self.config.clone(), topic.to_owned());
        off_thread(move || {
            let consumer: BaseConsumer = config.reader().create().map_err(|e| port_error("create reader", e))?;
            crate::reader::partition_count(&consumer, &topic, config.request_timeout)
        })
        .await
    }

    /// A consumer without `group.id` on its own thread, assigned `partitions` at their end.
    async fn assign(&self, topic: &str, partitions: &[i32]) -> Result<Subscription, Error> {
        let (config, topic, partitions) = (self.config.clone(), topic.to_owned(), partitions.to_vec());
        off_thread(move || crate::reader::assign(&config, &topic, &partitions)).await
    }
}

/// Runs the blocking metadata calls of `f` on a thread of its own, not on the executor.
pub(crate) async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = async_channel::bounded(1);
    thread::Builder::new()
        .name("kafka-metadata".into())
        .spawn(move || {
            let _ = tx.try_send(f());
        })
        .map_err(|e| Error::new(ErrorKind::Other, "spawn metadata thread").with_source(e))?;
    rx.recv().await.unwrap_or_else(|_| Err(Error::closed()))
}

/// Fails with [`ErrorKind::Invalid`] when the topic does not exist (brokers such as tansu do not
/// create topics on first use, and a group on a missing topic would wait silently forever).
fn check_topic(consumer: &BaseConsumer<GroupContext>, topic: &str, timeout: Duration) -> Result<(), Error> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| port_error("topic metadata", e))?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) => match t.error() {
            None => Ok(()),
            Some(code) => {
                let code = RDKafkaErrorCode::from(code);
                let kind = match code {
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => ErrorKind::Invalid,
                    _ => ErrorKind::Unavailable,
                };
                Err(Error::new(kind, format!("subscribe: topic {topic}: {code}")))
            }
        },
        None => Err(Error::new(ErrorKind::Invalid, format!("subscribe: unknown topic {topic}"))),
    }
}

/// Runs `f`, giving up after `timeout`.
async fn within<T>(timeout: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::after(timeout).await;
        None
    })
    .await
}

/// Closes a subscription: the consumer thread commits acked offsets and leaves the group.
struct KafkaCloser {
    state: Arc<GroupState>,
    done: Receiver<Result<(), Error>>,
    timeout: Duration,
}

#[async_trait]
impl Closer for KafkaCloser {
    async fn close(self: Box<Self>) -> Result<(), Error> {
        self.state.lock().closing = true;
        let done = self.done.clone();
        match within(self.timeout, async move { done.recv().await }).await {
            Some(Ok(outcome)) => outcome,
            // The thread ended without a word: it already reported through `subscribe`.
            Some(Err(_)) => Ok(()),
            None => Err(Error::new(ErrorKind::Timeout, "close: consumer did not leave the group in time")),
        }
    }
}

impl Drop for KafkaCloser {
    fn drop(&mut self) {
        // Dropped without close: the thread still commits and leaves, unobserved.
        self.state.lock().closing = true;
    }
}

impl fmt::Debug for KafkaCloser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaCloser").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

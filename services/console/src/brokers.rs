//! The brokers view: each watched topic's partitions with the end offset and the consuming
//! group's committed offset (lag), each queue's depth, and the dead letters held, read
//! through the ports' inspection traits (Kafka, RabbitMQ or the embedded brokers alike).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use switchboard_ports::{InspectQueues, InspectTopics};

/// The group named when only watermarks are wanted: never joined, never committed.
const READER_GROUP: &str = "switchboard-console";

/// What the brokers view watches.
#[derive(Debug, Clone)]
pub struct Watched {
    /// (topic, consumer group) pairs shown with their lag.
    pub topics: Vec<(String, String)>,
    /// Queues shown with their depth.
    pub queues: Vec<String>,
    /// The requests' dead-letter topic, counted as held messages.
    pub requests_dlq: String,
    /// The jobs' dead-letter queue, counted as ready messages.
    pub jobs_dlq: String,
}

impl Watched {
    /// Watches the jobs queue `queue`: itself, then `retry_queues` (where its jobs wait out a
    /// retry delay: RabbitMQ's TTL queues), then its dead-letter queue, which is also what the
    /// jobs' dead letters count.
    pub fn jobs_queue(&mut self, queue: &str, retry_queues: Vec<String>) {
        let dlq = switchboard_ports::dead_letter_queue(queue);
        self.queues = std::iter::once(queue.to_owned()).chain(retry_queues).chain([dlq.clone()]).collect();
        self.jobs_dlq = dlq;
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TopicView {
    pub name: String,
    pub group: String,
    pub partitions: Vec<PartitionView>,
    pub lag: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartitionView {
    pub partition: i32,
    pub end_offset: i64,
    pub committed: Option<i64>,
    pub lag: i64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueueView {
    pub name: String,
    pub messages: Option<u64>,
    /// `null` where the broker does not report it (RabbitMQ over AMQP).
    pub unacked: Option<u64>,
    pub consumers: Option<u32>,
    pub error: Option<String>,
}

/// Dead letters held, by source; `null` when unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct DeadLetterCounts {
    pub requests: Option<u64>,
    pub jobs: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct BrokersView {
    pub topics: Vec<TopicView>,
    pub queues: Vec<QueueView>,
    pub dead_letters: DeadLetterCounts,
}

/// Reads the brokers each tick, every call bounded by `timeout`.
pub(crate) struct Brokers {
    watched: Watched,
    topics: Option<Arc<dyn InspectTopics>>,
    queues: Option<Arc<dyn InspectQueues>>,
    timeout: Duration,
    view: Mutex<BrokersView>,
}

impl std::fmt::Debug for Brokers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Brokers").field("watched", &self.watched).finish_non_exhaustive()
    }
}

async fn within<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = Result<T, switchboard_ports::Error>>,
) -> Result<T, String> {
    futures_lite::future::or(async { f.await.map_err(|e| e.to_string()) }, async {
        async_io::Timer::after(timeout).await;
        Err(format!("no answer within {timeout:?}"))
    })
    .await
}

impl Brokers {
    pub(crate) fn new(
        watched: Watched,
        topics: Option<Arc<dyn InspectTopics>>,
        queues: Option<Arc<dyn InspectQueues>>,
        timeout: Duration,
    ) -> Self {
        Brokers { watched, topics, queues, timeout, view: Mutex::new(BrokersView::default()) }
    }

    /// The last view read.
    pub(crate) fn view(&self) -> BrokersView {
        self.view.lock().clone()
    }

    /// Reads every topic and queue once.
    pub(crate) async fn tick(&self) {
        let mut view = BrokersView::default();
        if let Some(inspect) = &self.topics {
            for (topic, group) in &self.watched.topics {
                view.topics.push(match within(self.timeout, inspect.topic_offsets(topic, group)).await {
                    Ok(offsets) => TopicView {
                        name: topic.clone(),
                        group: group.clone(),
                        lag: Some(offsets.iter().map(|p| p.lag()).sum()),
                        partitions: offsets
                            .iter()
                            .map(|p| PartitionView {
                                partition: p.partition,
                                end_offset: p.end,
                                committed: p.committed,
                                lag: p.lag(),
                            })
                            .collect(),
                        error: None,
                    },
                    Err(e) => TopicView {
                        name: topic.clone(),
                        group: group.clone(),
                        partitions: Vec::new(),
                        lag: None,
                        error: Some(e),
                    },
                });
            }
            // Held messages need no group; one that never joins or commits is named.
            let dlq = within(self.timeout, inspect.topic_offsets(&self.watched.requests_dlq, READER_GROUP)).await;
            view.dead_letters.requests = dlq.ok().map(|offsets| offsets.iter().map(|p| p.held() as u64).sum());
        }
        if let Some(inspect) = &self.queues {
            for queue in &self.watched.queues {
                view.queues.push(match within(self.timeout, inspect.queue_depth(queue)).await {
                    Ok(depth) => QueueView {
                        name: queue.clone(),
                        messages: Some(depth.messages),
                        unacked: depth.unacked,
                        consumers: Some(depth.consumers),
                        error: None,
                    },
                    Err(e) => QueueView {
                        name: queue.clone(),
                        messages: None,
                        unacked: None,
                        consumers: None,
                        error: Some(e),
                    },
                });
            }
            let dlq = within(self.timeout, inspect.queue_depth(&self.watched.jobs_dlq)).await;
            view.dead_letters.jobs = dlq.ok().map(|d| d.messages + d.unacked.unwrap_or(0));
        }
        *self.view.lock() = view;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_embedded::pubsub::MemoryBroker;
    use switchboard_embedded::queue::MemoryWorkQueue;
    use switchboard_ports::{Message, Publisher, QueueOptions, Subscriber, TopicAdmin, WorkQueue};

    #[test]
    fn the_retry_queues_sit_between_the_jobs_queue_and_its_dead_letters() {
        let mut watched = crate::ConsoleConfig::default().watched;
        watched.jobs_queue("work", vec!["work.retry.1000ms".into(), "work.retry.5000ms".into()]);
        assert_eq!(watched.queues, ["work", "work.retry.1000ms", "work.retry.5000ms", "work.dlq"]);
        assert_eq!(watched.jobs_dlq, "work.dlq");
    }

    #[test]
    fn lag_depth_and_dead_letters_of_the_embedded_brokers() {
        smol::block_on(async {
            let broker = MemoryBroker::new();
            let queue = MemoryWorkQueue::new();
            broker.ensure_topic("requests", 2).await.unwrap();
            broker.ensure_topic("requests.dlq", 1).await.unwrap();
            let group = broker.subscribe("requests", "relays").await.unwrap();
            drop(group);
            for i in 0..3u8 {
                broker.publish("requests", Message::new(vec![i]).to_partition(0)).await.unwrap();
            }
            broker.publish("requests.dlq", Message::new(b"bad".to_vec())).await.unwrap();
            queue.declare("jobs", &QueueOptions::default()).await.unwrap();
            queue.enqueue("jobs", Message::new(b"job".to_vec())).await.unwrap();
            queue.enqueue("jobs.dlq", Message::new(b"dead".to_vec())).await.unwrap();
            let watched = Watched {
                topics: vec![("requests".into(), "relays".into())],
                queues: vec!["jobs".into(), "missing".into()],
                requests_dlq: "requests.dlq".into(),
                jobs_dlq: "jobs.dlq".into(),
            };
            let brokers = Brokers::new(watched, Some(Arc::new(broker)), Some(Arc::new(queue)), Duration::from_secs(5));
            brokers.tick().await;
            let view = brokers.view();
            assert_eq!(view.topics[0].lag, Some(3));
            assert_eq!(view.topics[0].partitions.len(), 2);
            assert_eq!(view.topics[0].partitions[0].end_offset, 3);
            assert_eq!(view.queues[0].messages, Some(1));
            assert!(view.queues[1].error.as_deref().is_some_and(|e| e.contains("missing")));
            assert_eq!(view.dead_letters, DeadLetterCounts { requests: Some(1), jobs: Some(1) });
        });
    }
}

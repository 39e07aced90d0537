use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use switchboard_ports::{
    dead_letter_queue, Closer, Error, ErrorKind, Fanout, FanoutListener, JobOutcome, JobSettle, JobStream, Message,
    PublishError, QueueOptions, WorkQueue, ERROR_HEADER,
};

use crate::connection::{oneshot, unreachable, Command, Link, Outgoing, Owner, QueueChange, Reply};
use crate::consumer::{self, Control, Mode, Settle};
use crate::{topology, AmqpConfig};

/// Work queues and fanout exchanges on RabbitMQ.
///
/// Cheap to clone: clones share one connection thread. Queues used through a handle must be
/// [`declare`](WorkQueue::declare)d through it first; the connection re-declares them after a
/// reconnect. Each consumer or listener has its own thread and channel.
///
/// Semantics: enqueues are persistent and confirmed by the broker; a queue declared with
/// `max_length` rejects enqueues past it (`Unavailable`). [`Job::retry`](switchboard_ports::Job::retry)
/// publishes a copy (attempt + 1, confirmed) to the TTL queue `<queue>.retry.<ms>ms` of the
/// smallest delay at least the one asked (with a per-message TTL when shorter), from which the
/// broker dead-letters it back into the queue, then acks the original; a dead-letter publishes
/// to `<queue>.dlq` with the reason in `x-switchboard-error`, then acks. A retry landing in a
/// full queue is dropped by RabbitMQ (its `reject-publish` applies to dead-lettering too):
/// keep `max_length` well above the expected backlog.
///
/// Dropping the last handle closes the connection as [`close`](WorkQueue::close) does, without
/// waiting.
#[derive(Clone)]
pub struct AmqpWorkQueue {
    owner: async_channel::Sender<Command>,
    shared: Arc<Shared>,
}

struct Shared {
    owner: async_channel::Sender<Command>,
    link: Link,
    config: AmqpConfig,
    queues: Mutex<HashMap<String, QueueOptions>>,
    exchanges: Mutex<HashSet<String>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let (reply, _) = oneshot();
        let _ = self.owner.try_send(Command::Close { reply });
    }
}

impl std::fmt::Debug for AmqpWorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpWorkQueue").field("url_host", &host_of(&self.shared.config.url)).finish_non_exhaustive()
    }
}

// The URL may carry a password: show only what follows the '@'.
fn host_of(url: &str) -> &str {
    url.rsplit('@').next().unwrap_or(url)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn gone() -> Error {
    Error::closed()
}

impl AmqpWorkQueue {
    /// Connects to the broker at `config.url` (blocking: call it at startup or from a blocking
    /// task). Fails with `Unavailable` when the broker cannot be reached now; later losses are
    /// retried in the background.
    pub fn connect(config: AmqpConfig) -> Result<Self, Error> {
        let (owner, link) = Owner::start(config.clone())?;
        let shared = Arc::new(Shared {
            owner: owner.clone(),
            link,
            config,
            queues: Mutex::new(HashMap::new()),
            exchanges: Mutex::new(HashSet::new()),
        });
        Ok(AmqpWorkQueue { owner, shared })
    }

    /// [`connect`](AmqpWorkQueue::connect) with [`AmqpConfig::from_env`].
    pub fn from_env() -> Result<Self, Error> {
        Self::connect(AmqpConfig::from_env())
    }

    /// The settings it connected with.
    pub(crate) fn config(&self) -> &AmqpConfig {
        &self.shared.config
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Error> {
        let (reply, answer) = oneshot();
        self.owner.send(make(reply)).await.map_err(|_| gone())?;
        answer.recv().await.map_err(|_| gone())
    }

    fn options(&self, queue: &str) -> Option<QueueOptions> {
        lock(&self.shared.queues).get(queue).cloned()
    }

    async fn ensure_exchange(&self, exchange: &str) -> Result<(), Error> {
        if lock(&self.shared.exchanges).contains(exchange) {
            return Ok(());
        }
        self.call(|reply| Command::DeclareFanout { exchange: exchange.to_owned(), reply }).await??;
        lock(&self.shared.exchanges).insert(exchange.to_owned());
        Ok(())
    }

    async fn start(
        &self,
        name: String,
        mode: Mode,
        control: crossbeam_channel::Receiver<Control>,
    ) -> Result<(), Error> {
        let ready = consumer::spawn(name, self.owner.clone(), mode, control)?;
        ready.recv().await.map_err(|_| gone())?
    }
}

pub(crate) async fn publish(owner: &async_channel::Sender<Command>, outgoing: Outgoing) -> Result<(), PublishError> {
    let (reply, answer) = oneshot();
    if let Err(e) = owner.send(Command::Publish { outgoing, reply }).await {
        let Command::Publish { outgoing, .. } = e.into_inner() else { unreachable!("sent a publish") };
        return Err(PublishError::new(gone(), outgoing.message));
    }
    // The connection thread always answers a publish it took, unless it died.
    answer.recv().await.unwrap_or_else(|_| Err(PublishError::new(gone(), Message::default())))
}

/// Ready messages and consumers from a passive declare on a channel of its own; `unacked` is
/// `None`: AMQP does not report it ([`ManagementApi`](crate::ManagementApi) reads it from
/// RabbitMQ's management API).
#[async_trait]
impl switchboard_ports::InspectQueues for AmqpWorkQueue {
    async fn queue_depth(&self, queue: &str) -> Result<switchboard_ports::QueueDepth, Error> {
        let q = queue.to_owned();
        self.call(|reply| Command::Inspect { queue: q, reply }).await?
    }
}

#[async_trait]
impl WorkQueue for AmqpWorkQueue {
    async fn declare(&self, queue: &str, options: &QueueOptions) -> Result<(), Error> {
        let (q, o) = (queue.to_owned(), options.clone());
        self.call(|reply| Command::Queue { change: QueueChange::Declare, queue: q, options: o, reply }).await??;
        let mut queues = lock(&self.shared.queues);
        queues.insert(queue.to_owned(), options.clone());
        // The dead-letter queue can be consumed too; its retries go straight back into it.
        queues.insert(dead_letter_queue(queue), options.clone().with_retry_delays([]));
        Ok(())
    }

    async fn enqueue(&self, queue: &str, message: Message) -> Result<(), PublishError> {
        if self.options(queue).is_none() {
            let e = Error::new(ErrorKind::Invalid, format!("queue {queue} not declared"));
            return Err(PublishError::new(e, message));
        }
        if self.shared.link.is_down() {
            return Err(PublishError::new(unreachable(), message));
        }
        let outgoing =
            Outgoing { exchange: String::new(), routing_key: queue.to_owned(), message, attempt: 1, expiration: None };
        publish(&self.owner, outgoing).await
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<JobStream, Error> {
        let options =
            self.options(queue).ok_or_else(|| Error::new(ErrorKind::Invalid, format!("queue {queue} not declared")))?;
        let prefetch = prefetch.max(1);
        let (control_tx, control_rx) = crossbeam_channel::unbounded();
        let (out, jobs) = async_channel::bounded(usize::from(prefetch));
        let queue: Arc<str> = queue.into();
        let settle = Arc::new(AmqpSettle {
            control: control_tx.clone(),
            owner: self.owner.clone(),
            queue: queue.clone(),
            options,
        });
        let mode = Mode::Jobs { queue: queue.clone(), prefetch, out, buffered: jobs.clone(), settle };
        self.start(format!("amqp-consume-{queue}"), mode, control_rx).await?;
        Ok(JobStream::new(jobs, ThreadCloser { control: control_tx, stopped: false }))
    }

    async fn delete(&self, queue: &str) -> Result<(), Error> {
        let options = self.options(queue).unwrap_or_default();
        let q = queue.to_owned();
        self.call(|reply| Command::Queue { change: QueueChange::Delete, queue: q, options, reply }).await??;
        let mut queues = lock(&self.shared.queues);
        queues.remove(queue);
        queues.remove(&dead_letter_queue(queue));
        Ok(())
    }

    async fn close(&self) -> Result<(), Error> {
        // An already closed connection thread is what close asks for.
        let _ = self.call(|reply| Command::Close { reply }).await;
        Ok(())
    }
}

#[async_trait]
impl Fanout for AmqpWorkQueue {
    async fn broadcast(&self, exchange: &str, message: Message) -> Result<(), PublishError> {
        if self.shared.link.is_down() {
            return Err(PublishError::new(unreachable(), message));
        }
        if let Err(e) = self.ensure_exchange(exchange).await {
            return Err(PublishError::new(e, message));
        }
        let outgoing = Outgoing {
            exchange: exchange.to_owned(),
            routing_key: String::new(),
            message,
            attempt: 1,
            expiration: None,
        };
        publish(&self.owner, outgoing).await
    }

    async fn listen(&self, exchange: &str) -> Result<FanoutListener, Error> {
        self.ensure_exchange(exchange).await?;
        let capacity = self.shared.config.listener_capacity.max(1);
        let (control_tx, control_rx) = crossbeam_channel::unbounded();
        let (out, events) = async_channel::bounded(capacity as usize);
        let mode = Mode::Listen { exchange: exchange.to_owned(), capacity, out, buffered: events.clone() };
        self.start(format!("amqp-listen-{exchange}"), mode, control_rx).await?;
        Ok(FanoutListener::new(events, ThreadCloser { control: control_tx, stopped: false }))
    }
}

/// Settles the jobs of one consumer: acks and requeues through its thread, retry and
/// dead-letter copies through the connection thread (confirmed before the original is acked).
pub(crate) struct AmqpSettle {
    control: crossbeam_channel::Sender<Control>,
    owner: async_channel::Sender<Command>,
    queue: Arc<str>,
    options: QueueOptions,
}

impl AmqpSettle {
    async fn settle_on_thread(&self, tag: u64, how: Settle) -> Result<(), Error> {
        let (reply, answer) = oneshot();
        if !consumer::send(&self.control, Control::Settle { tag, how, reply: Some(reply) }) {
            return Err(Error::new(ErrorKind::Closed, "consumer stopped: the job was requeued"));
        }
        answer.recv().await.map_err(|_| Error::new(ErrorKind::Closed, "consumer stopped: the job was requeued"))?
    }
}

#[async_trait]
impl JobSettle for AmqpSettle {
    async fn settle(&self, tag: u64, outcome: JobOutcome, mut message: Message, attempt: u32) -> Result<(), Error> {
        let copy = match outcome {
            JobOutcome::Retry(after) | JobOutcome::Defer(after) => {
                // A deferred job was not tried: it comes back with the same attempt number.
                let attempt = if matches!(outcome, JobOutcome::Retry(_)) { attempt.saturating_add(1) } else { attempt };
                match self.options.retry_bucket(after) {
                    Some(bucket) => Outgoing {
                        exchange: String::new(),
                        routing_key: topology::retry_queue(&self.queue, bucket),
                        message,
                        attempt,
                        expiration: (after < bucket).then_some(after),
                    },
                    None => Outgoing {
                        exchange: String::new(),
                        routing_key: self.queue.to_string(),
                        message,
                        attempt,
                        expiration: None,
                    },
                }
            }
            JobOutcome::DeadLetter(reason) => {
                message.headers.retain(|(n, _)| n != ERROR_HEADER);
                message.headers.push((ERROR_HEADER.to_owned(), reason.into_bytes()));
                Outgoing {
                    exchange: String::new(),
                    routing_key: dead_letter_queue(&self.queue),
                    message,
                    attempt,
                    expiration: None,
                }
            }
            _ => return self.settle_on_thread(tag, Settle::Ack).await,
        };
        if let Err(e) = publish(&self.owner, copy).await {
            self.release(tag);
            return Err(e.error);
        }
        self.settle_on_thread(tag, Settle::Ack).await
    }

    fn release(&self, tag: u64) {
        consumer::send(&self.control, Control::Settle { tag, how: Settle::Requeue, reply: None });
    }
}

/// Stops a consumer or listener thread on close or drop.
struct ThreadCloser {
    control: crossbeam_channel::Sender<Control>,
    stopped: bool,
}

#[async_trait]
impl Closer for ThreadCloser {
    async fn close(mut self: Box<Self>) -> Result<(), Error> {
        self.stopped = true;
        let (reply, done) = oneshot();
        if consumer::send(&self.control, Control::Stop { reply: Some(reply) }) {
            // No answer means the thread already ended, which is what close asks for.
            let _ = done.recv().await;
        }
        Ok(())
    }
}

impl Drop for ThreadCloser {
    fn drop(&mut self) {
        if !self.stopped {
            consumer::send(&self.control, Control::Stop { reply: None });
        }
    }
}

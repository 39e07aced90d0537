//! Embedded RabbitMQ-style work queues and fanout exchanges.
//!
//! Limits, on purpose: nothing is persisted; [`WorkQueue::close`] closes every clone of the
//! broker; the length bound applies to [`enqueue`](WorkQueue::enqueue) only — retried jobs come
//! back even into a full queue (a dead-letter into a full DLQ fails and the job goes back).

mod browse;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_ports::{
    dead_letter_queue, Closer, Error, ErrorKind, Fanout, FanoutListener, InspectQueues, Job, JobOutcome, JobSettle,
    JobStream, Message, PublishError, QueueDepth, QueueOptions, WorkQueue, ERROR_HEADER,
};

/// Settings of a [`MemoryWorkQueue`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Events buffered per fanout listener; when full, the oldest is dropped (as RabbitMQ's
    /// `drop-head` overflow does). Default 1024.
    pub listener_capacity: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { listener_capacity: 1024 }
    }
}

/// In-memory work queues with RabbitMQ semantics: per-consumer prefetch, round-robin between
/// consumers, redelivery (flagged) when a consumer goes away, delayed retry on an async-io
/// timer, dead-lettering with the reason, bounded length. Clones share the broker.
///
/// ```
/// # smol::block_on(async {
/// use switchboard_ports::{Message, QueueOptions, WorkQueue};
/// let broker = switchboard_embedded::queue::MemoryWorkQueue::new();
/// broker.declare("jobs", &QueueOptions::default()).await.unwrap();
/// broker.enqueue("jobs", Message::new("hello")).await.unwrap();
/// let jobs = broker.consume("jobs", 1).await.unwrap();
/// let job = jobs.recv().await.unwrap();
/// assert_eq!((job.payload(), job.attempt()), (&b"hello"[..], 1));
/// job.ack().await.unwrap();
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct MemoryWorkQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: QueueConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    queues: HashMap<String, QueueState>,
    exchanges: HashMap<String, Vec<ListenerSlot>>,
    next_id: u64,
    closed: bool,
}

#[derive(Debug)]
struct QueueState {
    name: Arc<str>,
    options: QueueOptions,
    ready: VecDeque<Entry>,
    /// Jobs handed to a consumer (buffered or held): tag → (consumer id, job).
    unacked: HashMap<u64, (u64, Entry)>,
    consumers: Vec<ConsumerSlot>,
    next_rr: usize,
}

#[derive(Debug)]
struct Entry {
    message: Message,
    attempt: u32,
    redelivered: bool,
}

struct ConsumerSlot {
    id: u64,
    prefetch: usize,
    held: usize,
    tx: async_channel::Sender<Job>,
    settle: Arc<dyn JobSettle>,
}

impl std::fmt::Debug for ConsumerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerSlot").field("id", &self.id).field("held", &self.held).finish()
    }
}

#[derive(Debug)]
struct ListenerSlot {
    id: u64,
    tx: async_channel::Sender<Message>,
    // Kept to drop the oldest event when the listener falls behind.
    rx: async_channel::Receiver<Message>,
}

impl MemoryWorkQueue {
    /// A broker with default settings.
    pub fn new() -> Self {
        Self::with_config(QueueConfig::default())
    }

    /// A broker with `config`.
    pub fn with_config(config: QueueConfig) -> Self {
        MemoryWorkQueue { inner: Arc::new(Inner { config, state: Mutex::new(State::default()) }) }
    }
}

impl Default for MemoryWorkQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test must not cascade into every other user of the broker.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `entry` back at the front of `queue` (redelivery) or back (retry) and dispatches.
    fn requeue(&self, queue: &str, entry: Entry, front: bool) {
        let undeliverable = {
            let mut st = self.lock();
            let State { queues, next_id, .. } = &mut *st;
            let Some(q) = queues.get_mut(queue) else {
                log::debug!("job for deleted queue {queue} dropped");
                return;
            };
            if front {
                q.ready.push_front(entry);
            } else {
                q.ready.push_back(entry);
            }
            q.dispatch(next_id)
        };
        drop(undeliverable);
    }
}

impl QueueState {
    fn new(name: &str, options: QueueOptions) -> Self {
        QueueState {
            name: name.into(),
            options,
            ready: VecDeque::new(),
            unacked: HashMap::new(),
            consumers: Vec::new(),
            next_rr: 0,
        }
    }

    /// Hands ready jobs to consumers with room, round-robin. Returns jobs that could not be
    /// sent (their consumer just went away): the caller drops them after unlocking, which puts
    /// them back.
    #[must_use]
    fn dispatch(&mut self, next_id: &mut u64) -> Vec<Job> {
        let mut undeliverable = Vec::new();
        while !self.ready.is_empty() {
            let n = self.consumers.len();
            let Some(idx) = (0..n).map(|i| (self.next_rr + i) % n).find(|&i| {
                let c = &self.consumers[i];
                c.held < c.prefetch && !c.tx.is_closed()
            }) else {
                break;
            };
            self.next_rr = (idx + 1) % n;
            let entry = self.ready.pop_front().expect("checked non-empty");
            *next_id += 1;
            let tag = *next_id;
            let c = &mut self.consumers[idx];
            let job = Job::new(
                entry.message.clone(),
                self.name.clone(),
                entry.redelivered,
                entry.attempt,
                tag,
                c.settle.clone(),
            );
            self.unacked.insert(tag, (c.id, entry));
            c.held += 1;
            if let Err(e) = c.tx.try_send(job) {
                undeliverable.push(e.into_inner());
            }
        }
        undeliverable
    }

    fn take_unacked(&mut self, tag: u64) -> Option<Entry> {
        let (cid, entry) = self.unacked.remove(&tag)?;
        if let Some(c) = self.consumers.iter_mut().find(|c| c.id == cid) {
            c.held -= 1;
        }
        Some(entry)
    }

    /// Removes consumer `id`; its unsettled jobs go back to the front, in delivery order.
    fn remove_consumer(&mut self, id: u64) {
        self.consumers.retain(|c| c.id != id);
        self.next_rr = 0;
        let mut tags: Vec<u64> = self.unacked.iter().filter(|(_, (c, _))| *c == id).map(|(t, _)| *t).collect();
        tags.sort_unstable();
        for tag in tags.into_iter().rev() {
            let (_, mut entry) = self.unacked.remove(&tag).expect("listed above");
            entry.redelivered = true;
            self.ready.push_front(entry);
        }
    }
}

fn unknown_queue(queue: &str) -> Error {
    Error::new(ErrorKind::Invalid, format!("queue {queue} not declared"))
}

#[async_trait]
impl WorkQueue for MemoryWorkQueue {
    async fn declare(&self, queue: &str, options: &QueueOptions) -> Result<(), Error> {
        let mut st = self.inner.lock();
        if st.closed {
            return Err(Error::closed());
        }
        if let Some(q) = st.queues.get(queue) {
            if q.options != *options {
                return Err(Error::new(ErrorKind::Invalid, format!("queue {queue} exists with other options")));
            }
            return Ok(());
        }
        st.queues.insert(queue.to_owned(), QueueState::new(queue, options.clone()));
        let dlq = dead_letter_queue(queue);
        st.queues.entry(dlq.clone()).or_insert_with(|| QueueState::new(&dlq, options.clone()));
        Ok(())
    }

    async fn enqueue(&self, queue: &str, message: Message) -> Result<(), PublishError> {
        let undeliverable = {
            let mut st = self.inner.lock();
            let State { queues, next_id, closed, .. } = &mut *st;
            if *closed {
                return Err(PublishError::new(Error::closed(), message));
            }
            let Some(q) = queues.get_mut(queue) else {
                return Err(PublishError::new(unknown_queue(queue), message));
            };
            if q.ready.len() >= q.options.max_length as usize {
                let e = Error::new(ErrorKind::Unavailable, format!("queue {queue} full"));
                return Err(PublishError::new(e, message));
            }
            q.ready.push_back(Entry { message, attempt: 1, redelivered: false });
            q.dispatch(next_id)
        };
        drop(undeliverable);
        Ok(())
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<JobStream, Error> {
        let prefetch = usize::from(prefetch.max(1));
        let (tx, rx) = async_channel::bounded(prefetch);
        let (id, undeliverable) = {
            let mut st = self.inner.lock();
            let State { queues, next_id, closed, .. } = &mut *st;
            if *closed {
                return Err(Error::closed());
            }
            let q = queues.get_mut(queue).ok_or_else(|| unknown_queue(queue))?;
            *next_id += 1;
            let id = *next_id;
            let settle = Arc::new(MemorySettle { inner: self.inner.clone(), queue: q.name.clone() });
            q.consumers.push(ConsumerSlot { id, prefetch, held: 0, tx, settle });
            (id, q.dispatch(next_id))
        };
        drop(undeliverable);
        Ok(JobStream::new(rx, ConsumerCloser { inner: self.inner.clone(), queue: queue.into(), id, done: false }))
    }

    async fn delete(&self, queue: &str) -> Result<(), Error> {
        let removed = {
            let mut st = self.inner.lock();
            [st.queues.remove(queue), st.queues.remove(&dead_letter_queue(queue))]
        };
        // Senders dropped here end the consumers' streams.
        drop(removed);
        Ok(())
    }

    async fn close(&self) -> Result<(), Error> {
        let mut st = self.inner.lock();
        st.closed = true;
        for q in st.queues.values_mut() {
            for id in q.consumers.iter().map(|c| c.id).collect::<Vec<_>>() {
                q.remove_consumer(id);
            }
        }
        st.exchanges.clear();
        Ok(())
    }
}

/// Ready jobs, those handed to a consumer and not yet settled, and the consumers.
#[async_trait]
impl InspectQueues for MemoryWorkQueue {
    async fn queue_depth(&self, queue: &str) -> Result<QueueDepth, Error> {
        let st = self.inner.lock();
        let q = st.queues.get(queue).ok_or_else(|| unknown_queue(queue))?;
        Ok(QueueDepth {
            messages: q.ready.len() as u64,
            unacked: Some(q.unacked.len() as u64),
            consumers: q.consumers.len() as u32,
        })
    }
}

/// Settles the jobs of one queue.
struct MemorySettle {
    inner: Arc<Inner>,
    queue: Arc<str>,
}

#[async_trait]
impl JobSettle for MemorySettle {
    // The copy handed back is what a retry or dead letter carries (headers set by the handler
    // and the dead-letter stamp); the broker's own copy only backs an ack.
    async fn settle(&self, tag: u64, outcome: JobOutcome, message: Message, _: u32) -> Result<(), Error> {
        let (result, undeliverable) = {
            let mut st = self.inner.lock();
            let State { queues, next_id, .. } = &mut *st;
            let q = queues.get_mut(&*self.queue).ok_or_else(|| unknown_queue(&self.queue))?;
            let mut entry = q
                .take_unacked(tag)
                .ok_or_else(|| Error::new(ErrorKind::Closed, "job no longer held: its consumer went away"))?;
            let mut undeliverable = q.dispatch(next_id);
            if !matches!(outcome, JobOutcome::Ack) {
                entry.message = message;
            }
            let result = match outcome {
                JobOutcome::Retry(after) | JobOutcome::Defer(after) => {
                    let delay = q.options.retry_delays.last().map_or(Duration::ZERO, |max| after.min(*max));
                    if matches!(outcome, JobOutcome::Retry(_)) {
                        entry.attempt += 1;
                    }
                    entry.redelivered = false;
                    let inner = self.inner.clone();
                    let queue = self.queue.clone();
                    smol::spawn(async move {
                        smol::Timer::after(delay).await;
                        inner.requeue(&queue, entry, false);
                    })
                    .detach();
                    Ok(())
                }
                JobOutcome::DeadLetter(reason) => {
                    let dlq_name = dead_letter_queue(&self.queue);
                    match queues.get_mut(&dlq_name) {
                        Some(dlq) if dlq.ready.len() < dlq.options.max_length as usize => {
                            entry.message.headers.retain(|(n, _)| n != ERROR_HEADER);
                            entry.message.headers.push((ERROR_HEADER.to_owned(), reason.into_bytes()));
                            dlq.ready.push_back(entry);
                            undeliverable.extend(dlq.dispatch(next_id));
                            Ok(())
                        }
                        _ => {
                            let q = queues.get_mut(&*self.queue).expect("looked up above");
                            entry.redelivered = true;
                            q.ready.push_front(entry);
                            undeliverable.extend(q.dispatch(next_id));
                            Err(Error::new(ErrorKind::Unavailable, format!("dead-letter queue {dlq_name} full")))
                        }
                    }
                }
                _ => Ok(()),
            };
            (result, undeliverable)
        };
        drop(undeliverable);
        result
    }

    fn release(&self, tag: u64) {
        let undeliverable = {
            let mut st = self.inner.lock();
            let State { queues, next_id, .. } = &mut *st;
            let Some(q) = queues.get_mut(&*self.queue) else { return };
            let Some(mut entry) = q.take_unacked(tag) else { return };
            entry.redelivered = true;
            q.ready.push_front(entry);
            q.dispatch(next_id)
        };
        drop(undeliverable);
    }
}

/// Removes a consumer when its stream closes or drops.
struct ConsumerCloser {
    inner: Arc<Inner>,
    queue: String,
    id: u64,
    done: bool,
}

impl ConsumerCloser {
    fn stop(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let undeliverable = {
            let mut st = self.inner.lock();
            let State { queues, next_id, .. } = &mut *st;
            let Some(q) = queues.get_mut(&self.queue) else { return };
            q.remove_consumer(self.id);
            q.dispatch(next_id)
        };
        drop(undeliverable);
    }
}

#[async_trait]
impl Closer for ConsumerCloser {
    async fn close(mut self: Box<Self>) -> Result<(), Error> {
        self.stop();
        Ok(())
    }
}

impl Drop for ConsumerCloser {
    fn drop(&mut self) {
        self.stop();
    }
}

#[async_trait]
impl Fanout for MemoryWorkQueue {
    async fn broadcast(&self, exchange: &str, message: Message) -> Result<(), PublishError> {
        let mut st = self.inner.lock();
        if st.closed {
            return Err(PublishError::new(Error::closed(), message));
        }
        if let Some(listeners) = st.exchanges.get_mut(exchange) {
            listeners.retain(|l| !l.tx.is_closed());
            for l in listeners.iter() {
                if l.tx.is_full() {
                    let _oldest = l.rx.try_recv();
                }
                let _ = l.tx.try_send(message.clone());
            }
        }
        Ok(())
    }

    async fn listen(&self, exchange: &str) -> Result<FanoutListener, Error> {
        let (tx, rx) = async_channel::bounded(self.inner.config.listener_capacity.max(1));
        let mut st = self.inner.lock();
        if st.closed {
            return Err(Error::closed());
        }
        st.next_id += 1;
        let id = st.next_id;
        st.exchanges.entry(exchange.to_owned()).or_default().push(ListenerSlot { id, tx, rx: rx.clone() });
        Ok(FanoutListener::new(rx, ListenerCloser { inner: self.inner.clone(), exchange: exchange.into(), id }))
    }
}

/// Unbinds a listener when it closes or drops.
struct ListenerCloser {
    inner: Arc<Inner>,
    exchange: String,
    id: u64,
}

#[async_trait]
impl Closer for ListenerCloser {
    async fn close(self: Box<Self>) -> Result<(), Error> {
        Ok(()) // Drop unbinds.
    }
}

impl Drop for ListenerCloser {
    fn drop(&mut self) {
        if let Some(ls) = self.inner.lock().exchanges.get_mut(&self.exchange) {
            ls.retain(|l| l.id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_listener_loses_the_oldest_events() {
        let b = MemoryWorkQueue::with_config(QueueConfig { listener_capacity: 2 });
        smol::block_on(async {
            let l = b.listen("ev").await.unwrap();
            for i in 0..3 {
                b.broadcast("ev", Message::new(vec![i])).await.unwrap();
            }
            assert_eq!(l.recv().await.unwrap().payload, [1]);
            assert_eq!(l.recv().await.unwrap().payload, [2]);
        });
    }

    #[test]
    fn declaring_again_with_other_options_is_invalid() {
        let b = MemoryWorkQueue::new();
        smol::block_on(async {
            b.declare("q", &QueueOptions::default()).await.unwrap();
            b.declare("q", &QueueOptions::default()).await.unwrap();
            let e = b.declare("q", &QueueOptions::default().with_max_length(1)).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid);
        });
    }
}

//! [`Browse`] over the embedded work queues: a pass takes messages off the head of a queue
//! (as RabbitMQ's `basic.get` without ack does), and puts back those it did not remove, in
//! their order, when it ends or is dropped.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_ports::{Browse, BrowsePass, Browsed, Error, Message, PassBroker, PublishError, WorkQueue};

use super::{unknown_queue, Entry, Inner, MemoryWorkQueue, State};

#[async_trait]
impl Browse for MemoryWorkQueue {
    async fn browse(&self, source: &str, max: usize) -> Result<BrowsePass, Error> {
        let mut st = self.inner.lock();
        if st.closed {
            return Err(Error::closed());
        }
        let q = st.queues.get_mut(source).ok_or_else(|| unknown_queue(source))?;
        let n = max.min(q.ready.len());
        let held: Vec<Entry> = q.ready.drain(..n).collect();
        let entries = held
            .iter()
            .enumerate()
            .map(|(i, e)| Browsed { partition: None, offset: i as i64, message: e.message.clone() })
            .collect();
        let pass = QueuePass {
            broker: self.clone(),
            inner: self.inner.clone(),
            queue: source.to_owned(),
            held: held.into_iter().map(Some).collect(),
        };
        Ok(BrowsePass::new(entries, pass))
    }
}

struct QueuePass {
    broker: MemoryWorkQueue,
    inner: Arc<Inner>,
    queue: String,
    /// `None` once removed.
    held: Vec<Option<Entry>>,
}

#[async_trait]
impl PassBroker for QueuePass {
    async fn send(&mut self, destination: &str, message: Message) -> Result<(), PublishError> {
        self.broker.enqueue(destination, message).await
    }

    async fn remove(&mut self, _: &[Browsed], index: usize) -> Result<(), Error> {
        if let Some(slot) = self.held.get_mut(index) {
            *slot = None;
        }
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), Error> {
        Ok(()) // Drop puts the rest back.
    }
}

impl Drop for QueuePass {
    fn drop(&mut self) {
        let undeliverable = {
            let mut st = self.inner.lock();
            let State { queues, next_id, .. } = &mut *st;
            let Some(q) = queues.get_mut(&self.queue) else { return };
            for entry in self.held.drain(..).rev().flatten() {
                q.ready.push_front(entry);
            }
            q.dispatch(next_id)
        };
        drop(undeliverable);
    }
}

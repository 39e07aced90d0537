//! The one stream the ports hand out: what an adapter receives, on a bounded channel, and the
//! hook that stops the adapter's consumer.

use std::fmt;

use async_trait::async_trait;

use crate::{Delivery, Error, Job, Message};

/// A bounded stream of what an adapter receives: a group member's deliveries
/// ([`Subscription`]), a consumer's jobs ([`JobStream`]) or a listener's events
/// ([`FanoutListener`]).
///
/// The buffer between broker and handler is bounded by the adapter. Dropping the stream stops
/// the consumer: buffered deliveries and jobs are dropped, which hands them back to the broker.
pub struct Stream<T: Streamed> {
    receiver: async_channel::Receiver<T>,
    closer: Option<Box<dyn Closer>>,
}

/// Adapter hook run when a stream closes: commit what was acked and leave the group, stop the
/// consumer, or unbind the listener.
#[async_trait]
pub trait Closer: Send + Sync {
    /// Stops the consumer, after committing acked offsets where there are any.
    async fn close(self: Box<Self>) -> Result<(), Error>;
}

/// What a [`Stream`] carries, and how closing it treats what is still buffered.
pub trait Streamed: Send + 'static {
    /// The stream's name in `Debug`.
    const STREAM: &'static str;
    /// Close drops the buffered items before the [`Closer`] runs, so they are back with the
    /// broker when close returns (jobs). Otherwise they are dropped after it (deliveries: the
    /// closer commits first).
    const RELEASE_BEFORE_CLOSE: bool = false;
}

impl Streamed for Delivery {
    const STREAM: &'static str = "Subscription";
}

impl Streamed for Job {
    const STREAM: &'static str = "JobStream";
    const RELEASE_BEFORE_CLOSE: bool = true;
}

impl Streamed for Message {
    const STREAM: &'static str = "FanoutListener";
}

/// One group member's stream of deliveries. Dropping it leaves the group; [`close`](Stream::close)
/// also waits for acked offsets to be committed.
pub type Subscription = Stream<Delivery>;

/// One consumer's jobs; the buffer holds at most the consumer's prefetch. Dropping the stream
/// stops the consumer: buffered jobs and jobs still held go back to the queue.
/// [`close`](Stream::close) does the same and waits until the broker has them back.
pub type JobStream = Stream<Job>;

/// A listener's events. Dropping it unbinds the listener.
pub type FanoutListener = Stream<Message>;

impl<T: Streamed> Stream<T> {
    /// Built by adapters: items arrive on `receiver`; `closer` stops the consumer on close
    /// (also when dropped).
    pub fn new(receiver: async_channel::Receiver<T>, closer: impl Closer + 'static) -> Self {
        Stream { receiver, closer: Some(Box::new(closer)) }
    }

    /// The next item; `None` once the consumer was stopped from the broker side.
    pub async fn recv(&self) -> Option<T> {
        self.receiver.recv().await.ok()
    }

    /// Stops the consumer: commits acked offsets and leaves the group (deliveries), returns
    /// once unsettled jobs are back in the queue (jobs), unbinds (events).
    pub async fn close(mut self) -> Result<(), Error> {
        if T::RELEASE_BEFORE_CLOSE {
            self.drain();
        } else {
            self.receiver.close();
        }
        match self.closer.take() {
            Some(c) => c.close().await,
            None => Ok(()),
        }
    }

    fn drain(&self) {
        self.receiver.close();
        while let Ok(item) = self.receiver.try_recv() {
            drop(item);
        }
    }
}

impl<T: Streamed> Drop for Stream<T> {
    fn drop(&mut self) {
        // Deliveries and jobs still buffered go back to the broker as they are dropped.
        self.drain();
    }
}

impl<T: Streamed> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(T::STREAM).field("buffered", &self.receiver.len()).finish()
    }
}

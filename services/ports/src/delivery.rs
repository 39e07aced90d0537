use std::fmt;
use std::sync::Arc;

use crate::Message;

/// Where a delivery's outcome goes: implemented by each broker adapter.
pub trait Settle: Send + Sync {
    /// The message at `partition`/`offset` was processed: its offset may be committed once every
    /// earlier offset of the partition is settled too.
    fn ack(&self, partition: i32, offset: i64);
    /// The message was not processed: deliver it again to this subscription (or, once the
    /// subscription is gone, to the next member of the group).
    fn nack(&self, partition: i32, offset: i64, message: Message);
}

/// A message received from a subscription, to be acked after the work is done.
///
/// Dropping a delivery without [`ack`](Delivery::ack) counts as [`nack`](Delivery::nack):
/// at-least-once, a message is never lost because a handler returned early.
pub struct Delivery {
    message: Message,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    settle: Option<Arc<dyn Settle>>,
}

impl Delivery {
    /// Built by adapters.
    pub fn new(message: Message, topic: Arc<str>, partition: i32, offset: i64, settle: Arc<dyn Settle>) -> Self {
        Delivery { message, topic, partition, offset, settle: Some(settle) }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The topic it came from.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset in the partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Marks the message processed; its offset is committed in order.
    pub fn ack(mut self) {
        if let Some(s) = self.settle.take() {
            s.ack(self.partition, self.offset);
        }
    }

    /// Asks for the message again.
    pub fn nack(mut self) {
        if let Some(s) = self.settle.take() {
            s.nack(self.partition, self.offset, std::mem::take(&mut self.message));
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(s) = self.settle.take() {
            s.nack(self.partition, self.offset, std::mem::take(&mut self.message));
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

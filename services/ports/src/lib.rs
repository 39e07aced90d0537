//! Ports of switchboard: what a service needs from a broker, with no broker named.
//!
//! Services get a [`Publisher`] and a [`Subscriber`] (Kafka-style topics with consumer groups)
//! and never know whether the embedded broker (`switchboard-embedded`) or a real one
//! (`switchboard-kafka`, `switchboard-amqp`) stands behind them.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod browse;
mod dead_letter;
mod delivery;
mod error;
mod inspect;
mod message;
mod offsets;
mod pubsub;
mod queue;
mod stream;

pub use browse::{Browse, BrowsePass, Browsed, PassBroker, ReadRange, TopicBrowser, TopicLog};
pub use dead_letter::{
    redrives, set_header, stamp_dead_letter, unix_millis, Origin, ATTEMPTS_HEADER, DEAD_LETTERED_HEADER,
    FIRST_FAILED_HEADER, ORIGIN_HEADER, ORIGIN_OFFSET_HEADER, ORIGIN_PARTITION_HEADER, REDRIVES_HEADER,
    TRACEPARENT_HEADER,
};
pub use delivery::{Delivery, Settle};
pub use error::{Error, ErrorKind, PublishError};
pub use inspect::{InspectQueues, InspectTopics, PartitionOffsets, QueueDepth};
pub use message::{Headers, Message};
pub use offsets::OffsetTracker;
pub use pubsub::{Publisher, Subscriber, TopicAdmin};
pub use queue::{
    dead_letter_queue, Fanout, Job, JobOutcome, JobSettle, QueueOptions, WorkQueue, ATTEMPT_HEADER, ERROR_HEADER,
};
pub use stream::{Closer, FanoutListener, JobStream, Stream, Streamed, Subscription};

//! Work queues with RabbitMQ semantics: each job goes to one consumer, is settled once, and
//! comes back when its consumer goes away without settling it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{Error, FanoutListener, JobStream, Message, PublishError};

/// Header carrying the attempt number (decimal, first attempt is 1) across retries. Adapters
/// read and write it; [`Job::message`] never shows it.
pub const ATTEMPT_HEADER: &str = "x-switchboard-attempt";

/// Header carrying the reason of a dead-lettered job, on the jobs of the dead-letter queue.
pub const ERROR_HEADER: &str = "x-switchboard-error";

/// How a queue is declared. Every queue comes with a dead-letter queue named `<queue>.dlq`
/// (see [`dead_letter_queue`]) and whatever the adapter needs for delayed retries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Most jobs waiting in the queue (not counting jobs held by consumers). When full,
    /// [`WorkQueue::enqueue`] fails with [`ErrorKind::Unavailable`](crate::ErrorKind) ("queue
    /// full") and hands the message back. Default 100 000.
    pub max_length: u32,
    /// Retry delays the adapter prepares (RabbitMQ: one TTL queue per delay, so jobs of similar
    /// delays wait together). [`Job::retry`] waits about as long as asked, at most the longest
    /// delay; with none prepared, it retries at once. Default 1 s, 5 s, 30 s.
    pub retry_delays: Vec<Duration>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_length: 100_000,
            retry_delays: vec![Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(30)],
        }
    }
}

impl QueueOptions {
    /// Sets [`max_length`](QueueOptions::max_length).
    pub fn with_max_length(mut self, max_length: u32) -> Self {
        self.max_length = max_length;
        self
    }

    /// Sets [`retry_delays`](QueueOptions::retry_delays) (sorted, zero and duplicates dropped).
    pub fn with_retry_delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        let mut d: Vec<Duration> = delays.into_iter().filter(|d| !d.is_zero()).collect();
        d.sort();
        d.dedup();
        self.retry_delays = d;
        self
    }

    /// The prepared delay a retry asked to wait `after` is parked under: the smallest one at
    /// least `after`, else the longest; `None` when no delay is prepared.
    pub fn retry_bucket(&self, after: Duration) -> Option<Duration> {
        self.retry_delays.iter().copied().find(|d| *d >= after).or_else(|| self.retry_delays.last().copied())
    }
}

/// Name of the dead-letter queue of `queue`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// A broker of work queues.
///
/// Thread safety: `Send + Sync`, shared by reference across tasks; concurrent enqueues and
/// consumers are allowed. Queues must be [`declare`](WorkQueue::declare)d through the same
/// handle before they are used (declaring is idempotent, so producers and consumers both do it).
///
/// Delivery is at-least-once: a job not settled when its consumer goes away is delivered again
/// with [`Job::redelivered`] set, so handlers must tolerate duplicates.
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Declares `queue` (durable), its dead-letter queue and its retry topology, unless they
    /// exist. Declaring an existing queue with other options fails with `Invalid`.
    async fn declare(&self, queue: &str, options: &QueueOptions) -> Result<(), Error>;

    /// Enqueues a job (the message's `key` is not carried) and returns once the broker confirmed
    /// it: from then on it survives this process. On error the message is handed back; a full
    /// queue is `Unavailable`, an undeclared one `Invalid`.
    async fn enqueue(&self, queue: &str, message: Message) -> Result<(), PublishError>;

    /// Starts a consumer on `queue` holding at most `prefetch` (at least 1) unsettled jobs.
    /// Consumers of one queue share its jobs round-robin.
    async fn consume(&self, queue: &str, prefetch: u16) -> Result<JobStream, Error>;

    /// Deletes `queue` with its dead-letter and retry queues, and the jobs in them.
    async fn delete(&self, queue: &str) -> Result<(), Error>;

    /// Waits until every enqueue in flight is confirmed or failed, then refuses new ones.
    /// Consumers started from this handle stop; their unsettled jobs go back to their queues.
    async fn close(&self) -> Result<(), Error>;
}

/// What a consumer decided for a job.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// Done: remove it.
    Ack,
    /// Deliver it again after about this long, with the attempt count increased.
    Retry(Duration),
    /// Deliver it again after about this long, with the attempt count unchanged: the job was
    /// not tried (e.g. a circuit breaker was open), so no attempt is spent.
    Defer(Duration),
    /// Move it to the dead-letter queue with this reason in [`ERROR_HEADER`].
    DeadLetter(String),
}

/// Where a job's outcome goes: implemented by each adapter.
#[async_trait]
pub trait JobSettle: Send + Sync {
    /// Applies `outcome` to the job delivered with `tag` (its `message` and `attempt` handed
    /// back for a retry or dead-letter copy); returns once the broker has it: a copy is
    /// confirmed before the original is removed. On error the job goes back to its queue.
    async fn settle(&self, tag: u64, outcome: JobOutcome, message: Message, attempt: u32) -> Result<(), Error>;

    /// The job was dropped unsettled: put it back in its queue, marked redelivered.
    fn release(&self, tag: u64);
}

/// A job delivered to a consumer, to be settled once with [`ack`](Job::ack),
/// [`retry`](Job::retry) or [`dead_letter`](Job::dead_letter).
///
/// Dropping it unsettled puts it back in the queue (marked redelivered), as when an AMQP
/// consumer goes away. Settling after the consumer's stream was dropped fails (`Closed`): the
/// job was already put back.
pub struct Job {
    message: Message,
    queue: Arc<str>,
    redelivered: bool,
    attempt: u32,
    tag: u64,
    settle: Option<Arc<dyn JobSettle>>,
}

impl Job {
    /// Built by adapters. `attempt` starts at 1; `tag` identifies the job to `settle`.
    pub fn new(
        message: Message,
        queue: Arc<str>,
        redelivered: bool,
        attempt: u32,
        tag: u64,
        settle: Arc<dyn JobSettle>,
    ) -> Self {
        Job { message, queue, redelivered, attempt, tag, settle: Some(settle) }
    }

    /// The payload and headers (without [`ATTEMPT_HEADER`]).
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// True when the broker delivered it before and its consumer went away without settling.
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// 1 for the first attempt, one more per [`retry`](Job::retry). Redelivery after a lost
    /// consumer does not count: give up by this number (max attempts is the caller's policy).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Done: the job is removed.
    pub async fn ack(self) -> Result<(), Error> {
        self.finish(JobOutcome::Ack).await
    }

    /// Delivers the job again after about `after` (capped by
    /// [`QueueOptions::retry_delays`]), with [`attempt`](Job::attempt) + 1. On error the job
    /// goes back to the queue unchanged.
    pub async fn retry(self, after: Duration) -> Result<(), Error> {
        self.finish(JobOutcome::Retry(after)).await
    }

    /// Delivers the job again after about `after`, like [`retry`](Job::retry) but with
    /// [`attempt`](Job::attempt) unchanged: for work put off without being tried.
    pub async fn defer(self, after: Duration) -> Result<(), Error> {
        self.finish(JobOutcome::Defer(after)).await
    }

    /// Moves the job to the dead-letter queue with `reason` in [`ERROR_HEADER`] and its origin
    /// (this queue), attempts and time in the other dead-letter headers
    /// ([`stamp_dead_letter`](crate::stamp_dead_letter)). On error the job goes back to the
    /// queue unchanged.
    pub async fn dead_letter(self, reason: impl Into<String>) -> Result<(), Error> {
        self.finish(JobOutcome::DeadLetter(reason.into())).await
    }

    /// Sets header `name` (replacing any of that name) on what a retry or dead letter carries,
    /// e.g. the trace context of the work before dead-lettering.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        crate::set_header(&mut self.message, name, value);
        self
    }

    async fn finish(mut self, outcome: JobOutcome) -> Result<(), Error> {
        if let JobOutcome::DeadLetter(reason) = &outcome {
            // Stamped here, once for every adapter.
            let origin = crate::Origin::queue(&self.queue);
            crate::stamp_dead_letter(&mut self.message, &origin, reason, self.attempt, None);
        }
        match self.settle.take() {
            Some(s) => s.settle(self.tag, outcome, std::mem::take(&mut self.message), self.attempt).await,
            None => Err(Error::closed()),
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(s) = self.settle.take() {
            s.release(self.tag);
        }
    }
}

// Debug leaves out the payload, so jobs never dump user data into logs.
impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("queue", &self.queue)
            .field("redelivered", &self.redelivered)
            .field("attempt", &self.attempt)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// Broadcast of events to every live listener (RabbitMQ: a fanout exchange, each listener on its
/// own exclusive auto-delete queue), e.g. job results shown by every gateway instance.
///
/// Best effort: a listener sees only events published while it listens, and a listener that
/// falls behind its bounded buffer loses the oldest events. Thread safety as [`WorkQueue`].
#[async_trait]
pub trait Fanout: Send + Sync {
    /// Publishes `message` to every listener of `exchange`; returns once the broker confirmed
    /// it (not once listeners got it).
    async fn broadcast(&self, exchange: &str, message: Message) -> Result<(), PublishError>;

    /// Starts listening on `exchange`; returns once events published from now on will arrive.
    async fn listen(&self, exchange: &str) -> Result<FanoutListener, Error>;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);

    #[async_trait]
    impl JobSettle for Record {
        async fn settle(&self, tag: u64, outcome: JobOutcome, m: Message, attempt: u32) -> Result<(), Error> {
            assert_eq!((m.payload.as_slice(), attempt), (&b"x"[..], 1));
            self.0.lock().unwrap().push(format!("{tag}:{outcome:?}"));
            Ok(())
        }
        fn release(&self, tag: u64) {
            self.0.lock().unwrap().push(format!("{tag}:release"));
        }
    }

    fn job(tag: u64, r: &Arc<Record>) -> Job {
        Job::new(Message::new("x"), "q".into(), false, 1, tag, r.clone())
    }

    #[test]
    fn each_job_settles_once_and_drop_releases() {
        let r = Arc::new(Record::default());
        smol::block_on(async {
            job(1, &r).ack().await.unwrap();
            job(2, &r).retry(Duration::from_secs(3)).await.unwrap();
            job(3, &r).dead_letter("bad").await.unwrap();
            drop(job(4, &r));
            job(5, &r).defer(Duration::from_secs(2)).await.unwrap();
        });
        assert_eq!(*r.0.lock().unwrap(), ["1:Ack", "2:Retry(3s)", "3:DeadLetter(\"bad\")", "4:release", "5:Defer(2s)"]);
    }

    #[test]
    fn retry_bucket_rounds_up_and_caps() {
        let o = QueueOptions::default().with_retry_delays([Duration::from_secs(5), Duration::from_secs(1)]);
        assert_eq!(o.retry_bucket(Duration::from_millis(10)), Some(Duration::from_secs(1)));
        assert_eq!(o.retry_bucket(Duration::from_secs(2)), Some(Duration::from_secs(5)));
        assert_eq!(o.retry_bucket(Duration::from_secs(60)), Some(Duration::from_secs(5)));
        assert_eq!(QueueOptions::default().with_retry_delays([]).retry_bucket(Duration::ZERO), None);
    }
}

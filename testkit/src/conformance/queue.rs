//! Work-queue conformance cases: written once, run against every [`WorkQueue`] backend.
//!
//! Each case declares queues with unique names and deletes them at the end. Backends get one
//! named `#[test]` per case from [`queue_conformance!`](crate::queue_conformance):
//!
//! ```ignore
//! switchboard_testkit::queue_conformance!(MemoryWorkQueue::new());
//! // Real broker, opt-in:
//! switchboard_testkit::queue_conformance!(connect(), [#[ignore = "needs RabbitMQ: make test-real"]]);
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_lite::future;
use switchboard_ports::{
    dead_letter_queue, ErrorKind, Fanout, InspectQueues, Job, JobStream, Message, QueueDepth, QueueOptions, WorkQueue,
    ERROR_HEADER,
};

/// Longest a case may take before it fails (a hang is a failure, never a silent pass).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a case waits to be sure something does *not* arrive.
pub const QUIET: Duration = Duration::from_millis(400);

/// Runs one case on the current thread, failing it after [`CASE_TIMEOUT`].
#[track_caller]
pub fn run<F: Future<Output = ()>>(name: &str, case: F) {
    super::run(name, CASE_TIMEOUT, case);
}

/// One named `#[test]` per work-queue case against the backend built by `$make` (an expression
/// evaluating to a `WorkQueue + Fanout`, built inside the test's executor). Optional attributes
/// in brackets go on every test, e.g. `[#[ignore = "needs RabbitMQ"]]`.
#[macro_export]
macro_rules! queue_conformance {
    ($make:expr) => {
        $crate::queue_conformance!($make, []);
    };
    ($make:expr, $attrs:tt) => {
        $crate::__conformance_tests!(queue, $crate::conformance::queue::CASE_TIMEOUT, $make, $attrs;
            round_trip,
            enqueue_to_undeclared_queue_fails,
            prefetch_limit_respected,
            unsettled_jobs_redelivered_when_consumer_gone,
            dropped_job_redelivered,
            retry_then_success_counts_attempts,
            defer_keeps_attempt_count,
            dead_letter_carries_reason,
            consumers_share_load,
            full_queue_rejects_enqueue,
            none_lost_under_load,
            fanout_reaches_every_listener,
            queue_depth_counts_ready_jobs_and_consumers);
    };
}

/// A queue name no other case or run uses.
pub fn unique(case: &str) -> String {
    format!("conformance.{case}.{:016x}", fastrand::u64(..))
}

/// The next job, or `None` after `wait`.
pub async fn recv_within(jobs: &JobStream, wait: Duration) -> Option<Job> {
    future::or(jobs.recv(), async {
        smol::Timer::after(wait).await;
        None
    })
    .await
}

/// The job `what`, which must arrive within 10 s.
async fn next_job(jobs: &JobStream, what: &str) -> Job {
    recv_within(jobs, Duration::from_secs(10)).await.unwrap_or_else(|| panic!("expected {what}, got nothing"))
}

/// The job `what`, put off by `delay` at `started`: nothing within the first third of the delay,
/// then the job, no sooner than two thirds of it after `started` (loose bounds: timers are
/// coarse, and a loaded machine is late, never early).
async fn next_job_after(jobs: &JobStream, started: Instant, delay: Duration, what: &str) -> Job {
    assert!(recv_within(jobs, delay / 3).await.is_none(), "{what} came back before its delay");
    let job = next_job(jobs, what).await;
    assert!(started.elapsed() >= delay * 2 / 3, "{what} came back after {:?}", started.elapsed());
    job
}

/// A queue of its own for `case`, declared with `options`.
async fn declared<Q: WorkQueue + ?Sized>(q: &Q, case: &str, options: &QueueOptions) -> String {
    let name = unique(case);
    q.declare(&name, options).await.expect("declare");
    name
}

/// The end of a case: its job streams closed, then its queue deleted.
async fn close_and_delete<Q: WorkQueue + ?Sized>(q: &Q, name: &str, streams: impl IntoIterator<Item = JobStream>) {
    for jobs in streams {
        jobs.close().await.expect("close stream");
    }
    q.delete(name).await.expect("delete");
}

/// Enqueue, consume, ack: payload and headers arrive, attempt 1, not redelivered, once.
pub async fn round_trip<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "round_trip", &QueueOptions::default()).await;
    q.enqueue(&name, Message::new("hello").with_header("traceparent", "00-abc")).await.expect("enqueue");
    let jobs = q.consume(&name, 1).await.expect("consume");
    let job = next_job(&jobs, "the job").await;
    assert_eq!(job.payload(), b"hello");
    assert_eq!(job.message().header_str("traceparent"), Some("00-abc"));
    assert_eq!(job.queue(), name);
    assert_eq!(job.attempt(), 1);
    assert!(!job.redelivered());
    job.ack().await.expect("ack");
    assert!(recv_within(&jobs, QUIET).await.is_none(), "acked job came back");
    close_and_delete(q, &name, [jobs]).await;
}

/// Enqueueing to a queue never declared fails as `Invalid` and hands the message back.
pub async fn enqueue_to_undeclared_queue_fails<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = unique("undeclared");
    let err = q.enqueue(&name, Message::new("lost?")).await.expect_err("enqueue to undeclared queue");
    assert_eq!(err.error.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(err.into_inner().payload, b"lost?");
}

/// A consumer never holds more than its prefetch; settling one lets the next in.
pub async fn prefetch_limit_respected<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "prefetch", &QueueOptions::default()).await;
    for i in 0..5u8 {
        q.enqueue(&name, Message::new(vec![i])).await.expect("enqueue");
    }
    let jobs = q.consume(&name, 2).await.expect("consume");
    let a = next_job(&jobs, "job 1").await;
    let b = next_job(&jobs, "job 2").await;
    assert!(recv_within(&jobs, QUIET).await.is_none(), "a third job arrived past prefetch 2");
    a.ack().await.expect("ack");
    let c = next_job(&jobs, "job 3 after an ack").await;
    assert!(recv_within(&jobs, QUIET).await.is_none(), "past prefetch after one ack");
    let mut seen = vec![b.payload()[0], c.payload()[0]];
    b.ack().await.expect("ack");
    c.ack().await.expect("ack");
    for _ in 0..2 {
        let j = next_job(&jobs, "remaining job").await;
        seen.push(j.payload()[0]);
        j.ack().await.expect("ack");
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3, 4]);
    close_and_delete(q, &name, [jobs]).await;
}

/// A consumer that goes away holding jobs: they come to the next consumer flagged redelivered,
/// and settling the old copies fails.
pub async fn unsettled_jobs_redelivered_when_consumer_gone<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "consumer_gone", &QueueOptions::default()).await;
    for i in 0..3u8 {
        q.enqueue(&name, Message::new(vec![i])).await.expect("enqueue");
    }
    let first = q.consume(&name, 3).await.expect("consume");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next_job(&first, "first delivery").await);
    }
    first.close().await.expect("close first consumer");

    let second = q.consume(&name, 3).await.expect("consume again");
    let mut again = Vec::new();
    for _ in 0..3 {
        let j = next_job(&second, "redelivery").await;
        assert!(j.redelivered(), "redelivered flag not set");
        assert_eq!(j.attempt(), 1, "redelivery is not a retry");
        again.push(j.payload()[0]);
        j.ack().await.expect("ack redelivered");
    }
    again.sort_unstable();
    assert_eq!(again, [0, 1, 2]);
    for j in held {
        assert!(j.ack().await.is_err(), "acking a job of a gone consumer succeeded");
    }
    assert!(recv_within(&second, QUIET).await.is_none(), "completed job came back");
    close_and_delete(q, &name, [second]).await;
}

/// A job dropped unsettled comes back flagged redelivered.
pub async fn dropped_job_redelivered<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "dropped", &QueueOptions::default()).await;
    q.enqueue(&name, Message::new("again")).await.expect("enqueue");
    let jobs = q.consume(&name, 1).await.expect("consume");
    let job = next_job(&jobs, "the job").await;
    assert!(!job.redelivered());
    drop(job);
    let job = next_job(&jobs, "the dropped job again").await;
    assert!(job.redelivered());
    assert_eq!(job.payload(), b"again");
    job.ack().await.expect("ack");
    close_and_delete(q, &name, [jobs]).await;
}

/// Retry waits, then delivers the job again with attempt + 1 and its headers; then success.
pub async fn retry_then_success_counts_attempts<Q: WorkQueue + ?Sized>(q: &Q) {
    let delay = Duration::from_millis(300);
    let name = declared(q, "retry", &QueueOptions::default().with_retry_delays([delay, Duration::from_secs(2)])).await;
    q.enqueue(&name, Message::new("flaky").with_header("k", "v")).await.expect("enqueue");
    let jobs = q.consume(&name, 1).await.expect("consume");
    let first = next_job(&jobs, "attempt 1").await;
    assert_eq!(first.attempt(), 1);
    let started = Instant::now();
    first.retry(delay).await.expect("retry");
    let second = next_job_after(&jobs, started, delay, "attempt 2").await;
    assert_eq!(second.attempt(), 2);
    assert_eq!(second.payload(), b"flaky");
    assert_eq!(second.message().header_str("k"), Some("v"), "headers lost in retry");
    assert!(!second.redelivered(), "a retry is a new delivery");
    // A redelivery keeps the attempt count; a retry at once still counts.
    drop(second);
    let again = next_job(&jobs, "attempt 2 again").await;
    assert!(again.redelivered());
    assert_eq!(again.attempt(), 2);
    again.retry(Duration::ZERO).await.expect("retry at once");
    let third = next_job(&jobs, "attempt 3").await;
    assert_eq!(third.attempt(), 3);
    third.ack().await.expect("ack");
    assert!(recv_within(&jobs, QUIET).await.is_none(), "acked job came back");
    close_and_delete(q, &name, [jobs]).await;
}

/// Deferring delivers the job again after its delay with the attempt count unchanged.
pub async fn defer_keeps_attempt_count<Q: WorkQueue + ?Sized>(q: &Q) {
    let delay = Duration::from_millis(300);
    let name = declared(q, "defer", &QueueOptions::default().with_retry_delays([delay])).await;
    q.enqueue(&name, Message::new("later").with_header("k", "v")).await.expect("enqueue");
    let jobs = q.consume(&name, 1).await.expect("consume");
    let first = next_job(&jobs, "attempt 1").await;
    first.retry(Duration::ZERO).await.expect("retry");
    let second = next_job(&jobs, "attempt 2").await;
    assert_eq!(second.attempt(), 2);
    let started = Instant::now();
    second.defer(delay).await.expect("defer");
    let again = next_job_after(&jobs, started, delay, "the deferred job").await;
    assert_eq!(again.attempt(), 2, "a deferral spent an attempt");
    assert_eq!(again.message().header_str("k"), Some("v"), "headers lost in deferral");
    assert!(!again.redelivered());
    again.ack().await.expect("ack");
    assert!(recv_within(&jobs, QUIET).await.is_none(), "acked job came back");
    close_and_delete(q, &name, [jobs]).await;
}

/// Dead-lettering moves the job to `<queue>.dlq` with the reason in [`ERROR_HEADER`].
pub async fn dead_letter_carries_reason<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "dead_letter", &QueueOptions::default()).await;
    q.enqueue(&name, Message::new("{not json").with_header("k", "v")).await.expect("enqueue");
    let jobs = q.consume(&name, 1).await.expect("consume");
    let job = next_job(&jobs, "the job").await;
    job.dead_letter("payload is not valid json").await.expect("dead-letter");
    assert!(recv_within(&jobs, QUIET).await.is_none(), "dead-lettered job stayed in its queue");

    let dlq = q.consume(&dead_letter_queue(&name), 1).await.expect("consume dlq");
    let dead = next_job(&dlq, "the dead letter").await;
    assert_eq!(dead.payload(), b"{not json");
    assert_eq!(dead.message().header_str(ERROR_HEADER), Some("payload is not valid json"));
    assert_eq!(dead.message().header_str("k"), Some("v"));
    dead.ack().await.expect("ack dead letter");
    close_and_delete(q, &name, [jobs, dlq]).await;
}

/// Two consumers of one queue both get work, and together get every job once.
pub async fn consumers_share_load<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "share", &QueueOptions::default()).await;
    let a = q.consume(&name, 1).await.expect("consume a");
    let b = q.consume(&name, 1).await.expect("consume b");
    const N: u32 = 20;
    for i in 0..N {
        q.enqueue(&name, Message::new(i.to_be_bytes().to_vec())).await.expect("enqueue");
    }
    let (got_a, got_b) = future::zip(work_slowly(&a), work_slowly(&b)).await;
    assert!(!got_a.is_empty() && !got_b.is_empty(), "a got {}, b got {}", got_a.len(), got_b.len());
    let mut all: Vec<u32> = got_a.into_iter().chain(got_b).collect();
    all.sort_unstable();
    assert_eq!(all, (0..N).collect::<Vec<_>>());
    close_and_delete(q, &name, [a, b]).await;
}

/// Acks every job until none comes for 2 s, slowly so that other consumers take their share.
async fn work_slowly(jobs: &JobStream) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(j) = recv_within(jobs, Duration::from_secs(2)).await {
        got.push(u32::from_be_bytes(j.payload().try_into().expect("4 bytes")));
        smol::Timer::after(Duration::from_millis(10)).await;
        j.ack().await.expect("ack");
    }
    got
}

/// A full queue refuses enqueues with `Unavailable` and hands the message back.
pub async fn full_queue_rejects_enqueue<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "full", &QueueOptions::default().with_max_length(3)).await;
    for i in 0..3u8 {
        q.enqueue(&name, Message::new(vec![i])).await.expect("enqueue below the bound");
    }
    let err = q.enqueue(&name, Message::new("one too many")).await.expect_err("enqueue into a full queue");
    assert_eq!(err.error.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.into_inner().payload, b"one too many");
    let jobs = q.consume(&name, 3).await.expect("consume");
    for i in 0..3u8 {
        let j = next_job(&jobs, "a queued job").await;
        assert_eq!(j.payload(), [i]);
        j.ack().await.expect("ack");
    }
    assert!(recv_within(&jobs, QUIET).await.is_none(), "the rejected job was queued");
    close_and_delete(q, &name, [jobs]).await;
}

/// 500 jobs from 4 producers through 3 consumers, some dropped and some retried on their first
/// attempt: every job completes, none lost.
pub async fn none_lost_under_load<Q: WorkQueue + ?Sized>(q: &Q) {
    let name = declared(q, "load", &QueueOptions::default().with_retry_delays([Duration::from_millis(50)])).await;
    const N: u32 = 500;
    let consumers = [q.consume(&name, 10).await, q.consume(&name, 10).await, q.consume(&name, 10).await]
        .map(|c| c.expect("consume"));
    let queue = name.as_str();
    let produce = |p: u32| async move {
        for i in (p..N).step_by(4) {
            q.enqueue(queue, Message::new(i.to_be_bytes().to_vec())).await.expect("enqueue");
        }
    };
    let producers = future::zip(future::zip(produce(0), produce(1)), future::zip(produce(2), produce(3)));
    let workers =
        future::zip(future::zip(work_flaky(&consumers[0]), work_flaky(&consumers[1])), work_flaky(&consumers[2]));
    let (_, ((d0, d1), d2)) = future::zip(producers, workers).await;
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for i in d0.into_iter().chain(d1).chain(d2) {
        *counts.entry(i).or_default() += 1;
    }
    let missing: Vec<u32> = (0..N).filter(|i| !counts.contains_key(i)).collect();
    assert!(missing.is_empty(), "{} jobs lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
    let duplicates = counts.values().filter(|c| **c > 1).count();
    assert_eq!(duplicates, 0, "jobs completed twice without a lost consumer");
    close_and_delete(q, &name, consumers).await;
}

/// Completes jobs until none comes for 3 s; on their first attempt drops those ending in 3 and
/// retries those ending in 7. Returns the completed ones.
async fn work_flaky(jobs: &JobStream) -> Vec<u32> {
    let mut done = Vec::new();
    while let Some(j) = recv_within(jobs, Duration::from_secs(3)).await {
        let i = u32::from_be_bytes(j.payload().try_into().expect("4 bytes"));
        match (i % 10, j.attempt(), j.redelivered()) {
            (3, 1, false) => drop(j),
            (7, 1, _) => j.retry(Duration::from_millis(20)).await.expect("retry"),
            _ => {
                j.ack().await.expect("ack");
                done.push(i);
            }
        }
    }
    done
}

/// Every listener of an exchange gets every event broadcast while it listens, in order.
pub async fn fanout_reaches_every_listener<Q: Fanout + ?Sized>(q: &Q) {
    let exchange = unique("fanout");
    let a = q.listen(&exchange).await.expect("listen a");
    let b = q.listen(&exchange).await.expect("listen b");
    for i in 0..3u8 {
        q.broadcast(&exchange, Message::new(vec![i]).with_header("job", "j1")).await.expect("broadcast");
    }
    for l in [&a, &b] {
        for i in 0..3u8 {
            let m = future::or(async { l.recv().await }, async {
                smol::Timer::after(Duration::from_secs(10)).await;
                None
            })
            .await
            .expect("an event");
            assert_eq!(m.payload, [i]);
            assert_eq!(m.header_str("job"), Some("j1"));
        }
    }
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

/// Inspecting a queue shows its ready jobs and consumers (and, where the broker reports it,
/// the unacked ones) and takes nothing: three jobs enqueued show as three ready; with one held
/// by a consumer (prefetch 1), two ready and one consumer; the held job is still the consumer's
/// to ack. An unknown queue is an error.
pub async fn queue_depth_counts_ready_jobs_and_consumers<Q: WorkQueue + InspectQueues + ?Sized>(q: &Q) {
    let name = declared(q, "depth", &QueueOptions::default()).await;
    for i in 0..3 {
        q.enqueue(&name, Message::new(format!("j{i}"))).await.expect("enqueue");
    }
    let idle = q.queue_depth(&name).await.expect("queue_depth");
    assert_eq!((idle.messages, idle.consumers), (3, 0), "{idle:?}");
    assert!(idle.unacked.is_none_or(|n| n == 0), "{idle:?}");
    let jobs = q.consume(&name, 1).await.expect("consume");
    let held = next_job(&jobs, "the first job").await;
    // The broker counts the consumer and the delivery as it processes them: wait for both.
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy: QueueDepth = loop {
        let depth = q.queue_depth(&name).await.expect("queue_depth");
        if depth.messages == 2 && depth.consumers == 1 {
            break depth;
        }
        assert!(Instant::now() < deadline, "never showed 2 ready and 1 consumer: {depth:?}");
        smol::Timer::after(Duration::from_millis(50)).await;
    };
    assert!(busy.unacked.is_none_or(|n| n == 1), "{busy:?}");
    held.ack().await.expect("inspecting left the held job to its consumer");
    jobs.close().await.expect("close stream");
    let missing = unique("missing");
    assert!(q.queue_depth(&missing).await.is_err(), "an unknown queue is an error");
    q.delete(&name).await.expect("delete");
}

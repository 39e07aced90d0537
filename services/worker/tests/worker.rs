//! The worker on the embedded work queue (`MemoryWorkQueue`) with real gRPC to a processor.

mod support;

use std::future::Future;
use std::time::Duration;

use support::*;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::WorkQueue;
use switchboard_proto::JobStatus;
use switchboard_worker::WorkerConfig;

/// Runs `test`, bounded as `run` bounds it, on a fresh in-memory queue with `config`.
fn on_memory_queue<T: Future<Output = ()>>(
    config: WorkerConfig,
    test: impl FnOnce(MemoryWorkQueue, WorkerConfig) -> T,
) {
    run(test(MemoryWorkQueue::new(), config));
}

#[test]
fn round_trip() {
    run(support::round_trip(MemoryWorkQueue::new()));
}

#[test]
fn killed_worker_jobs_completed_by_another() {
    let q = MemoryWorkQueue::new();
    run(support::killed_worker_jobs_completed_by_another(q.clone(), move || q.clone()));
}

#[test]
fn retry_then_success() {
    run(support::retry_then_success(MemoryWorkQueue::new()));
}

#[test]
fn exhausted_retries_dead_letter() {
    run(support::exhausted_retries_dead_letter(MemoryWorkQueue::new()));
}

#[test]
fn poison_dead_lettered_worker_keeps_going() {
    run(support::poison_dead_lettered_worker_keeps_going(MemoryWorkQueue::new()));
}

/// A job that kills every worker holding it ends in the dead-letter queue once the lost tries
/// used up its attempts: no crash loop.
#[test]
fn job_killing_workers_dead_lettered_after_max_attempts() {
    on_memory_queue(test_config("crash_loop").with_max_attempts(2), |q, config| async move {
        let stuck = TestProcessor::start().hanging();
        let mut events = Events::listen(&q, &config.events_exchange).await;
        // Attempt 1 and attempt 2 are each lost with their worker.
        let mut id = String::new();
        for attempt in 1..=2 {
            let w = Running::start(worker(&q, config.clone(), &stuck)).await;
            if attempt == 1 {
                id = enqueue(&q, &config.queue, "deadly").await;
            }
            let running = events.wait_for_attempt(&id, JobStatus::JOB_STATUS_RUNNING, attempt).await;
            assert_eq!(running.attempt, attempt);
            while stuck.calls() < attempt {
                async_io::Timer::after(Duration::from_millis(10)).await;
            }
            w.kill().await;
        }
        let last = Running::start(worker(&q, config.clone(), &stuck)).await;
        let failed = events.wait_for(&id, JobStatus::JOB_STATUS_FAILED).await;
        assert!(failed.error.contains("worker lost during attempt 2 of 2"), "{}", failed.error);
        let dead = dead_letters(&q, &config.queue, 1).await;
        assert_eq!(dead[0].1, failed.error);
        assert_eq!(stuck.calls(), 2, "no third call after the attempts ran out");
        stop_and_delete(last, stuck, &q, &config.queue).await;
    });
}

/// An open breaker puts jobs off without calling the processor or spending attempts; once it
/// closes the job runs as attempt 1.
#[test]
fn open_breaker_defers_without_spending_attempts() {
    on_memory_queue(test_config("breaker").with_max_attempts(1), |q, config| async move {
        let processor = TestProcessor::start();
        let mut events = Events::listen(&q, &config.events_exchange).await;
        let metrics = switchboard_telemetry::Metrics::new("worker");
        let w = worker(&q, config.clone(), &processor).with_metrics(metrics.clone());
        let breaker = w.breaker();
        breaker.force_open();
        let w = Running::start(w).await;
        let id = enqueue(&q, &config.queue, "hello world").await;
        // Several deferrals pass (the queue's longest retry delay, 200 ms, caps each wait).
        while deferred(&metrics) < 3 {
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
        assert_eq!(processor.calls(), 0, "an open breaker let a call through");
        assert!(events.of(&id).is_empty(), "a deferred job was reported");
        breaker.reset();
        let done = events.wait_for(&id, JobStatus::JOB_STATUS_DONE).await;
        assert_eq!(done.attempt, 1, "deferrals spent attempts");
        assert_eq!(done.result, HELLO_RESULT);
        stop_and_delete(w, processor, &q, &config.queue).await;
    });
}

fn deferred(metrics: &switchboard_telemetry::Metrics) -> u64 {
    let text = metrics.encode();
    text.lines()
        .find(|l| l.starts_with("jobs_total") && l.contains("status=\"deferred\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Two workers on one queue both take jobs, and together complete every job once.
#[test]
fn two_workers_share_the_load() {
    on_memory_queue(test_config("share").with_prefetch(1), |q, config| async move {
        let slow = Duration::from_millis(20);
        let (pa, pb) = (TestProcessor::start().slow(slow), TestProcessor::start().slow(slow));
        let mut events = Events::listen(&q, &config.events_exchange).await;
        let a = Running::start(worker(&q, config.clone(), &pa)).await;
        let b = Running::start(worker(&q, config.clone(), &pb)).await;
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(enqueue(&q, &config.queue, &format!("share {i}")).await);
        }
        for id in &ids {
            events.wait_for(id, JobStatus::JOB_STATUS_DONE).await;
        }
        assert!(pa.calls() > 0 && pb.calls() > 0, "a did {}, b did {}", pa.calls(), pb.calls());
        assert_eq!(pa.calls() + pb.calls(), 20, "every job processed once");
        a.stop().await;
        b.stop().await;
        pa.stop().await;
        pb.stop().await;
    });
}

/// Graceful stop finishes the job in flight (broadcast, ack) before returning.
#[test]
fn graceful_stop_finishes_jobs_in_flight() {
    on_memory_queue(test_config("graceful"), |q, config| async move {
        let (processor, mut events, w) =
            start_one_worker(&q, &config, TestProcessor::start().slow(Duration::from_millis(500))).await;
        let id = enqueue(&q, &config.queue, "hello world").await;
        events.wait_for(&id, JobStatus::JOB_STATUS_RUNNING).await;
        assert!(events.of(&id).iter().all(|e| e.status.enum_value() != Ok(JobStatus::JOB_STATUS_DONE)));
        // Returns only once the job in flight was answered, broadcast and acked.
        w.stop().await;
        let done = events.wait_for(&id, JobStatus::JOB_STATUS_DONE).await;
        assert_eq!(done.result, HELLO_RESULT);
        let left = q.consume(&config.queue, 1).await.unwrap();
        assert!(recv_within(&left, Duration::from_millis(300)).await.is_none(), "the job was not acked");
        processor.stop().await;
    });
}

/// Every event of a job carries its request fingerprint, so a gateway that missed `queued`
/// can still tell an Idempotency-Key reused with another body.
#[test]
fn events_carry_the_request_fingerprint() {
    on_memory_queue(test_config("fingerprint"), |q, config| async move {
        let (processor, mut events, w) = start_one_worker(&q, &config, TestProcessor::start()).await;
        let mut job = switchboard_proto::Job::new();
        let envelope = job.envelope.mut_or_insert_default();
        envelope.id = "job-with-key".into();
        envelope.body = "hello world".into();
        job.request_fingerprint = "fp-1".into();
        let bytes = switchboard_proto::ProtoMessage::write_to_bytes(&job).unwrap();
        q.enqueue(&config.queue, switchboard_ports::Message::new(bytes)).await.unwrap();
        events.wait_for("job-with-key", JobStatus::JOB_STATUS_DONE).await;
        let seen = events.of("job-with-key");
        assert_eq!(seen.len(), 2, "running and done");
        assert!(seen.iter().all(|e| e.request_fingerprint == "fp-1"), "{seen:?}");
        stop_and_delete(w, processor, &q, &config.queue).await;
    });
}

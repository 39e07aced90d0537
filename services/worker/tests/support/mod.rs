//! Shared by the embedded and the real-RabbitMQ worker tests: a controllable processor, job
//! helpers, an event collector, and the scenarios, written once over any `WorkQueue + Fanout`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::future;
use grpcio::{Environment, RpcContext, RpcStatus, RpcStatusCode, Server, ServerBuilder, ServerCredentials, UnarySink};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_ports::{
    dead_letter_queue, Fanout, FanoutListener, Job, JobStream, Message, QueueOptions, WorkQueue, ERROR_HEADER,
};
use switchboard_processor::ProcessorHandler;
use switchboard_proto::convert::Stage;
use switchboard_proto::{Envelope, JobEvent, JobStatus, ProcessRequest, ProcessResponse, Processor, ProtoMessage};
use switchboard_resilience::{CircuitBreaker, Config};
use switchboard_telemetry::Metrics;
use switchboard_worker::{Worker, WorkerConfig};

/// What "hello world" becomes through gateway, queue, worker and processor.
pub const HELLO_RESULT: &str =
    "HELLO WORLD FROM REST AND RABBITMQ PUBLISHER AND RABBITMQ CONSUMER AND GRPC CLIENT AND GRPC SERVER";

/// Longest a scenario may take: a hang fails the test.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(90);

/// How long to wait for an event that must come.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

/// Runs a scenario, failing it after [`SCENARIO_TIMEOUT`].
pub fn run<F: std::future::Future<Output = ()>>(scenario: F) {
    smol::block_on(future::or(scenario, async {
        async_io::Timer::after(SCENARIO_TIMEOUT).await;
        panic!("scenario timed out after {SCENARIO_TIMEOUT:?}");
    }));
}

// ---------------------------------------------------------------------------------------------
// A processor whose behaviour the test controls, delegating real work to the real handler.

#[derive(Default)]
struct Control {
    calls: AtomicU32,
    fail_next: AtomicU32,
    hang: AtomicBool,
    delay_ms: AtomicU32,
    held: Mutex<Vec<UnarySink<ProcessResponse>>>,
}

#[derive(Clone)]
struct TestService {
    control: Arc<Control>,
    handler: ProcessorHandler,
}

impl Processor for TestService {
    fn process(&mut self, ctx: RpcContext<'_>, req: ProcessRequest, sink: UnarySink<ProcessResponse>) {
        self.control.calls.fetch_add(1, Ordering::SeqCst);
        if self.control.hang.load(Ordering::SeqCst) {
            // Never answered: the caller's deadline or cancellation ends the call.
            self.control.held.lock().unwrap().push(sink);
            return;
        }
        let failing =
            self.control.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        let handler = self.handler.clone();
        let delay = Duration::from_millis(u64::from(self.control.delay_ms.load(Ordering::SeqCst)));
        ctx.spawn(async move {
            if !delay.is_zero() {
                async_io::Timer::after(delay).await;
            }
            let _ = if failing {
                sink.fail(RpcStatus::with_message(RpcStatusCode::UNAVAILABLE, "injected outage".into())).await
            } else {
                match handler.handle(req).await {
                    Ok(resp) => sink.success(resp).await,
                    Err(st) => sink.fail(st).await,
                }
            };
        });
    }
}

/// A gRPC processor on a free port: the real handler, with injected failures or hangs.
pub struct TestProcessor {
    control: Arc<Control>,
    server: Server,
    addr: SocketAddr,
}

impl TestProcessor {
    /// Answers every call like the real processor.
    pub fn start() -> Self {
        let control = Arc::new(Control::default());
        let service = TestService {
            control: control.clone(),
            handler: ProcessorHandler::new(Arc::new(MemoryBroker::new()), Metrics::new("processor")),
        };
        let mut server = ServerBuilder::new(Arc::new(Environment::new(1)))
            .register_service(switchboard_proto::create_processor(service))
            .build()
            .expect("build server");
        let port = server.add_listening_port("127.0.0.1:0", ServerCredentials::insecure()).expect("bind");
        server.start();
        TestProcessor { control, server, addr: SocketAddr::from(([127, 0, 0, 1], port)) }
    }

    /// Fails the next `n` calls with UNAVAILABLE.
    pub fn failing_next(self, n: u32) -> Self {
        self.control.fail_next.store(n, Ordering::SeqCst);
        self
    }

    /// Takes `delay` per call.
    pub fn slow(self, delay: Duration) -> Self {
        self.control.delay_ms.store(delay.as_millis() as u32, Ordering::SeqCst);
        self
    }

    /// Never answers.
    pub fn hanging(self) -> Self {
        self.control.hang.store(true, Ordering::SeqCst);
        self
    }

    /// Calls received so far.
    pub fn calls(&self) -> u32 {
        self.control.calls.load(Ordering::SeqCst)
    }

    /// A client for it.
    pub fn client(&self) -> switchboard_proto::ProcessorClient {
        switchboard_grpc::client::ProcessorClientBuilder::new(self.addr.to_string()).connect()
    }

    pub async fn stop(mut self) {
        let _ = self.server.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs and events.

/// Fresh queue and exchange names, and the settings every scenario starts from: short retry
/// delays so retries take milliseconds.
pub fn test_config(case: &str) -> WorkerConfig {
    let run = uuid::Uuid::new_v4().simple().to_string();
    WorkerConfig::default()
        .with_queue(format!("test.jobs.{case}.{run}"))
        .with_events_exchange(format!("test.job-events.{case}.{run}"))
        .with_queue_options(
            QueueOptions::default().with_retry_delays([Duration::from_millis(50), Duration::from_millis(200)]),
        )
        .with_retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_prefetch(4)
}

/// A breaker that stays closed through the few failures of a scenario.
pub fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(Config::default())
}

/// Enqueues `body` as the gateway does (REST and RabbitMQ publisher hops recorded); returns
/// the job id.
pub async fn enqueue<Q: WorkQueue + ?Sized>(q: &Q, queue: &str, body: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let mut envelope = Envelope::start(&id, body, "", Duration::from_secs(5));
    envelope.record(Stage::RestRequest, "gateway");
    envelope.record(Stage::RabbitmqPublisher, "gateway");
    let mut job = switchboard_proto::Job::new();
    job.envelope = Some(envelope).into();
    q.enqueue(queue, Message::new(job.write_to_bytes().unwrap())).await.expect("enqueue");
    id
}

/// Every event heard on an exchange, by job id.
pub struct Events {
    listener: FanoutListener,
    seen: HashMap<String, Vec<JobEvent>>,
}

impl Events {
    pub async fn listen<F: Fanout + ?Sized>(fanout: &F, exchange: &str) -> Self {
        Events { listener: fanout.listen(exchange).await.expect("listen"), seen: HashMap::new() }
    }

    /// Waits until job `id` reached `status`; returns that event.
    pub async fn wait_for(&mut self, id: &str, status: JobStatus) -> JobEvent {
        self.wait_until(id, status, |_| true).await
    }

    /// Waits until job `id` reported `status` for `attempt`.
    pub async fn wait_for_attempt(&mut self, id: &str, status: JobStatus, attempt: u32) -> JobEvent {
        self.wait_until(id, status, |e| e.attempt == attempt).await
    }

    async fn wait_until(&mut self, id: &str, status: JobStatus, also: impl Fn(&JobEvent) -> bool) -> JobEvent {
        loop {
            let found =
                self.seen.get(id).and_then(|v| v.iter().find(|e| e.status.enum_value() == Ok(status) && also(e)));
            if let Some(e) = found {
                return e.clone();
            }
            let next = future::or(self.listener.recv(), async {
                async_io::Timer::after(EVENT_WAIT).await;
                None
            });
            let m = next.await.unwrap_or_else(|| panic!("job {id} did not reach {status:?} within {EVENT_WAIT:?}"));
            let e = JobEvent::parse_from_bytes(&m.payload).expect("events are JobEvents");
            assert_eq!(m.header_str("job-id"), Some(e.id.as_str()), "job-id header names the job");
            self.seen.entry(e.id.clone()).or_default().push(e);
        }
    }

    /// Events of `id` seen so far, in order.
    pub fn of(&self, id: &str) -> Vec<JobEvent> {
        self.seen.get(id).cloned().unwrap_or_default()
    }
}

/// The next job on `stream`, or `None` after `wait`.
pub async fn recv_within(stream: &JobStream, wait: Duration) -> Option<Job> {
    future::or(stream.recv(), async {
        async_io::Timer::after(wait).await;
        None
    })
    .await
}

/// Takes `n` dead letters off the queue's DLQ: (payload, reason).
pub async fn dead_letters<Q: WorkQueue + ?Sized>(q: &Q, queue: &str, n: usize) -> Vec<(Vec<u8>, String)> {
    let dlq = q.consume(&dead_letter_queue(queue), 8).await.expect("consume dlq");
    let mut out = Vec::new();
    for i in 0..n {
        let j = recv_within(&dlq, EVENT_WAIT).await.unwrap_or_else(|| panic!("dead letter {} of {n} missing", i + 1));
        let reason = j.message().header_str(ERROR_HEADER).expect("reason header").to_owned();
        out.push((j.payload().to_vec(), reason));
        j.ack().await.expect("ack dead letter");
    }
    dlq.close().await.expect("close dlq");
    out
}

/// A worker running on its own task; dropping the task kills it (no drain, no acks).
pub struct Running {
    stop: async_channel::Sender<()>,
    task: smol::Task<Result<(), switchboard_ports::Error>>,
}

impl Running {
    /// Starts `worker` and waits until it consumes.
    pub async fn start(worker: Worker) -> Self {
        let consuming = worker.start().await.expect("worker starts");
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let task = smol::spawn(consuming.run(
            async move {
                let _ = stopped.recv().await;
            },
            Duration::from_secs(10),
        ));
        Running { stop, task }
    }

    /// Graceful stop: in-flight jobs finish and settle.
    pub async fn stop(self) {
        self.stop.close();
        self.task.await.expect("worker stops cleanly");
    }

    /// A crash: the worker's future is dropped with its jobs unsettled.
    pub async fn kill(self) {
        self.task.cancel().await;
    }
}

pub fn worker<Q: WorkQueue + Fanout + Clone + 'static>(
    q: &Q,
    config: WorkerConfig,
    processor: &TestProcessor,
) -> Worker {
    Worker::new(config, Arc::new(q.clone()), Arc::new(q.clone()), processor.client(), breaker())
}

/// `processor`, the job events of `config`'s exchange heard from now on, and one worker with
/// `config` on `q` calling `processor`, started after.
pub async fn start_one_worker<Q: WorkQueue + Fanout + Clone + 'static>(
    q: &Q,
    config: &WorkerConfig,
    processor: TestProcessor,
) -> (TestProcessor, Events, Running) {
    let events = Events::listen(q, &config.events_exchange).await;
    let w = Running::start(worker(q, config.clone(), &processor)).await;
    (processor, events, w)
}

/// The end of a one-worker scenario: the worker stopped gracefully, then its processor, then
/// the scenario's queue deleted (a real broker keeps it otherwise).
pub async fn stop_and_delete<Q: WorkQueue + ?Sized>(w: Running, processor: TestProcessor, q: &Q, queue: &str) {
    w.stop().await;
    processor.stop().await;
    q.delete(queue).await.unwrap();
}

fn hop_names(e: &JobEvent) -> Vec<(String, String)> {
    e.hops.iter().map(|h| (h.name.clone(), h.service.clone())).collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// One job through the worker: `running`, then `done` with the upper-cased result and every hop.
pub async fn round_trip<Q: WorkQueue + Fanout + Clone + 'static>(q: Q) {
    let config = test_config("round_trip");
    let (processor, mut events, w) = start_one_worker(&q, &config, TestProcessor::start()).await;
    let id = enqueue(&q, &config.queue, "hello world").await;
    let done = events.wait_for(&id, JobStatus::JOB_STATUS_DONE).await;
    assert_eq!(done.result, HELLO_RESULT);
    assert_eq!(done.attempt, 1);
    assert_eq!(
        hop_names(&done),
        owned(&[
            ("REST request", "gateway"),
            ("RABBITMQ Publisher", "gateway"),
            ("RABBITMQ Consumer", "worker"),
            ("gRPC Client", "worker"),
            ("gRPC Server", "processor"),
        ])
    );
    let statuses: Vec<_> = events.of(&id).iter().map(|e| e.status.enum_value().unwrap()).collect();
    assert_eq!(statuses, [JobStatus::JOB_STATUS_RUNNING, JobStatus::JOB_STATUS_DONE]);
    w.stop().await;
    // Acked: nothing is left in the queue for the next consumer.
    let left = q.consume(&config.queue, 1).await.expect("consume");
    assert!(recv_within(&left, Duration::from_millis(500)).await.is_none(), "a done job stayed in the queue");
    left.close().await.unwrap();
    processor.stop().await;
    q.delete(&config.queue).await.unwrap();
}

/// A worker killed while holding jobs (processor hanging): another worker gets them again,
/// flagged redelivered, and completes them; the lost try counts as an attempt. `connect` gives
/// the killed worker its own broker handle (its own connection on RabbitMQ, as a separate
/// process would have), dropped with it.
pub async fn killed_worker_jobs_completed_by_another<Q: WorkQueue + Fanout + Clone + 'static>(
    q: Q,
    connect: impl Fn() -> Q,
) {
    let config = test_config("killed");
    let stuck = TestProcessor::start().hanging();
    let healthy = TestProcessor::start();
    let mut events = Events::listen(&q, &config.events_exchange).await;
    let doomed = connect();
    let a = Running::start(worker(&doomed, config.clone(), &stuck)).await;
    q.declare(&config.queue, &config.queue_options).await.expect("declare");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(enqueue(&q, &config.queue, &format!("job {i}")).await);
    }
    // All three are in flight at worker A: it reported them running and called the processor,
    // which holds the calls.
    for id in &ids {
        events.wait_for(id, JobStatus::JOB_STATUS_RUNNING).await;
    }
    while stuck.calls() < 3 {
        async_io::Timer::after(Duration::from_millis(10)).await;
    }
    a.kill().await;
    drop(doomed);
    let b = Running::start(worker(&q, config.clone(), &healthy)).await;
    for (i, id) in ids.iter().enumerate() {
        let done = events.wait_for(id, JobStatus::JOB_STATUS_DONE).await;
        assert!(done.result.starts_with(&format!("JOB {i} FROM REST AND RABBITMQ PUBLISHER")), "{}", done.result);
        assert_eq!(done.attempt, 2, "the lost try counts as attempt 1");
    }
    assert_eq!(stuck.calls(), 3);
    b.stop().await;
    stuck.stop().await;
    healthy.stop().await;
    q.delete(&config.queue).await.unwrap();
}

/// The processor fails twice (UNAVAILABLE): the job is retried with backoff and succeeds on
/// its third attempt.
pub async fn retry_then_success<Q: WorkQueue + Fanout + Clone + 'static>(q: Q) {
    let config = test_config("retry").with_max_attempts(5);
    let (processor, mut events, w) = start_one_worker(&q, &config, TestProcessor::start().failing_next(2)).await;
    let id = enqueue(&q, &config.queue, "hello world").await;
    let done = events.wait_for(&id, JobStatus::JOB_STATUS_DONE).await;
    assert_eq!(done.result, HELLO_RESULT);
    assert_eq!(done.attempt, 3);
    assert_eq!(processor.calls(), 3);
    let attempts: Vec<u32> = events.of(&id).iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 3], "running per attempt, then done");
    stop_and_delete(w, processor, &q, &config.queue).await;
}

/// The processor never recovers: after the last attempt the job is reported `failed` with the
/// error and moved to the dead-letter queue with the reason.
pub async fn exhausted_retries_dead_letter<Q: WorkQueue + Fanout + Clone + 'static>(q: Q) {
    let config = test_config("exhausted").with_max_attempts(3);
    let (processor, mut events, w) = start_one_worker(&q, &config, TestProcessor::start().failing_next(u32::MAX)).await;
    let id = enqueue(&q, &config.queue, "doomed").await;
    let failed = events.wait_for(&id, JobStatus::JOB_STATUS_FAILED).await;
    assert_eq!(failed.attempt, 3);
    assert!(
        failed.error.contains("gave up after 3 attempts") && failed.error.contains("injected outage"),
        "{}",
        failed.error
    );
    assert_eq!(processor.calls(), 3);
    let dead = dead_letters(&q, &config.queue, 1).await;
    let spec = switchboard_proto::Job::parse_from_bytes(&dead[0].0).expect("the job itself is dead-lettered");
    assert_eq!(spec.envelope.id, id);
    assert_eq!(dead[0].1, failed.error, "the DLQ carries the reason");
    stop_and_delete(w, processor, &q, &config.queue).await;
}

/// Undecodable bytes, a job without id and one without envelope go to the dead-letter queue with their reason; the
/// worker keeps going and completes the next job.
pub async fn poison_dead_lettered_worker_keeps_going<Q: WorkQueue + Fanout + Clone + 'static>(q: Q) {
    let config = test_config("poison");
    let (processor, mut events, w) = start_one_worker(&q, &config, TestProcessor::start()).await;
    q.enqueue(&config.queue, Message::new(&b"\xff\xff\xff not a job"[..])).await.unwrap();
    let mut no_id = switchboard_proto::Job::new();
    no_id.envelope.mut_or_insert_default().body = "who am I".into();
    q.enqueue(&config.queue, Message::new(no_id.write_to_bytes().unwrap())).await.unwrap();
    // A job as written before jobs carried their envelope: id (field 1) and body (field 2).
    let legacy = b"\x0a\x06legacy\x12\x05hello";
    q.enqueue(&config.queue, Message::new(&legacy[..])).await.unwrap();
    let id = enqueue(&q, &config.queue, "hello world").await;
    let done = events.wait_for(&id, JobStatus::JOB_STATUS_DONE).await;
    assert_eq!(done.result, HELLO_RESULT);
    let mut dead = dead_letters(&q, &config.queue, 3).await;
    dead.sort();
    assert!(dead[0].1.starts_with("job without envelope"), "{:?}", dead[0].1);
    assert_eq!(dead[0].0, legacy);
    assert!(dead[1].1.starts_with("job without id"), "{:?}", dead[1].1);
    assert!(dead[2].1.starts_with("undecodable job"), "{:?}", dead[2].1);
    assert_eq!(dead[2].0, b"\xff\xff\xff not a job");
    assert_eq!(processor.calls(), 1, "poison never reached the processor");
    stop_and_delete(w, processor, &q, &config.queue).await;
}

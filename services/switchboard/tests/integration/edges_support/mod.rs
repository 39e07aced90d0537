//! Shared by the integration tests at the chain's edges (budgets, idempotency, jobs; embedded and
//! real brokers): a raw HTTP call that shows every header, gateways built and served on their
//! own task, run ids for real-broker tests, and test-local port wrappers that stall, fail or
//! count calls.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http_types::{Method, Request, Url};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_gateway::{Gateway, GatewayConfig, JobsConfig};
use switchboard_ports::{
    Error, ErrorKind, Fanout, FanoutListener, JobStream, Message, PublishError, Publisher, QueueOptions, WorkQueue,
};

/// A response with all its headers.
#[derive(Debug, Clone)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn id(&self) -> String {
        self.json()["id"].as_str().unwrap_or_default().to_owned()
    }
}

/// One request on a fresh connection; `body` is sent as JSON.
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    headers: &[(&str, &str)],
) -> Raw {
    let mut req = Request::new(method, Url::parse(&format!("http://{addr}{path}")).unwrap());
    if let Some(body) = body {
        req.insert_header("Content-Type", "application/json");
        req.set_body(serde_json::to_vec(body).unwrap());
    }
    for (name, value) in headers {
        req.insert_header(*name, *value);
    }
    let stream = async_std::net::TcpStream::connect(addr).await.expect("gateway listens");
    let mut res = async_h1::connect(stream, req).await.expect("gateway answers");
    let body = res.body_string().await.unwrap_or_default();
    let headers = res.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_str().to_owned())).collect();
    Raw { status: u16::from(res.status()), headers, body }
}

/// `POST path` with `{"message": text}` and an optional Idempotency-Key.
pub async fn post(addr: SocketAddr, path: &str, text: &str, key: Option<&str>) -> Raw {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    call(addr, Method::Post, path, Some(&serde_json::json!({ "message": text })), &headers).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Raw {
    call(addr, Method::Get, path, None, &[]).await
}

/// Polls `GET /jobs/{id}` on `addr` until it answers 200; the last reply after `limit`.
pub async fn until_known(addr: SocketAddr, id: &str, limit: Duration) -> Raw {
    let started = Instant::now();
    loop {
        let reply = get(addr, &format!("/jobs/{id}")).await;
        if reply.status == 200 || started.elapsed() > limit {
            return reply;
        }
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
}

/// An id of its own for a real-broker test's topics, queues and groups: nothing left over from
/// earlier runs can interfere.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Runs a real-broker test with a fresh [`run_id`].
pub fn with_run_id<T: std::future::Future<Output = ()>>(test: impl FnOnce(String) -> T) {
    smol::block_on(test(run_id()));
}

/// The RabbitMQ of the real-broker tests: `AMQP_URL`, else the default local one.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| switchboard_amqp::DEFAULT_URL.to_owned())
}

/// A gateway serving on its own task until dropped.
pub struct Served {
    pub addr: SocketAddr,
    stop: async_channel::Sender<()>,
    task: Option<smol::Task<std::io::Result<()>>>,
}

impl Served {
    pub fn start(gateway: Gateway) -> Served {
        let addr = gateway.local_addr().unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let task = smol::spawn(gateway.serve(async move {
            let _ = stopped.recv().await;
        }));
        Served { addr, stop, task: Some(task) }
    }

    pub async fn stop(mut self) {
        self.stop.close();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// A gateway on a free port with `budget` per request, waiting `grace` at stop for work it
/// abandoned.
pub fn gateway_config(budget: Duration, grace: Duration) -> GatewayConfig {
    GatewayConfig { addr: "127.0.0.1:0".parse().unwrap(), request_timeout: budget, grace, ..GatewayConfig::default() }
}

/// A gateway bound with `config` whose requests and replies go over an in-memory broker of its
/// own, for tests of its jobs API and its edges.
pub async fn gateway_on_memory(config: GatewayConfig) -> Gateway {
    let broker = MemoryBroker::new();
    Gateway::bind(config, Arc::new(broker.clone()), Arc::new(broker)).await.expect("gateway binds")
}

/// A gateway with the jobs API on `queue` (wrapped by `plan`, which also counts the enqueues;
/// `queue` is its fanout too), requests on a broker of its own, and no worker: jobs stay queued.
pub async fn planned_jobs_gateway(
    config: GatewayConfig,
    queue: &MemoryWorkQueue,
    plan: Plan,
) -> (Served, Arc<PlannedQueue>) {
    let planned = PlannedQueue::new(Arc::new(queue.clone()), plan);
    let gateway = gateway_on_memory(config)
        .await
        .with_jobs(JobsConfig::default(), planned.clone(), Arc::new(SameFanout(Arc::new(queue.clone()))))
        .await
        .expect("jobs start");
    (Served::start(gateway), planned)
}

/// What one call of a wrapper does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Pass,
    Delay(Duration),
    Fail(ErrorKind),
}

/// Per-call plan: call `n` (from 1) gets `plan[n-1]`, later calls `rest`.
#[derive(Debug)]
pub struct Plan {
    first: Vec<Act>,
    rest: Act,
}

impl Plan {
    pub fn new(first: Vec<Act>, rest: Act) -> Self {
        Plan { first, rest }
    }

    pub fn always(act: Act) -> Self {
        Plan::new(Vec::new(), act)
    }

    fn act(&self, call: usize) -> Act {
        self.first.get(call - 1).copied().unwrap_or(self.rest)
    }
}

/// Counts calls in flight (incremented on entry, decremented when the call's future is
/// dropped or done) and the most seen at once.
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    pub fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }
}

pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn apply(act: Act) -> Result<(), Error> {
    match act {
        Act::Pass => Ok(()),
        Act::Delay(d) => {
            async_io::Timer::after(d).await;
            Ok(())
        }
        Act::Fail(kind) => Err(Error::new(kind, "test fault")),
    }
}

/// A publisher that stalls or fails calls to one topic as planned and counts them.
pub struct PlannedPublisher {
    inner: Arc<dyn Publisher>,
    topic: String,
    plan: Plan,
    calls: AtomicUsize,
    pub in_flight: Arc<InFlight>,
}

impl PlannedPublisher {
    pub fn new(inner: Arc<dyn Publisher>, topic: &str, plan: Plan) -> Arc<Self> {
        Arc::new(PlannedPublisher {
            inner,
            topic: topic.into(),
            plan,
            calls: AtomicUsize::new(0),
            in_flight: Arc::default(),
        })
    }

    /// Calls to the planned topic.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Publisher for PlannedPublisher {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        if topic != self.topic {
            return self.inner.publish(topic, message).await;
        }
        let _guard = self.in_flight.enter();
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Err(e) = apply(self.plan.act(call)).await {
            return Err(PublishError::new(e, message));
        }
        self.inner.publish(topic, message).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

/// A work queue whose enqueues stall or fail as planned, counted; the rest passes through.
pub struct PlannedQueue {
    inner: Arc<dyn WorkQueue>,
    plan: Mutex<Plan>,
    calls: AtomicUsize,
    confirmed: AtomicUsize,
}

impl PlannedQueue {
    pub fn new(inner: Arc<dyn WorkQueue>, plan: Plan) -> Arc<Self> {
        Arc::new(PlannedQueue {
            inner,
            plan: Mutex::new(plan),
            calls: AtomicUsize::new(0),
            confirmed: AtomicUsize::new(0),
        })
    }

    /// Enqueue calls made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Enqueues the inner queue confirmed.
    pub fn confirmed(&self) -> usize {
        self.confirmed.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl WorkQueue for PlannedQueue {
    async fn declare(&self, queue: &str, options: &QueueOptions) -> Result<(), Error> {
        self.inner.declare(queue, options).await
    }

    async fn enqueue(&self, queue: &str, message: Message) -> Result<(), PublishError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let act = self.plan.lock().unwrap().act(call);
        if let Err(e) = apply(act).await {
            return Err(PublishError::new(e, message));
        }
        let r = self.inner.enqueue(queue, message).await;
        if r.is_ok() {
            self.confirmed.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<JobStream, Error> {
        self.inner.consume(queue, prefetch).await
    }

    async fn delete(&self, queue: &str) -> Result<(), Error> {
        self.inner.delete(queue).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

/// A fanout passing through (so a gateway's queue and fanout can be wrapped separately).
pub struct SameFanout(pub Arc<dyn Fanout>);

#[async_trait]
impl Fanout for SameFanout {
    async fn broadcast(&self, exchange: &str, message: Message) -> Result<(), PublishError> {
        self.0.broadcast(exchange, message).await
    }

    async fn listen(&self, exchange: &str) -> Result<FanoutListener, Error> {
        self.0.listen(exchange).await
    }
}

/// Drains `queue` through a fresh consumer: enqueues a sentinel and returns the payloads of
/// every job before it (FIFO, one consumer), acking them.
pub async fn drain_jobs(queue: &dyn WorkQueue, name: &str) -> Vec<Vec<u8>> {
    let sentinel = format!("sentinel-{}", uuid::Uuid::new_v4());
    queue.enqueue(name, Message::new(sentinel.clone())).await.expect("sentinel enqueued");
    let jobs = queue.consume(name, 10).await.expect("consumer");
    let mut seen = Vec::new();
    loop {
        let job = smol::future::or(async { jobs.recv().await }, async {
            async_io::Timer::after(Duration::from_secs(20)).await;
            None
        })
        .await
        .expect("the sentinel arrives within 20 s");
        let payload = job.payload().to_vec();
        job.ack().await.expect("ack");
        if payload == sentinel.as_bytes() {
            return seen;
        }
        seen.push(payload);
    }
}

/// A TCP listener that accepts connections and never answers: a broker that stalled. Lives
/// as long as the returned guard.
pub struct Blackhole {
    pub addr: SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                // Kept open, never read: the peer waits for an answer that does not come.
                held.push(stream);
                if held.len() > 256 {
                    held.remove(0);
                }
            }
        });
        Blackhole { addr, _thread: thread }
    }
}

/// A TCP proxy in front of a real broker that can stall: while stalled it moves no bytes
/// either way (connections stay open), as a broker that stopped answering. Lives as long as
/// the returned value; new connections are proxied too.
pub struct StallProxy {
    pub addr: SocketAddr,
    stalled: Arc<std::sync::atomic::AtomicBool>,
}

impl StallProxy {
    pub fn start(upstream: SocketAddr) -> StallProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stalled.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(upstream) else { continue };
                for (from, to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    let flag = flag.clone();
                    std::thread::spawn(move || pump(from, to, &flag));
                }
            }
        });
        StallProxy { addr, stalled }
    }

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.resume();
    }
}

fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream, stalled: &std::sync::atomic::AtomicBool) {
    use std::io::{Read, Write};
    from.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Bytes that arrived once the stall began wait for the resume too.
                while stalled.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

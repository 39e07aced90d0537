//! The edge guarantees on real brokers (`make test-real`): the request budget binds a stalled
//! broker, a queued job is known to every gateway, and `Idempotency-Key` holds. Needs
//! `KAFKA_BROKERS` (tansu) and RabbitMQ at `AMQP_URL` (default 127.0.0.1:5672 guest/guest); fails
//! when either is missing.
//!
//! A broker is stalled without touching the shared broker process: RabbitMQ through a TCP
//! proxy the test freezes; Kafka by pointing the gateway's (real, librdkafka) publisher at a
//! listener that accepts and never answers — a proxy cannot stall Kafka, whose clients go to
//! the advertised address once they have the metadata.

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::edges_support::{
    self, amqp_url, drain_jobs, gateway_on_memory, post, run_id, until_known, with_run_id, Blackhole, Served,
    StallProxy,
};
use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};
use switchboard_gateway::{Gateway, GatewayConfig, JobsConfig};
use switchboard_kafka::{KafkaConfig, KafkaPublisher};
use switchboard_ports::{QueueOptions, WorkQueue};
use switchboard_wiring::BrokerArgs;

const BUDGET: Duration = Duration::from_secs(1);

/// host:port of the AMQP URL.
fn amqp_addr(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let host = host.split('/').next().unwrap();
    let host = if host.contains(':') { host.to_owned() } else { format!("{host}:5672") };
    host.to_socket_addrs().unwrap().next().unwrap()
}

/// `url` with its host:port replaced by `addr`.
fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (creds, hostpath) = match rest.rsplit_once('@') {
        Some((c, h)) => (format!("{c}@"), h),
        None => (String::new(), rest),
    };
    let path = hostpath.find('/').map(|i| &hostpath[i..]).unwrap_or("/%2f");
    format!("{scheme}://{creds}{addr}{path}")
}

async fn connect(url: String) -> AmqpWorkQueue {
    smol::unblock(move || AmqpWorkQueue::connect(AmqpConfig::new(url)))
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ unreachable (set AMQP_URL): {e}"))
}

fn gateway_config() -> GatewayConfig {
    edges_support::gateway_config(BUDGET, Duration::from_millis(500))
}

/// A gateway whose jobs API runs on `broker` (queue and fanout named by `run`), and no worker.
async fn jobs_gateway(broker: AmqpWorkQueue, run: &str) -> Served {
    let g = gateway_on_memory(gateway_config()).await;
    let jobs = JobsConfig::default().with_names(format!("test.jobs.{run}"), format!("test.job-events.{run}"));
    let g = g.with_jobs(jobs, Arc::new(broker.clone()), Arc::new(broker)).await.expect("jobs on rabbitmq");
    Served::start(g)
}

/// The jobs on the run's queue (read through a connection of its own), then the queue deleted.
async fn jobs_on_queue(run: &str) -> Vec<Vec<u8>> {
    let direct = connect(amqp_url()).await;
    let queue = format!("test.jobs.{run}");
    direct.declare(&queue, &QueueOptions::default()).await.unwrap();
    let jobs = drain_jobs(&direct, &queue).await;
    direct.delete(&queue).await.unwrap();
    direct.close().await.unwrap();
    jobs
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn kafka_a_stalled_publish_answers_at_the_budget() {
    smol::block_on(async {
        let brokers = std::env::var("KAFKA_BROKERS").expect("KAFKA_BROKERS must point at Kafka (make test-real)");
        let run = run_id();
        let mut config = gateway_config();
        config.requests_topic = format!("test.requests.{run}");
        config.replies_topic = format!("test.replies.{run}");
        let args = BrokerArgs::on_kafka(brokers, 1);
        let ports = args.connect(&[&config.requests_topic, &config.replies_topic]).await.expect("kafka reachable");
        // Replies on the real broker; requests go to a broker that accepted the connection
        // and stopped answering: librdkafka would hold the publish for message.timeout.ms.
        let hole = Blackhole::start();
        let stalled = KafkaConfig::new(hole.addr.to_string());
        let delivery_timeout = stalled.delivery_timeout;
        let publisher = Arc::new(KafkaPublisher::new(&stalled).expect("producer"));
        let served = Served::start(Gateway::bind(config, publisher, ports.replies).await.expect("gateway"));
        let started = Instant::now();
        let reply = post(served.addr, "/messages", "hello world", None).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 504, "{}", reply.body);
        assert_eq!(reply.code(), "deadline_exceeded");
        assert!(took < delivery_timeout / 2, "answered after {took:?}, budget {BUDGET:?}");
        served.stop().await;
    });
}

#[test]
#[ignore = "needs a real RabbitMQ: make test-real"]
fn rabbitmq_a_stalled_enqueue_answers_at_the_budget_and_the_retry_gets_the_stored_job() {
    with_run_id(|run| async move {
        let url = amqp_url();
        let proxy = StallProxy::start(amqp_addr(&url));
        let served = jobs_gateway(connect(via(&url, proxy.addr)).await, &run).await;
        let ok = post(served.addr, "/jobs", "before the stall", Some(&format!("a-{run}"))).await;
        assert_eq!(ok.status, 202, "{}", ok.body);

        proxy.stall();
        let key = format!("b-{run}");
        let started = Instant::now();
        let stalled = post(served.addr, "/jobs", "during the stall", Some(&key)).await;
        let took = started.elapsed();
        assert_eq!(stalled.status, 503, "{}", stalled.body);
        assert_eq!(stalled.header("Retry-After"), Some("1"));
        let publish_timeout = AmqpConfig::default().publish_timeout;
        assert!(took < publish_timeout / 2, "answered after {took:?}, budget {BUDGET:?}");

        // The broker gets the job once the link moves again; retries with the key get it.
        proxy.resume();
        let deadline = Instant::now() + Duration::from_secs(30);
        let retry = loop {
            let r = post(served.addr, "/jobs", "during the stall", Some(&key)).await;
            if r.status == 202 || Instant::now() > deadline {
                break r;
            }
            async_io::Timer::after(Duration::from_millis(100)).await;
        };
        assert_eq!(retry.status, 202, "{}", retry.body);
        assert_eq!(retry.header("Idempotent-Replayed"), Some("true"), "the stored job, not a new one");
        served.stop().await;
        let jobs = jobs_on_queue(&run).await;
        assert_eq!(jobs.len(), 2, "one job per key, none twice");
    });
}

#[test]
#[ignore = "needs a real RabbitMQ: make test-real"]
fn rabbitmq_two_gateways_know_queued_jobs_and_share_idempotency_keys() {
    with_run_id(|run| async move {
        // Two instances, each with its own connection, on one queue and one fanout.
        let a = jobs_gateway(connect(amqp_url()).await, &run).await;
        let b = jobs_gateway(connect(amqp_url()).await, &run).await;
        let plain = post(a.addr, "/jobs", "no key", None).await;
        assert_eq!(plain.status, 202, "{}", plain.body);
        let seen = until_known(b.addr, &plain.id(), Duration::from_secs(10)).await;
        assert_eq!(seen.status, 200, "gateway B does not know the queued job: {}", seen.body);
        assert_eq!(seen.json()["status"], "queued");

        let key = format!("k-{run}");
        let first = post(a.addr, "/jobs", "hello world", Some(&key)).await;
        assert_eq!(first.status, 202, "{}", first.body);
        assert_eq!(until_known(b.addr, &first.id(), Duration::from_secs(10)).await.status, 200);
        let on_b = post(b.addr, "/jobs", "hello world", Some(&key)).await;
        assert_eq!(on_b.status, 202, "{}", on_b.body);
        assert_eq!(on_b.id(), first.id());
        assert_eq!(on_b.header("Idempotent-Replayed"), Some("true"));
        let reused = post(b.addr, "/jobs", "another body", Some(&key)).await;
        assert_eq!(reused.status, 422, "{}", reused.body);
        assert_eq!(reused.code(), "idempotency_key_reused");
        a.stop().await;
        b.stop().await;
        assert_eq!(jobs_on_queue(&run).await.len(), 2, "the plain job and the keyed one, once");
    });
}

#[test]
#[ignore = "needs a real RabbitMQ: make test-real"]
fn rabbitmq_a_declare_on_a_stalled_broker_fails_by_the_connect_timeout_then_works_again() {
    smol::block_on(async {
        let url = amqp_url();
        let proxy = StallProxy::start(amqp_addr(&url));
        let config = AmqpConfig::new(via(&url, proxy.addr)).with_connect_timeout(Duration::from_secs(1));
        let broker = smol::unblock(move || AmqpWorkQueue::connect(config))
            .await
            .unwrap_or_else(|e| panic!("RabbitMQ unreachable (set AMQP_URL): {e}"));
        let run = run_id();
        let (first, second) = (format!("test.stall.{run}.a"), format!("test.stall.{run}.b"));
        broker.declare(&first, &QueueOptions::default()).await.expect("declare before the stall");

        // The broker stops answering: amiquip alone would wait for missed heartbeats (minutes).
        proxy.stall();
        let started = Instant::now();
        let err =
            broker.declare(&second, &QueueOptions::default()).await.expect_err("a stalled broker declares nothing");
        eprintln!("declare on a stalled broker failed after {:?}: {err}", started.elapsed());
        assert_eq!(err.kind(), switchboard_ports::ErrorKind::Timeout, "{err}");

        // Answering again: the adapter reconnects and the same declare succeeds.
        proxy.resume();
        let mut again = broker.declare(&second, &QueueOptions::default()).await;
        for _ in 0..100 {
            if again.is_ok() {
                break;
            }
            async_io::Timer::after(Duration::from_millis(100)).await;
            again = broker.declare(&second, &QueueOptions::default()).await;
        }
        again.expect("declare once the broker answers again");
        broker.delete(&first).await.unwrap();
        broker.delete(&second).await.unwrap();
        broker.close().await.unwrap();
    });
}

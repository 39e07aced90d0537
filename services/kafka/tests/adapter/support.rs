use std::future::Future;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_kafka::{KafkaAdmin, KafkaConfig};
use switchboard_ports::{Delivery, Subscription, TopicAdmin};

/// The broker of a real-broker test. Panics (fails the test) when it does not answer: these
/// tests only run when asked for (`--include-ignored`), and then a missing broker is an error.
#[track_caller]
pub fn real_config() -> KafkaConfig {
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let first = brokers.split(',').next().unwrap_or_default().to_owned();
    let addr = first
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("KAFKA_BROKERS={brokers}: bad address: {e}"))
        .next()
        .unwrap_or_else(|| panic!("KAFKA_BROKERS={brokers}: no address"));
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        panic!("Kafka at {brokers} is unreachable ({e}); start it with scripts/brokers.sh start");
    }
    KafkaConfig::new(brokers)
}

/// A fresh topic with `partitions` partitions, unique per test run.
pub async fn fresh_topic(config: &KafkaConfig, name: &str, partitions: i32) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let topic = format!("sbtest.{name}.{nanos}");
    KafkaAdmin::new(config).unwrap().ensure_topic(&topic, partitions).await.unwrap();
    topic
}

/// A group name unique per test run.
pub fn fresh_group(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("sbtest.{name}.{nanos}")
}

/// `f`, or `None` after `timeout`.
pub async fn within<T>(timeout: Duration, f: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(f.await) }, async {
        async_io::Timer::after(timeout).await;
        None
    })
    .await
}

/// The next delivery; fails the test after 15 s.
#[track_caller]
pub fn next(sub: &Subscription) -> impl Future<Output = Delivery> + '_ {
    let caller = std::panic::Location::caller();
    async move {
        match within(Duration::from_secs(15), sub.recv()).await {
            Some(Some(d)) => d,
            Some(None) => panic!("{caller}: subscription ended"),
            None => panic!("{caller}: no delivery within 15 s"),
        }
    }
}

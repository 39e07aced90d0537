//! The shared pub/sub conformance suite (`switchboard_testkit::conformance::pubsub`) against a
//! real Kafka broker. Opt-in: `scripts/brokers.sh start`, then
//! `SWITCHBOARD_REAL_BROKERS=1 KAFKA_BROKERS=127.0.0.1:9092 cargo test -p switchboard-kafka --test conformance -- --include-ignored`.
//! Once asked for, an unreachable broker fails every case.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use switchboard_kafka::{KafkaAdmin, KafkaConfig, KafkaInspector, KafkaPublisher, KafkaSubscriber};
use switchboard_ports::{InspectTopics, Publisher, Subscriber, TopicAdmin};
use switchboard_testkit::conformance::pubsub::{Backend, Features, SuiteConfig};

struct Kafka {
    config: KafkaConfig,
}

#[track_caller]
fn kafka() -> Kafka {
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let first = brokers.split(',').next().unwrap_or_default();
    let reachable = first
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)));
    match reachable {
        Some(Ok(_)) => {}
        Some(Err(e)) => panic!("Kafka at {brokers} is unreachable ({e}); scripts/brokers.sh start"),
        None => panic!("KAFKA_BROKERS={brokers} is not an address"),
    }
    Kafka { config: KafkaConfig::new(brokers) }
}

impl Backend for Kafka {
    fn features(&self) -> Features {
        Features::KAFKA
    }
    fn config(&self) -> SuiteConfig {
        SuiteConfig::real_broker()
    }
    fn publisher(&self) -> Arc<dyn Publisher> {
        Arc::new(KafkaPublisher::new(&self.config).expect("kafka publisher"))
    }
    fn subscriber(&self) -> Arc<dyn Subscriber> {
        Arc::new(KafkaSubscriber::new(&self.config))
    }
    fn admin(&self) -> Option<Arc<dyn TopicAdmin>> {
        Some(Arc::new(KafkaAdmin::new(&self.config).expect("kafka admin")))
    }
    fn inspect(&self) -> Option<Arc<dyn InspectTopics>> {
        Some(Arc::new(KafkaInspector::new(&self.config)))
    }
}

switchboard_testkit::pubsub_conformance!(kafka(), [#[ignore = "needs a real Kafka: make test-real"]]);

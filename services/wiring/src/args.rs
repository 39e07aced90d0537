#[cfg(feature = "kafka")]
use std::sync::Arc;

#[cfg(feature = "embedded")]
use switchboard_embedded::pubsub::{BrokerConfig, MemoryBroker};
#[cfg(feature = "kafka")]
use switchboard_kafka::{KafkaAdmin, KafkaConfig, KafkaPublisher, KafkaSubscriber, OffsetReset};
#[cfg(feature = "kafka")]
use switchboard_ports::TopicAdmin;

#[cfg(any(feature = "kafka", feature = "embedded"))]
use crate::pubsub::PubSub;

/// The defaults of --amqp-connect-timeout-ms and --embedded-retention.
#[cfg(feature = "amqp")]
const AMQP_CONNECT_TIMEOUT_MS: u64 = 5000;
#[cfg(feature = "embedded")]
const EMBEDDED_RETENTION: u64 = 2000;

/// Broker flags, each with an environment fallback; a binary shows only those of the adapters
/// it links.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Kafka bootstrap servers, e.g. 127.0.0.1:9092. Unset: the embedded broker (all-in-one only).
    #[cfg(feature = "kafka")]
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Partitions of topics this service creates when they are missing.
    #[cfg(feature = "kafka")]
    #[arg(long, env = "SWITCHBOARD_PARTITIONS", default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub partitions: i32,
    /// RabbitMQ URL for the jobs queue, e.g. amqp://guest:guest@127.0.0.1:5672/%2f. Unset: the
    /// embedded work queue (all-in-one only). It carries the password: give it in the
    /// environment or with --amqp-url-file, not as a flag (`ps` shows flags); `--help` never
    /// shows its value.
    #[cfg(feature = "amqp")]
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Longest wait for one RabbitMQ connection attempt (TCP connect and handshake), in
    /// milliseconds; a `connection_timeout` in AMQP_URL wins.
    #[cfg(feature = "amqp")]
    #[arg(long, env = "SWITCHBOARD_AMQP_CONNECT_TIMEOUT_MS", default_value_t = AMQP_CONNECT_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub amqp_connect_timeout_ms: u64,
    /// Embedded broker only: messages kept per partition. Requests older than their deadline
    /// are useless, so a few thousand bound the all-in-one's memory without losing live work.
    #[cfg(feature = "embedded")]
    #[arg(long, env = "SWITCHBOARD_EMBEDDED_RETENTION", default_value_t = EMBEDDED_RETENTION, value_parser = clap::value_parser!(u64).range(100..))]
    pub embedded_retention: u64,
    /// Raw librdkafka properties (KEY=VALUE, space-separated in the environment) applied last
    /// to every Kafka client of this service: e.g. `fetch.wait.max.ms=500` on a real Kafka,
    /// which answers a fetch as soon as data arrives, or `debug=fetch` to trace fetches.
    #[cfg(feature = "kafka")]
    #[arg(long = "kafka-set", value_name = "KEY=VALUE", env = "SWITCHBOARD_KAFKA_SET", value_delimiter = ' ', value_parser = key_value)]
    pub kafka_set: Vec<(String, String)>,
    /// This instance's stable identity, kept across restarts (e.g. the pod name): picks a
    /// gateway's reply partition (default: the host name), and is a relay's
    /// `group.instance.id` with `--static-membership`. Unique per live instance of a service.
    #[arg(long, env = "SWITCHBOARD_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Static group membership (KIP-345) for consumer groups: `group.instance.id` = the
    /// instance id, so a member restarted within the session timeout gets its partitions back
    /// without a rebalance. For Kafka ≥ 2.3; off by default because tansu 0.6 handles it worse
    /// than dynamic membership (a killed and restarted relay's partitions stalled 15 s instead
    /// of 9 s, BENCHMARKS.md "Relay failover").
    #[arg(long, env = "SWITCHBOARD_STATIC_MEMBERSHIP")]
    pub static_membership: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub security: crate::BrokerSecurityArgs,
}

#[cfg(feature = "kafka")]
fn key_value(s: &str) -> Result<(String, String), String> {
    if s.is_empty() {
        return Err("empty item: separate KEY=VALUE pairs with single spaces".into());
    }
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected KEY=VALUE (a librdkafka property), got `{s}`")),
    }
}

/// Why the brokers could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// A service deployed alone was started without a real broker.
    #[error("{0} needs a real broker: set KAFKA_BROKERS (the embedded broker only exists inside the all-in-one `switchboard`)")]
    NoBroker(&'static str),
    /// A TLS/SASL setting or file is wrong.
    #[error("broker security: {0}")]
    Security(String),
    /// The broker refused or could not be reached.
    #[error("kafka: {0}")]
    Port(#[from] switchboard_ports::Error),
    /// A service deployed alone needs RabbitMQ and none is configured.
    #[error(
        "{0} needs RabbitMQ: set AMQP_URL (the embedded work queue only exists inside the all-in-one `switchboard`)"
    )]
    NoQueue(&'static str),
    /// RabbitMQ refused or could not be reached.
    #[error("rabbitmq: {0}")]
    Amqp(switchboard_ports::Error),
}

impl BrokerArgs {
    /// Kafka at `brokers`, topics created with `partitions`, every other flag at its default
    /// whatever the environment holds (tests on a real broker).
    #[cfg(feature = "kafka")]
    pub fn on_kafka(brokers: impl Into<String>, partitions: i32) -> Self {
        BrokerArgs {
            kafka_brokers: Some(brokers.into()),
            partitions,
            #[cfg(feature = "amqp")]
            amqp_url: None,
            #[cfg(feature = "amqp")]
            amqp_connect_timeout_ms: AMQP_CONNECT_TIMEOUT_MS,
            #[cfg(feature = "embedded")]
            embedded_retention: EMBEDDED_RETENTION,
            kafka_set: Vec::new(),
            instance_id: None,
            static_membership: false,
            security: Default::default(),
        }
    }

    /// Kafka when configured, else the embedded broker; creates `topics` on Kafka when missing.
    #[cfg(feature = "embedded")]
    pub async fn connect(&self, topics: &[&str]) -> Result<PubSub, BrokerError> {
        #[cfg(feature = "kafka")]
        if let Some(brokers) = &self.kafka_brokers {
            return self.kafka(brokers, topics).await;
        }
        let _ = topics; // the embedded broker creates topics on first use
        log::info!("no KAFKA_BROKERS: using the embedded broker");
        let config = BrokerConfig { retention_messages: self.embedded_retention as usize, ..BrokerConfig::default() };
        Ok(PubSub::embedded(MemoryBroker::with_config(config)))
    }

    /// Kafka, or an error naming `service` when none is configured.
    #[cfg(feature = "kafka")]
    pub async fn require_kafka(&self, service: &'static str, topics: &[&str]) -> Result<PubSub, BrokerError> {
        match &self.kafka_brokers {
            Some(brokers) => self.kafka(brokers, topics).await,
            None => Err(BrokerError::NoBroker(service)),
        }
    }

    /// Offsets and consumer-group lag on Kafka when `KAFKA_BROKERS` is set (the console
    /// deployed alone); `None` otherwise. Creates nothing on the broker.
    #[cfg(feature = "kafka")]
    pub fn kafka_inspector(&self) -> Option<Result<Arc<dyn switchboard_ports::InspectTopics>, BrokerError>> {
        let brokers = self.kafka_brokers.as_deref()?;
        Some(self.kafka_config(brokers).map(|config| {
            Arc::new(switchboard_kafka::KafkaInspector::new(&config)) as Arc<dyn switchboard_ports::InspectTopics>
        }))
    }

    /// The Kafka settings of these flags for `brokers` (security, overrides, membership);
    /// logs them without secrets.
    #[cfg(feature = "kafka")]
    pub fn kafka_config(&self, brokers: &str) -> Result<KafkaConfig, BrokerError> {
        let security = self.security.kafka().map_err(BrokerError::Security)?;
        let described = security.describe();
        let mut config =
            self.kafka_set.iter().fold(KafkaConfig::new(brokers).with_security(security), |c, (k, v)| c.set(k, v));
        if self.static_membership {
            config.group_instance_id = self.instance_id.clone();
        }
        if !self.kafka_set.is_empty() {
            // Values of secret properties (sasl.password, ssl.key.password, ...) never logged.
            let shown: Vec<String> = self
                .kafka_set
                .iter()
                .map(
                    |(k, v)| {
                        if switchboard_kafka::is_secret_property(k) {
                            format!("{k}=***")
                        } else {
                            format!("{k}={v}")
                        }
                    },
                )
                .collect();
            log::info!("kafka: librdkafka overrides {shown:?}");
        }
        log::info!("kafka security: {described}");
        Ok(config)
    }

    /// Reads the dead-letter topics on Kafka without consuming them, removing under `group`,
    /// when `KAFKA_BROKERS` is set; `None` otherwise. Creates nothing on the broker.
    #[cfg(feature = "kafka")]
    pub fn kafka_dead_letters(&self, group: &str) -> Option<Result<Arc<dyn switchboard_ports::Browse>, BrokerError>> {
        let brokers = self.kafka_brokers.as_deref()?;
        let browse = || -> Result<Arc<dyn switchboard_ports::Browse>, BrokerError> {
            let config = self.kafka_config(brokers)?;
            let publisher = Arc::new(KafkaPublisher::new(&config)?);
            Ok(Arc::new(switchboard_kafka::KafkaTopicLog::new(&config, publisher).browser(group)))
        };
        Some(browse())
    }

    #[cfg(feature = "kafka")]
    async fn kafka(&self, brokers: &str, topics: &[&str]) -> Result<PubSub, BrokerError> {
        let config = self.kafka_config(brokers)?;
        // The publisher first: its polling thread logs librdkafka's connection errors (a TLS
        // handshake refused, SASL failed), which the admin client alone would only report as a
        // timeout.
        let publisher = Arc::new(KafkaPublisher::new(&config)?);
        let admin = KafkaAdmin::new(&config)?;
        for topic in topics {
            admin.ensure_topic(topic, self.partitions).await?;
        }
        log::info!("kafka at {brokers}: topics {topics:?} ready");
        let browse = switchboard_kafka::KafkaTopicLog::new(&config, publisher.clone())
            .browser(switchboard_topology::DEAD_LETTER_GROUP);
        Ok(PubSub {
            dead_letters: Some(Arc::new(browse)),
            publisher,
            // Set once per subscriber: the relays' work group starts at the oldest request
            // (none published before the first relay joined is lost), a gateway's replies at
            // the newest (older ones answer requests nobody waits for).
            requests: Arc::new(KafkaSubscriber::new(&config.clone().with_offset_reset(OffsetReset::Earliest))),
            replies: Arc::new(KafkaSubscriber::new(&config.clone().with_offset_reset(OffsetReset::Latest))),
            kind: "kafka",
            inspect: Some(Arc::new(switchboard_kafka::KafkaInspector::new(&config))),
        })
    }
}

#[cfg(all(test, feature = "kafka"))]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        brokers: BrokerArgs,
    }

    #[test]
    fn kafka_set_takes_repeated_flags_and_keeps_commas_in_values() {
        let cli =
            Cli::try_parse_from(["t", "--kafka-set", "fetch.wait.max.ms=500", "--kafka-set", "debug=fetch,consumer"])
                .unwrap();
        assert_eq!(
            cli.brokers.kafka_set,
            vec![("fetch.wait.max.ms".into(), "500".into()), ("debug".into(), "fetch,consumer".into())]
        );
    }

    #[test]
    fn kafka_set_without_a_key_is_refused_with_a_clear_error() {
        let err = Cli::try_parse_from(["t", "--kafka-set", "=5"]).unwrap_err().to_string();
        assert!(err.contains("expected KEY=VALUE"), "{err}");
        let err = Cli::try_parse_from(["t", "--kafka-set", "linger.ms"]).unwrap_err().to_string();
        assert!(err.contains("expected KEY=VALUE"), "{err}");
    }
}

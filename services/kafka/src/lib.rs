//! Kafka adapter of the switchboard ports, over rdkafka's synchronous clients on plain threads
//! (no tokio; works under smol, async-std or `block_on`).
//!
//! - [`KafkaPublisher`]: idempotent producer; `publish` returns after the delivery report.
//! - [`KafkaSubscriber`]: one consumer per subscription, offsets committed after acks
//!   (at-least-once), nacks redelivered, rebalances handled.
//! - [`KafkaAdmin`]: creates topics (brokers such as tansu do not create them on first use) and
//!   lists consumer groups.
//! - [`KafkaConfig`]: shared settings with loopback-friendly defaults.
//!
//! ```no_run
//! use switchboard_kafka::{KafkaConfig, KafkaPublisher, KafkaSubscriber, KafkaAdmin};
//! use switchboard_ports::{Message, Publisher, Subscriber, TopicAdmin};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
//!     let config = KafkaConfig::new("127.0.0.1:9092");
//!     KafkaAdmin::new(&config)?.ensure_topic("greetings", 4).await?;
//!     let sub = KafkaSubscriber::new(&config).subscribe("greetings", "readers").await?;
//!     let publisher = KafkaPublisher::new(&config)?;
//!     publisher.publish("greetings", Message::new("hi").with_key("k")).await?;
//!     let delivery = sub.recv().await.expect("subscription open");
//!     assert_eq!(delivery.message().payload, b"hi");
//!     delivery.ack();
//!     sub.close().await?;
//!     publisher.close().await?;
//!     Ok(())
//! })
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod admin;
mod config;
mod consumer_loop;
mod error;
mod gaps;
mod group_state;
mod inspect;
mod publisher;
mod reader;
mod rebalance;
mod security;
mod subscriber;
mod topic_log;

pub use admin::{GroupSummary, KafkaAdmin};
pub use config::{KafkaConfig, OffsetReset};
pub use inspect::KafkaInspector;
pub use publisher::KafkaPublisher;
pub use security::{is_secret_property, KafkaSecurity, SaslCredentials, SaslMechanism, Secret, SecurityProtocol};
pub use subscriber::KafkaSubscriber;
pub use topic_log::KafkaTopicLog;

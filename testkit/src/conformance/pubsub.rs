//! Pub/sub conformance cases: written once, run against every [`Publisher`]/[`Subscriber`]
//! backend with Kafka semantics, in the style of Watermill's universal tests.
//!
//! # For backend authors
//!
//! Implement [`Backend`] (fresh ports per call, the [`Features`] you support, timeouts that
//! suit your broker in [`SuiteConfig`]) and let [`pubsub_conformance!`](crate::pubsub_conformance)
//! generate one named `#[test]` per case:
//!
//! ```ignore
//! // tests/conformance.rs of an adapter crate
//! struct Tansu;
//! impl switchboard_testkit::conformance::pubsub::Backend for Tansu { /* … */ }
//! switchboard_testkit::pubsub_conformance!(Tansu);
//! // Opt-in real broker: attributes in brackets go on every generated test.
//! switchboard_testkit::pubsub_conformance!(connect().await, [#[ignore = "needs tansu: make test-real"]]);
//! ```
//!
//! `$make` is evaluated inside each test's async block, so it may `.await`. Each case uses a
//! topic from [`Backend::unique_topic`] (created through [`Backend::admin`] when given, with
//! [`SuiteConfig::partitions`]) and groups derived from it, so cases run in parallel and
//! reruns never see old messages. A case whose feature is off prints why and returns; every
//! case fails (never passes) when it exceeds [`SuiteConfig::case_timeout`].
//!
//! Assumptions every backend must meet: `subscribe` returns once the member can receive, and a
//! new group starts at the log end, so a message published after `subscribe` returned is
//! delivered (the gateway relies on it); a closed publisher refuses publishes with
//! `ErrorKind::Closed`.

mod cases;
mod inspect;
mod partitions;
mod support;

pub use super::run;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard_ports::{InspectTopics, Publisher, Subscriber, TopicAdmin};

use switchboard_embedded::pubsub::{BrokerConfig, MemoryBroker};

pub use cases::*;
pub use inspect::*;
pub use partitions::*;

/// What a backend supports; cases needing a missing feature are skipped with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Members of one group share the partitions: each message goes to one member.
    pub consumer_groups: bool,
    /// Messages with the same key arrive in publish order (one consumer, no nacks).
    pub guaranteed_order_per_key: bool,
    /// Messages unacked when a member leaves go to the remaining members.
    pub redelivery_on_member_leave: bool,
    /// Committed offsets survive while a group has no member: re-subscribing continues
    /// after the last ack, without loss and without acked messages again.
    pub persistent: bool,
    /// `nack` (and dropping a delivery) sends the message again to the same subscription.
    pub nack_redelivers: bool,
}

impl Features {
    /// Everything Kafka-compatible backends (and the embedded broker) provide.
    pub const KAFKA: Features = Features {
        consumer_groups: true,
        guaranteed_order_per_key: true,
        redelivery_on_member_leave: true,
        persistent: true,
        nack_redelivers: true,
    };
}

/// Sizes and timeouts of the suite, tuned per backend.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// Partitions of each case's topic when the backend has an admin (default 4; the
    /// group cases need at least 2).
    pub partitions: i32,
    /// Messages of the load case (`many_messages`); default 1000.
    pub messages: usize,
    /// Time for a group to settle after a member joins or leaves, before the case publishes or
    /// expects redelivery (real Kafka: a few seconds; the embedded broker: zero).
    pub settle: Duration,
    /// Longest wait for one expected message.
    pub receive: Duration,
    /// Silence that proves nothing more arrives.
    pub quiet: Duration,
    /// Longest a whole case may take before it fails.
    pub case_timeout: Duration,
}

impl SuiteConfig {
    /// Settings for an in-process backend: no settle time, short waits.
    pub fn in_memory() -> Self {
        SuiteConfig {
            partitions: 4,
            messages: 1000,
            settle: Duration::ZERO,
            receive: Duration::from_secs(5),
            quiet: Duration::from_millis(150),
            case_timeout: Duration::from_secs(60),
        }
    }

    /// Settings for a real broker on loopback: group joins take seconds.
    pub fn real_broker() -> Self {
        SuiteConfig {
            partitions: 4,
            messages: 1000,
            settle: Duration::from_secs(5),
            receive: Duration::from_secs(30),
            quiet: Duration::from_secs(2),
            case_timeout: Duration::from_secs(180),
        }
    }

    /// Fewer messages (100), for quick runs; `SWITCHBOARD_SHORT_TESTS=1` applies it to the
    /// embedded backend.
    pub fn short(mut self) -> Self {
        self.messages = 100;
        self
    }
}

/// A backend under test: hands out ports and says what it supports.
pub trait Backend {
    /// Supported features.
    fn features(&self) -> Features;
    /// Sizes and timeouts.
    fn config(&self) -> SuiteConfig;
    /// A publisher; each call may return a new connection (the close case closes one).
    fn publisher(&self) -> Arc<dyn Publisher>;
    /// A subscriber; the group cases call this once per member.
    fn subscriber(&self) -> Arc<dyn Subscriber>;
    /// Topic creation, for brokers that do not auto-create topics.
    fn admin(&self) -> Option<Arc<dyn TopicAdmin>>;
    /// Offsets and group lag of the same broker; `None` skips the inspection case.
    fn inspect(&self) -> Option<Arc<dyn InspectTopics>> {
        None
    }
    /// A topic name no other case or run uses.
    fn unique_topic(&self, case: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("conformance.{case}.{}.{n}.{:08x}", std::process::id(), fastrand::u32(..))
    }
}

/// The in-memory broker as a backend, each instance with its own [`MemoryBroker`].
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    broker: MemoryBroker,
    config: SuiteConfig,
}

impl MemoryBackend {
    /// A fresh broker with default settings.
    pub fn new() -> Self {
        Self::with_config(BrokerConfig::default())
    }

    /// A fresh broker with `config`.
    pub fn with_config(config: BrokerConfig) -> Self {
        let mut suite = SuiteConfig::in_memory();
        if std::env::var_os("SWITCHBOARD_SHORT_TESTS").is_some() {
            suite = suite.short();
        }
        MemoryBackend { broker: MemoryBroker::with_config(config), config: suite }
    }

    /// The broker behind the ports.
    pub fn broker(&self) -> &MemoryBroker {
        &self.broker
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for MemoryBackend {
    fn features(&self) -> Features {
        Features::KAFKA
    }
    fn config(&self) -> SuiteConfig {
        self.config.clone()
    }
    fn publisher(&self) -> Arc<dyn Publisher> {
        Arc::new(self.broker.publisher())
    }
    fn subscriber(&self) -> Arc<dyn Subscriber> {
        Arc::new(self.broker.clone())
    }
    fn admin(&self) -> Option<Arc<dyn TopicAdmin>> {
        Some(Arc::new(self.broker.clone()))
    }
    fn inspect(&self) -> Option<Arc<dyn InspectTopics>> {
        Some(Arc::new(self.broker.clone()))
    }
}

/// One named `#[test]` per pub/sub case against the backend built by `$make` (an expression
/// evaluating to a [`Backend`](crate::conformance::pubsub::Backend), evaluated inside the
/// test's async block so it may `.await`). Optional attributes in brackets go on every test,
/// e.g. `[#[ignore = "needs a broker"]]`. Wrap the call in a `mod` to run several backends
/// from one file.
#[macro_export]
macro_rules! pubsub_conformance {
    ($make:expr) => {
        $crate::pubsub_conformance!($make, []);
    };
    ($make:expr, $attrs:tt) => {
        // A generous outer bound; each case also stops at the backend's own case_timeout.
        $crate::__conformance_tests!(pubsub, std::time::Duration::from_secs(600), $make, $attrs;
            publish_subscribe,
            headers_and_key_round_trip,
            many_messages,
            consumer_group_sharing,
            redelivery_on_member_leave,
            nack_redelivers,
            order_per_key,
            continue_after_close,
            topic_isolation,
            publisher_close,
            assigned_partition_reads_only_its_own,
            partition_out_of_range_is_refused,
            inspect_reports_lag);
    };
}

use std::sync::Arc;

#[cfg(feature = "embedded")]
use switchboard_embedded::pubsub::{MemoryBroker, StartFrom};
use switchboard_ports::{Browse, Publisher, Subscriber};

/// The publish/subscribe ports a service gets.
#[derive(Clone)]
pub struct PubSub {
    /// Publishes requests, replies and dead letters.
    pub publisher: Arc<dyn Publisher>,
    /// For work groups (the relays): a new group starts at the oldest message, so requests
    /// published before the first relay joined are not lost.
    pub requests: Arc<dyn Subscriber>,
    /// For per-instance reply groups (the gateways): a new group starts at the newest message;
    /// older replies belong to requests nobody waits for.
    pub replies: Arc<dyn Subscriber>,
    /// `kafka` or `embedded`, for logs and readiness.
    pub kind: &'static str,
    /// Reads dead-letter topics without consuming them, removing under the dead-letter tool's
    /// group (`switchboard-dead-letters`); `None` for ports assembled by hand.
    pub dead_letters: Option<Arc<dyn Browse>>,
    /// Offsets and consumer-group lag of the same broker, for the console; `None` when the
    /// ports cannot say.
    pub inspect: Option<Arc<dyn switchboard_ports::InspectTopics>>,
}

#[cfg(feature = "embedded")]
impl PubSub {
    /// Ports over one embedded broker, with the same start positions as on Kafka.
    pub fn embedded(broker: MemoryBroker) -> Self {
        PubSub {
            publisher: Arc::new(broker.clone()),
            requests: Arc::new(broker.starting_at(StartFrom::Earliest)),
            replies: Arc::new(broker.starting_at(StartFrom::Latest)),
            kind: "embedded",
            dead_letters: Some(Arc::new(broker.browser(switchboard_topology::DEAD_LETTER_GROUP))),
            inspect: Some(Arc::new(broker)),
        }
    }
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub").field("kind", &self.kind).finish_non_exhaustive()
    }
}

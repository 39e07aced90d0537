//! The pub/sub conformance suite against the embedded broker, with default settings and with
//! every buffer at its smallest (to shake out ordering and wakeup bugs).

use switchboard_embedded::pubsub::BrokerConfig;
use switchboard_testkit::conformance::pubsub::MemoryBackend;

mod memory {
    use super::*;
    switchboard_testkit::pubsub_conformance!(MemoryBackend::new());
}

mod memory_tiny_buffers {
    use super::*;
    switchboard_testkit::pubsub_conformance!(MemoryBackend::with_config(BrokerConfig {
        default_partitions: 2,
        subscription_buffer: 1,
        fetch_batch: 1,
        max_in_flight: 64,
        ..BrokerConfig::default()
    }));
}

/// The suite is not vacuous: backends that lose or repeat messages fail it.
mod broken_backends {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use switchboard_ports::{Error, Message, PublishError, Publisher, Subscriber, TopicAdmin};
    use switchboard_testkit::conformance::pubsub::{self, Backend, Features, SuiteConfig};
    use switchboard_testkit::fault::{Effect, FaultyPublisher, Trigger};

    use super::MemoryBackend;

    /// The embedded broker behind a publisher that `wrap` makes misbehave on some calls.
    struct Misbehaving {
        inner: MemoryBackend,
        wrap: fn(Arc<dyn Publisher>) -> Arc<dyn Publisher>,
    }

    impl Backend for Misbehaving {
        fn features(&self) -> Features {
            Features::KAFKA
        }
        fn config(&self) -> SuiteConfig {
            SuiteConfig { messages: 200, receive: Duration::from_secs(1), ..SuiteConfig::in_memory() }
        }
        fn publisher(&self) -> Arc<dyn Publisher> {
            (self.wrap)(self.inner.publisher())
        }
        fn subscriber(&self) -> Arc<dyn Subscriber> {
            self.inner.subscriber()
        }
        fn admin(&self) -> Option<Arc<dyn TopicAdmin>> {
            self.inner.admin()
        }
    }

    #[test]
    #[should_panic(expected = "expected message")]
    fn losing_a_message_fails_many_messages() {
        let b = Misbehaving {
            inner: MemoryBackend::new(),
            wrap: |p| Arc::new(FaultyPublisher::new(p).with_rule(Trigger::Nth(50), Effect::SilentDrop)),
        };
        pubsub::run("many_messages", Duration::from_secs(60), pubsub::many_messages(&b));
    }

    #[test]
    #[should_panic(expected = "delivered twice")]
    fn duplicating_a_message_fails_many_messages() {
        // A publisher that sends some messages twice but reports one success, as a retry
        // after a lost acknowledgement does.
        let b = Misbehaving { inner: MemoryBackend::new(), wrap: |p| Arc::new(Twice(p, AtomicUsize::new(0))) };
        pubsub::run("many_messages", Duration::from_secs(60), pubsub::many_messages(&b));
    }

    /// Publishes every 10th message twice.
    struct Twice(Arc<dyn Publisher>, AtomicUsize);

    #[async_trait::async_trait]
    impl Publisher for Twice {
        async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
            if self.1.fetch_add(1, Ordering::Relaxed).checked_rem(10) == Some(0) {
                self.0.publish(topic, message.clone()).await?;
            }
            self.0.publish(topic, message).await
        }
        async fn close(&self) -> Result<(), Error> {
            self.0.close().await
        }
    }
}

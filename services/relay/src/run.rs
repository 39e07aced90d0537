use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;
use log::info;
use switchboard_ports::{Error, Publisher, Subscriber, Subscription};
use switchboard_proto::ProcessorClient;

use crate::{Handled, Received, RelayConfig, RequestHandler};

/// A relay's parts, ready to run.
pub struct Relay {
    config: Arc<RelayConfig>,
    subscriber: Arc<dyn Subscriber>,
    handler: RequestHandler,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Relay {
    /// Wires a relay from its ports and processor client.
    pub fn new(
        config: RelayConfig,
        subscriber: Arc<dyn Subscriber>,
        publisher: Arc<dyn Publisher>,
        client: ProcessorClient,
    ) -> Self {
        let breaker = switchboard_resilience::CircuitBreaker::new(config.breaker.clone());
        switchboard_telemetry::watch_breaker(&config.metrics, "relay_processor", &breaker);
        switchboard_telemetry::ready_unless_open(&config.readiness, "processor", &breaker, "processor breaker open");
        let config = Arc::new(config);
        let handler = RequestHandler::new(config.clone(), client, publisher, breaker);
        Relay { config, subscriber, handler }
    }

    /// The breaker guarding the processor calls (state, metrics, events).
    pub fn breaker(&self) -> switchboard_resilience::CircuitBreaker {
        self.handler.breaker().clone()
    }

    /// Joins the requests group; once this returns, requests published from now on (and any
    /// not yet committed by the group) reach this relay.
    pub async fn subscribe(self) -> Result<SubscribedRelay, Error> {
        let subscription = self.subscriber.subscribe(&self.config.requests_topic, &self.config.group).await?;
        info!("relay consuming {} as group {}", self.config.requests_topic, self.config.group);
        Ok(SubscribedRelay { config: self.config, handler: self.handler, subscription })
    }

    /// Subscribes, then consumes until `stop` completes.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), Error> {
        self.subscribe().await?.run(stop).await
    }
}

/// A relay that has joined its group.
#[derive(Debug)]
pub struct SubscribedRelay {
    config: Arc<RelayConfig>,
    handler: RequestHandler,
    subscription: Subscription,
}

impl SubscribedRelay {
    /// Consumes requests until `stop` completes, then finishes the requests in flight, commits
    /// and leaves the group.
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), Error> {
        let SubscribedRelay { config, handler, subscription } = self;
        let slots = Arc::new(async_lock::Semaphore::new(config.max_in_flight.max(1)));
        let consume = async {
            loop {
                let permit = slots.acquire_arc().await;
                let Some(delivery) = subscription.recv().await else { break };
                config.metrics.consumed(delivery.topic());
                let (handler, metrics) = (handler.clone(), config.metrics.clone());
                smol::spawn(async move {
                    let from = Received {
                        topic: delivery.topic(),
                        partition: delivery.partition(),
                        offset: delivery.offset(),
                    };
                    match handler.handle_from(delivery.message(), Some(from)).await {
                        Handled::Retry => {
                            // The publisher is closed (stopping) or the broker has been down
                            // through every publish retry: hand the request back for
                            // redelivery, after a pause in case it comes back here first.
                            async_io::Timer::after(Duration::from_millis(200)).await;
                            delivery.nack();
                        }
                        _ => {
                            metrics.offsets_committed(delivery.topic());
                            delivery.ack();
                        }
                    }
                    drop(permit);
                })
                .detach();
            }
        };
        consume.or(stop).await;
        config.readiness.set_draining();
        // Drain: every permit back means every spawned request has settled its delivery.
        let mut held = Vec::with_capacity(config.max_in_flight.max(1));
        for _ in 0..config.max_in_flight.max(1) {
            held.push(slots.acquire_arc().await);
        }
        subscription.close().await
    }
}

/// Runs a relay until `stop` completes.
pub async fn run(
    config: RelayConfig,
    subscriber: Arc<dyn Subscriber>,
    publisher: Arc<dyn Publisher>,
    client: ProcessorClient,
    stop: impl Future<Output = ()>,
) -> Result<(), Error> {
    Relay::new(config, subscriber, publisher, client).run(stop).await
}

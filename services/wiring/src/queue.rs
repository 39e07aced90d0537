use std::sync::Arc;
#[cfg(feature = "amqp")]
use std::time::Duration;

#[cfg(feature = "amqp")]
use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};
#[cfg(feature = "embedded")]
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::{Browse, Fanout, WorkQueue};

use crate::BrokerArgs;

/// The work-queue ports a service gets: one broker behind both.
#[derive(Clone)]
pub struct Queues {
    /// Jobs: enqueued by gateways, consumed by workers.
    pub queue: Arc<dyn WorkQueue>,
    /// Job events: broadcast by workers, heard by every gateway.
    pub fanout: Arc<dyn Fanout>,
    /// `rabbitmq` or `embedded`, for logs and readiness.
    pub kind: &'static str,
    /// Reads dead-letter queues without consuming them (`switchboard-dead-letters`).
    pub dead_letters: Arc<dyn Browse>,
    /// Depths of the same broker's queues, for the console; `None` when the ports cannot say.
    pub inspect: Option<Arc<dyn switchboard_ports::InspectQueues>>,
}

impl Queues {
    /// Every port over the one `broker`, named `kind`.
    #[cfg(any(feature = "embedded", feature = "amqp"))]
    fn over<B>(broker: B, kind: &'static str) -> Self
    where
        B: WorkQueue + Fanout + Browse + switchboard_ports::InspectQueues + Clone + 'static,
    {
        Queues {
            queue: Arc::new(broker.clone()),
            fanout: Arc::new(broker.clone()),
            kind,
            dead_letters: Arc::new(broker.clone()),
            inspect: Some(Arc::new(broker)),
        }
    }

    /// Ports over one embedded work queue.
    #[cfg(feature = "embedded")]
    pub fn embedded(broker: MemoryWorkQueue) -> Self {
        Self::over(broker, "embedded")
    }

    /// Ports over one RabbitMQ connection.
    #[cfg(feature = "amqp")]
    pub fn rabbitmq(broker: AmqpWorkQueue) -> Self {
        Self::over(broker, "rabbitmq")
    }

    /// The queues where `queue`'s jobs wait out a retry delay under `options`, shortest delay
    /// first: RabbitMQ's TTL queues; none on the embedded work queue, which keeps them inside
    /// `queue`.
    pub fn retry_queues(&self, queue: &str, options: &switchboard_ports::QueueOptions) -> Vec<String> {
        #[cfg(feature = "amqp")]
        if self.kind == "rabbitmq" {
            return switchboard_amqp::retry_queues(queue, options);
        }
        let _ = (queue, options);
        Vec::new()
    }
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl BrokerArgs {
    /// RabbitMQ when `AMQP_URL` is set, else the embedded work queue.
    #[cfg(feature = "embedded")]
    pub async fn connect_queues(&self) -> Result<Queues, crate::BrokerError> {
        #[cfg(feature = "amqp")]
        if let Some(queues) = self.rabbitmq().await {
            return queues;
        }
        log::info!("no AMQP_URL: using the embedded work queue");
        Ok(Queues::embedded(MemoryWorkQueue::new()))
    }

    /// RabbitMQ, or an error naming `service` when none is configured.
    #[cfg(feature = "amqp")]
    pub async fn require_amqp(&self, service: &'static str) -> Result<Queues, crate::BrokerError> {
        self.rabbitmq().await.unwrap_or(Err(crate::BrokerError::NoQueue(service)))
    }

    /// RabbitMQ when `AMQP_URL` is set; `None` otherwise (e.g. a gateway without jobs).
    #[cfg(feature = "amqp")]
    pub async fn rabbitmq(&self) -> Option<Result<Queues, crate::BrokerError>> {
        Some(self.amqp_work_queue().await?.map(Queues::rabbitmq))
    }

    /// The URL of `AMQP_URL`, else the one in `AMQP_URL_FILE`; `None` when neither is set.
    #[cfg(feature = "amqp")]
    fn amqp_url_value(&self) -> Option<Result<String, crate::BrokerError>> {
        match (&self.amqp_url, &self.security.amqp_url_file) {
            (Some(url), _) => Some(Ok(url.clone())),
            (None, Some(file)) => Some(
                crate::read_secret_file(file).map_err(|e| crate::BrokerError::Security(format!("AMQP_URL_FILE {e}"))),
            ),
            (None, None) => None,
        }
    }

    /// Queue depths, unacked messages included, from RabbitMQ's management API at
    /// `management_url`, each read bounded by `timeout`: for the vhost of `AMQP_URL` (or
    /// `AMQP_URL_FILE`), with its credentials unless `management_url` carries its own.
    #[cfg(feature = "amqp")]
    pub fn rabbitmq_management(
        &self,
        management_url: &str,
        timeout: Duration,
    ) -> Result<Arc<dyn switchboard_ports::InspectQueues>, crate::BrokerError> {
        let amqp_url = self.amqp_url_value().transpose()?;
        let api = switchboard_amqp::ManagementApi::new(management_url, amqp_url.as_deref(), timeout)
            .map_err(crate::BrokerError::Amqp)?;
        log::info!("rabbitmq queue depths from the management API ({api:?})");
        Ok(Arc::new(api))
    }

    /// The RabbitMQ connection of `AMQP_URL` (or `AMQP_URL_FILE`); `None` when neither is set.
    #[cfg(feature = "amqp")]
    pub async fn amqp_work_queue(&self) -> Option<Result<AmqpWorkQueue, crate::BrokerError>> {
        let url = match self.amqp_url_value()? {
            Ok(url) => url,
            Err(e) => return Some(Err(e)),
        };
        let tls = match self.security.amqp_tls() {
            Ok(tls) => tls,
            Err(e) => return Some(Err(crate::BrokerError::Security(e))),
        };
        let config = AmqpConfig::new(url)
            .with_connect_timeout(Duration::from_millis(self.amqp_connect_timeout_ms))
            .with_tls(tls);
        // Connecting blocks (amiquip is synchronous): keep it off the async threads.
        let connected = smol::unblock(move || AmqpWorkQueue::connect(config)).await;
        Some(match connected {
            Ok(q) => {
                log::info!("rabbitmq connected");
                Ok(q)
            }
            Err(e) => Err(crate::BrokerError::Amqp(e)),
        })
    }
}

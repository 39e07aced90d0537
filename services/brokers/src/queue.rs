use std::sync::Arc;
use std::time::Duration;

use log::info;
use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};
use switchboard_ports::{Fanout, WorkQueue};
use switchboard_testkit::fake::queue::FakeWorkQueue;

use crate::{BrokerArgs, BrokerError};

/// Names of the jobs queue and the job-events exchange: shared by gateways and workers.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct JobNames {
    /// Work queue the gateway enqueues jobs on and the workers consume.
    #[arg(long, env = "SWITCHBOARD_JOBS_QUEUE", default_value = "switchboard.jobs")]
    pub jobs_queue: String,
    /// Fanout exchange the workers broadcast job events on and every gateway listens to.
    #[arg(long, env = "SWITCHBOARD_JOB_EVENTS_EXCHANGE", default_value = "switchboard.job-events")]
    pub job_events_exchange: String,
}

impl Default for JobNames {
    fn default() -> Self {
        JobNames { jobs_queue: "switchboard.jobs".into(), job_events_exchange: "switchboard.job-events".into() }
    }
}

/// The work-queue ports a service gets: one broker behind both.
#[derive(Clone)]
pub struct Queues {
    /// Jobs: enqueued by gateways, consumed by workers.
    pub queue: Arc<dyn WorkQueue>,
    /// Job events: broadcast by workers, heard by every gateway.
    pub fanout: Arc<dyn Fanout>,
    /// `rabbitmq` or `embedded`, for logs and readiness.
    pub kind: &'static str,
}

impl Queues {
    /// Ports over one embedded work queue.
    pub fn embedded(broker: FakeWorkQueue) -> Self {
        Queues { queue: Arc::new(broker.clone()), fanout: Arc::new(broker), kind: "embedded" }
    }

    /// Ports over one RabbitMQ connection.
    pub fn rabbitmq(broker: AmqpWorkQueue) -> Self {
        Queues { queue: Arc::new(broker.clone()), fanout: Arc::new(broker), kind: "rabbitmq" }
    }
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl BrokerArgs {
    /// RabbitMQ when `AMQP_URL` is set, else the embedded work queue.
    pub async fn connect_queues(&self) -> Result<Queues, BrokerError> {
        match self.rabbitmq().await {
            Some(queues) => queues,
            None => {
                info!("no AMQP_URL: using the embedded work queue");
                Ok(Queues::embedded(FakeWorkQueue::new()))
            }
        }
    }

    /// RabbitMQ, or an error naming `service` when none is configured.
    pub async fn require_amqp(&self, service: &'static str) -> Result<Queues, BrokerError> {
        self.rabbitmq().await.unwrap_or(Err(BrokerError::NoQueue(service)))
    }

    /// RabbitMQ when `AMQP_URL` is set; `None` otherwise (e.g. a gateway without jobs).
    pub async fn rabbitmq(&self) -> Option<Result<Queues, BrokerError>> {
        let url = match (&self.amqp_url, &self.security.amqp_url_file) {
            (Some(url), _) => url.clone(),
            (None, Some(file)) => match crate::read_secret_file(file) {
                Ok(url) => url,
                Err(e) => return Some(Err(BrokerError::Security(format!("AMQP_URL_FILE {e}")))),
            },
            (None, None) => return None,
        };
        let tls = match self.security.amqp_tls() {
            Ok(tls) => tls,
            Err(e) => return Some(Err(BrokerError::Security(e))),
        };
        let config = AmqpConfig::new(url)
            .with_connect_timeout(Duration::from_millis(self.amqp_connect_timeout_ms))
            .with_tls(tls);
        // Connecting blocks (amiquip is synchronous): keep it off the async threads.
        let connected = smol::unblock(move || AmqpWorkQueue::connect(config)).await;
        Some(match connected {
            Ok(q) => {
                info!("rabbitmq connected");
                Ok(Queues::rabbitmq(q))
            }
            Err(e) => Err(BrokerError::Amqp(e)),
        })
    }
}

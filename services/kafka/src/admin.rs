use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use switchboard_ports::{Error, ErrorKind, TopicAdmin};

use crate::error::{kind_of, port_error};
use crate::KafkaConfig;

/// [`TopicAdmin`] over rdkafka's admin client.
///
/// rdkafka's admin futures are completed by its own polling thread and need no particular
/// runtime, so `ensure_topic` simply awaits them (on smol, async-std or `block_on`).
pub struct KafkaAdmin {
    client: AdminClient<DefaultClientContext>,
    replication: i32,
    timeout: Duration,
}

impl KafkaAdmin {
    /// An admin client for `config.brokers`.
    pub fn new(config: &KafkaConfig) -> Result<Self, Error> {
        let client = config.admin().create().map_err(|e| port_error("create admin client", e))?;
        Ok(KafkaAdmin { client, replication: config.replication_factor, timeout: config.request_timeout })
    }
}

#[async_trait]
impl TopicAdmin for KafkaAdmin {
    /// Creates the topic; one that already exists (with any partition count) is fine.
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), Error> {
        if partitions < 1 {
            return Err(Error::new(ErrorKind::Invalid, format!("ensure topic {topic}: {partitions} partitions")));
        }
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(self.replication));
        let options = AdminOptions::new().request_timeout(Some(self.timeout)).operation_timeout(Some(self.timeout));
        let results = self.client.create_topics([&new], &options).await.map_err(|e| {
            let kind = kind_of(&e);
            Error::new(kind, format!("ensure topic {topic}: {e}")).with_source(e)
        })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    let kind = kind_of(&rdkafka::error::KafkaError::AdminOp(code));
                    return Err(Error::new(kind, format!("ensure topic {name}: {code}")));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for KafkaAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaAdmin").field("replication", &self.replication).finish_non_exhaustive()
    }
}

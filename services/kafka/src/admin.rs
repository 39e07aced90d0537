use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use switchboard_ports::{Error, ErrorKind, TopicAdmin};

use crate::error::{kind_of, port_error};
use crate::KafkaConfig;

/// A consumer group as the broker lists it (ListGroups, then DescribeGroups for the details).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupSummary {
    /// The `group.id`.
    pub name: String,
    /// The broker's state name (`Stable`, `Empty`, `PreparingRebalance`, ...); empty when the
    /// broker did not describe the group.
    pub state: String,
    /// `consumer` for consumer groups; empty when not described.
    pub protocol_type: String,
    /// Members at the time of the call.
    pub members: usize,
}

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

    /// Every consumer group the broker knows, sorted by name: what a run left behind (the scale
    /// test's check that gateways leave no group). Blocks the calling thread for up to the
    /// config's `request_timeout`: call it from a thread or a tool, not from a busy executor.
    pub fn list_groups(&self) -> Result<Vec<GroupSummary>, Error> {
        let list =
            self.client.inner().fetch_group_list(None, self.timeout).map_err(|e| port_error("list groups", e))?;
        let mut groups: Vec<GroupSummary> = list
            .groups()
            .iter()
            .map(|g| GroupSummary {
                name: g.name().to_owned(),
                state: g.state().to_owned(),
                protocol_type: g.protocol_type().to_owned(),
                members: g.members().len(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
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

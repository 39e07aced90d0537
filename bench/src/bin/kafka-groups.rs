//! `kafka-groups`: the consumer groups on a Kafka broker (ListGroups, then DescribeGroups), one
//! a line: `NAME state=STATE members=N`. `--prefix` keeps the groups whose name starts with it.
//! The scale test uses it to check what a run left on the broker: the relays' group, and none
//! of the gateways (they read their reply partition without a group).
//!
//! Exits 1 with the broker's error when the groups cannot be listed (unreachable, or a broker
//! that does not answer ListGroups): a missing answer is never printed as "no groups".

#![forbid(unsafe_code)]

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use switchboard_bench::parse_duration;
use switchboard_kafka::{KafkaAdmin, KafkaConfig};

#[derive(Debug, Parser)]
#[command(version, about = "List the consumer groups on a Kafka broker")]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Only groups whose name starts with this.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Raw librdkafka properties (KEY=VALUE; space-separated in the environment), e.g. the
    /// `security.protocol` of a TLS broker. Secrets belong in the environment, not on the
    /// command line.
    #[arg(
        long = "kafka-set",
        value_name = "KEY=VALUE",
        env = "KAFKA_GROUPS_SET",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    kafka_set: Vec<String>,
    /// How long to wait for the broker's answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = KafkaConfig::new(&cli.brokers);
    for item in cli.kafka_set.iter().filter(|s| !s.is_empty()) {
        let (k, v) = item.split_once('=').with_context(|| format!("--kafka-set: expected KEY=VALUE, got `{item}`"))?;
        config = config.set(k.trim(), v.trim());
    }
    config.request_timeout = cli.timeout;
    let admin = KafkaAdmin::new(&config).context("kafka admin client")?;
    let groups = admin.list_groups().with_context(|| format!("listing the consumer groups on {}", cli.brokers))?;
    for g in groups.iter().filter(|g| g.name.starts_with(&cli.prefix)) {
        let state = if g.state.is_empty() { "(not described)" } else { &g.state };
        println!("{} state={} members={}", g.name, state, g.members);
    }
    Ok(())
}

use switchboard_topology::topics::Topics;

use crate::RelayConfig;

/// Relay flags, each with an environment fallback.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// Consumer group shared by all relays.
    #[arg(long, env = "SWITCHBOARD_RELAY_GROUP", default_value = switchboard_topology::RELAY_GROUP)]
    pub relay_group: String,
    /// Requests one relay handles at once.
    #[arg(long, env = "SWITCHBOARD_RELAY_MAX_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub relay_max_in_flight: u64,
    /// Most envelopes in one `ProcessBatch` call to the processor: those ready at the same
    /// moment go together, a lone one at once as a batch of one (no waiting for company).
    /// 1: a call per envelope.
    #[arg(long, env = "SWITCHBOARD_RELAY_BATCH_MAX", default_value_t = crate::config::DEFAULT_BATCH_MAX as u64, value_parser = clap::value_parser!(u64).range(1..=switchboard_proto::MAX_BATCH as u64))]
    pub relay_batch_max: u64,
    /// Retries towards the processor allowed, as a percentage of recent calls (retry budget).
    #[arg(long, env = "SWITCHBOARD_RELAY_RETRY_BUDGET_PERCENT", default_value_t = 20.0, value_parser = budget_percent)]
    pub relay_retry_budget_percent: f32,
    /// Retries of a failure answer or dead letter whose publish failed transiently (backoff
    /// from 200 ms, doubling up to 5 s); then the request is dead-lettered with the reason.
    /// Permanent errors (unknown topic, message too large) are never retried.
    #[arg(long, env = "SWITCHBOARD_RELAY_MAX_PUBLISH_RETRIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub relay_max_publish_retries: u32,
    /// The processor breaker's settings.
    #[command(flatten)]
    pub breaker: RelayBreaker,
}

switchboard_service::breaker_args!(
    /// The breaker around the relay's processor calls.
    RelayBreaker, env = "SWITCHBOARD_RELAY_BREAKER", flag = "relay-breaker"
);

fn budget_percent(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if (1.0..=1000.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 1 to 1000")),
    }
}

impl RelayArgs {
    /// The relay configuration these flags describe, with the processor breaker's settings
    /// (`--relay-breaker-*`, `SWITCHBOARD_RELAY_BREAKER_*`).
    pub fn config(&self, topics: &Topics) -> Result<RelayConfig, switchboard_resilience::ConfigError> {
        Ok(RelayConfig {
            requests_topic: topics.requests.clone(),
            group: self.relay_group.clone(),
            dead_letter_topic: topics.requests_dlq.clone(),
            reply_topics: topics.reply_allow_list(),
            max_publish_retries: self.relay_max_publish_retries,
            max_in_flight: self.relay_max_in_flight as usize,
            batch_max: self.relay_batch_max as usize,
            retry_budget_percent: self.relay_retry_budget_percent,
            breaker: self.breaker.config()?,
            ..RelayConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The relay's flags, as its binary reads them.
    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        names: Topics,
        #[command(flatten)]
        args: RelayArgs,
    }

    #[test]
    fn reply_topics_and_publish_retries_reach_the_relay_config() {
        let cli = Cli::try_parse_from(["relay", "--replies-topic", "r1"]).unwrap();
        let config = cli.args.config(&cli.names).unwrap();
        assert!(config.reply_topics.allows("r1"), "the configured replies topic by default");
        assert!(!config.reply_topics.allows("switchboard.replies"));
        assert!(!config.reply_topics.allows("switchboard.requests"));
        assert_eq!(config.max_publish_retries, 5);
        let cli = Cli::try_parse_from(["relay", "--reply-topics", "gw.*", "--relay-max-publish-retries", "2"]).unwrap();
        let config = cli.args.config(&cli.names).unwrap();
        assert!(config.reply_topics.allows("gw.7"));
        assert_eq!(config.max_publish_retries, 2);
    }
}

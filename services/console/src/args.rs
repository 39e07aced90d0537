//! The console's own flags, shared by the `console` binary and the all-in-one.

use std::net::SocketAddr;

use crate::scrape::Target;
use crate::ConsoleConfig;

/// Flags of the console (each with its environment fallback).
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Console HTTP listen address (pages, API, OTLP receiver at /v1/traces).
    #[arg(long = "console-addr", env = "CONSOLE_ADDR", default_value = "127.0.0.1:8090")]
    pub console_addr: SocketAddr,
    /// Instances to scrape for /readyz and /metrics: NAME=HOST:PORT, comma-separated
    /// (e.g. gateway=127.0.0.1:8080,relay=127.0.0.1:9101).
    #[arg(long = "scrape", env = "CONSOLE_SCRAPE", value_delimiter = ',', value_name = "NAME=HOST:PORT")]
    pub scrape: Vec<Target>,
    /// Transactions kept (the oldest is forgotten first).
    #[arg(long, env = "CONSOLE_MAX_TRANSACTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_transactions: u64,
    /// Spans kept per transaction.
    #[arg(long = "max-spans", env = "CONSOLE_MAX_SPANS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_spans: u64,
    /// Minutes of per-service metric points kept.
    #[arg(long, env = "CONSOLE_METRICS_MINUTES", default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub metrics_minutes: u32,
    /// Allow redriving dead letters without a token (only sensible on loopback).
    #[arg(long, env = "CONSOLE_ALLOW_REDRIVE")]
    pub allow_redrive: bool,
}

impl ConsoleArgs {
    /// The settings these flags give, the rest at their defaults.
    pub fn config(&self) -> ConsoleConfig {
        ConsoleConfig {
            addr: self.console_addr,
            max_transactions: self.max_transactions as usize,
            max_spans: self.max_spans as usize,
            metrics_minutes: self.metrics_minutes,
            targets: self.scrape.clone(),
            allow_redrive: self.allow_redrive,
            ..ConsoleConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        console: ConsoleArgs,
    }

    #[test]
    fn scrape_targets_are_a_comma_separated_list() {
        let cli = Cli::try_parse_from(["c", "--scrape", "gateway=127.0.0.1:8080,relay=127.0.0.1:9101"]).unwrap();
        let config = cli.console.config();
        assert_eq!(config.targets.len(), 2);
        assert_eq!(config.targets[1].service, "relay");
        assert_eq!(config.max_transactions, 10_000);
        assert!(Cli::try_parse_from(["c", "--scrape", "gateway"]).is_err());
        assert!(Cli::try_parse_from(["c", "--max-transactions", "0"]).is_err());
    }
}

//! The console's own flags, shared by the `console` binary and the all-in-one.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::scrape::Target;
use crate::ConsoleConfig;

/// Flags of the console (each with its environment fallback).
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleArgs {
    /// Console HTTP listen address (pages, API, OTLP receiver at /v1/traces).
    #[arg(long = "console-addr", env = "CONSOLE_ADDR", default_value = "127.0.0.1:8090")]
    pub console_addr: SocketAddr,
    /// Instances to scrape for /readyz and /metrics: NAME=HOST:PORT (HTTP) or
    /// NAME=https://HOST:PORT, comma-separated (e.g.
    /// gateway=https://gw.internal:8443,relay=127.0.0.1:9101).
    #[arg(long = "scrape", env = "CONSOLE_SCRAPE", value_delimiter = ',', value_name = "NAME=HOST:PORT")]
    pub scrape: Vec<Target>,
    /// PEM CA bundle the certificates of https:// scrape targets are checked against (unset:
    /// the webpki roots, public CAs only).
    #[arg(long, env = "SWITCHBOARD_CONSOLE_SCRAPE_CA_FILE")]
    pub scrape_ca_file: Option<PathBuf>,
    /// File whose first line is a bearer token sent with every scrape, for targets whose
    /// /metrics needs one (a gateway with --auth-tokens-file). Sent to plain HTTP targets too:
    /// use https:// targets off a trusted network.
    #[arg(long, env = "SWITCHBOARD_CONSOLE_SCRAPE_TOKEN_FILE")]
    pub scrape_token_file: Option<PathBuf>,
    /// RabbitMQ's management API, e.g. http://127.0.0.1:15672, for queue depths with the
    /// messages delivered and not yet acked (AMQP alone cannot tell those). Credentials from
    /// the URL, else from AMQP_URL's; the vhost is AMQP_URL's. Unset: depths over AMQP,
    /// unacked unknown. `--help` never shows its value.
    #[arg(long, env = "SWITCHBOARD_RABBITMQ_MANAGEMENT_URL", hide_env_values = true, value_name = "URL")]
    pub rabbitmq_management_url: Option<String>,
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
            scrape_ca_file: self.scrape_ca_file.clone(),
            scrape_token_file: self.scrape_token_file.clone(),
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

    #[test]
    fn https_targets_take_a_ca_and_a_token_file() {
        let cli = Cli::try_parse_from([
            "c",
            "--scrape",
            "gateway=https://localhost:8443,relay=127.0.0.1:9101",
            "--scrape-ca-file",
            "/etc/ca.pem",
            "--scrape-token-file",
            "/run/secrets/token",
        ])
        .unwrap();
        let config = cli.console.config();
        assert!(config.targets[0].https && !config.targets[1].https);
        assert_eq!(config.scrape_ca_file.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!(config.scrape_token_file.as_deref(), Some(std::path::Path::new("/run/secrets/token")));
    }
}

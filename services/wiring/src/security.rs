//! TLS and SASL flags of the brokers. Paths and names only: passwords come from a file or the
//! environment, never from a flag value (which `ps` shows), and are never logged.

#[cfg(any(feature = "kafka", feature = "amqp"))]
use std::path::{Path, PathBuf};

#[cfg(feature = "amqp")]
use switchboard_amqp::AmqpTls;
#[cfg(feature = "kafka")]
use switchboard_kafka::{KafkaSecurity, SaslCredentials, SaslMechanism, Secret, SecurityProtocol};

/// Environment variable holding the Kafka SASL password (instead of a file).
#[cfg(feature = "kafka")]
pub const KAFKA_SASL_PASSWORD_ENV: &str = "KAFKA_SASL_PASSWORD";

/// Kafka TLS/SASL and RabbitMQ TLS flags, each with an environment fallback.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BrokerSecurityArgs {
    #[cfg(feature = "kafka")]
    /// Kafka `security.protocol`: plaintext, ssl, sasl_plaintext or sasl_ssl. Unset: sasl_ssl
    /// with SASL credentials, ssl with a CA or client certificate, else plaintext.
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL", value_parser = SecurityProtocol::parse)]
    pub kafka_security_protocol: Option<SecurityProtocol>,
    #[cfg(feature = "kafka")]
    /// PEM CA bundle the Kafka brokers' certificates are checked against (unset: the system's).
    #[arg(long, env = "KAFKA_SSL_CA")]
    pub kafka_ssl_ca: Option<PathBuf>,
    #[cfg(feature = "kafka")]
    /// PEM client certificate for Kafka (mutual TLS).
    #[arg(long, env = "KAFKA_SSL_CERT", requires = "kafka_ssl_key")]
    pub kafka_ssl_cert: Option<PathBuf>,
    #[cfg(feature = "kafka")]
    /// PEM private key of --kafka-ssl-cert.
    #[arg(long, env = "KAFKA_SSL_KEY", requires = "kafka_ssl_cert")]
    pub kafka_ssl_key: Option<PathBuf>,
    #[cfg(feature = "kafka")]
    /// Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_parser = SaslMechanism::parse, requires = "kafka_sasl_username")]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    #[cfg(feature = "kafka")]
    /// Kafka SASL username (the password: --kafka-sasl-password-file or KAFKA_SASL_PASSWORD).
    #[arg(long, env = "KAFKA_SASL_USERNAME", requires = "kafka_sasl_mechanism")]
    pub kafka_sasl_username: Option<String>,
    #[cfg(feature = "kafka")]
    /// File holding the Kafka SASL password (one line). Without it the password is read from
    /// the KAFKA_SASL_PASSWORD environment variable.
    #[arg(long, env = "KAFKA_SASL_PASSWORD_FILE", requires = "kafka_sasl_username")]
    pub kafka_sasl_password_file: Option<PathBuf>,
    #[cfg(feature = "amqp")]
    /// PEM CA bundle the RabbitMQ server's certificate is checked against, for amqps:// URLs
    /// (unset: the system's).
    #[arg(long, env = "AMQP_TLS_CA")]
    pub amqp_tls_ca: Option<PathBuf>,
    #[cfg(feature = "amqp")]
    /// PEM client certificate for RabbitMQ (mutual TLS, amqps:// only).
    #[arg(long, env = "AMQP_TLS_CLIENT_CERT", requires = "amqp_tls_client_key")]
    pub amqp_tls_client_cert: Option<PathBuf>,
    #[cfg(feature = "amqp")]
    /// PEM private key (PKCS#8) of --amqp-tls-client-cert.
    #[arg(long, env = "AMQP_TLS_CLIENT_KEY", requires = "amqp_tls_client_cert")]
    pub amqp_tls_client_key: Option<PathBuf>,
    #[cfg(feature = "amqp")]
    /// File holding the RabbitMQ URL, password included (AMQP_URL, when set, wins).
    #[arg(long, env = "AMQP_URL_FILE")]
    pub amqp_url_file: Option<PathBuf>,
}

#[cfg(any(feature = "kafka", feature = "amqp"))]
/// Reads a one-line secret file; the error names the file, never its content.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_owned();
    if line.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(line)
}

impl BrokerSecurityArgs {
    /// The Kafka TLS/SASL settings, checked for consistency.
    #[cfg(feature = "kafka")]
    pub fn kafka(&self) -> Result<KafkaSecurity, String> {
        self.kafka_with_env(std::env::var(KAFKA_SASL_PASSWORD_ENV).ok())
    }

    #[cfg(feature = "kafka")]
    fn kafka_with_env(&self, env_password: Option<String>) -> Result<KafkaSecurity, String> {
        let sasl = match (self.kafka_sasl_mechanism, &self.kafka_sasl_username) {
            (Some(mechanism), Some(username)) => {
                let password = match (&self.kafka_sasl_password_file, env_password) {
                    (Some(file), _) => read_secret_file(file)?,
                    (None, Some(p)) if !p.is_empty() => p,
                    _ => {
                        return Err(format!(
                            "SASL needs a password: --kafka-sasl-password-file or {KAFKA_SASL_PASSWORD_ENV}"
                        ))
                    }
                };
                Some(SaslCredentials { mechanism, username: username.clone(), password: Secret::new(password) })
            }
            _ => None,
        };
        let mut security = KafkaSecurity::default();
        security.protocol = self.kafka_security_protocol;
        security.ca_file = self.kafka_ssl_ca.clone();
        security.cert_file = self.kafka_ssl_cert.clone();
        security.key_file = self.kafka_ssl_key.clone();
        security.sasl = sasl;
        security.validate()?;
        Ok(security)
    }

    /// RabbitMQ TLS settings (CA, client identity), loaded.
    #[cfg(feature = "amqp")]
    pub fn amqp_tls(&self) -> Result<AmqpTls, String> {
        AmqpTls::load(
            self.amqp_tls_ca.as_deref(),
            self.amqp_tls_client_cert.as_deref().zip(self.amqp_tls_client_key.as_deref()),
        )
    }
}

#[cfg(all(test, feature = "kafka"))]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        security: BrokerSecurityArgs,
    }

    #[test]
    fn sasl_takes_its_password_from_the_environment_and_needs_one() {
        let cli = Cli::try_parse_from(["t", "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "svc"])
            .unwrap();
        let sec = cli.security.kafka_with_env(Some("pw".into())).unwrap();
        assert_eq!(sec.protocol(), SecurityProtocol::SaslSsl);
        assert_eq!(sec.sasl.unwrap().password.expose(), "pw");
        let err = cli.security.kafka_with_env(None).unwrap_err();
        assert!(err.contains("KAFKA_SASL_PASSWORD"), "{err}");
    }

    #[test]
    fn there_is_no_password_flag() {
        let err = Cli::try_parse_from(["t", "--kafka-sasl-password", "pw"]).unwrap_err().to_string();
        assert!(err.contains("unexpected argument"), "{err}");
    }
}

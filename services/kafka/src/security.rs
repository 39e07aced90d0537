//! TLS and SASL towards Kafka: the librdkafka properties for a managed Kafka (MSK, Confluent
//! Cloud, Aiven), built by rdkafka's `ssl` feature on the system OpenSSL.
//!
//! SASL PLAIN and SCRAM are built into librdkafka. GSSAPI (Kerberos) would need rdkafka's
//! `gssapi` feature (libsasl2 and krb5 at build and run time); OAUTHBEARER works with a token
//! refresh callback in the client context, or librdkafka's OIDC method, which needs libcurl
//! (rdkafka's `curl` feature). Neither is built.

use std::fmt;
use std::path::PathBuf;

use rdkafka::ClientConfig;

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// No TLS, no SASL (the default: loopback, tests).
    Plaintext,
    /// TLS, no SASL (optionally mutual TLS with a client certificate).
    Ssl,
    /// SASL over plain TCP: the password crosses the network in clear with PLAIN.
    SaslPlaintext,
    /// SASL over TLS: what managed Kafka services ask for.
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    /// Parses librdkafka's names (any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "plaintext" => Ok(SecurityProtocol::Plaintext),
            "ssl" => Ok(SecurityProtocol::Ssl),
            "sasl_plaintext" => Ok(SecurityProtocol::SaslPlaintext),
            "sasl_ssl" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(format!("`{s}`: expected plaintext, ssl, sasl_plaintext or sasl_ssl")),
        }
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// `sasl.mechanisms` this build supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// Username and password as they are (use over TLS only).
    Plain,
    /// SCRAM with SHA-256.
    ScramSha256,
    /// SCRAM with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` (any case).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "GSSAPI" | "OAUTHBEARER" => Err(format!("`{s}` is not built in (see the README, Deployment)")),
            _ => Err(format!("`{s}`: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")),
        }
    }
}

/// A password that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the client library only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// SASL credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// Mechanism.
    pub mechanism: SaslMechanism,
    /// `sasl.username`.
    pub username: String,
    /// `sasl.password`.
    pub password: Secret,
}

/// TLS and SASL settings of every Kafka client of a service. Default: plaintext, no SASL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaSecurity {
    /// `security.protocol`; `None`: derived (SASL → `sasl_ssl`, TLS files → `ssl`, else
    /// plaintext).
    pub protocol: Option<SecurityProtocol>,
    /// `ssl.ca.location`: PEM CA bundle the brokers' certificates are checked against
    /// (unset: the system's).
    pub ca_file: Option<PathBuf>,
    /// `ssl.certificate.location`: PEM client certificate (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// `ssl.key.location`: PEM key of the client certificate.
    pub key_file: Option<PathBuf>,
    /// SASL username, password and mechanism.
    pub sasl: Option<SaslCredentials>,
}

impl KafkaSecurity {
    /// The protocol in effect.
    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol.unwrap_or(match (&self.sasl, self.ca_file.is_some() || self.cert_file.is_some()) {
            (Some(_), _) => SecurityProtocol::SaslSsl,
            (None, true) => SecurityProtocol::Ssl,
            (None, false) => SecurityProtocol::Plaintext,
        })
    }

    /// Checks the settings agree (TLS files without TLS, SASL without a SASL protocol).
    pub fn validate(&self) -> Result<(), String> {
        let protocol = self.protocol();
        let has_files = self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some();
        if has_files && !protocol.uses_tls() {
            return Err(format!("TLS files are set but security.protocol is {}", protocol.as_str()));
        }
        let sasl_protocol = matches!(protocol, SecurityProtocol::SaslSsl | SecurityProtocol::SaslPlaintext);
        if self.sasl.is_some() != sasl_protocol {
            return Err(format!(
                "security.protocol {} {} SASL credentials",
                protocol.as_str(),
                if sasl_protocol { "needs" } else { "does not take" }
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("a client certificate needs its key, and a key its certificate".into());
        }
        Ok(())
    }

    /// A one-line description for logs: never the password.
    pub fn describe(&self) -> String {
        let mut s = self.protocol().as_str().to_owned();
        if self.cert_file.is_some() {
            s.push_str(", client certificate");
        }
        if let Some(sasl) = &self.sasl {
            s.push_str(&format!(", SASL {} as {}", sasl.mechanism.as_str(), sasl.username));
        }
        s
    }

    pub(crate) fn apply(&self, c: &mut ClientConfig) {
        let protocol = self.protocol();
        if protocol == SecurityProtocol::Plaintext {
            return;
        }
        c.set("security.protocol", protocol.as_str());
        let path = |p: &PathBuf| p.display().to_string();
        if let Some(ca) = &self.ca_file {
            c.set("ssl.ca.location", path(ca));
        }
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            c.set("ssl.certificate.location", path(cert)).set("ssl.key.location", path(key));
        }
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanisms", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", sasl.password.expose());
        }
    }
}

/// Whether a librdkafka property holds a secret (its value must not be logged).
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "key.pem", "keystore", "token", "sasl.jaas"].iter().any(|s| key.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl() -> SaslCredentials {
        SaslCredentials {
            mechanism: SaslMechanism::ScramSha512,
            username: "svc".into(),
            password: Secret::new("hunter2"),
        }
    }

    #[test]
    fn sasl_over_tls_sets_every_property_and_debug_hides_the_password() {
        let sec = KafkaSecurity { ca_file: Some("/ca.pem".into()), sasl: Some(sasl()), ..Default::default() };
        sec.validate().unwrap();
        let mut c = ClientConfig::new();
        sec.apply(&mut c);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("ssl.ca.location"), Some("/ca.pem"));
        assert_eq!(c.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.password"), Some("hunter2"));
        let shown = format!("{sec:?} {}", sec.describe());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SCRAM-SHA-512 as svc"), "{shown}");
    }

    #[test]
    fn plaintext_sets_nothing_and_mismatches_are_refused() {
        let mut c = ClientConfig::new();
        KafkaSecurity::default().apply(&mut c);
        assert_eq!(c.get("security.protocol"), None);
        let tls_files_on_plaintext = KafkaSecurity {
            protocol: Some(SecurityProtocol::Plaintext),
            ca_file: Some("/ca.pem".into()),
            ..Default::default()
        };
        assert!(tls_files_on_plaintext.validate().is_err());
        let sasl_without_credentials =
            KafkaSecurity { protocol: Some(SecurityProtocol::SaslSsl), ..Default::default() };
        assert!(sasl_without_credentials.validate().is_err());
        let cert_without_key = KafkaSecurity { cert_file: Some("/c.pem".into()), ..Default::default() };
        assert!(cert_without_key.validate().is_err());
    }

    #[test]
    fn mechanisms_parse_and_unbuilt_ones_say_so() {
        assert_eq!(SaslMechanism::parse("scram-sha-256"), Ok(SaslMechanism::ScramSha256));
        assert!(SaslMechanism::parse("GSSAPI").unwrap_err().contains("not built in"));
        assert!(is_secret_property("sasl.password") && is_secret_property("ssl.key.password"));
        assert!(!is_secret_property("fetch.wait.max.ms"));
    }
}

//! The gateway's HTTPS and caller-authentication flags. Paths only: the key and the token
//! hashes are read from the files, never from a flag value (which `ps` shows).

use std::io;
use std::path::PathBuf;

use switchboard_http_server::{ServerTls, TlsFiles};

use crate::auth::{BearerTokens, TokenFileError};
use crate::GatewayConfig;

/// HTTPS and authentication of the gateway; everything off by default.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EdgeSecurityArgs {
    /// PEM certificate chain: with --gateway-tls-key, the gateway serves HTTPS only.
    #[arg(long, env = "GATEWAY_TLS_CERT", requires = "gateway_tls_key")]
    pub gateway_tls_cert: Option<PathBuf>,
    /// PEM private key of --gateway-tls-cert.
    #[arg(long, env = "GATEWAY_TLS_KEY", requires = "gateway_tls_cert")]
    pub gateway_tls_key: Option<PathBuf>,
    /// PEM CA bundle: callers must present a client certificate it signed (mutual TLS).
    #[arg(long, env = "GATEWAY_TLS_CLIENT_CA", requires = "gateway_tls_cert")]
    pub gateway_tls_client_ca: Option<PathBuf>,
    /// File of accepted bearer tokens, stored as SHA-256 hex, one per line
    /// (`printf %s "$TOKEN" | sha256sum | cut -d' ' -f1`). Set: every route but /healthz,
    /// /readyz and /openapi.json needs `Authorization: Bearer <token>` (401 otherwise).
    #[arg(long, env = "SWITCHBOARD_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// With --auth-tokens-file: serve /metrics without a token (for a scraper inside the
    /// network).
    #[arg(long, env = "SWITCHBOARD_AUTH_OPEN_METRICS")]
    pub auth_open_metrics: bool,
}

/// A certificate, key or token file the gateway cannot use; the source names the file.
#[derive(Debug, thiserror::Error)]
pub enum EdgeSecurityError {
    /// The HTTPS certificate, key or client CA file.
    #[error("gateway TLS")]
    Tls(#[source] io::Error),
    /// The bearer token file.
    #[error("gateway tokens")]
    Tokens(#[source] TokenFileError),
}

impl EdgeSecurityArgs {
    /// Loads the certificate, key and token files into `config`; errors name the file.
    pub fn apply(&self, config: &mut GatewayConfig) -> Result<(), EdgeSecurityError> {
        if let (Some(cert), Some(key)) = (&self.gateway_tls_cert, &self.gateway_tls_key) {
            let files =
                TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: self.gateway_tls_client_ca.clone() };
            config.tls = Some(ServerTls::load(&files).map_err(EdgeSecurityError::Tls)?);
        }
        if let Some(path) = &self.auth_tokens_file {
            let tokens = BearerTokens::from_file(path, !self.auth_open_metrics).map_err(EdgeSecurityError::Tokens)?;
            config.auth = Some(tokens);
        }
        Ok(())
    }
}

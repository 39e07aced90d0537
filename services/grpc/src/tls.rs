//! TLS and mutual TLS between the processor's callers (relay, worker) and the processor, on
//! grpcio's `openssl` feature (the system OpenSSL). Plaintext stays the default: no flag set,
//! no TLS. Flags carry paths only; keys are read from the files.

use std::io;
use std::path::{Path, PathBuf};

use grpcio::{
    CertificateRequestType, ChannelCredentials, ChannelCredentialsBuilder, ServerCredentials, ServerCredentialsBuilder,
};

fn read(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))?;
    // grpcio hands PEM to C as a NUL-terminated string (and panics on an inner NUL).
    if bytes.contains(&0) || !String::from_utf8_lossy(&bytes).contains("-----BEGIN") {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{what} {}: not a PEM file", path.display())));
    }
    Ok(bytes)
}

/// How the relay and the worker reach the processor over TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct GrpcClientTlsArgs {
    /// PEM CA bundle that signed the processor's certificate: set, calls to the processor use
    /// TLS (unset: plaintext, for loopback or a mesh that encrypts).
    #[arg(long, env = "PROCESSOR_TLS_CA")]
    pub processor_tls_ca: Option<PathBuf>,
    /// PEM client certificate presented to the processor (mutual TLS).
    #[arg(long, env = "PROCESSOR_TLS_CLIENT_CERT", requires_all = ["processor_tls_client_key", "processor_tls_ca"])]
    pub processor_tls_client_cert: Option<PathBuf>,
    /// PEM private key of --processor-tls-client-cert.
    #[arg(long, env = "PROCESSOR_TLS_CLIENT_KEY", requires = "processor_tls_client_cert")]
    pub processor_tls_client_key: Option<PathBuf>,
    /// Name the processor's certificate must carry, when it is not the host of PROCESSOR_ADDR.
    #[arg(long, env = "PROCESSOR_TLS_SERVER_NAME", requires = "processor_tls_ca")]
    pub processor_tls_server_name: Option<String>,
}

/// Loaded client TLS settings: build credentials with [`ClientTls::credentials`].
#[derive(Clone)]
pub struct ClientTls {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("mutual", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl GrpcClientTlsArgs {
    /// The files loaded, or `None` for plaintext; errors name the file.
    pub fn load(&self) -> io::Result<Option<ClientTls>> {
        let Some(ca) = &self.processor_tls_ca else { return Ok(None) };
        let identity = match (&self.processor_tls_client_cert, &self.processor_tls_client_key) {
            (Some(cert), Some(key)) => Some((read(cert, "client certificate")?, read(key, "client key")?)),
            _ => None,
        };
        Ok(Some(ClientTls {
            ca: read(ca, "CA bundle")?,
            identity,
            server_name: self.processor_tls_server_name.clone(),
        }))
    }
}

impl ClientTls {
    /// Channel credentials (new ones per channel: grpcio consumes them).
    pub fn credentials(&self) -> ChannelCredentials {
        let mut b = ChannelCredentialsBuilder::new().root_cert(self.ca.clone());
        if let Some((cert, key)) = &self.identity {
            b = b.cert(cert.clone(), key.clone());
        }
        b.build()
    }

    /// The name checked in the server's certificate, when set.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Whether a client certificate is presented.
    pub fn is_mutual(&self) -> bool {
        self.identity.is_some()
    }
}

/// The processor's TLS: its certificate and key, and the CA its clients' certificates must
/// come from (mutual TLS).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct GrpcServerTlsArgs {
    /// PEM certificate chain: with --processor-tls-key, the processor accepts TLS only.
    #[arg(long, env = "PROCESSOR_TLS_CERT", requires = "processor_tls_key")]
    pub processor_tls_cert: Option<PathBuf>,
    /// PEM private key of --processor-tls-cert.
    #[arg(long, env = "PROCESSOR_TLS_KEY", requires = "processor_tls_cert")]
    pub processor_tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate it signed (mutual TLS); a client
    /// without one fails its handshake.
    #[arg(long, env = "PROCESSOR_TLS_CLIENT_CA", requires = "processor_tls_cert")]
    pub processor_tls_client_ca: Option<PathBuf>,
}

/// Loaded server TLS settings.
#[derive(Clone)]
pub struct ServerTls {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("mutual", &self.client_ca.is_some()).finish_non_exhaustive()
    }
}

impl GrpcServerTlsArgs {
    /// The files loaded, or `None` for plaintext; errors name the file.
    pub fn load(&self) -> io::Result<Option<ServerTls>> {
        let (Some(cert), Some(key)) = (&self.processor_tls_cert, &self.processor_tls_key) else { return Ok(None) };
        let client_ca = self.processor_tls_client_ca.as_deref().map(|p| read(p, "client CA bundle")).transpose()?;
        Ok(Some(ServerTls { cert: read(cert, "certificate")?, key: read(key, "key")?, client_ca }))
    }
}

impl ServerTls {
    /// From PEM bytes (tests, embedding).
    pub fn from_pem(cert: Vec<u8>, key: Vec<u8>, client_ca: Option<Vec<u8>>) -> Self {
        ServerTls { cert, key, client_ca }
    }

    /// Server credentials; with a client CA, a verified client certificate is required.
    pub fn credentials(&self) -> ServerCredentials {
        let mut b = ServerCredentialsBuilder::new().add_cert(self.cert.clone(), self.key.clone());
        if let Some(ca) = &self.client_ca {
            b = b.root_cert(ca.clone(), CertificateRequestType::RequestAndRequireClientCertificateAndVerify);
        }
        b.build()
    }

    /// Whether clients must present a certificate.
    pub fn is_mutual(&self) -> bool {
        self.client_ca.is_some()
    }
}

impl ClientTls {
    /// From PEM bytes (tests, embedding).
    pub fn from_pem(ca: Vec<u8>, identity: Option<(Vec<u8>, Vec<u8>)>, server_name: Option<String>) -> Self {
        ClientTls { ca, identity, server_name }
    }
}

/// Where the relay or the worker calls the processor, and how: its addresses and TLS.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessorClientArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub target: switchboard_topology::ProcessorTarget,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub tls: GrpcClientTlsArgs,
}

impl ProcessorClientArgs {
    /// The client, over TLS when configured; errors name the file that could not be loaded.
    pub fn connect(&self) -> io::Result<switchboard_proto::ProcessorClient> {
        let mut client = crate::ProcessorClientBuilder::new(&self.target.processor_addr);
        if let Some(tls) = self.tls.load()? {
            // grpc-core's own log (handshake failures) through `log`, not stderr.
            grpcio::redirect_log();
            log::info!(
                "calling the processor over TLS ({})",
                if tls.is_mutual() { "mutual" } else { "server-authenticated" }
            );
            client = client.tls(tls);
        }
        Ok(client.connect())
    }
}

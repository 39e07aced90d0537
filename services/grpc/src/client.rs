//! Building a processor client: shared by every caller of the processor (relay, worker).

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use grpcio::{ChannelBuilder, Environment};

use switchboard_proto::ProcessorClient;

use crate::ClientTls;

/// How to reach the processor: its address, the completion-queue threads the channel runs on,
/// and TLS. The one way every caller (relay, worker, tests, benches) builds its client, so all
/// get the same channel settings.
///
/// ```no_run
/// # use switchboard_grpc::client::ProcessorClientBuilder;
/// let client = ProcessorClientBuilder::new("127.0.0.1:50051").connect();
/// ```
#[derive(Clone)]
pub struct ProcessorClientBuilder {
    addr: String,
    env: Option<Arc<Environment>>,
    tls: Option<ClientTls>,
}

impl std::fmt::Debug for ProcessorClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorClientBuilder")
            .field("addr", &self.addr)
            .field("shared_environment", &self.env.is_some())
            .field("tls", &self.tls)
            .finish()
    }
}

impl ProcessorClientBuilder {
    /// A plaintext client for the processor at `addr` (`host:port`), on its own
    /// completion-queue thread.
    ///
    /// `addr` may name several processors: `a:p,b:p` (IP addresses) or one DNS name resolving to
    /// many. Calls go round robin over the connected ones that report SERVING ([`SERVICE_CONFIG`]);
    /// a processor whose connection breaks (killed: the kernel resets it) leaves the rotation at
    /// once, one reporting NOT_SERVING (draining) as soon as it says so, and keepalive pings (1 s,
    /// 1 s timeout, also while idle) find a silently vanished host within ~2 s.
    pub fn new(addr: impl Into<String>) -> Self {
        ProcessorClientBuilder { addr: addr.into(), env: None, tls: None }
    }

    /// Runs the channel on an existing environment: in one process, a client and server
    /// sharing a completion-queue thread save a thread hand-off in each direction of every call.
    pub fn environment(mut self, env: Arc<Environment>) -> Self {
        self.env = Some(env);
        self
    }

    /// Calls over TLS. A handshake the processor refuses (no or a wrong client certificate, a
    /// server certificate the CA did not sign) fails the call with `UNAVAILABLE`, which the
    /// relay's breaker counts as a dependency failure.
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The client. The channel connects lazily and reconnects by itself with gRPC's backoff,
    /// capped here at one second so a restarted processor is found again quickly.
    pub fn connect(self) -> ProcessorClient {
        let env = self.env.unwrap_or_else(|| Arc::new(Environment::new(1)));
        let mut builder = ChannelBuilder::new(env)
            .max_reconnect_backoff(Duration::from_secs(1))
            .initial_reconnect_backoff(Duration::from_millis(100))
            .raw_cfg_string(c"grpc.service_config".into(), service_config())
            // Ours only: a DNS TXT record never replaces it.
            .raw_cfg_int(c"grpc.service_config_disable_resolution".into(), 1)
            .keepalive_time(Duration::from_secs(1))
            .keepalive_timeout(Duration::from_secs(1))
            .keepalive_permit_without_calls(true);
        if let Some(tls) = &self.tls {
            if let Some(name) = tls.server_name() {
                builder = builder.override_ssl_target(name);
            }
            builder = builder.set_credentials(tls.credentials());
        }
        ProcessorClient::new(builder.connect(&crate::grpc_target(&self.addr)))
    }
}

/// The processor channel's gRPC service config: round robin, over the processors whose
/// `grpc.health.v1.Health/Watch` for [`PROCESSOR_SERVICE`] says SERVING (gRPC client-side
/// health checking: a processor that went NOT_SERVING leaves the rotation at its message,
/// before it stops listening). A processor without `Watch` (UNIMPLEMENTED) counts as healthy.
///
/// [`PROCESSOR_SERVICE`]: switchboard_proto::health::PROCESSOR_SERVICE
pub const SERVICE_CONFIG: &str = concat!(
    r#"{"loadBalancingConfig": [{"round_robin": {}}], "#,
    r#""healthCheckConfig": {"serviceName": "switchboard.v1.Processor"}}"#
);

fn service_config() -> CString {
    // A constant without NUL bytes.
    CString::new(SERVICE_CONFIG).unwrap_or_default()
}

/// The gRPC metadata a call for `envelope` carries: the correlation id and the W3C traceparent.
pub fn call_metadata(envelope: &switchboard_proto::Envelope) -> Option<grpcio::Metadata> {
    let mut b = grpcio::MetadataBuilder::with_capacity(2);
    b.add_str("x-correlation-id", &envelope.id).ok()?;
    if let Some(tp) = envelope.traceparent() {
        b.add_str("traceparent", tp).ok()?;
    }
    Some(b.build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_service_config_watches_the_name_the_processor_reports_under() {
        let name = format!(r#""serviceName": "{}""#, switchboard_proto::health::PROCESSOR_SERVICE);
        assert!(super::SERVICE_CONFIG.contains(&name), "{}", super::SERVICE_CONFIG);
    }
}

//! Building a processor client: shared by every caller of the processor (relay, worker).

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use grpcio::{ChannelBuilder, Environment};

use switchboard_proto::ProcessorClient;

/// A client for the processor at `addr` (`host:port`), on its own completion-queue thread.
///
/// The channel connects lazily and reconnects by itself with gRPC's backoff, capped here at one
/// second so a restarted processor is found again quickly.
pub fn processor_client(addr: &str) -> ProcessorClient {
    processor_client_on(Arc::new(Environment::new(1)), addr)
}

/// Like [`processor_client`] on an existing environment: in one process, a client and server
/// sharing a completion-queue thread save a thread hand-off in each direction of every call.
///
/// `addr` may name several processors: `a:p,b:p` (IP addresses) or one DNS name resolving to
/// many. Calls go round robin over the connected ones that report SERVING ([`SERVICE_CONFIG`]);
/// a processor whose connection breaks (killed: the kernel resets it) leaves the rotation at
/// once, one reporting NOT_SERVING (draining) as soon as it says so, and keepalive pings (1 s,
/// 1 s timeout, also while idle) find a silently vanished host within ~2 s.
pub fn processor_client_on(env: Arc<Environment>, addr: &str) -> ProcessorClient {
    processor_client_tls_on(env, addr, None)
}

/// Like [`processor_client`], over TLS when `tls` is set (plaintext otherwise). A handshake
/// the processor refuses (no or a wrong client certificate, a server certificate the CA did
/// not sign) fails the call with `UNAVAILABLE`, which the relay's breaker counts as a
/// dependency failure.
pub fn processor_client_tls(addr: &str, tls: Option<&crate::ClientTls>) -> ProcessorClient {
    processor_client_tls_on(Arc::new(Environment::new(1)), addr, tls)
}

/// Like [`processor_client_tls`] on an existing environment.
pub fn processor_client_tls_on(env: Arc<Environment>, addr: &str, tls: Option<&crate::ClientTls>) -> ProcessorClient {
    let mut builder = ChannelBuilder::new(env)
        .max_reconnect_backoff(Duration::from_secs(1))
        .initial_reconnect_backoff(Duration::from_millis(100))
        .raw_cfg_string(c"grpc.service_config".into(), service_config())
        // Ours only: a DNS TXT record never replaces it.
        .raw_cfg_int(c"grpc.service_config_disable_resolution".into(), 1)
        .keepalive_time(Duration::from_secs(1))
        .keepalive_timeout(Duration::from_secs(1))
        .keepalive_permit_without_calls(true);
    if let Some(tls) = tls {
        if let Some(name) = tls.server_name() {
            builder = builder.override_ssl_target(name);
        }
        builder = builder.set_credentials(tls.credentials());
    }
    ProcessorClient::new(builder.connect(&crate::grpc_target(addr)))
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

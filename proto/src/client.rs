//! Building a processor client: shared by every caller of the processor (relay, worker).

use std::sync::Arc;
use std::time::Duration;

use grpcio::{ChannelBuilder, Environment};

use crate::ProcessorClient;

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
/// many. Calls go round robin over the connected ones; a processor whose connection breaks
/// (killed: the kernel resets it) leaves the rotation at once, and keepalive pings (1 s, 1 s
/// timeout, also while idle) find a silently vanished host within ~2 s.
pub fn processor_client_on(env: Arc<Environment>, addr: &str) -> ProcessorClient {
    processor_client_tls_on(env, addr, None)
}

/// Like [`processor_client`], over TLS when `tls` is set (plaintext otherwise). A handshake
/// the processor refuses (no or a wrong client certificate, a server certificate the CA did
/// not sign) fails the call with `UNAVAILABLE`, which the relay's breaker counts as a
/// dependency failure.
pub fn processor_client_tls(addr: &str, tls: Option<&crate::tls::ClientTls>) -> ProcessorClient {
    processor_client_tls_on(Arc::new(Environment::new(1)), addr, tls)
}

/// Like [`processor_client_tls`] on an existing environment.
pub fn processor_client_tls_on(
    env: Arc<Environment>,
    addr: &str,
    tls: Option<&crate::tls::ClientTls>,
) -> ProcessorClient {
    let mut builder = ChannelBuilder::new(env)
        .max_reconnect_backoff(Duration::from_secs(1))
        .initial_reconnect_backoff(Duration::from_millis(100))
        .load_balancing_policy(grpcio::LbPolicy::RoundRobin)
        .keepalive_time(Duration::from_secs(1))
        .keepalive_timeout(Duration::from_secs(1))
        .keepalive_permit_without_calls(true);
    if let Some(tls) = tls {
        if let Some(name) = tls.server_name() {
            builder = builder.override_ssl_target(name);
        }
        builder = builder.set_credentials(tls.credentials());
    }
    ProcessorClient::new(builder.connect(&crate::target::grpc_target(addr)))
}

/// The gRPC metadata a call for `envelope` carries: the correlation id and the W3C traceparent.
pub fn call_metadata(envelope: &crate::Envelope) -> Option<grpcio::Metadata> {
    let mut b = grpcio::MetadataBuilder::with_capacity(2);
    b.add_str("x-correlation-id", &envelope.id).ok()?;
    if let Some(tp) = envelope.traceparent() {
        b.add_str("traceparent", tp).ok()?;
    }
    Some(b.build())
}

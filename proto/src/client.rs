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
    let channel = ChannelBuilder::new(env)
        .max_reconnect_backoff(Duration::from_secs(1))
        .initial_reconnect_backoff(Duration::from_millis(100))
        .load_balancing_policy(grpcio::LbPolicy::RoundRobin)
        .keepalive_time(Duration::from_secs(1))
        .keepalive_timeout(Duration::from_secs(1))
        .keepalive_permit_without_calls(true)
        .connect(&crate::target::grpc_target(addr));
    ProcessorClient::new(channel)
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

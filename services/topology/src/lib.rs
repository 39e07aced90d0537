//! What the services of one deployment must agree on, in one place: topic, queue, exchange and
//! consumer-group names, and the default listen addresses. Each name is also a flag with an
//! environment fallback ([`Topics`], [`JobNames`]); the constants are the defaults.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod jobs;
pub mod topics;

pub use jobs::JobNames;
pub use topics::{ReplyTopics, Topics};

/// Topic the gateway publishes requests to and the relays consume.
pub const REQUESTS_TOPIC: &str = "switchboard.requests";
/// Topic the processor publishes replies to and the gateways consume.
pub const REPLIES_TOPIC: &str = "switchboard.replies";
/// Dead-letter topic of requests that cannot be handled.
pub const REQUESTS_DLQ_TOPIC: &str = "switchboard.requests.dlq";
/// Consumer group shared by every relay.
pub const RELAY_GROUP: &str = "switchboard-relay";
/// Work queue the gateways enqueue jobs on and the workers consume.
pub const JOBS_QUEUE: &str = "switchboard.jobs";
/// Fanout exchange the workers broadcast job events on.
pub const JOB_EVENTS_EXCHANGE: &str = "switchboard.job-events";

/// Where the gateway serves REST (and its admin endpoints).
pub const GATEWAY_ADDR: &str = "127.0.0.1:8080";
/// Where the processor serves gRPC, and where relays and workers call it.
pub const PROCESSOR_ADDR: &str = "127.0.0.1:50051";
/// Admin HTTP address of the relay.
pub const RELAY_ADMIN_ADDR: &str = "127.0.0.1:9101";
/// Admin HTTP address of the processor.
pub const PROCESSOR_ADMIN_ADDR: &str = "127.0.0.1:9102";
/// Admin HTTP address of the worker.
pub const WORKER_ADMIN_ADDR: &str = "127.0.0.1:9103";

/// Where relays and workers call the processor, as a flag with its environment fallback.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ProcessorTarget {
    /// Where the processors serve gRPC: HOST:PORT, several IP:PORT comma-separated, or a DNS
    /// name resolving to many; calls go round robin over the reachable ones.
    #[arg(long = "processor-addr", env = "PROCESSOR_ADDR", default_value = PROCESSOR_ADDR, value_parser = processor_addrs)]
    pub processor_addr: String,
}

mod processors;
pub use processors::processor_addrs;

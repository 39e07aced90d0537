//! Protobuf messages and gRPC stubs of switchboard, generated at build time from
//! `proto/switchboard/v1/*.proto` by `build.rs` (so they can never go stale), plus the
//! hand-written conversions in [`convert`].

#![allow(clippy::all)]

#[allow(warnings, clippy::all, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/switchboard.rs"));
}

pub mod batch;
pub mod convert;

pub use generated::envelope::{failure, Envelope, Failure, Hop, TraceContext};

/// The standard gRPC health service (`grpc.health.v1.Health`: `Check` and `Watch`).
pub mod health {
    pub use crate::generated::health::{health_check_response::ServingStatus, HealthCheckRequest, HealthCheckResponse};
    pub use crate::generated::health_grpc::{create_health, Health, HealthClient};

    /// The service name the processor reports its health under (and its callers watch).
    pub const PROCESSOR_SERVICE: &str = "switchboard.v1.Processor";
}
pub use batch::MAX_BATCH;

/// The processor's gRPC method paths: the `method` label of the `grpc_calls` metric on both
/// sides of the call.
pub mod methods {
    /// The unary call.
    pub const PROCESS: &str = "/switchboard.v1.Processor/Process";
    /// A batch; counted once per envelope it carries.
    pub const PROCESS_BATCH: &str = "/switchboard.v1.Processor/ProcessBatch";
}
pub use generated::job::{Job, JobEvent, JobStatus};
pub use generated::processor::{
    process_result, ItemStatus, ProcessBatchRequest, ProcessBatchResponse, ProcessRequest, ProcessResponse,
    ProcessResult,
};
pub use generated::processor_grpc::{create_processor, Processor, ProcessorClient};
pub use protobuf::Message as ProtoMessage;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use grpcio::{RpcContext, RpcStatus, RpcStatusCode, UnarySink};
use switchboard_proto::health::{HealthCheckRequest, HealthCheckResponse, ServingStatus};

/// The service name the processor reports under, besides the server-wide "".
pub const HEALTH_SERVICE_NAME: &str = "switchboard.v1.Processor";

/// `grpc.health.v1.Health/Check` for the processor: SERVING while it takes calls,
/// NOT_SERVING once shutdown began (so balancers drain it first).
#[derive(Clone, Debug, Default)]
pub struct Health {
    status: Arc<AtomicI32>,
}

impl Health {
    /// Sets the status reported for the server and for [`HEALTH_SERVICE_NAME`].
    pub fn set(&self, status: ServingStatus) {
        self.status.store(status as i32, Ordering::Relaxed);
    }
}

impl switchboard_proto::health::Health for Health {
    fn check(&mut self, ctx: RpcContext<'_>, req: HealthCheckRequest, sink: UnarySink<HealthCheckResponse>) {
        let reply = if req.service.is_empty() || req.service == HEALTH_SERVICE_NAME {
            let mut resp = HealthCheckResponse::new();
            resp.status = protobuf::EnumOrUnknown::from_i32(self.status.load(Ordering::Relaxed));
            sink.success(resp)
        } else {
            sink.fail(RpcStatus::with_message(RpcStatusCode::NOT_FOUND, format!("unknown service {}", req.service)))
        };
        ctx.spawn(async move {
            let _ = reply.await;
        });
    }
}

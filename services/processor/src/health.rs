use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use event_listener::Event;
use futures::SinkExt;
use futures_lite::future;
use grpcio::{RpcContext, RpcStatus, RpcStatusCode, ServerStreamingSink, UnarySink, WriteFlags};
use switchboard_proto::health::{HealthCheckRequest, HealthCheckResponse, ServingStatus};

/// The service name the processor reports under, besides the server-wide "" (the name its
/// callers' channels watch).
pub const HEALTH_SERVICE_NAME: &str = switchboard_proto::health::PROCESSOR_SERVICE;

/// How often a watcher is sent the status again although it did not change: a watcher whose
/// client vanished is only noticed when a write fails, so this bounds how long it lingers.
const RESEND: Duration = Duration::from_secs(5);

/// `grpc.health.v1.Health` for the processor: SERVING while it takes calls, NOT_SERVING once
/// shutdown began. `Check` answers probes; `Watch` streams every change to the callers'
/// channels (gRPC client-side health checking), which then leave a NOT_SERVING processor out
/// of their round robin.
#[derive(Clone, Debug, Default)]
pub struct Health {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// The status changed or the watches ended.
    changed: Event,
}

#[derive(Debug, Default)]
struct State {
    status: ServingStatus,
    ended: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields, consistent after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Health {
    /// Sets the status reported for the server and for [`HEALTH_SERVICE_NAME`]; watchers are
    /// sent it if it changed.
    pub fn set(&self, status: ServingStatus) {
        let mut state = self.shared.lock();
        if state.status != status {
            state.status = status;
            self.shared.changed.notify(usize::MAX);
        }
    }

    /// The status reported now.
    pub fn status(&self) -> ServingStatus {
        self.shared.lock().status
    }

    /// Ends every `Watch` stream (after it has been sent the current status) and any started
    /// later: the server's shutdown waits for its calls, and a watch would never end by itself.
    pub fn end_watches(&self) {
        self.shared.lock().ended = true;
        self.shared.changed.notify(usize::MAX);
    }
}

fn known(service: &str) -> bool {
    service.is_empty() || service == HEALTH_SERVICE_NAME
}

fn unknown(service: &str) -> RpcStatus {
    RpcStatus::with_message(RpcStatusCode::NOT_FOUND, format!("unknown service {service}"))
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    let mut resp = HealthCheckResponse::new();
    resp.status = status.into();
    resp
}

impl switchboard_proto::health::Health for Health {
    fn check(&mut self, ctx: RpcContext<'_>, req: HealthCheckRequest, sink: UnarySink<HealthCheckResponse>) {
        let reply =
            if known(&req.service) { sink.success(response(self.status())) } else { sink.fail(unknown(&req.service)) };
        ctx.spawn(async move {
            let _ = reply.await;
        });
    }

    fn watch(&mut self, ctx: RpcContext<'_>, req: HealthCheckRequest, sink: ServerStreamingSink<HealthCheckResponse>) {
        ctx.spawn(watch(self.shared.clone(), known(&req.service), sink));
    }
}

/// One `Watch` stream: the current status at once, then each change and every [`RESEND`]; it
/// ends when [`Health::end_watches`] is called or the client goes away. One message is in
/// flight at a time and each carries the status of its sending, so a slow client is never
/// queued a backlog: it gets the latest status when it reads again. A service this server does
/// not have is reported SERVICE_UNKNOWN on an open stream, as the health protocol's `Watch`
/// specifies (`Check` answers NOT_FOUND).
async fn watch(shared: Arc<Shared>, known: bool, mut sink: ServerStreamingSink<HealthCheckResponse>) {
    let mut sent = None;
    let mut resend = true;
    loop {
        // Listen before reading the state, so a change in between is not missed.
        let changed = shared.changed.listen();
        let (status, ended) = {
            let state = shared.lock();
            (if known { state.status } else { ServingStatus::SERVICE_UNKNOWN }, state.ended)
        };
        // What this watcher was last sent is all it needs to differ from.
        if resend || sent != Some(status) {
            if sink.send((response(status), WriteFlags::default())).await.is_err() {
                return; // The client cancelled or went away.
            }
            sent = Some(status);
        }
        if ended {
            break;
        }
        resend = future::or(
            async {
                changed.await;
                false
            },
            async {
                smol::Timer::after(RESEND).await;
                true
            },
        )
        .await;
    }
    let _ = sink.close().await;
}

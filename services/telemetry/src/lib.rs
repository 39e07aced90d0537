//! Observability shared by every switchboard service: the seed-style log format, Prometheus
//! metrics, W3C trace context, readiness checks and breaker state in both. No tokio: every
//! future is `Send`, so smol and async-std (tide) callers use the same API.
//!
//! The admin server, the serve loop and graceful shutdown live in `switchboard-service`.
//!
//! # Tracing a hop
//!
//! ```
//! use std::time::Instant;
//! use switchboard_telemetry::{Metrics, TraceContext};
//!
//! let metrics = Metrics::builder("relay").version(env!("CARGO_PKG_VERSION")).build();
//! // Per consumed message (the header is bytes from the Kafka record):
//! let header: Option<&[u8]> = None;
//! let ctx = TraceContext::continue_or_new(header).child();
//! let started = Instant::now();
//! // ... grpc call with metadata ("traceparent", ctx.to_string()) ...
//! metrics.hop("grpc_call", started.elapsed());
//! metrics.grpc_call("/switchboard.v1.Processor/Process", 0);
//! assert!(metrics.encode().contains("grpc_call"));
//! ```
//!
//! # Wiring the gateway (tide)
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::time::Instant;
//! use switchboard_telemetry::{Metrics, Readiness, TraceContext, CONTENT_TYPE, TRACEPARENT};
//!
//! #[derive(Clone)]
//! struct State {
//!     metrics: Metrics,
//!     readiness: Readiness,
//! }
//!
//! // Counts and times every request. The route label is the path checked against the
//! // builder's allow-list, so unknown paths count as "other"; templated routes (`/jobs/:id`)
//! // should record the template from their handler instead.
//! fn track<'a>(
//!     req: tide::Request<State>,
//!     next: tide::Next<'a, State>,
//! ) -> Pin<Box<dyn Future<Output = tide::Result> + Send + 'a>> {
//!     Box::pin(async move {
//!         let metrics = req.state().metrics.clone();
//!         let _in_flight = metrics.http_in_flight();
//!         let (path, method, started) = (req.url().path().to_owned(), req.method(), Instant::now());
//!         let res = next.run(req).await;
//!         metrics.http_request(&path, method.as_ref(), res.status().into(), started.elapsed());
//!         Ok(res)
//!     })
//! }
//!
//! let state = State {
//!     metrics: Metrics::builder("gateway").routes(["/messages", "/jobs"]).build(),
//!     readiness: Readiness::new(),
//! };
//! let mut app = tide::with_state(state.clone());
//! app.with(track);
//! app.at("/healthz").get(|_| async { Ok("ok\n") });
//! app.at("/readyz").get(|req: tide::Request<State>| async move {
//!     Ok(tide::Response::from(req.state().readiness.report().await.into_response()))
//! });
//! app.at("/metrics").get(|req: tide::Request<State>| async move {
//!     let mut res = tide::Response::new(200);
//!     res.set_body(req.state().metrics.encode());
//!     res.insert_header("content-type", CONTENT_TYPE);
//!     Ok(res)
//! });
//! app.at("/messages").post(|req: tide::Request<State>| async move {
//!     // Continue the client's trace (or start one) and send the child on in the Kafka headers.
//!     let ctx = TraceContext::continue_or_new(req.header(TRACEPARENT).map(|v| v.as_str())).child();
//!     let _kafka_header = (TRACEPARENT, ctx.to_string().into_bytes());
//!     let mut res = tide::Response::new(202);
//!     res.insert_header(TRACEPARENT, ctx.to_string());
//!     Ok(res)
//! });
//!
//! # smol::block_on(async {
//! let url = |path: &str| http_types::Url::parse("http://gateway").unwrap().join(path).unwrap();
//! let req = http_types::Request::new(http_types::Method::Post, url("/messages"));
//! let res: http_types::Response = app.respond(req).await.unwrap();
//! assert_eq!(res.status(), 202);
//! let req = http_types::Request::new(http_types::Method::Get, url("/readyz"));
//! let res: http_types::Response = app.respond(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//! let text = state.metrics.encode();
//! assert!(text.contains(r#"http_requests_total{route="/messages",method="POST",status="202"} 1"#));
//! assert!(text.contains(r#"http_requests_total{route="other",method="GET",status="200"} 1"#));
//! # });
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod breakers;
mod log_buffer;
mod logging;
mod metrics;
mod readiness;
mod timestamp;
mod trace;

pub use breakers::{ready_unless_open, watch_breaker};
pub use logging::{flush_logs, init_logging};
pub use metrics::{
    grpc_code_name, AckOutcome, BreakerCall, BreakerState, InFlight, LabelValues, Metrics, MetricsBuilder,
    CONTENT_TYPE, DEFAULT_LABEL_CAP, OTHER,
};
pub use readiness::{CheckStatus, Readiness, ReadyReport, DEFAULT_CHECK_TIMEOUT};
pub use trace::{SpanId, TraceContext, TraceId, TraceparentError, TRACEPARENT};

#[cfg(test)]
mod tests {
    fn shared_across_threads<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handles_are_send_sync_and_clone() {
        shared_across_threads::<crate::Metrics>();
        shared_across_threads::<crate::Readiness>();
        shared_across_threads::<crate::TraceContext>();
    }
}

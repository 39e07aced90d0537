//! Distributed traces of the chain over OTLP/HTTP (protobuf): one span per hop, recorded by the
//! service that did the hop, with the trace and parent ids of the W3C `traceparent` the chain
//! already carries.
//!
//! - [`ExportConfig::from_env`] reads the OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//!   `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, …). No endpoint: export is off and costs a branch.
//! - [`Exporter::start`] runs one exporter thread per process; [`Exporter::tracer`] gives each
//!   service its [`Tracer`] (its `service.name` and its Prometheus registry).
//! - A service asks [`Tracer::enter`] for its span's context when work arrives, decides with
//!   [`Tracer::keep`] once the work is done, and only then builds its [`Span`]s and hands them to
//!   [`Tracer::export`], which never waits: a full queue drops and counts.
//!
//! No async runtime: the exporter is a plain thread with a blocking HTTP client, whatever
//! executor the services run on.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod config;
mod encode;
mod exporter;
mod resolver;
pub mod sampler;
mod span;
mod tracer;

pub use config::{ConfigError, ExportConfig};
pub use exporter::Exporter;
/// The OTLP messages, for receivers and tests that decode what is exported.
pub use opentelemetry_proto::tonic as proto;
pub use sampler::{Policy, Sampler};
pub use span::{log_line, micros_to_nanos, now_unix_nanos, Kind, Span, Status, Value, LOG_LINE_CAP};
pub use tracer::{Entered, Tracer};

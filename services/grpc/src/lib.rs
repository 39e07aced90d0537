//! The gRPC plumbing around the processor, kept out of `switchboard-proto` so that crate stays
//! messages and stubs only: building a processor client ([`client`]: round robin over the
//! processors that report SERVING, keepalive, reconnect), `PROCESSOR_ADDR` as a gRPC target
//! ([`target`]) and TLS / mutual TLS for both sides of the call, with their flags ([`tls`]).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

pub mod client;
pub mod target;
pub mod tls;

pub use client::{call_metadata, ProcessorClientBuilder};
pub use target::grpc_target;
pub use tls::{ClientTls, GrpcClientTlsArgs, GrpcServerTlsArgs, ProcessorClientArgs, ServerTls};

//! The processor service: a grpcio server whose `Process` call appends the `gRPC Server` hop,
//! then publishes the reply to the envelope's reply topic (the `KAFKA Publisher` hop) before
//! answering, so an OK status means the reply is on the broker.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod args;
mod handler;
mod health;
mod server;

pub use args::ProcessorArgs;
pub use handler::ProcessorHandler;
pub use health::{Health, HEALTH_SERVICE_NAME};
pub use server::{ProcessorServer, ServerConfig};

//! The one HTTP/1.1 serve loop of switchboard: [`serve_http`] serves the gateway's REST API,
//! every admin port and the console. It backs off accept errors that pass (EMFILE and the
//! like), holds each connection to header and body deadlines, caps connections to what
//! RLIMIT_NOFILE allows ([`fit_connections`]), speaks HTTPS through rustls ([`ServerTls`]) and
//! answers errors with the one JSON error body ([`json_error`]).
//!
//! Nothing here needs tokio: connections run on async-h1, timers on async-io, and every future
//! is `Send`, so smol and async-std (tide) callers use the same API.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod deadline;
mod fdlimit;
mod serve;
mod singletons;
mod tls;

pub use fdlimit::{fit_connections, FD_RESERVE};
pub use serve::{error_code, json_error, serve_http, serve_until, Connection, HttpLimits};
pub use singletons::SINGLETON_HEADERS;
pub use tls::{load_certs, ServerTls, SharedStream, TlsFiles};

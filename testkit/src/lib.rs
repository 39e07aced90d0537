//! Test kit of switchboard: one conformance suite every backend of the ports runs (the real
//! adapters and the embedded brokers of `switchboard-embedded`), and fault injection around any
//! port. A dev-dependency only: no production binary links it.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod certs;
pub mod conformance;
pub mod fault;

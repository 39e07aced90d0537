//! Test kit of switchboard: embedded in-memory brokers implementing the same ports as the real
//! adapters, fault injection around any port, and one conformance suite every backend runs.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod certs;
pub mod conformance;
pub mod fake;
pub mod fault;

//! Test kit of switchboard: one conformance suite every backend of the ports runs (the real
//! adapters and the embedded brokers of `switchboard-embedded`), and fault injection around any
//! port. A dev-dependency only: no production binary links it.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod certs;
pub mod conformance;
pub mod fault;

/// Runs `test` to completion on smol, failing it if it has not finished within `limit`: a hung
/// test fails with a message instead of stalling the whole run (the limit is generous, never a
/// timing assertion).
pub fn block_on_within<T>(limit: std::time::Duration, test: impl std::future::Future<Output = T>) -> T {
    smol::block_on(futures_lite::future::or(test, async {
        smol::Timer::after(limit).await;
        panic!("test hung for {limit:?}");
    }))
}

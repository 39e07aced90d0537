//! Behaviour of the breaker, retry budget and bulkhead through the public API.

mod calls;
mod concurrency;
mod events;
mod support;
mod transitions;

//! One conformance suite for every backend of the ports, in the style of Watermill's universal
//! pub/sub tests: each case is a `pub fn`, backends call them from their own tests.

pub mod pubsub;
pub mod queue;

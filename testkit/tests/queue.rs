//! The work-queue conformance suite against the embedded broker.

use switchboard_embedded::queue::FakeWorkQueue;

switchboard_testkit::queue_conformance!(FakeWorkQueue::new());

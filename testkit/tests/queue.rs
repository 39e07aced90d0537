//! The work-queue conformance suite against the embedded broker.

use switchboard_testkit::fake::queue::FakeWorkQueue;

switchboard_testkit::queue_conformance!(FakeWorkQueue::new());

//! The work-queue conformance suite against the embedded broker.

use switchboard_embedded::queue::MemoryWorkQueue;

switchboard_testkit::queue_conformance!(MemoryWorkQueue::new());

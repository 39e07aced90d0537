//! The work-queue conformance suite, the reconnect test and the management API's depths
//! against a real RabbitMQ (`AMQP_URL`, default 127.0.0.1:5672; its management API at
//! `SWITCHBOARD_RABBITMQ_MANAGEMENT_URL`, default 127.0.0.1:15672). Ignored by default; run
//! with `cargo test -p switchboard-amqp -- --include-ignored` (make test-real). They fail when
//! the broker or its management API is unreachable.

#[path = "real/management.rs"]
mod management;
#[path = "real/reconnect.rs"]
mod reconnect;
#[path = "real/refusals.rs"]
mod refusals;

use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};

#[track_caller]
fn connect() -> AmqpWorkQueue {
    let config = AmqpConfig::from_env();
    AmqpWorkQueue::connect(config).unwrap_or_else(|e| panic!("RabbitMQ unreachable (set AMQP_URL): {e}"))
}

switchboard_testkit::queue_conformance!(connect(), [#[ignore = "needs RabbitMQ: make test-real"]]);

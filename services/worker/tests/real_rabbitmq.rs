//! The worker scenarios on a real RabbitMQ (`AMQP_URL`, default 127.0.0.1:5672 guest/guest).
//! Ignored by default; `make test-real` runs them (`cargo test -p switchboard-worker --
//! --include-ignored`). They fail when the broker is unreachable. Queues and exchanges are
//! unique per test.

mod support;

use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};

#[track_caller]
fn connect() -> AmqpWorkQueue {
    AmqpWorkQueue::connect(AmqpConfig::from_env())
        .unwrap_or_else(|e| panic!("RabbitMQ unreachable (set AMQP_URL): {e}"))
}

#[test]
#[ignore = "needs RabbitMQ: make test-real"]
fn round_trip() {
    support::run(support::round_trip(connect()));
}

#[test]
#[ignore = "needs RabbitMQ: make test-real"]
fn killed_worker_jobs_completed_by_another() {
    support::run(support::killed_worker_jobs_completed_by_another(connect(), connect));
}

#[test]
#[ignore = "needs RabbitMQ: make test-real"]
fn retry_then_success() {
    support::run(support::retry_then_success(connect()));
}

#[test]
#[ignore = "needs RabbitMQ: make test-real"]
fn exhausted_retries_dead_letter() {
    support::run(support::exhausted_retries_dead_letter(connect()));
}

#[test]
#[ignore = "needs RabbitMQ: make test-real"]
fn poison_dead_lettered_worker_keeps_going() {
    support::run(support::poison_dead_lettered_worker_keeps_going(connect()));
}

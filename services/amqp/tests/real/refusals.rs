//! Refusals RabbitMQ will repeat forever are `Invalid` (callers dead-letter or fail fast);
//! only trouble a retry can fix is `Unavailable`.

use switchboard_amqp::AmqpWorkQueue;
use switchboard_ports::{ErrorKind, QueueOptions, WorkQueue};
use switchboard_testkit::conformance::queue::run;

#[track_caller]
fn connect() -> AmqpWorkQueue {
    AmqpWorkQueue::connect(switchboard_amqp::AmqpConfig::from_env())
        .unwrap_or_else(|e| panic!("RabbitMQ unreachable (set AMQP_URL): {e}"))
}

#[test]
#[ignore = "needs RabbitMQ: make test-real"]
fn access_refused_is_permanent_and_the_connection_keeps_working() {
    let q = connect();
    run("refusals", async {
        // `amq.` names are reserved: RabbitMQ closes the channel with 403 ACCESS_REFUSED.
        let reserved = format!("amq.sbtest.{:x}", fastrand::u64(..));
        let err = q.declare(&reserved, &QueueOptions::default()).await.expect_err("reserved name");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert!(!err.is_transient());
        // One refused channel, not a lost connection.
        let name = format!("refusals.{:x}", fastrand::u64(..));
        q.declare(&name, &QueueOptions::default()).await.expect("declare after a refusal");
        q.delete(&name).await.unwrap();
        q.close().await.unwrap();
    });
}

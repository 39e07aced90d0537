//! Depths through RabbitMQ's management API: a delivery held unacked shows as `unacked == 1`
//! beside no ready message and one consumer, and the retry queues the adapter declares are
//! found under the names the console reads.
//! An unreachable or refusing API fails the test at once: nothing here skips.

use std::time::{Duration, Instant};

use switchboard_amqp::{retry_queues, AmqpConfig, ManagementApi};
use switchboard_ports::{ErrorKind, InspectQueues, Message, QueueDepth, QueueOptions, WorkQueue};
use switchboard_testkit::conformance::queue::{recv_within, run};

/// Where the management API answers unless `SWITCHBOARD_RABBITMQ_MANAGEMENT_URL` says
/// (scripts/brokers.sh enables the plugin on a local RabbitMQ).
const DEFAULT_API: &str = "http://127.0.0.1:15672";
/// How long the counts may lag: RabbitMQ refreshes queue statistics every 5 s by default.
const STATS_LAG: Duration = Duration::from_secs(30);

#[test]
#[ignore = "needs RabbitMQ: make test-real"]
fn a_delivery_held_unacked_shows_as_unacked_through_the_management_api() {
    let q = super::connect();
    let url = std::env::var("SWITCHBOARD_RABBITMQ_MANAGEMENT_URL").unwrap_or_else(|_| DEFAULT_API.to_owned());
    let api = ManagementApi::new(&url, Some(&AmqpConfig::from_env().url), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("management URL {url}: {e}"));
    run("management", async {
        let name = format!("management.{:x}", fastrand::u64(..));
        let options = QueueOptions::default();
        q.declare(&name, &options).await.expect("declare");
        q.enqueue(&name, Message::new(b"held".to_vec())).await.expect("enqueue");
        let jobs = q.consume(&name, 1).await.expect("consume");
        let held = recv_within(&jobs, Duration::from_secs(10)).await.expect("the job is delivered");

        // The broker collects message counts and the consumer count apart, so one answer may
        // hold a fresh count beside a stale one: wait for the whole state, not its first part.
        let expected = QueueDepth { messages: 0, unacked: Some(1), consumers: 1 };
        let deadline = Instant::now() + STATS_LAG;
        loop {
            match api.queue_depth(&name).await {
                Ok(depth) if depth == expected => break,
                Ok(depth) => assert!(Instant::now() < deadline, "never {expected:?} within {STATS_LAG:?}: {depth:?}"),
                // Only "no counts yet" (statistics not collected) is worth waiting for; an
                // unreachable API, refused credentials or an unknown queue fail here.
                Err(e) if e.kind() == ErrorKind::Other => {
                    assert!(Instant::now() < deadline, "no statistics within {STATS_LAG:?}: {e}")
                }
                Err(e) => panic!("management API at {url} (is rabbitmq_management enabled?): {e}"),
            }
            async_io::Timer::after(Duration::from_millis(250)).await;
        }

        // The retry queues the console lists exist under those names (an unknown one is Invalid).
        for retry in retry_queues(&name, &options) {
            if let Err(e) = api.queue_depth(&retry).await {
                assert_eq!(e.kind(), ErrorKind::Other, "{retry}: {e}");
            }
        }
        assert_eq!(api.queue_depth("switchboard.no-such-queue").await.unwrap_err().kind(), ErrorKind::Invalid);

        held.ack().await.expect("ack");
        drop(jobs);
        q.delete(&name).await.expect("delete");
    });
}

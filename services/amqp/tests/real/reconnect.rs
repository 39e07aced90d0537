//! Forced disconnects: enqueue and consume resume, and no confirmed job is lost.
//!
//! The test runs in its own vhost so `rabbitmqctl close_all_connections --vhost` closes only
//! its connections, not those of anyone else on the broker.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};
use switchboard_ports::{Message, QueueOptions, WorkQueue};
use switchboard_testkit::conformance::queue::{recv_within, run};

const VHOST: &str = "switchboard-reconnect-test";

#[track_caller]
fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl runs (needed by this test)");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Connections open in the test's vhost.
fn our_connections() -> usize {
    rabbitmqctl(&["list_connections", "-q", "--no-table-headers", "vhost"])
        .lines()
        .filter(|l| l.trim() == VHOST)
        .count()
}

#[track_caller]
fn close_our_connections() {
    assert!(our_connections() >= 1, "the adapter has no connection to close");
    rabbitmqctl(&["close_all_connections", "--vhost", VHOST, "switchboard reconnect test"]);
}

#[test]
#[ignore = "needs RabbitMQ and rabbitmqctl: make test-real"]
fn enqueue_and_consume_resume_after_forced_disconnect() {
    rabbitmqctl(&["add_vhost", VHOST]);
    rabbitmqctl(&["set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]);
    let url = format!("amqp://guest:guest@127.0.0.1:5672/{VHOST}");
    let config = AmqpConfig::new(url).with_reconnect(Duration::from_millis(50), Duration::from_secs(1));
    let q = AmqpWorkQueue::connect(config).unwrap_or_else(|e| panic!("RabbitMQ unreachable: {e}"));

    run("reconnect", async {
        let name = format!("reconnect.{:x}", fastrand::u64(..));
        q.declare(&name, &QueueOptions::default()).await.expect("declare");
        let jobs = q.consume(&name, 20).await.expect("consume");
        const N: u32 = 300;
        let mut confirmed = HashSet::new();
        let mut failed = 0;
        let mut done = HashSet::new();
        let mut redelivered = 0;
        for i in 0..N {
            if i == 100 || i == 200 {
                close_our_connections();
            }
            // Every enqueue that returns Ok was confirmed: it must come out. Ones that fail
            // (the broker may refuse while the connection goes down) are the caller's to retry.
            match q.enqueue(&name, Message::new(i.to_be_bytes().to_vec())).await {
                Ok(()) => {
                    confirmed.insert(i);
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("enqueue {i} failed: {e}");
                }
            }
            // Consume as we go so jobs are in flight when the connection drops.
            while let Some(j) = recv_within(&jobs, Duration::from_millis(1)).await {
                redelivered += usize::from(j.redelivered());
                let n = u32::from_be_bytes(j.payload().try_into().expect("4 bytes"));
                // An ack on a dead channel fails; the job comes back redelivered.
                if j.ack().await.is_ok() {
                    done.insert(n);
                }
            }
        }
        while !confirmed.is_subset(&done) {
            let Some(j) = recv_within(&jobs, Duration::from_secs(15)).await else {
                let lost: Vec<_> = confirmed.difference(&done).take(10).collect();
                panic!(
                    "{} confirmed jobs never came back after reconnects, e.g. {lost:?}",
                    confirmed.len() - done.len()
                );
            };
            let n = u32::from_be_bytes(j.payload().try_into().expect("4 bytes"));
            if j.ack().await.is_ok() {
                done.insert(n);
            }
        }
        eprintln!("{} confirmed, {failed} failed, {redelivered} redelivered", confirmed.len());
        assert!(confirmed.len() as u32 + failed == N);
        assert!(our_connections() >= 1, "not reconnected");
        assert!(confirmed.len() as u32 >= N - 10, "only {} of {N} enqueues confirmed", confirmed.len());
        jobs.close().await.expect("close stream");
        q.delete(&name).await.expect("delete");
    });
    rabbitmqctl(&["delete_vhost", VHOST]);
}

//! RabbitMQ stopped under a live gateway, then started again (`make test-real`). Stops the
//! broker's application with `rabbitmqctl stop_app` (the node stays up) and starts it again
//! whatever happens, so it runs alone: nothing else may use RabbitMQ meanwhile.
//!
//! While the connection is known to be down, `POST /jobs` is refused by the adapter at once
//! (503 + `Retry-After`, "broker unavailable") instead of waiting for its budget; once the
//! broker is back the adapter reconnects (reconnect delays capped at 1 s) and jobs are
//! accepted again. The figures are printed.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::edges_support::{amqp_url, drain_jobs, gateway_config, gateway_on_memory, post, with_run_id, Served};
use switchboard_amqp::{AmqpConfig, AmqpWorkQueue};
use switchboard_gateway::JobsConfig;
use switchboard_ports::{QueueOptions, WorkQueue};

/// Long enough that an answer at the budget cannot pass for the broker's refusal.
const BUDGET: Duration = Duration::from_secs(10);

#[track_caller]
fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl runs (needed by this test)");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Starts RabbitMQ's application again when dropped, also when the test fails.
struct StartAgain;

impl Drop for StartAgain {
    fn drop(&mut self) {
        let started = Command::new("rabbitmqctl").arg("start_app").status();
        let awaited = Command::new("rabbitmqctl").args(["await_startup", "--timeout", "60"]).status();
        if !(started.is_ok_and(|s| s.success()) && awaited.is_ok_and(|s| s.success())) {
            eprintln!("RABBITMQ NOT RESTARTED: run `rabbitmqctl start_app`");
        }
    }
}

async fn connect(url: String) -> AmqpWorkQueue {
    smol::unblock(move || AmqpWorkQueue::connect(AmqpConfig::new(url)))
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ unreachable (set AMQP_URL): {e}"))
}

#[test]
#[ignore = "stops and starts RabbitMQ with rabbitmqctl: make test-real"]
fn rabbitmq_stopped_jobs_are_refused_at_once_and_accepted_again_when_it_returns() {
    with_run_id(|run| async move {
        let queue = format!("test.jobs.{run}");
        let config = gateway_config(BUDGET, Duration::from_millis(500));
        let gateway = gateway_on_memory(config).await;
        let broker = connect(amqp_url()).await;
        let jobs = JobsConfig::default().with_names(queue.clone(), format!("test.job-events.{run}"));
        let gateway =
            gateway.with_jobs(jobs, Arc::new(broker.clone()), Arc::new(broker)).await.expect("jobs on rabbitmq");
        let served = Served::start(gateway);
        let before = post(served.addr, "/jobs", "before the outage", None).await;
        assert_eq!(before.status, 202, "{}", before.body);

        let restart = StartAgain;
        rabbitmqctl(&["stop_app"]);
        // A request may meet the connection while it goes down; the first 503 says it is down.
        let mut first = None;
        for _ in 0..5 {
            let started = Instant::now();
            let reply = post(served.addr, "/jobs", "during the outage", None).await;
            if reply.status == 503 {
                first = Some((reply, started.elapsed()));
                break;
            }
        }
        let (first, took) = first.expect("no 503 while RabbitMQ is stopped");
        eprintln!("first refusal after the stop: {took:?} ({})", first.body);
        // Known down now: each answer is the adapter's refusal, not the budget running out.
        for _ in 0..5 {
            let started = Instant::now();
            let reply = post(served.addr, "/jobs", "during the outage", None).await;
            let took = started.elapsed();
            assert_eq!(reply.status, 503, "{}", reply.body);
            assert_eq!(reply.header("Retry-After"), Some("1"));
            assert_eq!(reply.json()["error"]["message"], "broker unavailable", "refused by the budget, not the broker");
            eprintln!("503 while down after {took:?}");
        }

        drop(restart);
        let back = Instant::now();
        let mut accepted = None;
        for _ in 0..600 {
            let reply = post(served.addr, "/jobs", "after the outage", None).await;
            if reply.status == 202 {
                accepted = Some(reply);
                break;
            }
            assert_eq!(reply.status, 503, "{}", reply.body);
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
        let accepted = accepted.expect("no job accepted within 30 s of RabbitMQ's return");
        eprintln!("job accepted {:?} after RabbitMQ was back: {}", back.elapsed(), accepted.body);
        served.stop().await;

        let direct = connect(amqp_url()).await;
        direct.declare(&queue, &QueueOptions::default()).await.unwrap();
        let stored = drain_jobs(&direct, &queue).await;
        assert!(!stored.is_empty(), "the job accepted after the outage is not on the queue");
        direct.delete(&queue).await.unwrap();
        direct.close().await.unwrap();
    });
}

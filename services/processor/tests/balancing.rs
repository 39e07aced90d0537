//! Several processors behind one client (`PROCESSOR_ADDR=a:p,b:p`): calls go round robin, and
//! a processor that goes away, or reports NOT_SERVING, is routed around; replies go to the
//! partition the envelope names.

use std::sync::Arc;
use std::time::Duration;

use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_grpc::client::ProcessorClientBuilder;
use switchboard_ports::{Subscriber, TopicAdmin};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::health::ServingStatus;
use switchboard_proto::{Envelope, ProcessRequest, ProcessorClient};
use switchboard_telemetry::Metrics;
use switchboard_testkit::block_on_within;
use switchboard_topology::topics::ReplyTopics;

fn start(broker: &MemoryBroker, metrics: Metrics) -> ProcessorServer {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        reply_topics: ReplyTopics::only("replies"),
        metrics,
        ..ServerConfig::default()
    };
    ProcessorServer::start(&config, Arc::new(broker.clone())).unwrap()
}

fn request(id: &str, partition: Option<i32>) -> ProcessRequest {
    let mut envelope = Envelope::start(id, "x", "replies", Duration::from_secs(5));
    envelope.reply_partition = partition;
    let mut r = ProcessRequest::new();
    r.envelope = Some(envelope).into();
    r
}

fn calls(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("grpc_calls_total{") && l.contains("code=\"OK\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn calls_spread_over_every_processor_and_a_stopped_one_is_routed_around() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        let (ma, mb) = (Metrics::new("processor"), Metrics::new("processor"));
        let (a, b) = (start(&broker, ma.clone()), start(&broker, mb.clone()));
        let client = ProcessorClientBuilder::new(format!("{},{}", a.local_addr(), b.local_addr())).connect();
        // A processor joins the rotation once connected and its health reported SERVING.
        assert!(call_until(&client, || calls(&ma) > 0 && calls(&mb) > 0).await, "both joined");
        let (a0, b0) = (calls(&ma), calls(&mb));
        for i in 0..40 {
            client.process_async(&request(&format!("r{i}"), None)).unwrap().await.expect("both up: every call ok");
        }
        let (ca, cb) = (calls(&ma) - a0, calls(&mb) - b0);
        assert_eq!(ca + cb, 40);
        assert!(ca >= 10 && cb >= 10, "round robin over both: {ca} and {cb}");

        b.shutdown().await;
        // Calls already routed to b may fail while its connection closes; within a bounded
        // number of calls every one succeeds on a.
        let mut failed = 0;
        let mut streak = 0;
        for i in 0..400 {
            match client.process_async(&request(&format!("s{i}"), None)).unwrap().await {
                Ok(_) => streak += 1,
                Err(_) => {
                    failed += 1;
                    streak = 0;
                    smol::Timer::after(Duration::from_millis(20)).await;
                }
            }
            if streak == 50 {
                break;
            }
        }
        assert_eq!(streak, 50, "after b stopped, calls succeed on a ({failed} failed on the way)");
        assert!(failed <= 10, "{failed} calls failed after b stopped");
        a.shutdown().await;
    });
}

/// Makes calls (jobs: nothing is published) until `done`, at most [`MAX_CALLS`]; whether it got
/// there. Calls are counted, not timed: a slow machine only makes it slower.
async fn call_until(client: &ProcessorClient, mut done: impl FnMut() -> bool) -> bool {
    for i in 0..MAX_CALLS {
        if done() {
            return true;
        }
        job(client, &format!("u{i}")).await;
    }
    done()
}

async fn job(client: &ProcessorClient, id: &str) {
    let mut r = ProcessRequest::new();
    r.envelope = Some(Envelope::start(id, "x", "", Duration::from_secs(5))).into();
    client.process_async(&r).unwrap().await.expect("a healthy processor answers");
}

const MAX_CALLS: usize = 2000;

#[test]
fn a_processor_reporting_not_serving_gets_no_calls_until_it_serves_again() {
    block_on_within(Duration::from_secs(60), async {
        let broker = MemoryBroker::new();
        let (ma, mb) = (Metrics::new("processor"), Metrics::new("processor"));
        let (a, b) = (start(&broker, ma.clone()), start(&broker, mb.clone()));
        let client = ProcessorClientBuilder::new(format!("{},{}", a.local_addr(), b.local_addr())).connect();
        assert!(call_until(&client, || calls(&ma) > 0 && calls(&mb) > 0).await, "both joined");

        // b keeps listening and answering; only its health changes.
        b.health().set(ServingStatus::NOT_SERVING);
        // The client's watch is told, and it acts on that a moment later: wait (by calls, not
        // time) for a run of calls that all went to a, which round robin over both never gives…
        let mut last_b = calls(&mb);
        let mut run = 0;
        let left_out = call_until(&client, || {
            run = if calls(&mb) == last_b { run + 1 } else { 0 };
            last_b = calls(&mb);
            run > 20
        })
        .await;
        assert!(left_out, "b still gets calls while NOT_SERVING (is the client health-checking?)");
        // …then every call goes to a.
        let (a0, b0) = (calls(&ma), calls(&mb));
        for i in 0..100 {
            job(&client, &format!("n{i}")).await;
        }
        assert_eq!((calls(&ma) - a0, calls(&mb) - b0), (100, 0), "all to a while b is NOT_SERVING");

        b.health().set(ServingStatus::SERVING);
        let b0 = calls(&mb);
        assert!(call_until(&client, || calls(&mb) > b0).await, "b back in the rotation");
        let (a0, b0) = (calls(&ma), calls(&mb));
        for i in 0..40 {
            client.process_async(&request(&format!("t{i}"), None)).unwrap().await.expect("both up: every call ok");
        }
        let (ca, cb) = (calls(&ma) - a0, calls(&mb) - b0);
        assert!(ca >= 10 && cb >= 10, "round robin over both again: {ca} and {cb}");
        futures_lite::future::zip(a.shutdown(), b.shutdown()).await;
    });
}

#[test]
fn a_reply_goes_to_the_partition_the_envelope_names_and_never_outside_the_topic() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        broker.ensure_topic("replies", 3).await.unwrap();
        let server = start(&broker, Metrics::new("processor"));
        let client = ProcessorClientBuilder::new(server.local_addr().to_string()).connect();
        let mine = broker.assign("replies", &[2]).await.unwrap();
        client.process_async(&request("to-2", Some(2))).unwrap().await.expect("in range");
        let d = mine.recv().await.unwrap();
        assert_eq!((d.partition(), Envelope::decode(&d.message().payload).unwrap().id.as_str()), (2, "to-2"));
        d.ack();
        for bad in [3, 1000, -1] {
            let err = client.process_async(&request("stray", Some(bad))).unwrap().await.expect_err("refused");
            let grpcio::Error::RpcFailure(status) = err else { panic!("not a status: {err:?}") };
            assert!(
                matches!(
                    status.code(),
                    grpcio::RpcStatusCode::INVALID_ARGUMENT | grpcio::RpcStatusCode::FAILED_PRECONDITION
                ),
                "partition {bad}: {status:?}"
            );
        }
        assert_eq!(broker.partitions("replies"), Some(3), "nothing was created");
        server.shutdown().await;
    });
}

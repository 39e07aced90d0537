//! Several processors behind one client (`PROCESSOR_ADDR=a:p,b:p`): calls go round robin, and
//! a processor that goes away is routed around; replies go to the partition the envelope names.

use std::sync::Arc;
use std::time::Duration;

use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_names::topics::ReplyTopics;
use switchboard_ports::{Subscriber, TopicAdmin};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::{client::processor_client, Envelope, ProcessRequest};
use switchboard_telemetry::Metrics;

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
        let client = processor_client(&format!("{},{}", a.local_addr(), b.local_addr()));
        for i in 0..40 {
            client.process_async(&request(&format!("r{i}"), None)).unwrap().await.expect("both up: every call ok");
        }
        let (ca, cb) = (calls(&ma), calls(&mb));
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

#[test]
fn a_reply_goes_to_the_partition_the_envelope_names_and_never_outside_the_topic() {
    smol::block_on(async {
        let broker = MemoryBroker::new();
        broker.ensure_topic("replies", 3).await.unwrap();
        let server = start(&broker, Metrics::new("processor"));
        let client = processor_client(&server.local_addr().to_string());
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

//! `ProcessBatch` over real gRPC on loopback: each envelope answered as `Process` would answer
//! it, in order, and published on its own.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use grpcio::RpcStatusCode;
use switchboard_embedded::pubsub::{BrokerConfig, MemoryBroker};
use switchboard_grpc::client::ProcessorClientBuilder;
use switchboard_ports::{ErrorKind, Publisher, Subscriber};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::convert::Stage;
use switchboard_proto::{Envelope, ProcessBatchRequest, ProcessResponse, ProcessorClient, MAX_BATCH};
use switchboard_telemetry::Metrics;
use switchboard_testkit::fault::FaultyPublisher;
use switchboard_topology::topics::ReplyTopics;

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    switchboard_testkit::block_on_within(Duration::from_secs(60), f)
}

/// Runs `test` with a gRPC client of a processor publishing to `publisher` and counting in
/// `metrics` (replies allowed to `replies` and `replies.b`), then shuts the processor down.
fn with_processor<T: Future<Output = ()>>(
    publisher: Arc<dyn Publisher>,
    metrics: Metrics,
    test: impl FnOnce(ProcessorClient) -> T,
) {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        reply_topics: ReplyTopics::only("replies").allow("replies.b"),
        metrics,
        ..ServerConfig::default()
    };
    let server = ProcessorServer::start(&config, publisher).unwrap();
    run(async {
        test(ProcessorClientBuilder::new(server.local_addr().to_string()).connect()).await;
        server.shutdown().await;
    });
}

fn envelope(id: &str, reply_to: &str) -> Envelope {
    let mut e = Envelope::start(id, "x", reply_to, Duration::from_secs(10));
    e.record(Stage::GrpcClient, "test");
    e
}

fn batch(envelopes: Vec<Envelope>) -> ProcessBatchRequest {
    let mut b = ProcessBatchRequest::new();
    b.envelopes = envelopes;
    b
}

fn code(r: &Result<ProcessResponse, grpcio::Error>) -> RpcStatusCode {
    match r {
        Ok(_) => RpcStatusCode::OK,
        Err(grpcio::Error::RpcFailure(s)) => s.code(),
        Err(e) => panic!("not a status: {e:?}"),
    }
}

/// The value of the `grpc_calls` sample for `method` and `code`, 0 when absent.
fn calls(metrics: &Metrics, method: &str, code: &str) -> u64 {
    let text = metrics.encode();
    text.lines()
        .find(|l| l.starts_with("grpc_calls") && l.contains(method) && l.contains(&format!("code=\"{code}\"")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn each_envelope_of_a_mixed_batch_gets_its_own_status_in_order_and_its_own_reply() {
    let broker = MemoryBroker::with_config(BrokerConfig { max_message_bytes: 4096, ..BrokerConfig::default() });
    let metrics = Metrics::new("processor");
    with_processor(Arc::new(broker.clone()), metrics.clone(), |client| async move {
        let replies = broker.subscribe("replies", "t").await.unwrap();
        let others = broker.subscribe("replies.b", "t").await.unwrap();

        let mut to_partition_2 = envelope("a", "replies");
        to_partition_2.reply_partition = Some(2);
        let no_id = envelope("", "replies");
        let mut expired = envelope("late", "replies");
        expired.deadline_unix_ms = switchboard_proto::convert::now_millis() - 10;
        let forbidden = envelope("loop", "switchboard.requests");
        let job = envelope("job", "");
        let mut too_large = envelope("big", "replies");
        too_large.body = "x".repeat(10_000);
        let mut already = envelope("again", "replies");
        already.record(Stage::GrpcServer, "processor");
        let mut to_b = envelope("b", "replies.b");
        to_b.reply_partition = Some(1);
        let sent = vec![to_partition_2, no_id, expired, forbidden, job, too_large, already, to_b];

        let resp = client.process_batch_async(&batch(sent.clone())).unwrap().await.unwrap();
        assert_eq!(resp.results.len(), sent.len());
        let results: Vec<_> = resp.results.into_iter().map(|r| r.into_response()).collect();
        let codes: Vec<_> = results.iter().map(code).collect();
        use RpcStatusCode as C;
        assert_eq!(
            codes,
            [
                C::OK,
                C::INVALID_ARGUMENT,
                C::DEADLINE_EXCEEDED,
                C::INVALID_ARGUMENT,
                C::OK,
                C::FAILED_PRECONDITION,
                C::INVALID_ARGUMENT,
                C::OK
            ]
        );
        let ok: Vec<Envelope> = results.into_iter().filter_map(|r| r.ok()?.envelope.into_option()).collect();
        let ids: Vec<&str> = ok.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "job", "b"], "answered in request order");
        assert_eq!(ok[1].body, "x and gRPC client and gRPC server", "a job is answered, not published");

        // Each published reply is the envelope answered for it, on its own topic and partition.
        let first = replies.recv().await.unwrap();
        assert_eq!(Envelope::decode(&first.message().payload).unwrap(), ok[0]);
        assert_eq!(first.message().header_str("correlation-id"), Some("a"));
        assert_eq!(broker.end_offsets("replies"), Some(vec![0, 0, 1, 0]), "only `a`, on partition 2");
        let second = others.recv().await.unwrap();
        assert_eq!(Envelope::decode(&second.message().payload).unwrap(), ok[2]);
        assert_eq!(broker.end_offsets("replies.b"), Some(vec![0, 1, 0, 0]), "only `b`, on partition 1");
        assert_eq!(broker.partitions("switchboard.requests"), None, "a forbidden topic is never created");

        let batch_method = "/switchboard.v1.Processor/ProcessBatch";
        assert_eq!(calls(&metrics, batch_method, "OK"), 3, "{}", metrics.encode());
        assert_eq!(calls(&metrics, batch_method, "INVALID_ARGUMENT"), 3);
        assert_eq!(calls(&metrics, batch_method, "DEADLINE_EXCEEDED"), 1);
        assert_eq!(calls(&metrics, batch_method, "FAILED_PRECONDITION"), 1);
    });
}

#[test]
fn a_caller_that_omits_the_envelope_gets_only_the_outcome_and_the_reply_is_published_all_the_same() {
    let broker = MemoryBroker::new();
    with_processor(Arc::new(broker.clone()), Metrics::new("processor"), |client| async move {
        let replies = broker.subscribe("replies", "t").await.unwrap();

        let mut b = batch(vec![envelope("a", "replies"), envelope("", "replies"), envelope("b", "replies")]);
        b.omit_envelopes = true;
        let resp = client.process_batch_async(&b).unwrap().await.unwrap();
        let results: Vec<_> = resp.results.into_iter().map(|r| r.into_response()).collect();
        use RpcStatusCode as C;
        assert_eq!(results.iter().map(code).collect::<Vec<_>>(), [C::OK, C::INVALID_ARGUMENT, C::OK]);
        assert!(results.iter().flatten().all(|r| r.envelope.is_none()), "no envelope sent back");

        let mut one = switchboard_proto::ProcessRequest::new();
        one.envelope = Some(envelope("c", "replies")).into();
        one.omit_envelope = true;
        let resp = client.process_async(&one).unwrap().await.expect("processed");
        assert!(resp.envelope.is_none(), "no envelope sent back");

        // Each reply was published as it would have been with the envelope echoed.
        let mut published = Vec::new();
        for _ in 0..3 {
            let d = replies.recv().await.unwrap();
            let e = Envelope::decode(&d.message().payload).unwrap();
            assert_eq!(e.body, "x and gRPC client and gRPC server and Kafka publisher");
            published.push(e.id);
            d.ack();
        }
        published.sort();
        assert_eq!(published, ["a", "b", "c"]);
    });
}

#[test]
fn a_transient_publish_failure_is_unavailable_for_the_envelopes_it_hit_only() {
    let publisher = FaultyPublisher::failing(Arc::new(MemoryBroker::new()), ErrorKind::Unavailable);
    with_processor(publisher.clone(), Metrics::new("processor"), |client| async move {
        let sent =
            vec![envelope("a", "replies"), envelope("", "replies"), envelope("job", ""), envelope("b", "replies")];
        let resp = client.process_batch_async(&batch(sent)).unwrap().await.unwrap();
        let codes: Vec<_> = resp.results.into_iter().map(|r| code(&r.into_response())).collect();
        use RpcStatusCode as C;
        assert_eq!(codes, [C::UNAVAILABLE, C::INVALID_ARGUMENT, C::OK, C::UNAVAILABLE]);
        assert_eq!(publisher.stats().calls(), 2, "one publish per envelope with a reply topic");
    });
}

#[test]
fn a_batch_over_the_maximum_is_refused_whole_and_nothing_is_published() {
    let broker = MemoryBroker::new();
    with_processor(Arc::new(broker.clone()), Metrics::new("processor"), |client| async move {
        let sent: Vec<_> = (0..=MAX_BATCH).map(|i| envelope(&format!("id-{i}"), "replies")).collect();
        let err = client.process_batch_async(&batch(sent)).unwrap().await.unwrap_err();
        let grpcio::Error::RpcFailure(status) = &err else { panic!("{err:?}") };
        assert_eq!(status.code(), RpcStatusCode::INVALID_ARGUMENT);
        assert!(status.message().contains(&format!("at most {MAX_BATCH}")), "{}", status.message());
        assert_eq!(broker.end_offsets("replies"), None, "nothing processed");

        // The maximum itself is served, each envelope answered and published.
        let sent: Vec<_> = (0..MAX_BATCH).map(|i| envelope(&format!("id-{i}"), "replies")).collect();
        let resp = client.process_batch_async(&batch(sent)).unwrap().await.unwrap();
        let ids: Vec<String> =
            resp.results.into_iter().map(|r| r.into_response().unwrap().envelope.unwrap().id).collect();
        assert_eq!(ids, (0..MAX_BATCH).map(|i| format!("id-{i}")).collect::<Vec<_>>());
        assert_eq!(broker.end_offsets("replies").unwrap().iter().sum::<i64>(), MAX_BATCH as i64);
        // An empty batch is answered with no results.
        let resp = client.process_batch_async(&batch(Vec::new())).unwrap().await.unwrap();
        assert!(resp.results.is_empty());
    });
}

//! The collecting task over a real processor on loopback, with the envelopes queued before it
//! runs, so which batches form is known.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use grpcio::RpcStatusCode;
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_ports::Publisher;
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::Envelope;
use switchboard_testkit::fault::{Effect, FaultyPublisher, Trigger};

use super::*;

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    switchboard_testkit::block_on_within(Duration::from_secs(60), f)
}

/// A processor publishing through `publisher`, and a client of it.
fn processor_and_client(publisher: Arc<dyn Publisher>) -> (ProcessorServer, ProcessorClient) {
    let config = ServerConfig { addr: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() };
    let server = ProcessorServer::start(&config, publisher).unwrap();
    let client = switchboard_grpc::client::ProcessorClientBuilder::new(server.local_addr().to_string()).connect();
    (server, client)
}

/// A request for `id`; one whose id starts with `bad-` already carries the processor's hop, so
/// the processor refuses it (INVALID_ARGUMENT) and publishes nothing.
fn request(id: &str) -> Envelope {
    let mut envelope = Envelope::start(id, "hi", "switchboard.replies", Duration::from_secs(30));
    if id.starts_with("bad-") {
        envelope.record(switchboard_proto::convert::Stage::GrpcServer, "processor");
    }
    envelope
}

/// Queues one item per `(id, budget)` before the collector starts, then runs it to the end
/// (the queue is closed) and returns the answers in queue order.
async fn collect_queued(client: ProcessorClient, max_batch: usize, items: &[(&str, Duration)]) -> Vec<Answer> {
    let (tx, rx) = async_channel::bounded(items.len());
    let mut answers = Vec::new();
    for (id, budget) in items {
        let (reply, answer) = oneshot::channel();
        tx.try_send(Item { envelope: request(id), deadline: Instant::now() + *budget, reply }).unwrap();
        answers.push(answer);
    }
    drop(tx);
    collect(client, rx, max_batch).await;
    let mut out = Vec::new();
    for a in answers {
        out.push(a.await.expect("every item is answered"));
    }
    out
}

fn id(a: &Answer) -> &str {
    &a.envelope.id
}

fn code(a: &Answer) -> RpcStatusCode {
    match &a.result {
        Ok(_) => RpcStatusCode::OK,
        Err(grpcio::Error::RpcFailure(s)) => s.code(),
        Err(e) => panic!("{e:?}"),
    }
}

const LONG: Duration = Duration::from_secs(30);

#[test]
fn queued_envelopes_go_in_batches_of_at_most_the_maximum_each_answered_for_itself() {
    run(async {
        let broker = MemoryBroker::new();
        let (server, client) = processor_and_client(Arc::new(broker.clone()));
        // One refused envelope in each batch: its result must reach its own waiter.
        let ids: Vec<String> =
            (0..9).map(|i| if i == 2 || i == 5 { format!("bad-{i}") } else { format!("id-{i}") }).collect();
        let items: Vec<(&str, Duration)> = ids.iter().map(|i| (i.as_str(), LONG)).collect();
        // 9 with at most 4 a call: 4 + 4 in two batches, the last one alone in a third.
        let answers = collect_queued(client, 4, &items).await;
        for (a, want) in answers.iter().zip(&ids) {
            assert_eq!(id(a), want, "each waiter gets its own envelope back");
            let expected = if want.starts_with("bad-") { RpcStatusCode::INVALID_ARGUMENT } else { RpcStatusCode::OK };
            assert_eq!(code(a), expected, "{want}: each waiter gets its own envelope's result");
            if let Ok(resp) = &a.result {
                assert!(resp.envelope.is_none(), "the relay asked for the outcome only");
            }
        }
        let sizes: Vec<usize> = answers.iter().map(|a| a.batch_len).collect();
        assert_eq!(sizes, [[4; 8].as_slice(), &[1]].concat(), "the batch each envelope went in");
        assert_eq!(broker.end_offsets("switchboard.replies").unwrap().iter().sum::<i64>(), 7, "the 7 accepted");
        server.shutdown().await;
    });
}

#[test]
fn a_whole_call_failure_is_each_envelopes_failure_with_its_envelope_handed_back() {
    run(async {
        // Nothing listens there: the channel cannot connect.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let client = switchboard_grpc::client::ProcessorClientBuilder::new(port.to_string()).connect();
        let answers = collect_queued(client, 8, &[("a", LONG), ("b", Duration::from_secs(5)), ("c", LONG)]).await;
        let ids: Vec<&str> = answers.iter().map(id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        for a in &answers {
            assert_eq!(code(a), RpcStatusCode::UNAVAILABLE, "{:?}", a.result);
            assert_eq!(a.batch_len, 3, "one call for the three");
        }
    });
}

#[test]
fn an_envelope_whose_deadline_passes_during_the_batch_hears_at_its_own_deadline() {
    run(async {
        // The processor takes 5 s to publish each reply.
        let broker = MemoryBroker::new();
        let slow = FaultyPublisher::new(Arc::new(broker.clone()))
            .with_rule(Trigger::Always, Effect::Delay(Duration::from_secs(5)));
        let (server, client) = processor_and_client(Arc::new(slow));
        let answers = collect_queued(client, 8, &[("long", LONG), ("short", Duration::from_secs(1))]).await;
        // Both arrived in time, so the processor handles (and answers OK for) both; the short
        // one's waiter gave up at its own deadline, as its own call's timeout would have.
        assert_eq!((id(&answers[0]), code(&answers[0])), ("long", RpcStatusCode::OK));
        assert_eq!((id(&answers[1]), code(&answers[1])), ("short", RpcStatusCode::DEADLINE_EXCEEDED));
        server.shutdown().await;
    });
}

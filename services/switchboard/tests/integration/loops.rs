//! One hostile record on the requests topic of the all-in-one (embedded broker): a request
//! whose reply topic is the requests topic, or a failure answer, written there by any producer.
//! Before the fix each looped relay → processor → requests topic forever.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use switchboard::{Chain, ChainConfig};
use switchboard_embedded::pubsub::{MemoryBroker, StartFrom};
use switchboard_ports::{Message, Publisher};
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope};

const REQUESTS: &str = "switchboard.requests";
const DLQ: &str = "switchboard.requests.dlq";

fn written(broker: &MemoryBroker, topic: &str) -> i64 {
    broker.end_offsets(topic).map_or(0, |e| e.iter().sum())
}

#[test]
fn records_that_would_loop_the_chain_are_dead_lettered_once_and_the_chain_goes_quiet() {
    smol::block_on(future::or(
        async {
            let broker = MemoryBroker::new();
            let mut config = ChainConfig::default();
            config.gateway.addr = "127.0.0.1:0".parse().unwrap();
            config.processor.addr = "127.0.0.1:0".parse().unwrap();
            // Renamed replies topic: the chain must allow it (and only it) on its own.
            config.gateway.replies_topic = "custom.replies".into();
            let chain = Chain::start(config, Arc::new(broker.clone()), Arc::new(broker.clone())).await.unwrap();
            let dlq = broker.subscribe_from(DLQ, "test", StartFrom::Earliest).await.unwrap();

            let looping = Envelope::start("loop", "hello", REQUESTS, Duration::from_secs(30));
            let mut failure = Envelope::start("fail-loop", "hello", REQUESTS, Duration::from_secs(30));
            failure.fail(failure::Code::UNAVAILABLE, "replayed", None);
            let mut replayed = Envelope::start("replayed", "hello", "custom.replies", Duration::from_secs(30));
            replayed.record(Stage::GrpcServer, "processor");
            for e in [&looping, &failure, &replayed] {
                broker.publish(REQUESTS, Message::new(e.encode()).with_key(e.id.as_bytes())).await.unwrap();
            }
            let mut reasons = Vec::new();
            for _ in 0..3 {
                let d = dlq.recv().await.unwrap();
                let id = Envelope::decode(&d.message().payload).unwrap().id;
                reasons.push((id, d.message().header_str("x-switchboard-error").unwrap().to_string()));
                d.ack();
            }
            reasons.sort();
            assert!(reasons[0].1.contains("a reply, not a request"), "{reasons:?}");
            assert!(reasons[1].1.contains("not an allowed reply topic"), "{reasons:?}");
            assert!(reasons[2].1.contains("a reply, not a request"), "{reasons:?}");
            // Given time to loop, nothing more is written anywhere.
            async_io::Timer::after(Duration::from_millis(500)).await;
            assert_eq!(written(&broker, REQUESTS), 3, "only the three records written by the test");
            assert_eq!(written(&broker, DLQ), 3);
            assert_eq!(written(&broker, "custom.replies"), 0);
            chain.stop().await;
        },
        async {
            async_io::Timer::after(Duration::from_secs(60)).await;
            panic!("not dead-lettered within 60 s");
        },
    ));
}

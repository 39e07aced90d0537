//! The relay given whatever a producer can write onto the requests topic: arbitrary bytes and
//! envelopes that are replies or name a topic outside the allowed ones never panic, never
//! reach the processor, and end dead-lettered.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_ports::Message;
use switchboard_proto::convert::Stage;
use switchboard_proto::{failure, Envelope};
use switchboard_relay::{Handled, RelayConfig, RequestHandler};

/// A handler whose processor address answers nothing: a call would fail the property (its
/// outcome would not be `DeadLettered`).
fn handler(broker: &MemoryBroker) -> RequestHandler {
    let config = RelayConfig { default_budget: Duration::from_millis(200), ..RelayConfig::default() };
    let client = switchboard_grpc::client::ProcessorClientBuilder::new("127.0.0.1:9").connect();
    let breaker = switchboard_resilience::CircuitBreaker::new(config.breaker.clone());
    RequestHandler::new(Arc::new(config), client, Arc::new(broker.clone()), breaker)
}

fn handle(handler: &RequestHandler, payload: Vec<u8>) -> Handled {
    smol::block_on(handler.handle(&Message::new(payload)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_are_dead_lettered(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let broker = MemoryBroker::new();
        let outcome = handle(&handler(&broker), payload);
        prop_assert!(matches!(outcome, Handled::DeadLettered(_)), "{:?}", outcome);
    }

    #[test]
    fn envelopes_that_would_loop_or_name_a_foreign_topic_are_dead_lettered(
        id in "[a-z0-9-]{1,20}",
        reply_to in prop_oneof![
            Just("switchboard.requests".to_string()),
            Just("switchboard.requests.dlq".to_string()),
            "[a-z.]{1,30}".prop_filter("the allowed one", |t| t != "switchboard.replies"),
        ],
        processed in any::<bool>(),
        failed in any::<bool>(),
    ) {
        let mut e = Envelope::start(id, "x", reply_to, Duration::from_secs(10));
        e.record(Stage::RestRequest, "gateway");
        if processed {
            e.record(Stage::GrpcServer, "processor");
        }
        if failed {
            e.fail(failure::Code::INTERNAL, "boom", None);
        }
        let broker = MemoryBroker::new();
        let outcome = handle(&handler(&broker), e.encode());
        prop_assert!(matches!(outcome, Handled::DeadLettered(_)), "{:?}", outcome);
        prop_assert_eq!(broker.end_offsets("switchboard.requests"), None, "nothing written to the requests topic");
    }

    #[test]
    fn replies_are_dead_lettered_even_on_the_allowed_topic(id in "[a-z0-9-]{1,20}", failed in any::<bool>()) {
        let mut e = Envelope::start(id, "x", "switchboard.replies", Duration::from_secs(10));
        if failed {
            e.fail(failure::Code::UNAVAILABLE, "open", None);
        } else {
            e.record(Stage::GrpcServer, "processor");
        }
        let broker = MemoryBroker::new();
        let outcome = handle(&handler(&broker), e.encode());
        prop_assert!(matches!(outcome, Handled::DeadLettered(ref why) if why.contains("a reply")), "{:?}", outcome);
        prop_assert_eq!(broker.end_offsets("switchboard.replies"), None);
    }
}

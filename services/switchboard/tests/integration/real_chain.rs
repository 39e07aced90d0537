//! The chain on a real Kafka (`make test-real` starts tansu): the same services as the
//! embedded tests, over the Kafka adapter. Needs `KAFKA_BROKERS`; fails when it is missing or
//! the broker does not answer.

use std::time::Duration;

use crate::hello::CHAIN_RESULT;
use serde_json::json;
use switchboard::{Chain, ChainConfig, HttpClient};
use switchboard_wiring::BrokerArgs;

async fn start_on_kafka() -> Chain {
    let brokers = std::env::var("KAFKA_BROKERS")
        .expect("KAFKA_BROKERS must point at a Kafka broker (make test-real starts tansu)");
    // Fresh topics and groups per run: nothing left over from earlier runs can interfere.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut config = ChainConfig::default();
    config.gateway.addr = "127.0.0.1:0".parse().unwrap();
    config.processor.addr = "127.0.0.1:0".parse().unwrap();
    config.gateway.requests_topic = format!("test.requests.{run}");
    config.gateway.replies_topic = format!("test.replies.{run}");
    config.gateway.request_timeout = Duration::from_secs(20);
    config.relay.requests_topic = config.gateway.requests_topic.clone();
    config.relay.dead_letter_topic = format!("test.requests.dlq.{run}");
    config.relay.group = format!("test-relay-{run}");
    let args = BrokerArgs::on_kafka(brokers, 2);
    let topics = [
        config.gateway.requests_topic.as_str(),
        config.gateway.replies_topic.as_str(),
        config.relay.dead_letter_topic.as_str(),
    ];
    let ports = args.connect(&topics).await.expect("kafka reachable");
    assert_eq!(ports.kind, "kafka");
    Chain::start_on(config, ports).await.expect("chain starts on kafka")
}

#[test]
#[ignore = "needs a real Kafka: make test-real"]
fn hello_result_and_concurrent_requests_over_real_kafka() {
    smol::block_on(async {
        let chain = start_on_kafka().await;
        let mut client = HttpClient::new(chain.gateway_addr());
        let reply = client.post_json("/messages", &json!({"message": "hello world"})).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["message"], CHAIN_RESULT);
        assert_eq!(reply.json()["hops"].as_array().unwrap().len(), 7);

        let addr = chain.gateway_addr();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                smol::spawn(async move {
                    let mut c = HttpClient::new(addr);
                    (i, c.post_json("/messages", &json!({"message": format!("kafka {i}")})).await.unwrap())
                })
            })
            .collect();
        for t in tasks {
            let (i, reply) = t.await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let text = reply.json()["message"].as_str().unwrap().to_string();
            assert!(text.starts_with(&format!("KAFKA {i} FROM REST AND")), "own reply: {text}");
        }
        assert_eq!(chain.pending_requests(), 0);
        chain.stop().await;
    });
}

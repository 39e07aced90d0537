//! The floor of each hop alone: what one broker round trip, one gRPC unary call and one HTTP
//! round trip cost on this machine with nothing else in the way. A chain transaction is 2 broker
//! hops + 1 gRPC call + 1 HTTP round trip, so the sum of floors is what the chain cannot beat.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_lite::FutureExt;
use switchboard_ports::{Error as PortError, Message, PublishError, Publisher, Subscriber, Subscription};
use switchboard_processor::{ProcessorServer, ServerConfig};
use switchboard_proto::{Envelope, ProcessRequest, ProcessorClient};

use crate::drive::{run_phase, Call, Phase, PhaseReport};
use crate::http_load::HttpTarget;
use crate::Error;

/// A call that never answers within this counts as `timeout` (a lost message on a real broker
/// must not hang the run).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Produce → consume round trips: each worker publishes to its own topic and waits until its
/// own subscription receives the message (then acks it).
///
/// Topics are `{topic_prefix}.{worker}`; on brokers that do not create topics on first use
/// they must exist beforehand.
pub async fn broker_floor(
    publisher: Arc<dyn Publisher>,
    subscriber: Arc<dyn Subscriber>,
    topic_prefix: &str,
    payload_size: usize,
    phase: &Phase,
) -> Result<PhaseReport, Error> {
    // Subscribe all at once (a Kafka group join takes seconds), each worker in its own group
    // so one worker's join does not rebalance the others.
    let joins: Vec<_> = (0..phase.mode.workers())
        .map(|i| {
            let subscriber = subscriber.clone();
            let topic = format!("{topic_prefix}.{i}");
            smol::spawn(async move {
                let subscription = subscriber.subscribe(&topic, &format!("{topic}.group")).await;
                (topic, subscription)
            })
        })
        .collect();
    let mut workers = Vec::with_capacity(joins.len());
    for join in joins {
        let (topic, subscription) = join.await;
        let subscription = subscription.map_err(|e| Error::Setup(format!("subscribing to {topic}: {e}")))?;
        workers.push(Some(BrokerCall {
            publisher: publisher.clone(),
            topic,
            subscription,
            payload: vec![b'x'; payload_size],
        }));
    }
    Ok(run_phase(phase, |i| workers[i].take().expect("one worker per index")).await)
}

struct BrokerCall {
    publisher: Arc<dyn Publisher>,
    topic: String,
    subscription: Subscription,
    payload: Vec<u8>,
}

impl Call for BrokerCall {
    async fn call(&mut self) -> Result<(), String> {
        let message = Message::new(self.payload.clone()).with_key(self.topic.as_bytes());
        let round_trip = async {
            self.publisher.publish(&self.topic, message).await.map_err(|e| format!("publish {:?}", e.error.kind()))?;
            let delivery = self.subscription.recv().await.ok_or_else(|| "subscription closed".to_string())?;
            delivery.ack();
            Ok(())
        };
        round_trip
            .or(async {
                async_io::Timer::after(CALL_TIMEOUT).await;
                Err("timeout".to_string())
            })
            .await
    }
}

/// Unary calls to the real processor service with a publisher that drops its replies, through
/// the relay's own client settings ([`switchboard_grpc::client::ProcessorClientBuilder`]), all
/// workers sharing one channel as the relay does.
pub async fn grpc_floor(message_size: usize, phase: &Phase) -> Result<PhaseReport, Error> {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("literal address"),
        reply_topics: switchboard_topology::topics::ReplyTopics::only("bench.replies"),
        ..ServerConfig::default()
    };
    let server = ProcessorServer::start(&config, Arc::new(DiscardPublisher))
        .map_err(|e| Error::Setup(format!("processor: {e}")))?;
    let client = switchboard_grpc::client::ProcessorClientBuilder::new(server.local_addr().to_string()).connect();
    let mut request = ProcessRequest::new();
    let text: String = "benchmark message ".chars().cycle().take(message_size.max(1)).collect();
    // A budget longer than any run: the processor refuses expired envelopes.
    request.envelope = Some(Envelope::start("bench", text, "bench.replies", Duration::from_secs(24 * 3600))).into();
    let report = run_phase(phase, |_| GrpcCall { client: client.clone(), request: request.clone() }).await;
    server.shutdown().await;
    Ok(report)
}

struct GrpcCall {
    client: ProcessorClient,
    request: ProcessRequest,
}

impl Call for GrpcCall {
    async fn call(&mut self) -> Result<(), String> {
        let opt = grpcio::CallOption::default().timeout(CALL_TIMEOUT);
        let receiver = self.client.process_async_opt(&self.request, opt).map_err(|e| grpc_kind(&e))?;
        receiver.await.map(|_| ()).map_err(|e| grpc_kind(&e))
    }
}

fn grpc_kind(e: &grpcio::Error) -> String {
    match e {
        grpcio::Error::RpcFailure(status) => format!("grpc {:?}", status.code()),
        other => format!("grpc {other}"),
    }
}

/// `GET path` round trips on keep-alive connections (e.g. the gateway's `/healthz`).
pub async fn http_floor(addr: SocketAddr, path: &str, phase: &Phase) -> Result<PhaseReport, Error> {
    let target = HttpTarget::get(&format!("http://{addr}{path}"))?;
    Ok(run_phase(phase, |_| target.worker()).await)
}

/// A publisher that accepts and drops everything: the processor's reply hop without a broker.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardPublisher;

#[async_trait]
impl Publisher for DiscardPublisher {
    async fn publish(&self, _topic: &str, _message: Message) -> Result<(), PublishError> {
        Ok(())
    }

    async fn close(&self) -> Result<(), PortError> {
        Ok(())
    }
}

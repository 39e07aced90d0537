use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info, warn};
use switchboard_ports::Subscription;
use switchboard_proto::convert::Stage;
use switchboard_proto::{Envelope, Hop};
use switchboard_telemetry::Metrics;

use crate::Pending;

const SERVICE: &str = "gateway";

/// Consumes this instance's reply subscription and hands each reply to its waiter.
///
/// Replies are acked at once: a reply nobody waits for (timed out, or meant for another
/// gateway instance) is of no use later, and an undecodable one is logged and dropped.
pub(crate) async fn consume(
    subscription: Subscription,
    pending: Arc<Pending>,
    metrics: Metrics,
    tracer: switchboard_otlp::Tracer,
    running: Arc<AtomicBool>,
) {
    while let Some(delivery) = subscription.recv().await {
        metrics.consumed(delivery.topic());
        match Envelope::decode(&delivery.message().payload) {
            Ok(mut reply) => {
                if reply.failure.is_none() {
                    reply.record(Stage::KafkaConsumer, SERVICE);
                    record_hops(&metrics, &reply.hops);
                }
                // Logged before the waiter wakes, so the hop lines keep the chain's order.
                if pending.is_waiting(&reply.id) {
                    info!("KAFKA Consumer: {} id={}", reply.body, reply.id);
                }
                // The receipt's span ends as the reply is handed to its waiter.
                crate::spans::reply(&tracer, &reply, delivery.topic(), delivery.partition(), delivery.offset());
                let id = reply.id.clone();
                if !pending.complete(reply) {
                    debug!("reply nobody waits for id={id}");
                }
            }
            Err(e) => warn!("undecodable reply at {}:{}: {e}", delivery.partition(), delivery.offset()),
        }
        metrics.offsets_committed(delivery.topic());
        delivery.ack();
    }
    running.store(false, Ordering::Relaxed);
    info!("reply subscription ended");
}

/// Per-hop latency of a finished transaction, from the timeline the services recorded.
fn record_hops(metrics: &Metrics, hops: &[Hop]) {
    for pair in hops.windows(2) {
        if let Some(name) = hop_name(&pair[1]) {
            let micros = (pair[1].at_unix_micros - pair[0].at_unix_micros).max(0) as u64;
            metrics.hop(name, Duration::from_micros(micros));
        }
    }
}

/// The metric name of the step that ended with `hop` (bounded: fixed names only).
fn hop_name(hop: &Hop) -> Option<&'static str> {
    Some(match (hop.name.as_str(), hop.service.as_str()) {
        ("KAFKA Publisher", "gateway") => "gateway_accept",
        ("KAFKA Consumer", "relay") => "request_queue",
        ("gRPC Client", "relay") => "relay",
        ("gRPC Server", "processor") => "grpc_call",
        ("KAFKA Publisher", "processor") => "processor",
        ("KAFKA Consumer", "gateway") => "reply_queue",
        _ => return None,
    })
}

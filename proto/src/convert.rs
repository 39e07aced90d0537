//! Hand-written helpers around the generated messages: the hop vocabulary of the chain,
//! wire encoding, and clocks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protobuf::{Message, MessageField};

use crate::{Envelope, Failure, Hop, TraceContext};

/// A step of the chain: what it appends to the body and how the Go example's transaction log
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    RestRequest,
    KafkaPublisher,
    KafkaConsumer,
    GrpcClient,
    GrpcServer,
    /// The gateway enqueued a job on the work queue.
    RabbitmqPublisher,
    /// A worker took the job from the work queue.
    RabbitmqConsumer,
}

impl Stage {
    /// The label the Go example's transaction log gives this step, e.g. `KAFKA Publisher`.
    pub fn label(self) -> &'static str {
        match self {
            Stage::RestRequest => "REST request",
            Stage::KafkaPublisher => "KAFKA Publisher",
            Stage::KafkaConsumer => "KAFKA Consumer",
            Stage::GrpcClient => "gRPC Client",
            Stage::GrpcServer => "gRPC Server",
            Stage::RabbitmqPublisher => "RABBITMQ Publisher",
            Stage::RabbitmqConsumer => "RABBITMQ Consumer",
        }
    }

    /// What the stage appends to the body.
    pub fn suffix(self) -> &'static str {
        match self {
            Stage::RestRequest => " from rest",
            Stage::KafkaPublisher => " and Kafka publisher",
            Stage::KafkaConsumer => " and Kafka consumer",
            Stage::GrpcClient => " and gRPC client",
            Stage::GrpcServer => " and gRPC server",
            Stage::RabbitmqPublisher => " and RabbitMQ publisher",
            Stage::RabbitmqConsumer => " and RabbitMQ consumer",
        }
    }
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    now_micros() / 1000
}

impl Envelope {
    /// A new transaction with its correlation id, body, reply topic and time budget.
    pub fn start(
        id: impl Into<String>,
        body: impl Into<String>,
        reply_to: impl Into<String>,
        budget: Duration,
    ) -> Self {
        let mut e = Envelope::new();
        e.id = id.into();
        e.body = body.into();
        e.reply_to = reply_to.into();
        e.deadline_unix_ms = now_millis() + budget.as_millis() as i64;
        e
    }

    /// Records `stage` performed by `service`: appends its suffix to the body and a hop.
    pub fn record(&mut self, stage: Stage, service: &str) {
        self.body.push_str(stage.suffix());
        let mut hop = Hop::new();
        hop.name = stage.label().to_string();
        hop.service = service.to_string();
        hop.at_unix_micros = now_micros();
        self.hops.push(hop);
    }

    /// Time left before the deadline; `None` when there is no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        if self.deadline_unix_ms == 0 {
            return None;
        }
        Some(Duration::from_millis((self.deadline_unix_ms - now_millis()).max(0) as u64))
    }

    /// True when the deadline has passed.
    pub fn expired(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// Marks the transaction failed.
    pub fn fail(&mut self, code: crate::failure::Code, message: impl Into<String>, retry_after: Option<Duration>) {
        let mut f = Failure::new();
        f.code = code.into();
        f.message = message.into();
        f.retry_after_ms = retry_after.map(|d| d.as_millis() as u32).unwrap_or(0);
        self.failure = MessageField::some(f);
    }

    /// True when the envelope already carries a reply: a failure is set, or the processor has
    /// recorded its hop. Such an envelope must never be handled as a request again (a reply
    /// written back onto the requests topic would otherwise loop the chain forever).
    pub fn is_reply(&self) -> bool {
        self.failure.is_some() || self.hops.iter().any(|h| h.name == Stage::GrpcServer.label())
    }

    /// The W3C traceparent carried, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.trace.as_ref().map(|t| t.traceparent.as_str()).filter(|s| !s.is_empty())
    }

    /// Sets the W3C traceparent.
    pub fn set_traceparent(&mut self, traceparent: impl Into<String>) {
        let mut t = TraceContext::new();
        t.traceparent = traceparent.into();
        self.trace = MessageField::some(t);
    }

    /// Protobuf wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.write_to_bytes().expect("encoding an in-memory message cannot fail")
    }

    /// Parses protobuf wire bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, protobuf::Error> {
        Envelope::parse_from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_appends_suffix_and_hop() {
        let mut e = Envelope::start("id-1", "hello world", "replies", Duration::from_secs(5));
        e.record(Stage::RestRequest, "gateway");
        e.record(Stage::KafkaPublisher, "gateway");
        assert_eq!(e.body, "hello world from rest and Kafka publisher");
        assert_eq!(e.hops.len(), 2);
        assert_eq!(e.hops[1].name, "KAFKA Publisher");
        assert_eq!(e.hops[1].service, "gateway");
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut e = Envelope::start("id-2", "x", "replies", Duration::from_secs(1));
        e.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        e.record(Stage::GrpcServer, "processor");
        let back = Envelope::decode(&e.encode()).unwrap();
        assert_eq!(back, e);
        assert!(Envelope::decode(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn failures_and_processed_envelopes_are_replies_requests_are_not() {
        let mut e = Envelope::start("id-4", "x", "replies", Duration::from_secs(1));
        e.record(Stage::RestRequest, "gateway");
        e.record(Stage::KafkaPublisher, "gateway");
        e.record(Stage::KafkaConsumer, "relay");
        e.record(Stage::GrpcClient, "relay");
        assert!(!e.is_reply(), "a request on its way to the processor");
        let mut processed = e.clone();
        processed.record(Stage::GrpcServer, "processor");
        assert!(processed.is_reply());
        let mut failed = e.clone();
        failed.fail(crate::failure::Code::DEADLINE_EXCEEDED, "late", None);
        assert!(failed.is_reply());
        // Survives the wire, whoever wrote it.
        assert!(Envelope::decode(&processed.encode()).unwrap().is_reply());
        assert!(Envelope::decode(&failed.encode()).unwrap().is_reply());
    }

    #[test]
    fn deadline_in_the_past_is_expired() {
        let mut e = Envelope::start("id-3", "x", "r", Duration::from_secs(10));
        assert!(!e.expired());
        e.deadline_unix_ms = now_millis() - 1;
        assert!(e.expired());
    }
}

//! What "hello world" comes back as, each hop having appended its name.

/// Through the request chain: gateway, Kafka, relay, gRPC, processor, Kafka, gateway.
pub const CHAIN_RESULT: &str = "HELLO WORLD FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER";

/// As a job: gateway, RabbitMQ, worker, gRPC, processor.
pub const JOB_RESULT: &str =
    "HELLO WORLD FROM REST AND RABBITMQ PUBLISHER AND RABBITMQ CONSUMER AND GRPC CLIENT AND GRPC SERVER";

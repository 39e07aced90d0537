//! Embedded in-memory brokers implementing the ports: Kafka-style topics and RabbitMQ-style
//! work queues.

pub mod pubsub;
pub mod queue;

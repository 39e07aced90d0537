//! Names and arguments of a work queue's RabbitMQ topology.

use std::time::Duration;

use amiquip::{
    AmqpValue, Channel, ExchangeDeclareOptions, ExchangeType, FieldTable, QueueDeclareOptions, QueueDeleteOptions,
};
use switchboard_ports::{dead_letter_queue, QueueOptions};

/// Name of the retry queue of `queue` for `delay`.
pub(crate) fn retry_queue(queue: &str, delay: Duration) -> String {
    format!("{queue}.retry.{}ms", delay.as_millis())
}

/// The retry queues [`declare`] makes for `queue` under `options`, shortest delay first:
/// where its jobs wait out a retry delay (for dashboards; nothing else reads them).
pub fn retry_queues(queue: &str, options: &QueueOptions) -> Vec<String> {
    options.retry_delays.iter().map(|delay| retry_queue(queue, *delay)).collect()
}

fn bounded(max_length: u32) -> FieldTable {
    let mut args = FieldTable::new();
    args.insert("x-max-length".into(), AmqpValue::LongLongInt(i64::from(max_length)));
    // A full queue nacks the publish, so the enqueue fails instead of silently dropping.
    args.insert("x-overflow".into(), AmqpValue::LongString("reject-publish".into()));
    args
}

fn durable(arguments: FieldTable) -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, arguments, ..QueueDeclareOptions::default() }
}

/// Declares `queue`, its dead-letter queue and its retry queues (each a TTL queue whose
/// expired messages dead-letter back into `queue` through the default exchange).
pub(crate) fn declare(channel: &Channel, queue: &str, options: &QueueOptions) -> amiquip::Result<()> {
    channel.queue_declare(queue, durable(bounded(options.max_length)))?;
    channel.queue_declare(dead_letter_queue(queue), durable(bounded(options.max_length)))?;
    for delay in &options.retry_delays {
        let mut args = bounded(options.max_length);
        args.insert("x-message-ttl".into(), AmqpValue::LongLongInt(delay.as_millis().min(i64::MAX as u128) as i64));
        args.insert("x-dead-letter-exchange".into(), AmqpValue::LongString(String::new()));
        args.insert("x-dead-letter-routing-key".into(), AmqpValue::LongString(queue.to_owned()));
        channel.queue_declare(retry_queue(queue, *delay), durable(args))?;
    }
    Ok(())
}

/// Deletes what [`declare`] made (deleting a missing queue is not an error in RabbitMQ).
pub(crate) fn delete(channel: &Channel, queue: &str, options: &QueueOptions) -> amiquip::Result<()> {
    for delay in &options.retry_delays {
        channel.queue_delete(retry_queue(queue, *delay), QueueDeleteOptions::default())?;
    }
    channel.queue_delete(dead_letter_queue(queue), QueueDeleteOptions::default())?;
    channel.queue_delete(queue, QueueDeleteOptions::default())?;
    Ok(())
}

/// Declares the durable fanout exchange `exchange`.
pub(crate) fn declare_fanout(channel: &Channel, exchange: &str) -> amiquip::Result<()> {
    let options = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel.exchange_declare(ExchangeType::Fanout, exchange, options).map(|_| ())
}

/// Declares a listener's exclusive, auto-delete, server-named queue bound to `exchange`; a
/// listener falling behind loses the oldest events past `capacity`.
pub(crate) fn declare_listener(channel: &Channel, exchange: &str, capacity: u32) -> amiquip::Result<String> {
    let mut args = FieldTable::new();
    args.insert("x-max-length".into(), AmqpValue::LongLongInt(i64::from(capacity)));
    let options =
        QueueDeclareOptions { exclusive: true, auto_delete: true, arguments: args, ..QueueDeclareOptions::default() };
    let name = channel.queue_declare("", options)?.name().to_owned();
    channel.queue_bind(name.clone(), exchange, "", FieldTable::new())?;
    Ok(name)
}

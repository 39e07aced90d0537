//! What a dead letter carries about where it came from, as headers every adapter writes the
//! same way (Kafka record headers, AMQP header table): so a tool, or any Kafka or AMQP client,
//! can tell why it is there and send it back where it came from.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Message, ERROR_HEADER};

/// The topic or queue the message was taken from when it was dead-lettered.
pub const ORIGIN_HEADER: &str = "x-switchboard-origin";
/// Its partition in the origin topic (topics only).
pub const ORIGIN_PARTITION_HEADER: &str = "x-switchboard-origin-partition";
/// Its offset in that partition (topics only).
pub const ORIGIN_OFFSET_HEADER: &str = "x-switchboard-origin-offset";
/// When it was dead-lettered the first time, Unix milliseconds; kept across redrives.
pub const FIRST_FAILED_HEADER: &str = "x-switchboard-first-failed";
/// When it was dead-lettered this time, Unix milliseconds.
pub const DEAD_LETTERED_HEADER: &str = "x-switchboard-dead-lettered";
/// Attempts spent before it was dead-lettered (decimal).
pub const ATTEMPTS_HEADER: &str = "x-switchboard-attempts";
/// Times it was sent back from a dead-letter queue (decimal; absent means 0).
pub const REDRIVES_HEADER: &str = "x-switchboard-redrives";
/// W3C trace context of the work that failed.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Where a dead letter was taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Topic or queue name.
    pub source: String,
    /// Partition, for topics.
    pub partition: Option<i32>,
    /// Offset in the partition, for topics.
    pub offset: Option<i64>,
}

impl Origin {
    /// A work queue.
    pub fn queue(queue: &str) -> Self {
        Origin { source: queue.to_owned(), partition: None, offset: None }
    }

    /// A record of a topic (partition and offset unknown when `None`).
    pub fn record(topic: &str, at: Option<(i32, i64)>) -> Self {
        Origin { source: topic.to_owned(), partition: at.map(|(p, _)| p), offset: at.map(|(_, o)| o) }
    }

    /// `topic/partition@offset`, or the queue's name.
    pub fn describe(&self) -> String {
        match (self.partition, self.offset) {
            (Some(p), Some(o)) => format!("{}/{p}@{o}", self.source),
            (Some(p), None) => format!("{}/{p}", self.source),
            _ => self.source.clone(),
        }
    }
}

/// Replaces every header named `name` by one with `value`.
pub fn set_header(message: &mut Message, name: &str, value: impl Into<Vec<u8>>) {
    message.headers.retain(|(n, _)| n != name);
    message.headers.push((name.to_owned(), value.into()));
}

/// Now, in Unix milliseconds.
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Marks `message` as a dead letter: the reason ([`ERROR_HEADER`]), its origin, the attempts
/// spent, when (the first failure's time is kept from an earlier dead-lettering), and the trace
/// context when the message has none yet. The redrive count is left as it is.
pub fn stamp_dead_letter(
    message: &mut Message,
    origin: &Origin,
    reason: &str,
    attempts: u32,
    traceparent: Option<&str>,
) {
    let now = unix_millis().to_string();
    set_header(message, ERROR_HEADER, reason.as_bytes());
    set_header(message, ORIGIN_HEADER, origin.source.as_bytes());
    match origin.partition {
        Some(p) => set_header(message, ORIGIN_PARTITION_HEADER, p.to_string()),
        None => message.headers.retain(|(n, _)| n != ORIGIN_PARTITION_HEADER),
    }
    match origin.offset {
        Some(o) => set_header(message, ORIGIN_OFFSET_HEADER, o.to_string()),
        None => message.headers.retain(|(n, _)| n != ORIGIN_OFFSET_HEADER),
    }
    if message.header_str(FIRST_FAILED_HEADER).and_then(|v| v.parse::<u64>().ok()).is_none() {
        set_header(message, FIRST_FAILED_HEADER, now.as_bytes());
    }
    set_header(message, DEAD_LETTERED_HEADER, now);
    set_header(message, ATTEMPTS_HEADER, attempts.to_string());
    if let Some(tp) = traceparent.filter(|t| !t.is_empty()) {
        if message.header(TRACEPARENT_HEADER).is_none() {
            message.headers.push((TRACEPARENT_HEADER.to_owned(), tp.as_bytes().to_vec()));
        }
    }
}

/// The redrive count of a message (0 when absent or unreadable).
pub fn redrives(message: &Message) -> u32 {
    message.header_str(REDRIVES_HEADER).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_twice_keeps_the_first_failure_and_the_redrive_count() {
        let mut m = Message::new("x").with_header(REDRIVES_HEADER, "2");
        stamp_dead_letter(&mut m, &Origin::record("t", Some((3, 41))), "bad", 1, Some("00-abc-def-01"));
        let first = m.header_str(FIRST_FAILED_HEADER).unwrap().to_owned();
        stamp_dead_letter(&mut m, &Origin::queue("q"), "worse", 5, Some("00-other-01"));
        assert_eq!(m.header_str(ERROR_HEADER), Some("worse"));
        assert_eq!(m.header_str(ORIGIN_HEADER), Some("q"));
        assert_eq!(m.header(ORIGIN_PARTITION_HEADER), None);
        assert_eq!(m.header_str(FIRST_FAILED_HEADER), Some(first.as_str()));
        assert_eq!(m.header_str(ATTEMPTS_HEADER), Some("5"));
        assert_eq!(m.header_str(TRACEPARENT_HEADER), Some("00-abc-def-01"));
        assert_eq!(redrives(&m), 2);
        assert_eq!(m.headers.iter().filter(|(n, _)| n == ERROR_HEADER).count(), 1);
    }

    #[test]
    fn origin_describes_records_and_queues() {
        assert_eq!(Origin::record("t", Some((0, 41))).describe(), "t/0@41");
        assert_eq!(Origin::queue("q").describe(), "q");
    }
}

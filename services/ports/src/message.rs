/// Message headers: ordered name/value pairs (Kafka record headers, AMQP header table).
pub type Headers = Vec<(String, Vec<u8>)>;

/// A message on a topic: optional key (which picks the partition), payload, headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Partitioning key: messages with the same key keep their order.
    pub key: Option<Vec<u8>>,
    /// When publishing: the partition to append to, instead of the one the key picks (a reply
    /// to the partition its gateway reads). A partition outside the topic's range is refused
    /// with [`ErrorKind::Invalid`](crate::ErrorKind::Invalid); nothing is created. Ignored on
    /// delivery (see [`Delivery::partition`](crate::Delivery::partition)).
    pub partition: Option<i32>,
    /// The bytes carried.
    pub payload: Vec<u8>,
    /// Headers such as the correlation id and the W3C `traceparent`.
    pub headers: Headers,
}

impl Message {
    /// A message carrying `payload`, no key and no headers.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        Message { key: None, partition: None, payload: payload.into(), headers: Vec::new() }
    }

    /// Sets the partitioning key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Publishes to `partition` (see [`Message::partition`]).
    pub fn to_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The first header named `name`, as UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

//! The topics envelopes travel on: part of the wire contract between services.

/// Topic names, as flags with environment fallbacks (defaults documented in the README).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Topics {
    /// Topic the gateway publishes requests to and the relays consume.
    #[arg(long = "requests-topic", env = "SWITCHBOARD_REQUESTS_TOPIC", default_value = "switchboard.requests")]
    pub requests: String,
    /// Topic the processor publishes replies to and the gateways consume.
    #[arg(long = "replies-topic", env = "SWITCHBOARD_REPLIES_TOPIC", default_value = "switchboard.replies")]
    pub replies: String,
    /// Dead-letter topic for requests that cannot be handled.
    #[arg(long = "requests-dlq-topic", env = "SWITCHBOARD_REQUESTS_DLQ", default_value = "switchboard.requests.dlq")]
    pub requests_dlq: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            requests: "switchboard.requests".into(),
            replies: "switchboard.replies".into(),
            requests_dlq: "switchboard.requests.dlq".into(),
        }
    }
}

impl Topics {
    /// Every topic, for creating them on a bare broker.
    pub fn all(&self) -> [&str; 3] {
        [&self.requests, &self.replies, &self.requests_dlq]
    }
}

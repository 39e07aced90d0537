//! The topics envelopes travel on: part of the wire contract between services.

use std::collections::BTreeSet;
use std::fmt;

use crate::{REPLIES_TOPIC, REQUESTS_DLQ_TOPIC, REQUESTS_TOPIC};

/// Topic names, as flags with environment fallbacks (defaults documented in the README).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Topics {
    /// Topic the gateway publishes requests to and the relays consume.
    #[arg(long = "requests-topic", env = "SWITCHBOARD_REQUESTS_TOPIC", default_value = REQUESTS_TOPIC)]
    pub requests: String,
    /// Topic the processor publishes replies to and the gateways consume.
    #[arg(long = "replies-topic", env = "SWITCHBOARD_REPLIES_TOPIC", default_value = REPLIES_TOPIC)]
    pub replies: String,
    /// Dead-letter topic for requests that cannot be handled.
    #[arg(long = "requests-dlq-topic", env = "SWITCHBOARD_REQUESTS_DLQ", default_value = REQUESTS_DLQ_TOPIC)]
    pub requests_dlq: String,
    /// Topics a request may name as its reply topic (the processor publishes replies only there,
    /// the relay dead-letters requests naming any other): comma-separated names, `PREFIX*` for
    /// every topic starting with PREFIX. Default: the replies topic only. The requests and
    /// dead-letter topics are never allowed.
    #[arg(
        long = "reply-topics",
        env = "SWITCHBOARD_REPLY_TOPICS",
        value_delimiter = ',',
        value_name = "TOPIC|PREFIX*"
    )]
    pub reply_topics: Vec<String>,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            requests: REQUESTS_TOPIC.into(),
            replies: REPLIES_TOPIC.into(),
            requests_dlq: REQUESTS_DLQ_TOPIC.into(),
            reply_topics: Vec::new(),
        }
    }
}

impl Topics {
    /// Every topic, for creating them on a bare broker.
    pub fn all(&self) -> [&str; 3] {
        [&self.requests, &self.replies, &self.requests_dlq]
    }

    /// Where replies may go: `--reply-topics`, or the replies topic when none is given; never
    /// the requests or dead-letter topic.
    pub fn reply_allow_list(&self) -> ReplyTopics {
        let allowed = if self.reply_topics.iter().all(|t| t.trim().is_empty()) {
            ReplyTopics::only(&self.replies)
        } else {
            ReplyTopics::parse(&self.reply_topics)
        };
        allowed.deny(&self.requests).deny(&self.requests_dlq)
    }
}

/// An allow-list of reply topics: what an envelope's `reply_to` may name. Nothing a message
/// says may make a service publish elsewhere (or make the broker create a topic).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplyTopics {
    exact: BTreeSet<String>,
    prefixes: BTreeSet<String>,
    denied: BTreeSet<String>,
}

/// Longest topic name echoed back in a refusal: the name comes from the message.
const ECHO_MAX: usize = 80;

impl ReplyTopics {
    /// Only `topic`.
    pub fn only(topic: &str) -> Self {
        ReplyTopics::default().allow(topic)
    }

    /// Names and `PREFIX*` prefixes; blank items are skipped.
    pub fn parse<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        items.into_iter().fold(ReplyTopics::default(), |list, item| list.allow(item.as_ref()))
    }

    /// Also allows `topic` (a name, or `PREFIX*`).
    pub fn allow(mut self, topic: &str) -> Self {
        let topic = topic.trim();
        match topic.strip_suffix('*') {
            Some(prefix) if !prefix.is_empty() => {
                self.prefixes.insert(prefix.to_string());
            }
            Some(_) => {} // a bare `*` would allow everything: refused
            None if !topic.is_empty() => {
                self.exact.insert(topic.to_string());
            }
            None => {}
        }
        self
    }

    /// Also allows everything `other` allows (and denies what it denies).
    pub fn union(mut self, other: &ReplyTopics) -> Self {
        self.exact.extend(other.exact.iter().cloned());
        self.prefixes.extend(other.prefixes.iter().cloned());
        self.denied.extend(other.denied.iter().cloned());
        self
    }

    /// Never allows `topic`, whatever matches it (the requests and dead-letter topics).
    pub fn deny(mut self, topic: &str) -> Self {
        if !topic.is_empty() {
            self.denied.insert(topic.to_string());
        }
        self
    }

    /// True when replies may be published to `topic`.
    pub fn allows(&self, topic: &str) -> bool {
        !topic.is_empty()
            && !self.denied.contains(topic)
            && (self.exact.contains(topic) || self.prefixes.iter().any(|p| topic.starts_with(p.as_str())))
    }

    /// `Ok` when allowed, else why not (with the name cut short: it comes from the message).
    pub fn check(&self, topic: &str) -> Result<(), String> {
        if self.allows(topic) {
            return Ok(());
        }
        let mut shown: String = topic.chars().take(ECHO_MAX).collect();
        if shown.len() < topic.len() {
            shown.push('…');
        }
        Err(format!("reply topic {shown:?} is not an allowed reply topic ({self})"))
    }
}

impl fmt::Display for ReplyTopics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> =
            self.exact.iter().cloned().chain(self.prefixes.iter().map(|p| format!("{p}*"))).collect();
        if items.is_empty() {
            f.write_str("none allowed")
        } else {
            write!(f, "allowed: {}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        topics: Topics,
    }

    #[test]
    fn default_allows_only_the_replies_topic() {
        let list = Topics::default().reply_allow_list();
        assert!(list.allows("switchboard.replies"));
        assert!(!list.allows("switchboard.requests"), "a reply on the requests topic loops the chain");
        assert!(!list.allows("switchboard.requests.dlq"));
        assert!(!list.allows("no.such.topic"));
        assert!(!list.allows(""));
        let why = list.check("no.such.topic").unwrap_err();
        assert!(why.contains("no.such.topic") && why.contains("switchboard.replies"), "{why}");
    }

    #[test]
    fn explicit_names_and_prefixes_but_never_the_requests_or_dlq_topics() {
        let cli =
            Cli::try_parse_from(["t", "--reply-topics", "replies.a, gw.*", "--requests-topic", "gw.requests"]).unwrap();
        let list = cli.topics.reply_allow_list();
        assert!(list.allows("replies.a"));
        assert!(list.allows("gw.instance-7"));
        assert!(!list.allows("switchboard.replies"), "an explicit list replaces the default");
        assert!(!list.allows("gw.requests"), "the prefix matches, the requests topic is denied anyway");
        assert!(!ReplyTopics::parse(["*"]).allows("anything"), "a bare * allows nothing");
        let long = "x".repeat(500);
        assert!(list.check(&long).unwrap_err().len() < 300, "a hostile name is not echoed whole");
    }
}

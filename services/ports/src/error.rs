use std::fmt;

use crate::Message;

/// What went wrong, so callers can act on it (retry, fail fast, drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The port was closed; nothing more will pass through it.
    Closed,
    /// The broker could not be reached or refused for now; retrying may succeed.
    Unavailable,
    /// The broker did not answer in time; retrying may succeed.
    Timeout,
    /// The request is invalid (unknown topic, oversized message…); retrying will not help.
    Invalid,
    /// Anything else.
    Other,
}

/// A port error: a kind to act on, a short message, and the broker's error as `source()`.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    // Boxed: keeps `PublishError` (error + message handed back) small enough to return by value.
    message: Box<str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` described by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into().into_boxed_str(), source: None }
    }

    /// Attaches the underlying broker error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Shorthand for a closed port.
    pub fn closed() -> Self {
        Error::new(ErrorKind::Closed, "port closed")
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True when retrying later may succeed (unavailable, timeout).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e.as_ref() as _)
    }
}

/// A failed publish: the error, and the message handed back so the caller may retry it.
pub struct PublishError {
    /// Why the publish failed.
    pub error: Error,
    message: Message,
}

impl PublishError {
    /// Wraps `error` with the unsent `message`.
    pub fn new(error: Error, message: Message) -> Self {
        PublishError { error, message }
    }

    /// The unsent message.
    pub fn into_inner(self) -> Message {
        self.message
    }
}

// Debug leaves out the payload, so a failed publish never dumps user data into logs.
impl fmt::Debug for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishError").field("error", &self.error).finish_non_exhaustive()
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "publish failed: {}", self.error)
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        e.error
    }
}

//! Errors: a call the breaker refused, a failed call, and a bad setting.

use std::fmt;
use std::time::Duration;

use crate::breaker::State;

/// The breaker refused a call: it is open, or half-open with every probe already out.
///
/// Carries how long until the breaker lets calls through again, for a `Retry-After` header.
///
/// ```
/// use std::time::Duration;
/// use switchboard_resilience::{CircuitBreaker, Config, ManualClock};
///
/// let clock = ManualClock::new();
/// let config = Config::builder().wait_open(Duration::from_secs(30)).build()?;
/// let breaker = CircuitBreaker::with_clock(config, clock.clone());
/// breaker.force_open();
/// clock.advance(Duration::from_millis(10_500));
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.retry_after(), Duration::from_millis(19_500));
/// assert_eq!(rejected.retry_after_secs(), 20);
/// # Ok::<(), switchboard_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub(crate) state: State,
    pub(crate) retry_after: Duration,
}

impl Rejected {
    /// The state that refused the call ([`State::Open`] or [`State::HalfOpen`]).
    pub fn state(&self) -> State {
        self.state
    }

    /// Time left until the breaker lets probes through. Zero when it is half-open with all
    /// probes out: their results are due any moment.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// [`retry_after`](Rejected::retry_after) in whole seconds, rounded up and at least 1, as an
    /// HTTP `Retry-After` value.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state {
            State::HalfOpen => f.write_str("circuit half-open: all probe calls in flight"),
            _ => write!(f, "circuit open: retry in {} ms", self.retry_after.as_millis()),
        }
    }
}

impl std::error::Error for Rejected {}

/// Result of a call through the breaker that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker did not run the call.
    Rejected(Rejected),
    /// The call ran and returned this error.
    Failed(E),
}

impl<E> CallError<E> {
    /// The call's own error, if it ran.
    pub fn into_failed(self) -> Option<E> {
        match self {
            CallError::Failed(e) => Some(e),
            CallError::Rejected(_) => None,
        }
    }

    /// True when the breaker refused the call.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }
}

impl<E> From<Rejected> for CallError<E> {
    fn from(r: Rejected) -> Self {
        CallError::Rejected(r)
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(r) => r.fmt(f),
            CallError::Failed(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Rejected(_) => None,
            CallError::Failed(e) => Some(e),
        }
    }
}

/// What is wrong with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not a non-negative whole number.
    NotANumber,
    /// Not a number of percent.
    NotAPercent,
    /// A number outside the setting's range.
    OutOfRange,
    /// A window kind other than `count` or `time`.
    UnknownWindowKind,
}

impl ConfigErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ConfigErrorKind::NotANumber => "not a whole number",
            ConfigErrorKind::NotAPercent => "not a percentage",
            ConfigErrorKind::OutOfRange => "out of range",
            ConfigErrorKind::UnknownWindowKind => "unknown window kind",
        }
    }
}

/// An invalid setting, naming the setting (or environment variable) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    name: String,
    value: String,
    kind: ConfigErrorKind,
    is_var: bool,
}

impl ConfigError {
    pub(crate) fn new(name: &str, value: impl fmt::Display, kind: ConfigErrorKind) -> Self {
        ConfigError { name: name.to_owned(), value: value.to_string(), kind, is_var: false }
    }

    /// Marks `name` as an environment variable already.
    pub(crate) fn named_var(mut self) -> Self {
        self.is_var = true;
        self
    }

    /// Renames a builder setting (`min_calls`) to its variable (`{prefix}_MIN_CALLS`), for a
    /// caller that read the settings from flags or variables of that prefix.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        if !self.is_var {
            self.name = format!("{prefix}_{}", self.name.to_ascii_uppercase());
            self.is_var = true;
        }
        self
    }

    /// What is wrong.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The setting or environment variable at fault.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}={}: {}", self.name, self.value, self.kind.as_str())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_secs_rounds_up_to_at_least_one() {
        let r = |ms| Rejected { state: State::Open, retry_after: Duration::from_millis(ms) };
        assert_eq!(r(0).retry_after_secs(), 1);
        assert_eq!(r(1).retry_after_secs(), 1);
        assert_eq!(r(2000).retry_after_secs(), 2);
        assert_eq!(r(2001).retry_after_secs(), 3);
    }
}

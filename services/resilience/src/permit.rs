//! Permission for one call through a breaker, and the report of how it went.

use std::fmt;

use crate::breaker::{tag_state, Inner, State};
use crate::outcome::CallOutcome;

/// Permission for one call, from [`CircuitBreaker::try_acquire`](crate::CircuitBreaker::try_acquire).
///
/// Report the outcome with [`success`](Permit::success), [`failure`](Permit::failure),
/// [`ignore`](Permit::ignore) or [`record`](Permit::record). The call's duration runs from
/// `try_acquire` to the report. Dropping the permit unreported releases it (neither success
/// nor failure), except during a panic, when it counts as a failure.
#[must_use = "report the call's outcome on the permit"]
pub struct Permit<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) word: u64,
    pub(crate) start: u64,
    pub(crate) done: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("state", &tag_state(self.word)).field("start", &self.start).finish()
    }
}

impl Permit<'_> {
    /// The state the permit was issued in ([`State::HalfOpen`] for a probe).
    pub fn state(&self) -> State {
        tag_state(self.word)
    }

    /// The call succeeded.
    #[inline]
    pub fn success(self) {
        self.record(CallOutcome::Success)
    }

    /// The call failed.
    #[inline]
    pub fn failure(self) {
        self.record(CallOutcome::Failure)
    }

    /// The call counts as neither (a caller error).
    #[inline]
    pub fn ignore(self) {
        self.record(CallOutcome::Ignored)
    }

    /// Reports `outcome`.
    #[inline]
    pub fn record(mut self, outcome: CallOutcome) {
        self.done = true;
        self.inner.finish(self.word, self.start, Some(outcome));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            let outcome = std::thread::panicking().then_some(CallOutcome::Failure);
            self.inner.finish(self.word, self.start, outcome);
        }
    }
}

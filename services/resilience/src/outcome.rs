//! How a finished call counts for a breaker.

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Counts as a success (and as slow if it took too long).
    Success,
    /// Counts as a failure (and as slow if it took too long).
    Failure,
    /// Counts as neither, like a caller error (HTTP 4xx): the service is not at fault. In
    /// half-open the probe slot is given back.
    Ignored,
}

impl CallOutcome {
    /// `Ok` is a success, `Err` a failure; what [`CircuitBreaker::call`](crate::CircuitBreaker::call) uses.
    pub fn of<T, E>(result: &Result<T, E>) -> CallOutcome {
        match result {
            Ok(_) => CallOutcome::Success,
            Err(_) => CallOutcome::Failure,
        }
    }

    /// A classifier for [`CircuitBreaker::call_with`](crate::CircuitBreaker::call_with): `Ok` is a success, an `Err` for which
    /// `ignore` is true is ignored, any other `Err` is a failure.
    ///
    /// ```
    /// use switchboard_resilience::CallOutcome;
    ///
    /// let classify = CallOutcome::ignore_if(|status: &u16| *status < 500);
    /// assert_eq!(classify(&Err::<(), u16>(404)), CallOutcome::Ignored);
    /// assert_eq!(classify(&Err::<(), u16>(503)), CallOutcome::Failure);
    /// assert_eq!(classify(&Ok::<(), u16>(())), CallOutcome::Success);
    /// ```
    pub fn ignore_if<T, E>(ignore: impl Fn(&E) -> bool) -> impl Fn(&Result<T, E>) -> CallOutcome {
        move |result| match result {
            Ok(_) => CallOutcome::Success,
            Err(e) if ignore(e) => CallOutcome::Ignored,
            Err(_) => CallOutcome::Failure,
        }
    }
}

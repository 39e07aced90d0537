//! The fixed label values of outcomes and states, as enums so call sites cannot invent new ones.

/// A circuit breaker's state, as the `breaker_state` gauge encodes it (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through (gauge 0).
    Closed,
    /// Calls are rejected (gauge 1).
    Open,
    /// Probe calls go through (gauge 2).
    HalfOpen,
}

impl BreakerState {
    /// The label value: `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The `breaker_state` gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// How a call through a circuit breaker ended (`breaker_calls_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerCall {
    /// The call went through and succeeded.
    Success,
    /// The call went through and failed.
    Failure,
    /// The call went through; its outcome did not count (a caller error).
    Ignored,
    /// The breaker rejected the call without making it.
    Rejected,
}

impl BreakerCall {
    /// The label value: `success`, `failure`, `ignored`, `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerCall::Success => "success",
            BreakerCall::Failure => "failure",
            BreakerCall::Ignored => "ignored",
            BreakerCall::Rejected => "rejected",
        }
    }
}

/// How an AMQP delivery was settled (`amqp_acks_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckOutcome {
    /// Acked after the work was done.
    Ack,
    /// Rejected with requeue, or republished for a retry.
    Retry,
    /// Sent to the dead-letter queue.
    DeadLetter,
}

impl AckOutcome {
    /// The label value: `ack`, `retry`, `dead_letter`.
    pub fn as_str(self) -> &'static str {
        match self {
            AckOutcome::Ack => "ack",
            AckOutcome::Retry => "retry",
            AckOutcome::DeadLetter => "dead_letter",
        }
    }
}

/// The canonical name of a gRPC status code (`OK`, `UNAVAILABLE`, …); codes outside 0..=16 are
/// `UNKNOWN`, as the gRPC spec maps them.
pub fn grpc_code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_have_canonical_names() {
        assert_eq!(grpc_code_name(0), "OK");
        assert_eq!(grpc_code_name(4), "DEADLINE_EXCEEDED");
        assert_eq!(grpc_code_name(16), "UNAUTHENTICATED");
        assert_eq!(grpc_code_name(17), "UNKNOWN");
        assert_eq!(grpc_code_name(-1), "UNKNOWN");
    }
}

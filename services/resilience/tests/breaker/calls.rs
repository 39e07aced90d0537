//! The call wrappers, sync and async.

use std::pin::pin;

use futures_lite::future;
use switchboard_resilience::{CallError, CallOutcome, State};

use crate::support::*;

#[test]
fn call_async_records_outcomes_and_rejects_when_open() {
    let (b, _) = breaker(config());
    future::block_on(async {
        assert_eq!(b.call_async(async { Ok::<_, ()>(1) }).await, Ok(1));
        for _ in 0..4 {
            let r = b.call_async(async { Err::<(), _>("timeout") }).await;
            assert_eq!(r, Err(CallError::Failed("timeout")));
        }
        assert_eq!(b.state(), State::Open, "4 of 5 failed");
        let r = b.call_async(async { Ok::<_, ()>(2) }).await;
        assert!(matches!(r, Err(CallError::Rejected(_))));
    });
}

#[test]
fn call_async_with_ignores_what_the_classifier_ignores() {
    let (b, _) = breaker(config());
    future::block_on(async {
        for _ in 0..10 {
            let classify = CallOutcome::ignore_if(|e: &&str| *e == "bad request");
            let _ = b.call_async_with(classify, async { Err::<(), _>("bad request") }).await;
        }
    });
    assert_eq!(b.metrics().ignored, 10);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_cancelled_async_call_releases_its_probe() {
    let (b, clock) = breaker(config().half_open_calls(1));
    open_and_wait(&b, &clock);
    {
        let mut call = pin!(b.call_async(future::pending::<Result<(), ()>>()));
        assert!(future::block_on(future::poll_once(call.as_mut())).is_none());
        assert!(b.try_acquire().is_err(), "the only probe is out");
    }
    assert_eq!(b.metrics().released, 1);
    succeed(&b, 1);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn call_error_display_and_source() {
    let (b, _) = breaker(config());
    b.force_open();
    let r = b.call(|| Err::<(), std::io::Error>(std::io::Error::other("x")));
    let e = r.unwrap_err();
    assert!(e.to_string().starts_with("circuit open: retry in"));
    assert!(std::error::Error::source(&e).is_none());
    b.reset();
    let e = b.call(|| Err::<(), _>(std::io::Error::other("refused"))).unwrap_err();
    assert_eq!(e.to_string(), "refused");
    assert!(std::error::Error::source(&e).is_some());
}

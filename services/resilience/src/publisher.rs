//! The breaker as a [`Publisher`] decorator: wraps any publisher, returns a publisher.

use async_trait::async_trait;
use switchboard_ports::{Error, ErrorKind, Message, PublishError, Publisher};

use crate::breaker::CircuitBreaker;

/// A [`Publisher`] that publishes through `inner` unless `breaker` is open.
///
/// Unavailable, timed-out and other broker errors count as failures, and so does a publish
/// abandoned before the broker answered (its future dropped, as when the caller's deadline
/// passes): a stalled broker answers nothing at all, and must still open the breaker. Invalid
/// requests (the caller's fault) and a closed publisher (our own shutdown) are ignored: they
/// say nothing about the broker's health. A rejected publish fails with
/// [`ErrorKind::Unavailable`], the message handed back, and the [`Rejected`](crate::Rejected)
/// (with its retry-after) as the error's `source()`.
///
/// ```
/// use async_trait::async_trait;
/// use switchboard_resilience::{BreakerPublisher, CircuitBreaker, Config, Rejected};
/// use switchboard_ports::{Error, ErrorKind, Message, PublishError, Publisher};
///
/// struct Down;
///
/// #[async_trait]
/// impl Publisher for Down {
///     async fn publish(&self, _: &str, m: Message) -> Result<(), PublishError> {
///         Err(PublishError::new(Error::new(ErrorKind::Unavailable, "broker down"), m))
///     }
///     async fn close(&self) -> Result<(), Error> {
///         Ok(())
///     }
/// }
///
/// # futures_lite::future::block_on(async {
/// let breaker = CircuitBreaker::new(Config::builder().min_calls(2).build().unwrap());
/// let publisher = BreakerPublisher::new(Down, breaker);
/// for _ in 0..2 {
///     assert!(publisher.publish("orders", Message::new("x")).await.is_err());
/// }
/// let err = publisher.publish("orders", Message::new("x")).await.unwrap_err();
/// assert_eq!(err.error.kind(), ErrorKind::Unavailable);
/// let rejected = std::error::Error::source(&err.error).unwrap().downcast_ref::<Rejected>();
/// assert!(rejected.is_some());
/// assert_eq!(err.into_inner().payload, b"x");
/// # });
/// ```
#[derive(Debug)]
pub struct BreakerPublisher<P> {
    inner: P,
    breaker: CircuitBreaker,
}

impl<P> BreakerPublisher<P> {
    /// Wraps `inner`; `breaker` may be shared with other callers of the same downstream.
    pub fn new(inner: P, breaker: CircuitBreaker) -> Self {
        BreakerPublisher { inner, breaker }
    }

    /// The breaker, for metrics and events.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The wrapped publisher.
    pub fn into_inner(self) -> P {
        self.inner
    }
}

/// True when a publish error says the broker is unhealthy.
fn counts_as_failure(error: &Error) -> bool {
    !matches!(error.kind(), ErrorKind::Invalid | ErrorKind::Closed)
}

#[async_trait]
impl<P: Publisher> Publisher for BreakerPublisher<P> {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
        let permit = match self.breaker.try_acquire() {
            Ok(permit) => permit,
            Err(rejected) => {
                let error = Error::new(ErrorKind::Unavailable, "circuit open").with_source(rejected);
                return Err(PublishError::new(error, message));
            }
        };
        let mut unanswered = Unanswered(Some(permit));
        let result = self.inner.publish(topic, message).await;
        if let Some(permit) = unanswered.0.take() {
            match &result {
                Ok(()) => permit.success(),
                Err(e) if counts_as_failure(&e.error) => permit.failure(),
                Err(_) => permit.ignore(),
            }
        }
        result
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

/// A permit whose publish is still waiting for the broker: dropped that way (the caller gave
/// up), the call counts as failed.
struct Unanswered<'a>(Option<crate::Permit<'a>>);

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.0.take() {
            permit.failure();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, ManualClock, State};
    use futures_lite::future::block_on;
    use std::sync::Mutex;

    /// Fails each publish with the next queued kind, succeeds when the queue is empty.
    #[derive(Default)]
    struct Scripted {
        failures: Mutex<Vec<ErrorKind>>,
        published: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Publisher for Scripted {
        async fn publish(&self, topic: &str, message: Message) -> Result<(), PublishError> {
            match self.failures.lock().unwrap().pop() {
                Some(kind) => Err(PublishError::new(Error::new(kind, "scripted"), message)),
                None => {
                    self.published.lock().unwrap().push(topic.to_owned());
                    Ok(())
                }
            }
        }

        async fn close(&self) -> Result<(), Error> {
            Ok(())
        }
    }

    /// A breaker (3 calls decide) over a publisher whose first three publishes fail with
    /// `failures`, after those three publishes.
    fn after_failures(failures: [ErrorKind; 3]) -> BreakerPublisher<Scripted> {
        let config = Config::builder().min_calls(3).build().unwrap();
        let breaker = CircuitBreaker::with_clock(config, ManualClock::new());
        let scripted = Scripted { failures: Mutex::new(failures.to_vec()), ..Default::default() };
        let p = BreakerPublisher::new(scripted, breaker);
        block_on(async {
            for _ in failures {
                assert!(p.publish("t", Message::new("m")).await.is_err());
            }
        });
        p
    }

    #[test]
    fn broker_errors_open_the_breaker_and_stop_publishes() {
        let p = after_failures([ErrorKind::Other, ErrorKind::Timeout, ErrorKind::Unavailable]);
        assert_eq!(p.breaker().state(), State::Open);
        let err = block_on(p.publish("t", Message::new("kept"))).unwrap_err();
        assert_eq!(err.error.to_string(), "circuit open");
        assert_eq!(err.into_inner().payload, b"kept");
        assert!(p.into_inner().published.lock().unwrap().is_empty());
    }

    #[test]
    fn caller_errors_and_shutdown_do_not_count() {
        let p = after_failures([ErrorKind::Invalid, ErrorKind::Closed, ErrorKind::Invalid]);
        block_on(p.publish("t", Message::new("m"))).unwrap();
        let m = p.breaker().metrics();
        assert_eq!((m.state, m.ignored, m.failures, m.successes), (State::Closed, 3, 0, 1));
    }

    /// Never answers: a stalled broker.
    struct Stalled;

    #[async_trait]
    impl Publisher for Stalled {
        async fn publish(&self, _: &str, _: Message) -> Result<(), PublishError> {
            futures_lite::future::pending().await
        }

        async fn close(&self) -> Result<(), Error> {
            Ok(())
        }
    }

    #[test]
    fn publishes_abandoned_before_the_broker_answered_count_as_failures() {
        let config = Config::builder().min_calls(3).build().unwrap();
        let p = BreakerPublisher::new(Stalled, CircuitBreaker::with_clock(config, ManualClock::new()));
        for _ in 0..3 {
            let publish = p.publish("t", Message::new("m"));
            assert!(block_on(futures_lite::future::poll_once(publish)).is_none(), "still waiting");
        }
        let m = p.breaker().metrics();
        assert_eq!((m.state, m.failures), (State::Open, 3));
    }
}

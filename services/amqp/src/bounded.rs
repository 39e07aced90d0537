//! amiquip's calls wait for the broker's answer without a limit of their own: a broker that
//! stalls (alive, not answering) holds a channel open, a declare or a channel close until
//! missed heartbeats end the connection, two minutes with RabbitMQ's default heartbeat. The connection thread serves every caller, so each such
//! call runs on a short-lived thread of its own and is waited for at most the connect timeout;
//! a call that does not answer in time is taken as a dead connection.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use amiquip::Connection;
use switchboard_ports::{Error, ErrorKind};

/// The connection, shared with the threads its calls run on.
pub(crate) type SharedConnection = Arc<Mutex<Connection>>;

pub(crate) fn share(connection: Connection) -> SharedConnection {
    Arc::new(Mutex::new(connection))
}

pub(crate) fn lock(connection: &SharedConnection) -> MutexGuard<'_, Connection> {
    connection.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a call on the connection gave no result.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The broker (or amiquip) said no.
    Broker(amiquip::Error),
    /// No answer within this long.
    TimedOut(Duration),
    /// No thread to run the call on.
    Thread(std::io::Error),
}

impl Failed {
    /// Whether the connection is to be given up (rather than one channel refused).
    pub(crate) fn ends_connection(&self) -> bool {
        match self {
            Failed::Broker(e) => connection_dead(e),
            Failed::TimedOut(_) | Failed::Thread(_) => true,
        }
    }

    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            Failed::Broker(e) => crate::connection::broker_error(what, e),
            Failed::TimedOut(after) => {
                Error::new(ErrorKind::Timeout, format!("{what}: rabbitmq did not answer within {after:?}"))
            }
            Failed::Thread(e) => Error::new(ErrorKind::Other, format!("{what}: no thread for the call")).with_source(e),
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // amiquip's messages may quote the URL, password included.
            Failed::Broker(e) => f.write_str(&crate::tls::redact(&e.to_string())),
            Failed::TimedOut(after) => write!(f, "no answer within {after:?}"),
            Failed::Thread(e) => write!(f, "no thread for the call: {e}"),
        }
    }
}

/// Whether an error says the whole connection is gone (rather than one channel refused).
pub(crate) fn connection_dead(e: &amiquip::Error) -> bool {
    !matches!(
        e,
        amiquip::Error::ServerClosedChannel { .. }
            | amiquip::Error::ExhaustedChannelIds
            | amiquip::Error::UnavailableChannelId { .. }
    )
}

/// Runs `call` on a thread of its own and waits at most `timeout` for its result. A call that
/// times out keeps running until the broker answers or the connection dies; what it holds
/// (its clone of the connection, a channel) is dropped then.
pub(crate) fn within<T: Send + 'static>(
    timeout: Duration,
    call: impl FnOnce() -> amiquip::Result<T> + Send + 'static,
) -> Result<T, Failed> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("amqp-call".into())
        .spawn(move || {
            let _ = tx.send(call());
        })
        .map_err(Failed::Thread)?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(Failed::Broker),
        Err(_) => Err(Failed::TimedOut(timeout)),
    }
}

/// Drops `handle` (a channel: dropping one closes it and waits for the broker's answer),
/// waiting at most `timeout`.
pub(crate) fn release<T: Send + 'static>(handle: T, timeout: Duration) {
    let _ = within(timeout, move || {
        drop(handle);
        Ok(())
    });
}

/// Closes `connection`, waiting at most `timeout` (a stalled broker never answers the close).
/// If a call still holds it, that call's thread closes it when it ends (dropping closes).
pub(crate) fn close(connection: SharedConnection, timeout: Duration) {
    if let Ok(connection) = Arc::try_unwrap(connection) {
        let connection = connection.into_inner().unwrap_or_else(|e| e.into_inner());
        let _ = within(timeout, move || connection.close());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_does_not_answer_in_time_fails_as_timed_out_and_ends_the_connection() {
        let (release, held) = crossbeam_channel::bounded::<()>(0);
        let failed = within(Duration::from_millis(20), move || {
            let _ = held.recv();
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(failed, Failed::TimedOut(_)), "{failed}");
        assert!(failed.ends_connection());
        assert_eq!(failed.into_error("cannot open a channel").kind(), ErrorKind::Timeout);
        drop(release);
        assert_eq!(within(Duration::from_secs(60), || Ok(7)).unwrap(), 7);
    }
}

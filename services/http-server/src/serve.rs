//! The accept loop of every switchboard HTTP server (the gateway and the admin server).
//!
//! - Accept errors that pass (out of file descriptors, a connection aborted before it was
//!   accepted, no buffer memory) are logged, rate-limited, and backed off: a burst of
//!   connections past `RLIMIT_NOFILE` slows the server down, it does not stop it. Only an
//!   error that says the listener itself is broken ends the loop, and then the caller's process
//!   must exit (see [`serve_http`]).
//! - At most `max_connections` connections are served at once; the others wait in the kernel's
//!   accept backlog.
//! - Each request must send its head within `header_timeout` (which also bounds how long an
//!   idle keep-alive connection is kept) and its body within `body_timeout`; the response must
//!   be taken within `body_timeout` too. Past a deadline the connection is closed, so slow
//!   clients cannot hold the connection slots (slowloris).
//! - Request heads are capped by async-h1: 8 KiB and 128 headers (431). A head it cannot
//!   take (malformed, not UTF-8, another HTTP version: 505) gets a JSON error, then the
//!   connection is closed.
//! - A request repeating a header that may come once (`Authorization`, `Content-Length`,
//!   `Content-Type`, `Idempotency-Key`) is a 400 `duplicate_header`, before any endpoint sees
//!   it, and the connection is closed (see [`SINGLETON_HEADERS`](crate::SINGLETON_HEADERS)).
//! - With [`HttpLimits::tls`] set every connection is HTTPS: the TLS handshake is done on the
//!   connection's task (not the accept loop) and must finish within `header_timeout`; a failed
//!   handshake is logged (rate-limited) and closes only that connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_h1::server::{ConnectionStatus, Server};
use async_std::net::{TcpListener, TcpStream};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use http_types::{Request, Response, StatusCode};
use serde::Serialize;

use switchboard_resilience::{Jitter, RetryPolicy};

use crate::deadline::Deadline;
use crate::tls::ServerTls;

/// Limits of one HTTP server's connections.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Connections served at once; further clients wait in the accept backlog.
    pub max_connections: usize,
    /// Time to receive a request head, counted from the end of the previous response (so it
    /// also bounds keep-alive idleness). async-h1 caps it at 60 s.
    pub header_timeout: Duration,
    /// Time to receive a request body once its head is in, and to send the response.
    pub body_timeout: Duration,
    /// The `Allow` value of a path the server knows, `None` for others: answers a method the
    /// HTTP parser does not know (405 with it, else 404).
    pub allow: fn(&str) -> Option<&'static str>,
    /// Serve HTTPS with this acceptor instead of plain HTTP.
    pub tls: Option<ServerTls>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            allow: |_| None,
            tls: None,
        }
    }
}

/// A connection's future, handed to the caller's executor.
pub type Connection = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Accepts connections on `listener` and serves each with `endpoint` on a task `spawn`
/// starts, within `limits`. `name` prefixes the log lines.
///
/// Returns only when the listener is broken for good (an error other than those that pass,
/// see the module docs): the server is then deaf, and its process should exit non-zero rather
/// than stay up with a dead port. Stop it by dropping the future (e.g. racing it with a
/// shutdown signal).
pub async fn serve_http<E, Fut>(
    name: &'static str,
    listener: &TcpListener,
    limits: &HttpLimits,
    spawn: impl Fn(Connection),
    endpoint: E,
) -> io::Error
where
    E: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http_types::Result<Response>> + Send + 'static,
{
    let slots = Arc::new(async_lock::Semaphore::new(limits.max_connections.max(1)));
    let mut warn = Throttled::new(Duration::from_secs(5));
    let policy = accept_backoff();
    let mut backoff = policy.delays();
    let handshakes = Arc::new(parking_lot::Mutex::new(Throttled::new(Duration::from_secs(5))));
    loop {
        let slot = slots.acquire_arc().await;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if passes(&e) => {
                let pause = backoff.next().unwrap_or(Duration::from_secs(1));
                warn.warn(|suppressed| format!("{name}: accept failed: {e} (retrying in {pause:?}{suppressed})"));
                async_io::Timer::after(pause).await;
                continue;
            }
            Err(e) => {
                log::error!("{name}: listener failed, no longer accepting: {e}");
                return e;
            }
        };
        backoff = policy.delays();
        // With Nagle on, a keep-alive client stalls ~40 ms per request on delayed ACKs. It
        // fails only when the peer is already gone: drop that connection, serve the rest.
        if let Err(e) = stream.set_nodelay(true) {
            warn.warn(|suppressed| format!("{name}: dropping connection from {peer}: {e}{suppressed}"));
            continue;
        }
        let (endpoint, limits, handshakes) = (endpoint.clone(), limits.clone(), handshakes.clone());
        spawn(Box::pin(async move {
            match &limits.tls {
                None => connection(name, stream.clone(), stream, peer, &limits, endpoint).await,
                Some(tls) => match within(limits.header_timeout, tls.accept(stream.clone())).await {
                    Ok(secured) => connection(name, secured, stream, peer, &limits, endpoint).await,
                    Err(e) => {
                        handshakes
                            .lock()
                            .warn(|suppressed| format!("{name}: TLS handshake with {peer} failed: {e}{suppressed}"));
                        linger(stream).await;
                    }
                },
            }
            drop(slot);
        }));
    }
}

/// `fut`'s outcome, or `TimedOut` after `timeout`.
async fn within<T>(timeout: Duration, fut: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    futures_lite::future::or(fut, async {
        async_io::Timer::after(timeout).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    })
    .await
}

/// Serves one connection's requests on `stream` (plain or TLS over `raw`) until it closes,
/// errs, or misses a deadline.
async fn connection<S, E, Fut>(
    name: &str,
    stream: S,
    raw: TcpStream,
    peer: SocketAddr,
    limits: &HttpLimits,
    endpoint: E,
) where
    S: AsyncRead + AsyncWrite + Clone + Send + Sync + Unpin + 'static,
    E: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http_types::Result<Response>> + Send + 'static,
{
    let io = Deadline::new(stream);
    let (phases, body_timeout) = (io.clone(), limits.body_timeout);
    // Set once a head is in: an error before it is the client's malformed or slow head.
    let head_in = Arc::new(AtomicBool::new(false));
    let seen = head_in.clone();
    // Called once the head is in: the body deadline starts, and the response's once answered.
    let timed = move |req: Request| {
        seen.store(true, Ordering::Relaxed);
        phases.read_within(body_timeout);
        // Refused here, so no endpoint of any server sees an ambiguous request.
        let refused = crate::singletons::refuse_repeated(&req);
        let answer = refused.is_none().then(|| endpoint(req));
        let phases = phases.clone();
        async move {
            let res = match answer {
                Some(answer) => answer.await,
                None => Ok(refused.expect("refused when not answered")),
            };
            phases.write_within(body_timeout);
            res
        }
    };
    let mut server = Server::new(io.clone(), timed);
    loop {
        head_in.store(false, Ordering::Relaxed);
        io.head_within(limits.header_timeout);
        match server.accept_one().await {
            Ok(ConnectionStatus::KeepAlive) => {}
            Ok(ConnectionStatus::Close) => break,
            Err(e) => {
                log::debug!("{name}: connection from {peer} ended: {e}");
                if !head_in.load(Ordering::Relaxed) {
                    if let Some(answer) = bad_head(&e, &io.head(), limits.allow) {
                        io.write_within(body_timeout);
                        let mut out = io.clone();
                        let _ = out.write_all(&answer).await;
                    }
                }
                break;
            }
        }
    }
    // TLS: close_notify first, so the client sees a clean end (plain TCP: a shutdown, which
    // `linger` repeats harmlessly).
    let mut closing = io.clone();
    closing.write_within(body_timeout);
    let _ = within(body_timeout, closing.close()).await;
    linger(raw).await;
}

/// The raw answer to a request head async-h1 could not take (it closes the connection without
/// one): 505 for another HTTP version, 431 for a head over its 8 KiB, else 400. `None` when
/// the head did not arrive (timed out, reset): the client is gone or idle, nothing to answer.
fn bad_head(e: &http_types::Error, head: &[u8], allow: fn(&str) -> Option<&'static str>) -> Option<Vec<u8>> {
    if e.downcast_ref::<io::Error>().is_some() {
        return None;
    }
    let text = e.to_string();
    let mut extra = String::new();
    let (status, code, message) = if text == "Invalid HTTP method" {
        // The request line is in: `METHOD /path?query HTTP/1.1`.
        let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
        let target = String::from_utf8_lossy(line).split(' ').nth(1).unwrap_or_default().to_owned();
        let path = target.split(['?', '#']).next().unwrap_or_default();
        match allow(path) {
            Some(methods) => {
                extra = format!("allow: {methods}\r\n");
                (StatusCode::MethodNotAllowed, "method_not_allowed", "this method is not served here")
            }
            None => (StatusCode::NotFound, "not_found", "no such endpoint"),
        }
    } else if text.starts_with("Unsupported HTTP version") {
        (StatusCode::HttpVersionNotSupported, "http_version_not_supported", "send HTTP/1.1")
    } else if text.starts_with("Head byte length") || text.contains("too many headers") {
        let message = "the request head exceeds 8 KiB or 128 headers";
        (StatusCode::RequestHeaderFieldsTooLarge, "headers_too_large", message)
    } else {
        (StatusCode::BadRequest, "bad_request", "malformed request head")
    };
    let body = serde_json::to_string(&ErrorBody { error: ErrorDetail { code, message } }).ok()?;
    let head = format!(
        "HTTP/1.1 {} {}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status as u16,
        status.canonical_reason(),
        body.len()
    );
    Some([head.into_bytes(), body.into_bytes()].concat())
}

/// Closes `stream` so that a response just written arrives: the close is sent first, then
/// what the client still sends is read and dropped for a moment. Closing with unread input
/// makes the kernel reset the connection, and a reset can destroy the response (a 408 to a
/// client still sending its body) before the client reads it.
async fn linger(stream: TcpStream) {
    const LINGER: Duration = Duration::from_millis(500);
    const LINGER_BYTES: u64 = 64 * 1024;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let drain = futures_lite::io::copy(stream.take(LINGER_BYTES), futures_lite::io::sink());
    let _ = futures_lite::future::or(async { drain.await.map(drop) }, async {
        async_io::Timer::after(LINGER).await;
        Ok(())
    })
    .await;
}

/// Accept errors after which the listener still works: the peer went away, or the process or
/// the system ran out of descriptors or memory for now.
fn passes(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut | OutOfMemory | PermissionDenied
    ) {
        return true;
    }
    // accept(2): the network errors are pending errors of the new socket, "treat them like
    // EAGAIN"; the others pass as connections close.
    const PASSING: [i32; 12] = [
        libc::EMFILE,
        libc::ENFILE,
        libc::ENOBUFS,
        libc::ENOMEM,
        libc::EPROTO,
        libc::ENETDOWN,
        libc::ENOPROTOOPT,
        libc::EHOSTDOWN,
        libc::ENONET,
        libc::EHOSTUNREACH,
        libc::EOPNOTSUPP,
        libc::ENETUNREACH,
    ];
    e.raw_os_error().is_some_and(|code| PASSING.contains(&code))
}

/// Exponential pause after failed accepts: 10 ms doubling up to 1 s, without end; a success
/// starts it again ([`accept_backoff`]`.delays()`).
fn accept_backoff() -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(u32::MAX)
        .initial_delay(Duration::from_millis(10))
        .max_delay(Duration::from_secs(1))
        .jitter(Jitter::None)
}

/// A warning logged at most once per period, with the count of those left out.
struct Throttled {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn new(period: Duration) -> Self {
        Throttled { period, last: None, suppressed: 0 }
    }

    fn warn(&mut self, message: impl FnOnce(&str) -> String) {
        if self.last.is_some_and(|at| at.elapsed() < self.period) {
            self.suppressed += 1;
            return;
        }
        let note = match self.suppressed {
            0 => String::new(),
            n => format!("; {n} more like it since the last warning"),
        };
        log::warn!("{}", message(&note));
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// [`serve_http`] until `stop` completes: `Ok` then (connections already spawned finish on
/// their own), the listener's error if it broke first. What every server of the project does.
pub async fn serve_until<E, Fut>(
    name: &'static str,
    listener: &TcpListener,
    limits: &HttpLimits,
    spawn: impl Fn(Connection),
    endpoint: E,
    stop: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http_types::Result<Response>> + Send + 'static,
{
    futures_lite::future::or(async { Err(serve_http(name, listener, limits, spawn, endpoint).await) }, async {
        stop.await;
        Ok(())
    })
    .await
}

/// The JSON error every switchboard HTTP server answers with:
/// `{"error": {"code": "...", "message": "..."}}`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_string(&ErrorBody { error: ErrorDetail { code, message } }).expect("strings serialize");
    let mut res = Response::new(status);
    res.insert_header("content-type", "application/json");
    res.set_body(body);
    res
}

/// The `code` of a JSON error for a status that has no more specific one.
pub fn error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BadRequest => "bad_request",
        StatusCode::NotFound => "not_found",
        StatusCode::MethodNotAllowed => "method_not_allowed",
        StatusCode::RequestTimeout => "request_timeout",
        StatusCode::PayloadTooLarge => "payload_too_large",
        StatusCode::UnsupportedMediaType => "unsupported_media_type",
        StatusCode::UnprocessableEntity => "invalid",
        StatusCode::TooManyRequests => "too_many_requests",
        StatusCode::ServiceUnavailable => "unavailable",
        StatusCode::GatewayTimeout => "deadline_exceeded",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_exhaustion_and_aborted_connections_pass_a_broken_listener_does_not() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM, libc::ECONNABORTED, libc::EPROTO] {
            assert!(passes(&io::Error::from_raw_os_error(code)), "errno {code}");
        }
        // EBADF, EINVAL, ENOTSOCK: the listener itself is gone.
        for code in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK] {
            assert!(!passes(&io::Error::from_raw_os_error(code)), "errno {code}");
        }
    }

    #[test]
    fn backoff_doubles_to_a_second_and_resets() {
        let policy = accept_backoff();
        let mut b = policy.delays();
        let pauses: Vec<_> = (0..9).map(|_| b.next().unwrap().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b = policy.delays();
        assert_eq!(b.next(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn error_bodies_are_the_documented_object() {
        smol::block_on(async {
            let mut res = json_error(StatusCode::NotFound, "not_found", "no \"route\"");
            assert_eq!(res.header("content-type").unwrap().as_str(), "application/json");
            let body = res.body_string().await.unwrap();
            assert_eq!(body, r#"{"error":{"code":"not_found","message":"no \"route\""}}"#);
        });
    }
}

//! Queue depths from RabbitMQ's management HTTP API (`GET /api/queues/{vhost}/{name}`), which,
//! unlike AMQP's passive declare, reports the messages delivered and not yet acked.
//!
//! ureq is blocking, so one thread of its own makes the calls, taken over a bounded channel;
//! each call is bounded by the timeout (connect, TLS, request and body alike) and the answer
//! capped, so a stalled management port costs a caller one timeout, never a hung task.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use switchboard_ports::{Error, ErrorKind, InspectQueues, QueueDepth};

use crate::connection::oneshot;

/// Calls waiting for the thread; past it a caller is told the API is busy instead of waiting.
const PENDING: usize = 64;
/// Largest answer read: one queue's JSON is a few kilobytes.
const MAX_ANSWER: u64 = 256 * 1024;

/// Queue depths from RabbitMQ's management API, `unacked` included.
///
/// Credentials come from the management URL's user info, else from the AMQP URL's, else
/// RabbitMQ's `guest`/`guest` (what an AMQP URL without them means); the vhost is the AMQP
/// URL's. Neither the password nor the `Authorization` header is ever logged or shown.
/// Dropping the last handle ends the thread once its current call returns.
pub struct ManagementApi {
    calls: async_channel::Sender<Call>,
    /// The API's base URL without user info, for errors.
    shown: String,
}

struct Call {
    queue: String,
    url: String,
    reply: crate::connection::Reply<Result<QueueDepth, Error>>,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi").field("url", &self.shown).finish_non_exhaustive()
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::Invalid, message)
}

/// `percent-decoded user, password` of a URL's user info, if it has a user.
fn credentials(url: &url::Url) -> Option<(String, String)> {
    if url.username().is_empty() {
        return None;
    }
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    Some((decode(url.username()), url.password().map(decode).unwrap_or_default()))
}

/// The vhost an AMQP URL names: its path without the leading '/', percent-decoded (`%2f` is
/// `/`); an empty path is the default vhost `/`.
fn vhost_of(amqp: &url::Url) -> String {
    let path = amqp.path().strip_prefix('/').unwrap_or(amqp.path());
    if path.is_empty() {
        return "/".to_owned();
    }
    percent_decode_str(path).decode_utf8_lossy().into_owned()
}

impl ManagementApi {
    /// Reads depths from the management API at `management_url` (`http(s)://[user:pass@]host:port[/prefix]`)
    /// for the vhost and, failing the URL's own, the credentials of `amqp_url`; every call
    /// bounded by `timeout`. Starts its thread; errors (never quoting a password) when a URL
    /// does not parse.
    pub fn new(management_url: &str, amqp_url: Option<&str>, timeout: Duration) -> Result<Self, Error> {
        let mut base = url::Url::parse(management_url)
            .map_err(|e| invalid(format!("management URL {}: {e}", crate::redact(management_url))))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(invalid(format!(
                "management URL {}: expected http(s)://host:port",
                crate::redact(management_url)
            )));
        }
        let amqp = match amqp_url {
            Some(u) => Some(url::Url::parse(u).map_err(|e| invalid(format!("AMQP URL {}: {e}", crate::redact(u))))?),
            None => None,
        };
        let (user, password) = credentials(&base)
            .or_else(|| amqp.as_ref().and_then(credentials))
            .unwrap_or_else(|| ("guest".to_owned(), "guest".to_owned()));
        let vhost = amqp.as_ref().map_or_else(|| "/".to_owned(), vhost_of);
        // The credentials travel in the header only: a URL is what errors and logs may show.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_query(None);
        base.set_fragment(None);
        let shown = base.as_str().trim_end_matches('/').to_owned();
        let prefix = format!("{shown}/api/queues/{}/", utf8_percent_encode(&vhost, NON_ALPHANUMERIC));
        let authorization =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout.max(Duration::from_millis(1))))
            .http_status_as_error(false)
            // Deterministic: the API is reached directly, whatever *_PROXY variables say.
            .proxy(None)
            .user_agent(concat!("switchboard-amqp/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let (calls, queue) = async_channel::bounded::<Call>(PENDING);
        let thread_shown = shown.clone();
        std::thread::Builder::new()
            .name("amqp-management".into())
            .spawn(move || {
                while let Ok(call) = queue.recv_blocking() {
                    // A caller that stopped waiting (its own deadline passed) needs no call.
                    if call.reply.is_closed() {
                        continue;
                    }
                    let answer = depth(&agent, &call, &authorization, &thread_shown);
                    let _ = call.reply.try_send(answer);
                }
            })
            .map_err(|e| Error::new(ErrorKind::Other, format!("cannot start the management API thread: {e}")))?;
        Ok(ManagementApi { calls, shown: prefix })
    }
}

/// One `GET` of a queue, its answer turned into a depth.
fn depth(agent: &ureq::Agent, call: &Call, authorization: &str, shown: &str) -> Result<QueueDepth, Error> {
    let queue = &call.queue;
    let mut answer = agent.get(&call.url).header("authorization", authorization).call().map_err(|e| {
        let kind = if matches!(e, ureq::Error::Timeout(_)) { ErrorKind::Timeout } else { ErrorKind::Unavailable };
        Error::new(kind, format!("management API {shown}: {e}"))
    })?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("management API {shown}: {e}")))?;
    match status {
        200 => parse(&body).map_err(|e| Error::new(ErrorKind::Other, format!("management API {shown}, {queue}: {e}"))),
        404 => Err(invalid(format!("management API {shown}: no queue {queue}"))),
        401 | 403 => Err(invalid(format!("management API {shown}: the credentials were refused ({status})"))),
        _ => Err(Error::new(ErrorKind::Unavailable, format!("management API {shown}: answered {status}"))),
    }
}

/// `messages_ready`, `messages_unacknowledged` and `consumers` of a queue's JSON. A queue
/// declared moments ago has no message counts until the broker's next statistics round, and
/// the consumer count is collected apart from the message counts: a missing one is an error,
/// not a zero, so nothing is shown that the broker did not say.
fn parse(body: &[u8]) -> Result<QueueDepth, String> {
    const NOT_YET: &str = "statistics not collected yet";
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let count = |field: &str| json.get(field).and_then(serde_json::Value::as_u64);
    let messages = count("messages_ready").ok_or(format!("no message counts yet ({NOT_YET})"))?;
    let consumers = count("consumers").ok_or(format!("no consumer count yet ({NOT_YET})"))?;
    let consumers = u32::try_from(consumers).unwrap_or(u32::MAX);
    Ok(QueueDepth { messages, unacked: count("messages_unacknowledged"), consumers })
}

#[async_trait]
impl InspectQueues for ManagementApi {
    async fn queue_depth(&self, queue: &str) -> Result<QueueDepth, Error> {
        let url = format!("{}{}", self.shown, utf8_percent_encode(queue, NON_ALPHANUMERIC));
        let (reply, answer) = oneshot();
        self.calls.try_send(Call { queue: queue.to_owned(), url, reply }).map_err(|e| match e {
            async_channel::TrySendError::Full(_) => {
                Error::new(ErrorKind::Unavailable, "management API: too many calls waiting")
            }
            async_channel::TrySendError::Closed(_) => Error::closed(),
        })?;
        // The thread answers every call it takes, within the agent's timeout.
        answer.recv().await.map_err(|_| Error::closed())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_come_from_the_queue_json_and_missing_counts_are_no_zero() {
        let body = br#"{"name":"jobs","messages_ready":3,"messages_unacknowledged":1,"consumers":2,"messages":4}"#;
        assert_eq!(parse(body).unwrap(), QueueDepth { messages: 3, unacked: Some(1), consumers: 2 });
        assert!(parse(br#"{"name":"jobs","consumers":0}"#).is_err());
        assert!(parse(br#"{"name":"jobs","messages_ready":0,"messages_unacknowledged":1}"#).is_err());
        assert!(parse(b"<html>").is_err());
    }

    #[test]
    fn vhost_and_credentials_come_from_the_urls_and_never_show() {
        let api = ManagementApi::new(
            "http://127.0.0.1:15672/",
            Some("amqp://alice:s%40cret@127.0.0.1:5672/%2f"),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(api.shown, "http://127.0.0.1:15672/api/queues/%2F/");
        assert!(!format!("{api:?}").contains("cret"));
        let amqp = url::Url::parse("amqp://alice:s%40cret@h/prod").unwrap();
        assert_eq!(credentials(&amqp), Some(("alice".into(), "s@cret".into())));
        assert_eq!(vhost_of(&amqp), "prod");
        assert_eq!(vhost_of(&url::Url::parse("amqp://h").unwrap()), "/");
        let own = ManagementApi::new("https://bob:pw@rabbit:15671/mq", None, Duration::from_secs(1)).unwrap();
        assert_eq!(own.shown, "https://rabbit:15671/mq/api/queues/%2F/");
        let e = ManagementApi::new("rabbit:15672", None, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        let e = ManagementApi::new("http://u:hunter2@", None, Duration::from_secs(1)).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn an_unreachable_api_is_an_error_within_the_timeout() {
        // A port nothing listens on: refused at once; the call ends either way.
        let api = ManagementApi::new("http://127.0.0.1:1", None, Duration::from_millis(500)).unwrap();
        let started = std::time::Instant::now();
        let e = futures_lite::future::block_on(api.queue_depth("jobs")).unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

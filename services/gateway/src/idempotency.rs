//! The `Idempotency-Key` request header (IETF httpapi draft "The Idempotency-Key HTTP Header
//! Field"): parsing and validating the key, fingerprinting the request, and [`Replays`], the
//! bounded map that hands a repeated request the first one's reply.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use parking_lot::Mutex;
use switchboard_bounded_map::BoundedMap;
use tide::{Request, Response, StatusCode};

use crate::errors::error;

/// The request header.
pub(crate) const HEADER: &str = "Idempotency-Key";

/// Set on a response that replays an earlier request's outcome instead of doing the work again.
pub(crate) const REPLAYED: &str = "Idempotent-Replayed";

/// Longest accepted key, in characters.
pub(crate) const MAX_KEY_LEN: usize = 255;

/// Namespace of job ids derived from keys (UUIDv5): every gateway derives the same id.
const JOB_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5b0a_7d1e_4c2f_4e8a_9f3d_2a61_c0de_0001);
/// Namespace of request fingerprints (UUIDv5 over the normalised request).
const FINGERPRINT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5b0a_7d1e_4c2f_4e8a_9f3d_2a61_c0de_0002);

/// The request's idempotency key: `None` without the header, the 400 response when it is
/// malformed. The draft makes the value a structured-field string (`"..."`); a bare token is
/// accepted too. Keys are 1 to [`MAX_KEY_LEN`] visible ASCII characters.
// The error is the finished 400 response, built only for a bad key: its size costs nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn key_of<S>(req: &Request<S>) -> Result<Option<String>, Response> {
    let Some(values) = req.header(HEADER) else { return Ok(None) };
    if values.iter().count() != 1 {
        return Err(bad_key("send one Idempotency-Key header"));
    }
    let raw = values.as_str().trim();
    let key = match raw.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or_else(|| bad_key("unterminated quoted Idempotency-Key"))?,
        None => raw,
    };
    if key.is_empty() {
        return Err(bad_key("the Idempotency-Key must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad_key(&format!("the Idempotency-Key exceeds {MAX_KEY_LEN} characters")));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) || key.contains(['"', '\\']) {
        return Err(bad_key("the Idempotency-Key must be visible ASCII without quotes or backslashes"));
    }
    Ok(Some(key.to_owned()))
}

fn bad_key(message: &str) -> Response {
    error(StatusCode::BadRequest, "invalid_idempotency_key", message)
}

/// The 422 answer to a key reused with another request.
pub(crate) fn reused() -> Response {
    error(
        StatusCode::UnprocessableEntity,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body",
    )
}

/// What identifies a request's meaning: `route` and the message text (so whitespace or key
/// order of the JSON body do not matter), as a UUIDv5 string.
pub(crate) fn fingerprint(route: &str, message: &str) -> String {
    let mut name = Vec::with_capacity(route.len() + 1 + message.len());
    name.extend_from_slice(route.as_bytes());
    name.push(0);
    name.extend_from_slice(message.as_bytes());
    uuid::Uuid::new_v5(&FINGERPRINT_NAMESPACE, &name).to_string()
}

/// The job id of `key`: the same on every gateway.
pub(crate) fn job_id(key: &str) -> String {
    uuid::Uuid::new_v5(&JOB_ID_NAMESPACE, key.as_bytes()).to_string()
}

/// A response kept to be replayed: status, headers and body.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
}

impl Stored {
    /// Takes `res` apart (its body is read) to keep it.
    pub(crate) async fn capture(mut res: Response) -> Stored {
        let body = res.take_body().into_string().await.unwrap_or_default();
        let headers = res
            .iter()
            .filter(|(name, _)| !name.as_str().eq_ignore_ascii_case("content-length"))
            .map(|(name, values)| (name.as_str().to_owned(), values.as_str().to_owned()))
            .collect();
        Stored { status: res.status(), headers, body }
    }

    /// The status kept.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The response again; `replayed` marks it with [`REPLAYED`].
    pub(crate) fn response(&self, replayed: bool) -> Response {
        let mut res = Response::new(self.status);
        for (name, value) in &self.headers {
            res.insert_header(name.as_str(), value.as_str());
        }
        if replayed {
            res.insert_header(REPLAYED, "true");
        }
        res.set_body(self.body.clone());
        res
    }
}

/// Requests by idempotency key on one gateway: in flight, or done and kept for `ttl` after
/// they started. Bounded: beyond `max` keys the oldest is forgotten.
#[derive(Debug)]
pub(crate) struct Replays {
    /// By key, in start order.
    entries: Mutex<BoundedMap<Entry>>,
}

#[derive(Debug)]
struct Entry {
    fingerprint: String,
    outcome: Arc<OnceLock<Stored>>,
    /// Closed when the first request finishes (or gives up): wakes the requests waiting on it.
    finished: async_channel::Receiver<()>,
}

/// What a request with a key is to do.
#[derive(Debug)]
pub(crate) enum Claim {
    /// It is the first with this key: do the work, then [`First::finish`].
    First(First),
    /// The first is in flight: wait for its outcome.
    Wait(Waiting),
    /// The first is done: answer this.
    Replay(Stored),
    /// The key was used with another request.
    Conflict,
}

impl Replays {
    /// A map of at most `max` (at least 1) keys, each kept `ttl`.
    pub(crate) fn new(max: usize, ttl: Duration) -> Arc<Self> {
        Arc::new(Replays { entries: Mutex::new(BoundedMap::with_ttl(max, ttl)) })
    }

    /// Claims `key` for a request with `fingerprint`.
    pub(crate) fn claim(self: &Arc<Self>, key: &str, fingerprint: &str) -> Claim {
        let now = Instant::now();
        let mut entries = self.entries.lock();
        entries.expire(now);
        if let Some(entry) = entries.get(key) {
            if entry.fingerprint != fingerprint {
                return Claim::Conflict;
            }
            return match entry.outcome.get() {
                Some(stored) => Claim::Replay(stored.clone()),
                None => Claim::Wait(Waiting { outcome: entry.outcome.clone(), finished: entry.finished.clone() }),
            };
        }
        let (done, finished) = async_channel::bounded(1);
        let outcome = Arc::new(OnceLock::new());
        let entry = Entry { fingerprint: fingerprint.to_owned(), outcome: outcome.clone(), finished };
        let seq = entries.insert(key, entry, now);
        Claim::First(First { replays: self.clone(), key: key.to_owned(), seq, outcome, _done: done })
    }

    /// Keys held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

/// The first request with a key. Dropped without [`finish`](First::finish) (the handler gave
/// up), it frees the key and the requests waiting on it are told to retry.
#[derive(Debug)]
pub(crate) struct First {
    replays: Arc<Replays>,
    key: String,
    seq: u64,
    outcome: Arc<OnceLock<Stored>>,
    _done: async_channel::Sender<()>,
}

impl First {
    /// Hands `outcome` to the requests waiting; `keep` keeps it for later repeats within the
    /// TTL, otherwise the key is freed (a later repeat does the work again).
    pub(crate) fn finish(self, outcome: Stored, keep: bool) {
        let _ = self.outcome.set(outcome);
        if !keep {
            self.replays.entries.lock().remove_generation(&self.key, self.seq);
        }
        // Dropping `_done` wakes the waiters.
    }
}

impl Drop for First {
    fn drop(&mut self) {
        if self.outcome.get().is_none() {
            self.replays.entries.lock().remove_generation(&self.key, self.seq);
        }
    }
}

/// A request waiting for the first one with its key.
#[derive(Debug)]
pub(crate) struct Waiting {
    outcome: Arc<OnceLock<Stored>>,
    finished: async_channel::Receiver<()>,
}

impl Waiting {
    /// The first request's outcome; `None` if it gave up without one or `deadline` came first.
    pub(crate) async fn outcome(self, deadline: Instant) -> Option<Stored> {
        let finished = async {
            // Err: the first request finished (its sender dropped).
            let _ = self.finished.recv().await;
        };
        finished
            .or(async {
                async_io::Timer::at(deadline).await;
            })
            .await;
        self.outcome.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Stored {
        Stored {
            status: StatusCode::Ok,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    fn first(c: Claim) -> First {
        match c {
            Claim::First(f) => f,
            other => panic!("expected First, got {other:?}"),
        }
    }

    #[test]
    fn a_repeat_waits_for_the_first_then_gets_its_outcome() {
        let r = Replays::new(10, Duration::from_secs(60));
        let f = first(r.claim("k", "fp"));
        let Claim::Wait(w) = r.claim("k", "fp") else { panic!("in flight: wait") };
        assert!(matches!(r.claim("k", "other"), Claim::Conflict));
        f.finish(ok("one"), true);
        let got = smol::block_on(w.outcome(Instant::now() + Duration::from_secs(60))).unwrap();
        assert_eq!(got.body, "one");
        let Claim::Replay(again) = r.claim("k", "fp") else { panic!("kept: replay") };
        assert_eq!((again.status(), again.body.as_str()), (StatusCode::Ok, "one"));
    }

    #[test]
    fn an_outcome_not_kept_frees_the_key_and_a_vanished_first_tells_waiters() {
        let r = Replays::new(10, Duration::from_secs(60));
        let f = first(r.claim("k", "fp"));
        let Claim::Wait(w) = r.claim("k", "fp") else { panic!() };
        f.finish(ok("503"), false);
        assert!(smol::block_on(w.outcome(Instant::now() + Duration::from_secs(60))).is_some(), "waiters still get it");
        let f = first(r.claim("k", "fp"));
        let Claim::Wait(w) = r.claim("k", "fp") else { panic!() };
        drop(f);
        assert!(smol::block_on(w.outcome(Instant::now() + Duration::from_secs(60))).is_none());
        assert!(matches!(r.claim("k", "other"), Claim::First(_)), "freed: a new body may claim it");
    }

    #[test]
    fn keys_are_bounded_and_expire() {
        let r = Replays::new(2, Duration::from_millis(50));
        for k in ["a", "b", "c"] {
            first(r.claim(k, "fp")).finish(ok(k), true);
        }
        assert_eq!(r.len(), 2);
        assert!(matches!(r.claim("a", "fp"), Claim::First(_)), "the oldest was forgotten");
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(r.claim("c", "fp"), Claim::First(_)), "expired");
        assert!(r.len() <= 2);
    }

    #[test]
    fn job_ids_and_fingerprints_are_deterministic() {
        assert_eq!(job_id("abc"), job_id("abc"));
        assert_ne!(job_id("abc"), job_id("abd"));
        assert_eq!(fingerprint("/jobs", "x"), fingerprint("/jobs", "x"));
        assert_ne!(fingerprint("/jobs", "x"), fingerprint("/messages", "x"));
    }
}

//! Request/reply verification: every request carries a unique token, and its reply must be the
//! chain's exact answer for THAT token. Counts what a kill test must prove: nothing lost, nothing
//! delivered to the wrong caller, nothing answered twice, failures only as clear 503/504.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use http_types::Method;
use switchboard::HttpClient;

use crate::http_load::HttpTarget;
use crate::latency::{Latencies, Summary};

/// What the chain appends to a message, upper-cased by the gateway.
pub const CHAIN_SUFFIX: &str = " FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER";

/// The reply message the chain must give for `message`.
pub fn expected_reply(message: &str) -> String {
    format!("{}{CHAIN_SUFFIX}", message.to_uppercase())
}

/// Unique tokens of one run: `{run}-{seq}` in lower-case hex and digits, so upper-casing maps
/// them one to one and a reply names the token it answers.
#[derive(Debug, Clone)]
pub struct Tokens {
    run: String,
}

impl Tokens {
    /// Tokens with a run prefix unlikely to repeat (time and process id).
    pub fn new(kind: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Tokens { run: format!("{kind}{:x}{:x}", std::process::id(), nanos & 0xffff_ffff) }
    }

    /// The token of request `seq`.
    pub fn token(&self, seq: u64) -> String {
        format!("{}-{seq}", self.run)
    }

    /// The sequence number of the first token of this run found in `text` (any case).
    pub fn find(&self, text: &str) -> Option<u64> {
        let lower = text.to_lowercase();
        let prefix = format!("{}-", self.run);
        let at = lower.find(&prefix)? + prefix.len();
        let digits: String = lower[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    }

    /// `verify {token}` padded with `x` to `size` characters.
    pub fn message(&self, seq: u64, size: usize) -> String {
        let mut m = format!("verify {}", self.token(seq));
        if m.len() < size {
            m.push(' ');
            while m.len() < size {
                m.push('x');
            }
        }
        m
    }
}

/// How a verified run sends.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Requests to send in all.
    pub requests: u64,
    /// Requests per second (open loop).
    pub rate: f64,
    /// Connections (workers); a request waits for a free one.
    pub connections: usize,
    /// The gateway's request budget (`SWITCHBOARD_REQUEST_TIMEOUT_MS`).
    pub deadline: Duration,
    /// Extra time past `deadline` before a request with no answer counts as lost.
    pub margin: Duration,
    /// Characters per message (at least the token).
    pub message_size: usize,
    /// Print progress to stderr this often (`None`: quiet).
    pub progress: Option<Duration>,
}

/// What a verified run saw.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Requests sent.
    pub sent: u64,
    /// 200 with exactly the expected reply for the request's own token.
    pub ok: u64,
    /// Clear failures by HTTP status (503, 504, anything else not 200).
    pub failed: BTreeMap<u16, u64>,
    /// No answer: no reply within deadline + margin.
    pub lost: u64,
    /// The connection broke or was refused (the gateway died): failed at once, not lost by
    /// the chain; `conn_error_max` is how long the slowest of them took.
    pub conn_errors: u64,
    /// Longest time from send to a connection error.
    pub conn_error_max: Duration,
    /// 200 carrying another request's reply.
    pub cross_delivered: u64,
    /// A reply (by token or by id) seen more than once.
    pub duplicated: u64,
    /// 200 whose body is not the chain's answer to any request of this run.
    pub corrupted: u64,
    /// Latency of the `ok` requests, from their scheduled send time.
    pub latency: Summary,
    /// The first few problems, for the log.
    pub examples: Vec<String>,
}

impl VerifyReport {
    /// Requests that failed with `status`.
    pub fn failed_with(&self, status: u16) -> u64 {
        self.failed.get(&status).copied().unwrap_or(0)
    }

    /// Failures with a status other than 503 and 504.
    pub fn failed_other(&self) -> u64 {
        self.failed.iter().filter(|(s, _)| **s != 503 && **s != 504).map(|(_, n)| n).sum()
    }

    /// Whether the run proves the guarantees: nothing lost, crossed, doubled or corrupted.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.conn_errors == 0
            && self.cross_delivered == 0
            && self.duplicated == 0
            && self.corrupted == 0
    }

    /// `requests sent=… ok=… failed_503=… failed_504=… lost=… cross_delivered=… duplicated=…`.
    pub fn summary_line(&self) -> String {
        format!(
            "requests sent={} ok={} failed_503={} failed_504={} failed_other={} lost={} conn_errors={} conn_error_max_ms={} cross_delivered={} duplicated={} corrupted={}",
            self.sent,
            self.ok,
            self.failed_with(503),
            self.failed_with(504),
            self.failed_other(),
            self.lost,
            self.conn_errors,
            self.conn_error_max.as_millis(),
            self.cross_delivered,
            self.duplicated,
            self.corrupted
        )
    }
}

/// One request's outcome, judged against its own token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The expected reply; carries the reply id.
    Ok(String),
    /// A clear failure status.
    Failed(u16),
    /// No answer.
    Lost(String),
    /// The connection failed (refused, reset) after this long.
    ConnectionError(String, Duration),
    /// Another request's reply (its sequence number and the reply id).
    Crossed(u64, String),
    /// Not an answer to any request of this run.
    Corrupted(String),
}

/// Judges one HTTP answer to request `seq`.
pub fn judge(tokens: &Tokens, seq: u64, message: &str, status: u16, body: &str) -> Outcome {
    if status != 200 {
        return Outcome::Failed(status);
    }
    let json: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return Outcome::Corrupted(format!("seq {seq}: 200 with a non-JSON body: {body:.120}")),
    };
    let id = json["id"].as_str().unwrap_or_default().to_string();
    let Some(reply) = json["message"].as_str() else {
        return Outcome::Corrupted(format!("seq {seq}: 200 without a message: {body:.120}"));
    };
    if reply == expected_reply(message) {
        return Outcome::Ok(id);
    }
    match tokens.find(reply) {
        Some(other) if other != seq => Outcome::Crossed(other, id),
        _ => Outcome::Corrupted(format!("seq {seq}: unexpected reply {reply:.160}")),
    }
}

#[derive(Default)]
struct Tally {
    report: VerifyReport,
    latency: Latencies,
    answered: HashSet<u64>,
    ids: HashSet<String>,
}

impl Tally {
    fn note(&mut self, what: String) {
        if self.report.examples.len() < 10 {
            self.report.examples.push(what);
        }
    }

    fn id_seen(&mut self, seq: u64, id: String) {
        if !id.is_empty() && !self.ids.insert(id.clone()) {
            self.report.duplicated += 1;
            self.note(format!("seq {seq}: reply id {id} seen twice"));
        }
    }

    fn record(&mut self, seq: u64, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Ok(id) => {
                self.report.ok += 1;
                self.latency.record(latency);
                if !self.answered.insert(seq) {
                    self.report.duplicated += 1;
                    self.note(format!("seq {seq}: answered twice"));
                }
                self.id_seen(seq, id);
            }
            Outcome::Failed(status) => *self.report.failed.entry(status).or_default() += 1,
            Outcome::Lost(why) => {
                self.report.lost += 1;
                self.note(format!("seq {seq}: lost ({why})"));
            }
            Outcome::ConnectionError(why, after) => {
                self.report.conn_errors += 1;
                self.report.conn_error_max = self.report.conn_error_max.max(after);
                self.note(format!("seq {seq}: connection error after {after:?} ({why})"));
            }
            Outcome::Crossed(other, id) => {
                self.report.cross_delivered += 1;
                self.note(format!("seq {seq}: got the reply of seq {other}"));
                if !self.answered.insert(other) {
                    self.report.duplicated += 1;
                    self.note(format!("seq {other}: answered twice"));
                }
                self.id_seen(seq, id);
            }
            Outcome::Corrupted(why) => {
                self.report.corrupted += 1;
                self.note(why);
            }
        }
    }
}

/// Sends `config.requests` verified requests to `target` (a `POST /messages` target) at
/// `config.rate`, on the current thread.
pub async fn run_verify(target: &HttpTarget, config: &VerifyConfig) -> VerifyReport {
    let tokens = Tokens::new("v");
    let tally = Rc::new(RefCell::new(Tally::default()));
    let next = Rc::new(Cell::new(0u64));
    let begin = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / config.rate.max(0.001));
    let ex = smol::LocalExecutor::new();
    let workers: Vec<_> = (0..config.connections.max(1))
        .map(|_| {
            let (tally, next, tokens, target, config) =
                (tally.clone(), next.clone(), tokens.clone(), target.clone(), config.clone());
            ex.spawn(async move {
                let mut client = HttpClient::new(target.addr);
                loop {
                    let seq = next.get();
                    if seq >= config.requests {
                        return;
                    }
                    next.set(seq + 1);
                    let due = begin + interval.mul_f64(seq as f64);
                    if Instant::now() < due {
                        async_io::Timer::at(due).await;
                    }
                    tally.borrow_mut().report.sent += 1;
                    let message = tokens.message(seq, config.message_size);
                    let body = serde_json::to_vec(&serde_json::json!({ "message": message })).expect("json");
                    let limit = config.deadline + config.margin;
                    let sent_at = Instant::now();
                    let answer = async {
                        client
                            .send(Method::Post, &target.path, Some("application/json"), body)
                            .await
                            .map_err(|e| Some(e.to_string()))
                    }
                    .or(async {
                        async_io::Timer::after(limit).await;
                        Err(None)
                    })
                    .await;
                    let outcome = match answer {
                        Ok(reply) => judge(&tokens, seq, &message, reply.status, &reply.body),
                        Err(why) => {
                            // The connection is in an unknown state: start a fresh one.
                            client = HttpClient::new(target.addr);
                            match why {
                                Some(why) => Outcome::ConnectionError(why, sent_at.elapsed()),
                                None => Outcome::Lost(format!("no answer within {limit:?}")),
                            }
                        }
                    };
                    tally.borrow_mut().record(seq, outcome, due.elapsed());
                }
            })
        })
        .collect();
    let ticker = config.progress.map(|every| {
        let tally = tally.clone();
        ex.spawn(async move {
            loop {
                async_io::Timer::after(every).await;
                let t = tally.borrow();
                eprintln!("  verify +{:>4.0}s {}", begin.elapsed().as_secs_f64(), t.report.summary_line());
            }
        })
    });
    ex.run(async {
        for w in workers {
            w.await;
        }
    })
    .await;
    // Dropping the executor drops every task's future and with it their clones of the tally.
    drop(ticker);
    drop(ex);
    let mut tally = Rc::try_unwrap(tally).ok().expect("workers finished").into_inner();
    tally.report.latency = tally.latency.summary();
    tally.report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &str, message: &str) -> String {
        serde_json::json!({"id": id, "message": message, "hops": []}).to_string()
    }

    #[test]
    fn the_expected_reply_is_the_upper_cased_chain_string() {
        assert_eq!(
            expected_reply("hello world"),
            "HELLO WORLD FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER"
        );
    }

    #[test]
    fn tokens_are_unique_padded_and_found_in_upper_case_replies() {
        let t = Tokens::new("v");
        let m = t.message(42, 64);
        assert_eq!(m.len(), 64);
        assert_ne!(t.message(1, 10), t.message(11, 10));
        assert_eq!(t.find(&expected_reply(&m)), Some(42));
        assert_eq!(t.find(&expected_reply(&t.message(4, 0))), Some(4));
        assert_eq!(Tokens::new("w").find(&expected_reply(&m)), None);
    }

    #[test]
    fn replies_are_judged_against_their_own_token() {
        let t = Tokens::new("v");
        let (m7, m8) = (t.message(7, 32), t.message(8, 32));
        assert_eq!(judge(&t, 7, &m7, 200, &reply("a", &expected_reply(&m7))), Outcome::Ok("a".into()));
        assert_eq!(judge(&t, 7, &m7, 200, &reply("b", &expected_reply(&m8))), Outcome::Crossed(8, "b".into()));
        assert_eq!(judge(&t, 7, &m7, 504, "{}"), Outcome::Failed(504));
        assert!(matches!(judge(&t, 7, &m7, 200, &reply("c", &m7.to_uppercase())), Outcome::Corrupted(_)));
        assert!(matches!(judge(&t, 7, &m7, 200, "not json"), Outcome::Corrupted(_)));
    }

    #[test]
    fn the_tally_counts_duplicates_by_token_and_by_id() {
        let mut tally = Tally::default();
        let d = Duration::from_millis(1);
        tally.record(1, Outcome::Ok("a".into()), d);
        tally.record(2, Outcome::Crossed(1, "b".into()), d); // seq 1's reply a second time
        tally.record(3, Outcome::Ok("a".into()), d); // same reply id twice
        tally.record(4, Outcome::Failed(503), d);
        tally.record(5, Outcome::Lost("io".into()), d);
        let r = &tally.report;
        assert_eq!((r.ok, r.cross_delivered, r.duplicated, r.lost), (2, 1, 2, 1));
        assert_eq!(r.failed_with(503), 1);
        assert!(!r.passed());
        assert!(r.summary_line().starts_with("requests sent=0 ok=2 failed_503=1 failed_504=0"));
    }
}

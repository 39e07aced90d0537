//! Jobs verification: `POST /jobs` (202 `{"id"}`), then `GET /jobs/{id}` until each job is
//! `done` or `failed`. A job still `queued`/`running` (or unknown) when time runs out is lost;
//! a `done` job whose result answers another job's message is a wrong result.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use http_types::Method;
use switchboard::{HttpClient, HttpReply};

use crate::verify::Tokens;

/// How a jobs run submits and polls.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Jobs to submit.
    pub jobs: u64,
    /// Submissions per second.
    pub rate: f64,
    /// Connections submitting and polling.
    pub connections: usize,
    /// Pause between two polls of one job.
    pub poll_interval: Duration,
    /// After the last submission, how long jobs may take to finish before they count as lost.
    pub settle: Duration,
    /// One HTTP exchange longer than this counts as no answer.
    pub call_timeout: Duration,
    /// Print progress to stderr this often (`None`: quiet).
    pub progress: Option<Duration>,
}

/// What a jobs run saw.
#[derive(Debug, Clone, Default)]
pub struct JobsReport {
    /// Submissions attempted.
    pub submitted: u64,
    /// Submissions answered 202 with an id.
    pub accepted: u64,
    /// Submissions refused, by status (not accepted, so not lost).
    pub rejected: BTreeMap<u16, u64>,
    /// Submissions with no answer (the job may or may not exist: counted as lost).
    pub submit_lost: u64,
    /// Jobs `done` with a result for their own message.
    pub completed: u64,
    /// Jobs `failed`.
    pub failed: u64,
    /// Accepted jobs not finished at the end (`queued`, `running`, 404 or unanswered polls).
    pub lost: u64,
    /// Jobs `done` with a result naming another job's message, or an id handed out twice.
    pub duplicated: u64,
    /// Jobs `done` whose result names no job of this run.
    pub wrong_result: u64,
    /// States of the lost jobs at the end.
    pub lost_states: BTreeMap<String, u64>,
    /// The first few problems.
    pub examples: Vec<String>,
}

impl JobsReport {
    /// Whether every accepted job finished with its own result.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.submit_lost == 0 && self.duplicated == 0 && self.wrong_result == 0
    }

    /// `jobs submitted=… accepted=… completed=… failed=… lost=… duplicated=…`.
    pub fn summary_line(&self) -> String {
        let rejected: u64 = self.rejected.values().sum();
        format!(
            "jobs submitted={} accepted={} rejected={} completed={} failed={} lost={} submit_lost={} duplicated={} wrong_result={}",
            self.submitted,
            self.accepted,
            rejected,
            self.completed,
            self.failed,
            self.lost,
            self.submit_lost,
            self.duplicated,
            self.wrong_result
        )
    }

    fn note(&mut self, what: String) {
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

/// A job's state as `GET /jobs/{id}` reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Still `queued` or `running` (the string), or not found / not answered.
    Pending(String),
    /// `done`, with the result rendered as text.
    Done(String),
    /// `failed`, with the error.
    Failed(String),
}

/// Parses a `GET /jobs/{id}` answer.
pub fn job_state(reply: &HttpReply) -> JobState {
    if reply.status != 200 {
        return JobState::Pending(format!("http {}", reply.status));
    }
    let json = reply.json();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    match json["status"].as_str() {
        Some("done") => JobState::Done(text(&json["result"])),
        Some("failed") => JobState::Failed(text(&json["error"])),
        Some(other) => JobState::Pending(other.to_string()),
        None => JobState::Pending(format!("no status in {:.80}", reply.body)),
    }
}

struct Job {
    seq: u64,
    id: String,
    next_poll: Instant,
    last_state: String,
}

#[derive(Default)]
struct Shared {
    report: JobsReport,
    queue: VecDeque<Job>,
    ids: HashSet<String>,
    submitting: bool,
}

async fn exchange(
    client: &mut HttpClient,
    addr: std::net::SocketAddr,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    limit: Duration,
) -> Result<HttpReply, String> {
    let ct = body.as_ref().map(|_| "application/json");
    let result = async { client.send(method, path, ct, body.unwrap_or_default()).await.map_err(|e| e.to_string()) }
        .or(async {
            async_io::Timer::after(limit).await;
            Err(format!("no answer within {limit:?}"))
        })
        .await;
    if result.is_err() {
        *client = HttpClient::new(addr);
    }
    result
}

/// Submits `config.jobs` jobs to `jobs_path` on `addr` and polls each until it finishes or
/// `config.settle` after the last submission has passed, on the current thread.
pub async fn run_jobs(addr: std::net::SocketAddr, jobs_path: &str, config: &JobsConfig) -> JobsReport {
    let tokens = Tokens::new("j");
    let shared = Rc::new(RefCell::new(Shared { submitting: true, ..Shared::default() }));
    let begin = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / config.rate.max(0.001));
    let ex = smol::LocalExecutor::new();
    let workers = config.connections.max(2);

    // Submitters: half the connections, open loop.
    let next = Rc::new(std::cell::Cell::new(0u64));
    let submitters: Vec<_> = (0..workers / 2)
        .map(|_| {
            let (shared, next, tokens, config, path) =
                (shared.clone(), next.clone(), tokens.clone(), config.clone(), jobs_path.to_string());
            ex.spawn(async move {
                let mut client = HttpClient::new(addr);
                loop {
                    let seq = next.get();
                    if seq >= config.jobs {
                        return;
                    }
                    next.set(seq + 1);
                    let due = begin + interval.mul_f64(seq as f64);
                    if Instant::now() < due {
                        async_io::Timer::at(due).await;
                    }
                    shared.borrow_mut().report.submitted += 1;
                    let body =
                        serde_json::to_vec(&serde_json::json!({ "message": tokens.message(seq, 0) })).expect("json");
                    let answer =
                        exchange(&mut client, addr, Method::Post, &path, Some(body), config.call_timeout).await;
                    let mut s = shared.borrow_mut();
                    match answer {
                        Ok(reply) if reply.status == 202 => match reply.json()["id"].as_str() {
                            Some(id) => {
                                s.report.accepted += 1;
                                if !s.ids.insert(id.to_string()) {
                                    s.report.duplicated += 1;
                                    s.report.note(format!("job id {id} handed out twice"));
                                }
                                s.queue.push_back(Job {
                                    seq,
                                    id: id.to_string(),
                                    next_poll: Instant::now() + config.poll_interval,
                                    last_state: "unpolled".into(),
                                });
                            }
                            None => {
                                s.report.submit_lost += 1;
                                s.report.note(format!("job {seq}: 202 without an id: {:.80}", reply.body));
                            }
                        },
                        Ok(reply) => *s.report.rejected.entry(reply.status).or_default() += 1,
                        Err(why) => {
                            s.report.submit_lost += 1;
                            s.report.note(format!("job {seq}: submission not answered ({why})"));
                        }
                    }
                }
            })
        })
        .collect();

    let end_submit = begin + interval.mul_f64(config.jobs as f64);
    let pollers: Vec<_> = (0..workers - workers / 2)
        .map(|_| {
            let (shared, tokens, config, path) =
                (shared.clone(), tokens.clone(), config.clone(), jobs_path.to_string());
            ex.spawn(async move {
                let mut client = HttpClient::new(addr);
                loop {
                    let job = shared.borrow_mut().queue.pop_front();
                    let Some(mut job) = job else {
                        if !shared.borrow().submitting {
                            return;
                        }
                        async_io::Timer::after(config.poll_interval).await;
                        continue;
                    };
                    if Instant::now() >= end_submit + config.settle {
                        let mut s = shared.borrow_mut();
                        s.report.lost += 1;
                        *s.report.lost_states.entry(job.last_state.clone()).or_default() += 1;
                        s.report.note(format!("job {} (id {}): still {} at the end", job.seq, job.id, job.last_state));
                        continue;
                    }
                    if Instant::now() < job.next_poll {
                        async_io::Timer::at(job.next_poll).await;
                    }
                    let answer = exchange(
                        &mut client,
                        addr,
                        Method::Get,
                        &format!("{path}/{}", job.id),
                        None,
                        config.call_timeout,
                    )
                    .await;
                    let state = match answer {
                        Ok(reply) => job_state(&reply),
                        Err(why) => JobState::Pending(why),
                    };
                    let mut s = shared.borrow_mut();
                    match state {
                        JobState::Pending(st) => {
                            job.last_state = st;
                            job.next_poll = Instant::now() + config.poll_interval;
                            s.queue.push_back(job);
                        }
                        JobState::Failed(error) => {
                            s.report.failed += 1;
                            s.report.note(format!("job {} (id {}): failed: {error:.120}", job.seq, job.id));
                        }
                        JobState::Done(result) => match tokens.find(&result) {
                            Some(seq) if seq == job.seq => s.report.completed += 1,
                            Some(other) => {
                                s.report.duplicated += 1;
                                s.report.note(format!("job {} (id {}): result of job {other}", job.seq, job.id));
                            }
                            None => {
                                s.report.wrong_result += 1;
                                s.report.note(format!("job {} (id {}): result {result:.120}", job.seq, job.id));
                            }
                        },
                    }
                }
            })
        })
        .collect();

    let ticker = config.progress.map(|every| {
        let shared = shared.clone();
        ex.spawn(async move {
            loop {
                async_io::Timer::after(every).await;
                let s = shared.borrow();
                eprintln!(
                    "  jobs   +{:>4.0}s {} waiting={}",
                    begin.elapsed().as_secs_f64(),
                    s.report.summary_line(),
                    s.queue.len()
                );
            }
        })
    });
    ex.run(async {
        for s in submitters {
            s.await;
        }
        shared.borrow_mut().submitting = false;
        for p in pollers {
            p.await;
        }
    })
    .await;
    // Dropping the executor drops every task's future and with it their clones of the tally.
    drop(ticker);
    drop(ex);
    Rc::try_unwrap(shared).ok().expect("workers finished").into_inner().report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: serde_json::Value) -> HttpReply {
        HttpReply { status, retry_after: None, traceparent: None, body: body.to_string() }
    }

    #[test]
    fn job_states_parse_from_the_contract() {
        let s = |b| job_state(&reply(200, b));
        assert_eq!(s(serde_json::json!({"id": "1", "status": "queued"})), JobState::Pending("queued".into()));
        assert_eq!(s(serde_json::json!({"id": "1", "status": "running"})), JobState::Pending("running".into()));
        assert_eq!(s(serde_json::json!({"id": "1", "status": "done", "result": "ABC"})), JobState::Done("ABC".into()));
        assert_eq!(
            s(serde_json::json!({"id": "1", "status": "done", "result": {"message": "x"}})),
            JobState::Done("{\"message\":\"x\"}".into())
        );
        assert_eq!(s(serde_json::json!({"id": "1", "status": "failed", "error": "e"})), JobState::Failed("e".into()));
        assert_eq!(job_state(&reply(404, serde_json::json!({}))), JobState::Pending("http 404".into()));
    }

    #[test]
    fn a_report_with_a_lost_job_fails() {
        let mut r = JobsReport { accepted: 2, completed: 1, ..JobsReport::default() };
        assert!(r.passed());
        r.lost = 1;
        assert!(!r.passed());
        assert!(r.summary_line().contains("lost=1"));
    }
}

//! The jobs view: every job heard on the job-events fanout (the same events the gateways'
//! stores follow), the most recent ones kept.

use parking_lot::Mutex;
use serde::Serialize;
use switchboard_bounded_map::BoundedMap;
use switchboard_proto::{JobEvent, JobStatus, ProtoMessage};

/// One job as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JobItem {
    pub id: String,
    /// queued, running, retrying (running an attempt after the first), done or failed.
    pub status: &'static str,
    pub attempts: u32,
    pub result: Option<String>,
    pub error: Option<String>,
    pub trace_id: Option<String>,
    pub updated_unix_ms: u64,
}

fn rank(status: &str) -> u8 {
    match status {
        "queued" => 0,
        "running" | "retrying" => 1,
        _ => 2,
    }
}

/// The most recent jobs, at most `max`, the oldest heard of evicted first. Statuses only
/// move forward and the first final one wins, as in the gateways' stores.
#[derive(Debug)]
pub(crate) struct Jobs {
    inner: Mutex<BoundedMap<JobItem>>,
}

/// Longest text kept of a job's result or error.
const MAX_TEXT: usize = 1024;

impl Jobs {
    pub(crate) fn new(max: usize) -> Self {
        Jobs { inner: Mutex::new(BoundedMap::new(max)) }
    }

    /// Applies one fanout message; returns the job as it now stands when it changed.
    pub(crate) fn apply(&self, payload: &[u8], traceparent: Option<&str>, now_unix_ms: u64) -> Option<JobItem> {
        let event = match JobEvent::parse_from_bytes(payload) {
            Ok(e) if !e.id.is_empty() => e,
            Ok(_) => {
                log::debug!("job event without id ignored");
                return None;
            }
            Err(e) => {
                log::debug!("undecodable job event ignored: {e}");
                return None;
            }
        };
        let status = match event.status.enum_value() {
            Ok(JobStatus::JOB_STATUS_QUEUED) => "queued",
            Ok(JobStatus::JOB_STATUS_RUNNING) if event.attempt > 1 => "retrying",
            Ok(JobStatus::JOB_STATUS_RUNNING) => "running",
            Ok(JobStatus::JOB_STATUS_DONE) => "done",
            Ok(JobStatus::JOB_STATUS_FAILED) => "failed",
            _ => return None,
        };
        let trace_id = traceparent
            .and_then(|tp| tp.split('-').nth(1))
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        let text = |s: String| (!s.is_empty()).then(|| crate::otlp::capped(s, MAX_TEXT));
        let mut jobs = self.inner.lock();
        let item = match jobs.get_mut(&event.id) {
            Some(known) => {
                let stale = rank(status) < rank(known.status)
                    || rank(known.status) == 2
                    || (rank(status) == rank(known.status) && event.attempt < known.attempts);
                if stale {
                    // Older news, or the job already ended: only the attempt count may grow.
                    if event.attempt <= known.attempts {
                        return None;
                    }
                    known.attempts = event.attempt;
                } else {
                    known.status = status;
                    known.attempts = known.attempts.max(event.attempt);
                }
                if status == "done" && known.status == "done" && known.result.is_none() {
                    known.result = text(event.result);
                }
                if status == "failed" && known.status == "failed" && known.error.is_none() {
                    known.error = text(event.error);
                }
                if known.trace_id.is_none() {
                    known.trace_id = trace_id;
                }
                known.updated_unix_ms = now_unix_ms;
                known.clone()
            }
            None => {
                let item = JobItem {
                    id: event.id.clone(),
                    status,
                    attempts: event.attempt,
                    result: if status == "done" { text(event.result) } else { None },
                    error: if status == "failed" { text(event.error) } else { None },
                    trace_id,
                    updated_unix_ms: now_unix_ms,
                };
                jobs.insert(event.id, item.clone(), std::time::Instant::now());
                item
            }
        };
        Some(item)
    }

    /// The jobs, most recently heard of first, at most `limit`.
    pub(crate) fn list(&self, limit: usize) -> Vec<JobItem> {
        self.inner.lock().newest_first().map(|(_, job)| job.clone()).take(limit).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, status: JobStatus, attempt: u32) -> Vec<u8> {
        let mut e = JobEvent::new();
        e.id = id.into();
        e.status = status.into();
        e.attempt = attempt;
        if status == JobStatus::JOB_STATUS_DONE {
            e.result = "HELLO".into();
        }
        if status == JobStatus::JOB_STATUS_FAILED {
            e.error = "processor unavailable".into();
        }
        e.write_to_bytes().unwrap()
    }

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_job_moves_forward_only_and_keeps_its_first_result() {
        let jobs = Jobs::new(10);
        let queued = jobs.apply(&event("j1", JobStatus::JOB_STATUS_QUEUED, 0), Some(TP), 1).unwrap();
        assert_eq!((queued.status, queued.trace_id.as_deref()), ("queued", Some("0af7651916cd43dd8448eb211c80319c")));
        assert_eq!(jobs.apply(&event("j1", JobStatus::JOB_STATUS_RUNNING, 1), None, 2).unwrap().status, "running");
        assert_eq!(jobs.apply(&event("j1", JobStatus::JOB_STATUS_RUNNING, 2), None, 3).unwrap().status, "retrying");
        let done = jobs.apply(&event("j1", JobStatus::JOB_STATUS_DONE, 2), None, 4).unwrap();
        assert_eq!((done.status, done.result.as_deref(), done.attempts), ("done", Some("HELLO"), 2));
        // A late queued, a second done: nothing the page sees changes.
        assert_eq!(jobs.apply(&event("j1", JobStatus::JOB_STATUS_QUEUED, 0), None, 5), None);
        assert_eq!(jobs.apply(&event("j1", JobStatus::JOB_STATUS_FAILED, 2), None, 6), None);
        assert_eq!(jobs.list(10)[0].status, "done");
    }

    #[test]
    fn failures_carry_their_error_and_garbage_is_ignored() {
        let jobs = Jobs::new(10);
        let failed = jobs.apply(&event("j2", JobStatus::JOB_STATUS_FAILED, 5), None, 1).unwrap();
        assert_eq!(failed.error.as_deref(), Some("processor unavailable"));
        assert_eq!(jobs.apply(b"\xff\xff\xff", None, 2), None);
        assert_eq!(jobs.apply(&event("", JobStatus::JOB_STATUS_DONE, 1), None, 2), None);
        assert_eq!(jobs.list(10).len(), 1);
    }

    #[test]
    fn the_oldest_jobs_are_forgotten_at_the_cap() {
        let jobs = Jobs::new(2);
        for id in ["a", "b", "c"] {
            jobs.apply(&event(id, JobStatus::JOB_STATUS_QUEUED, 0), None, 1);
        }
        let ids: Vec<String> = jobs.list(10).into_iter().map(|j| j.id).collect();
        assert_eq!(ids, ["c", "b"]);
    }
}

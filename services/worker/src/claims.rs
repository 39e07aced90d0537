//! Which worker runs a job enqueued more than once under one id: the same `Idempotency-Key`
//! accepted by two gateways at once, or a job re-sent after its enqueue confirm was lost.
//!
//! Every worker hears every job event. A `running` event at attempt 1 is a *claim*
//! `(at_unix_micros, worker)`; of the claims on a job the smallest wins, and every worker that
//! heard them agrees on it. A copy arriving once a claim or an outcome of its job was heard is
//! not run at all. A worker that claims a keyed job waits [`claim_wait`](crate::WorkerConfig::claim_wait)
//! to hear the others, then runs it only if its own claim is still the smallest; otherwise it
//! drops its copy. The loser only drops a copy after hearing a smaller claim, so the job
//! always has a runner (the winner's copy, redelivered by the broker if the winner dies).
//!
//! What is left: two copies started at once whose claims take longer than the claim wait to
//! reach each other both run (each broadcasts `done`; gateways keep the first).

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use switchboard_bounded_map::BoundedMap;
use switchboard_proto::{JobEvent, JobStatus};

/// A claim on a job: when the `running` event was emitted, then by whom (the tie-break).
pub(crate) type Claim = (i64, String);

#[derive(Debug, Default)]
struct Known {
    /// The smallest claim heard.
    first: Option<Claim>,
    /// `done` or `failed` heard.
    finished: bool,
}

/// What this worker heard of recent jobs, bounded: the oldest job is forgotten first.
#[derive(Debug)]
pub(crate) struct Claims {
    jobs: Mutex<BoundedMap<Known>>,
}

impl Claims {
    pub(crate) fn new(capacity: usize) -> Self {
        Claims { jobs: Mutex::new(BoundedMap::new(capacity)) }
    }

    fn lock(&self) -> MutexGuard<'_, BoundedMap<Known>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Known) -> T) -> T {
        f(self.lock().get_or_insert_with(id, Instant::now(), Known::default))
    }

    fn peek<T>(&self, id: &str, f: impl FnOnce(&Known) -> T) -> Option<T> {
        self.lock().get(id).map(f)
    }

    /// Records what a job event says: a claim (`running`, attempt 1, with its worker) or an
    /// outcome (`done`, `failed`); other events say nothing here.
    pub(crate) fn heard(&self, event: &JobEvent) {
        let status = event.status.enum_value_or_default();
        if status == JobStatus::JOB_STATUS_RUNNING && event.attempt == 1 && !event.worker.is_empty() {
            self.claim(&event.id, (event.at_unix_micros, event.worker.clone()));
        } else if matches!(status, JobStatus::JOB_STATUS_DONE | JobStatus::JOB_STATUS_FAILED) {
            self.with(&event.id, |known| known.finished = true);
        }
    }

    /// Records `claim` on `id` (this worker's own, before it is broadcast).
    pub(crate) fn claim(&self, id: &str, claim: Claim) {
        self.with(id, |known| {
            if known.first.as_ref().is_none_or(|first| claim < *first) {
                known.first = Some(claim);
            }
        });
    }

    /// Whether `id` has an outcome already.
    pub(crate) fn finished(&self, id: &str) -> bool {
        self.peek(id, |known| known.finished).unwrap_or(false)
    }

    /// Whether `id` was claimed or finished: a fresh copy of it is a duplicate.
    pub(crate) fn taken(&self, id: &str) -> bool {
        self.peek(id, |known| known.finished || known.first.is_some()).unwrap_or(false)
    }

    /// Whether `claim` is still the smallest heard on `id` and no outcome is known.
    pub(crate) fn won(&self, id: &str, claim: &Claim) -> bool {
        self.peek(id, |known| !known.finished && known.first.as_ref() == Some(claim)).unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, status: JobStatus, attempt: u32, at: i64, worker: &str) -> JobEvent {
        let mut e = JobEvent::new();
        e.id = id.into();
        e.status = status.into();
        e.attempt = attempt;
        e.at_unix_micros = at;
        e.worker = worker.into();
        e
    }

    #[test]
    fn the_smallest_claim_wins_whatever_the_order_it_is_heard_in() {
        for order in [[0, 1], [1, 0]] {
            let claims = Claims::new(10);
            let both = [(10, "b".to_owned()), (10, "a".to_owned())];
            for i in order {
                claims.claim("j", both[i].clone());
            }
            assert!(claims.won("j", &(10, "a".into())));
            assert!(!claims.won("j", &(10, "b".into())));
            assert!(claims.taken("j"));
        }
    }

    #[test]
    fn outcomes_and_attempt_one_claims_count_other_events_do_not() {
        let claims = Claims::new(10);
        claims.heard(&event("j", JobStatus::JOB_STATUS_QUEUED, 0, 1, ""));
        claims.heard(&event("j", JobStatus::JOB_STATUS_RUNNING, 2, 1, "w"));
        claims.heard(&event("j", JobStatus::JOB_STATUS_RUNNING, 1, 1, ""));
        assert!(!claims.taken("j"), "no claim: queued, a retry, a worker without a name");
        claims.heard(&event("j", JobStatus::JOB_STATUS_RUNNING, 1, 5, "w"));
        assert!(claims.taken("j") && !claims.finished("j"));
        assert!(!claims.won("j", &(6, "v".into())));
        claims.heard(&event("j", JobStatus::JOB_STATUS_DONE, 1, 9, "w"));
        assert!(claims.finished("j"));
        assert!(!claims.won("j", &(5, "w".into())), "nothing is won once the job has an outcome");
    }

    #[test]
    fn the_oldest_job_is_forgotten_first() {
        let claims = Claims::new(2);
        for id in ["a", "b", "c"] {
            claims.claim(id, (1, "w".into()));
        }
        assert!(!claims.taken("a"));
        assert!(claims.taken("b") && claims.taken("c"));
    }
}

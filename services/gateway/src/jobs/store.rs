use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use switchboard_bounded_map::BoundedMap;

/// Where a job stands, as `GET /jobs/{id}` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted and on the queue.
    Queued,
    /// A worker is on it.
    Running,
    /// Finished with a result (final).
    Done,
    /// Given up, with an error (final).
    Failed,
}

impl JobState {
    fn rank(self) -> u8 {
        match self {
            JobState::Queued => 0,
            JobState::Running => 1,
            JobState::Done | JobState::Failed => 2,
        }
    }

    /// Done or failed: nothing changes it any more.
    pub fn is_final(self) -> bool {
        self.rank() == 2
    }
}

/// A job as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobView {
    /// The job id.
    pub id: String,
    /// Its status.
    pub status: JobState,
    /// The result, once done.
    pub result: Option<String>,
    /// The error, once failed.
    pub error: Option<String>,
    /// The attempt the status belongs to (0 while queued).
    pub attempt: u32,
    /// Times the job was sent back from the dead-letter queue before the run this status
    /// belongs to: a later run's status replaces an earlier run's, final or not.
    #[serde(skip)]
    pub redrives: u32,
    /// Fingerprint of the request that created the job (Idempotency-Key submissions only;
    /// empty otherwise). Not shown to clients.
    #[serde(skip)]
    pub fingerprint: String,
}

impl JobView {
    /// A job update without result or error.
    pub fn new(id: impl Into<String>, status: JobState, attempt: u32) -> Self {
        JobView { id: id.into(), status, result: None, error: None, attempt, redrives: 0, fingerprint: String::new() }
    }

    /// Sets the request fingerprint.
    pub fn with_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = fingerprint.into();
        self
    }
}

/// The jobs a gateway knows about: bounded in count and in time.
///
/// Holds at most `max` jobs (the oldest is evicted to make room) for at most `ttl` after it
/// first heard of each. Statuses only move forward (queued → running → done | failed); the
/// first final status wins, so a repeated `done` (a job run twice after a lost ack) changes
/// nothing the client sees — within one run: a job redriven from the dead-letter queue starts
/// a new run (its `redrives` count is higher), whose statuses replace the earlier run's.
#[derive(Debug)]
pub struct JobStore {
    /// By id, in first-heard order.
    jobs: Mutex<BoundedMap<JobView>>,
}

impl JobStore {
    /// A store of at most `max` (at least 1) jobs, each kept `ttl`.
    pub fn new(max: usize, ttl: Duration) -> Self {
        JobStore { jobs: Mutex::new(BoundedMap::with_ttl(max, ttl)) }
    }

    /// Applies `update` if it moves the job forward; returns whether it changed anything.
    pub fn apply(&self, update: JobView) -> bool {
        self.apply_at(update, Instant::now())
    }

    /// [`apply`](JobStore::apply) at time `now`.
    pub fn apply_at(&self, update: JobView, now: Instant) -> bool {
        let mut jobs = self.jobs.lock();
        jobs.expire(now);
        if let Some(current) = jobs.get_mut(&update.id) {
            if update.redrives < current.redrives {
                return false;
            }
            let rerun = update.redrives > current.redrives;
            let forward = rerun
                || update.status.rank() > current.status.rank()
                || (update.status == JobState::Running
                    && current.status == JobState::Running
                    && update.attempt > current.attempt);
            // Any event may carry the fingerprint: keep the first one heard.
            if current.fingerprint.is_empty() && !update.fingerprint.is_empty() {
                current.fingerprint = update.fingerprint.clone();
            }
            if !forward || (current.status.is_final() && !rerun) {
                return false;
            }
            let fingerprint = std::mem::take(&mut current.fingerprint);
            *current = update;
            current.fingerprint = fingerprint;
            return true;
        }
        jobs.insert(update.id.clone(), update, now);
        true
    }

    /// The job `id`, unless unknown or expired.
    pub fn get(&self, id: &str) -> Option<JobView> {
        self.get_at(id, Instant::now())
    }

    /// [`get`](JobStore::get) at time `now`.
    pub fn get_at(&self, id: &str, now: Instant) -> Option<JobView> {
        let mut jobs = self.jobs.lock();
        jobs.expire(now);
        jobs.get(id).cloned()
    }

    /// Jobs held.
    pub fn len(&self) -> usize {
        self.jobs.lock().len()
    }

    /// True when no job is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: &str, result: &str, attempt: u32) -> JobView {
        JobView { result: Some(result.into()), ..JobView::new(id, JobState::Done, attempt) }
    }

    #[test]
    fn statuses_only_move_forward_and_the_first_final_wins() {
        let s = JobStore::new(10, Duration::from_secs(60));
        assert!(s.apply(JobView::new("a", JobState::Queued, 0)));
        assert!(s.apply(JobView::new("a", JobState::Running, 1)));
        assert!(!s.apply(JobView::new("a", JobState::Queued, 0)), "back to queued");
        assert!(s.apply(JobView::new("a", JobState::Running, 2)), "a later attempt runs");
        assert!(!s.apply(JobView::new("a", JobState::Running, 1)), "an older attempt's event");
        assert!(s.apply(done("a", "FIRST", 2)));
        assert!(!s.apply(done("a", "SECOND", 3)), "a duplicate done is absorbed");
        let failed = JobView { error: Some("late".into()), ..JobView::new("a", JobState::Failed, 3) };
        assert!(!s.apply(failed), "failed after done");
        assert!(!s.apply(JobView::new("a", JobState::Running, 4)));
        assert_eq!(s.get("a"), Some(done("a", "FIRST", 2)));
    }

    #[test]
    fn a_redriven_run_replaces_the_earlier_final_status_and_older_runs_are_ignored() {
        let s = JobStore::new(10, Duration::from_secs(60));
        assert!(s.apply(JobView { error: Some("down".into()), ..JobView::new("r", JobState::Failed, 5) }));
        let rerun = |status, attempt| JobView { redrives: 1, ..JobView::new("r", status, attempt) };
        assert!(s.apply(rerun(JobState::Running, 1)), "the redriven run starts");
        assert!(!s.apply(JobView::new("r", JobState::Failed, 5)), "a late event of the first run");
        assert!(s.apply(JobView { result: Some("OK".into()), ..rerun(JobState::Done, 1) }));
        assert_eq!(s.get("r").unwrap().result.as_deref(), Some("OK"));
        assert!(!s.apply(rerun(JobState::Failed, 1)), "within a run the first final status wins");
    }

    #[test]
    fn events_before_the_queued_entry_are_kept() {
        // A fast worker can report before the accepting gateway records `queued`.
        let s = JobStore::new(10, Duration::from_secs(60));
        assert!(s.apply(done("b", "R", 1)));
        assert!(!s.apply(JobView::new("b", JobState::Queued, 0)));
        assert_eq!(s.get("b").unwrap().status, JobState::Done);
    }

    #[test]
    fn the_fingerprint_sticks_whichever_event_brought_it() {
        let s = JobStore::new(10, Duration::from_secs(60));
        s.apply(JobView::new("c", JobState::Running, 1));
        assert!(!s.apply(JobView::new("c", JobState::Queued, 0).with_fingerprint("fp")), "status unchanged");
        assert_eq!(s.get("c").unwrap().fingerprint, "fp", "yet the fingerprint is learnt");
        s.apply(done("c", "R", 1));
        assert_eq!(s.get("c").unwrap().fingerprint, "fp", "kept across updates without one");
        s.apply(JobView::new("c", JobState::Failed, 2).with_fingerprint("other"));
        assert_eq!(s.get("c").unwrap().fingerprint, "fp", "the first heard wins");
    }

    #[test]
    fn the_oldest_is_evicted_at_the_bound() {
        let s = JobStore::new(3, Duration::from_secs(60));
        for id in ["1", "2", "3", "4"] {
            s.apply(JobView::new(id, JobState::Queued, 0));
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("1"), None, "oldest evicted");
        // Updating a job does not make it younger: it is still evicted in first-heard order.
        s.apply(JobView::new("2", JobState::Running, 1));
        s.apply(JobView::new("5", JobState::Queued, 0));
        assert_eq!(s.get("2"), None);
        assert!(["3", "4", "5"].iter().all(|id| s.get(id).is_some()));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn jobs_expire_after_the_ttl() {
        let s = JobStore::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        s.apply_at(JobView::new("old", JobState::Queued, 0), t0);
        s.apply_at(JobView::new("new", JobState::Queued, 0), t0 + Duration::from_secs(30));
        assert!(s.get_at("old", t0 + Duration::from_secs(59)).is_some());
        assert_eq!(s.get_at("old", t0 + Duration::from_secs(60)), None, "expired");
        assert!(s.get_at("new", t0 + Duration::from_secs(60)).is_some());
        assert_eq!(s.len(), 1, "expired entries are dropped, not just hidden");
        // A late event for an expired job starts a fresh entry.
        assert!(s.apply_at(done("old", "R", 1), t0 + Duration::from_secs(61)));
        assert_eq!(s.get_at("old", t0 + Duration::from_secs(61)).unwrap().status, JobState::Done);
    }
}

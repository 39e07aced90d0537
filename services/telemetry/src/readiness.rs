//! Readiness checks registered by the service and the `/readyz` report built from them.
//!
//! Shared by the [`AdminServer`](crate::AdminServer) and by services with their own HTTP
//! server (the gateway mounts `/readyz` on its tide app with [`ReadyReport::into_response`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;
use http_types::{Response, StatusCode};
use parking_lot::RwLock;
use serde::Serialize;

/// How long a check may take before it reports `timeout`, by default.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What one readiness check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckStatus {
    /// The dependency is usable (`"ok"` in the report).
    Ok,
    /// The dependency is not usable; the text says why (`"unreachable"`, `"open"`).
    NotReady(Cow<'static, str>),
}

impl CheckStatus {
    /// A failing status with the reason shown in the report.
    pub fn not_ready(reason: impl Into<Cow<'static, str>>) -> Self {
        CheckStatus::NotReady(reason.into())
    }

    /// Whether the check passed.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckStatus::Ok)
    }

    /// The text shown in the report: `ok` or the reason.
    pub fn as_str(&self) -> &str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::NotReady(reason) => reason,
        }
    }
}

impl From<bool> for CheckStatus {
    /// `true` is `ok`, `false` is `not ready`.
    fn from(ok: bool) -> Self {
        if ok {
            CheckStatus::Ok
        } else {
            CheckStatus::not_ready("not ready")
        }
    }
}

type BoxedCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CheckStatus> + Send>> + Send + Sync>;

struct Inner {
    checks: RwLock<BTreeMap<String, BoxedCheck>>,
    draining: AtomicBool,
    timeout: Duration,
}

/// The readiness checks of a process; cheap to clone, `Send + Sync`.
///
/// Checks run concurrently on every [`report`](Readiness::report), each bounded by the check
/// timeout, so a hung dependency makes `/readyz` answer 503 `timeout` rather than hang.
///
/// ```
/// use switchboard_telemetry::{CheckStatus, Readiness};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let readiness = Readiness::new();
/// let connected = Arc::new(AtomicBool::new(true));
/// let flag = connected.clone();
/// readiness.add_sync_check("broker", move || flag.load(Ordering::Relaxed).into());
/// readiness.add_check("processor", || async { CheckStatus::not_ready("unreachable") });
///
/// let report = smol::block_on(readiness.report());
/// assert!(!report.ready);
/// assert_eq!(report.status(), 503);
/// assert_eq!(
///     report.to_json(),
///     r#"{"ready":false,"checks":{"broker":"ok","processor":"unreachable"}}"#
/// );
/// ```
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.inner.checks.read().keys().cloned().collect();
        f.debug_struct("Readiness")
            .field("checks", &names)
            .field("draining", &self.inner.draining.load(Relaxed))
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// No checks yet (ready), with [`DEFAULT_CHECK_TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(DEFAULT_CHECK_TIMEOUT)
    }

    /// No checks yet, each later check bounded by `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Readiness {
            inner: Arc::new(Inner { checks: RwLock::new(BTreeMap::new()), draining: AtomicBool::new(false), timeout }),
        }
    }

    /// Adds (or replaces) the async check `name`.
    pub fn add_check<F, Fut>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckStatus> + Send + 'static,
    {
        let boxed: BoxedCheck = Arc::new(move || Box::pin(check()));
        self.inner.checks.write().insert(name.into(), boxed);
    }

    /// Adds (or replaces) the check `name`, a cheap non-blocking closure (an atomic flag, a
    /// breaker's state).
    pub fn add_sync_check<F>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> CheckStatus + Send + Sync + 'static,
    {
        let check = Arc::new(check);
        self.add_check(name, move || {
            let check = check.clone();
            async move { check() }
        });
    }

    /// Removes the check `name`; whether it existed.
    pub fn remove_check(&self, name: &str) -> bool {
        self.inner.checks.write().remove(name).is_some()
    }

    /// Marks the process as shutting down: from now on the report is not ready, with check
    /// `shutdown: draining`, so load balancers stop sending work during the grace period.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Relaxed);
    }

    /// Runs every check concurrently and collects the results.
    pub fn report(&self) -> impl Future<Output = ReadyReport> + Send + 'static {
        // Copy the checks out so no lock is held across an await.
        let checks: Vec<(String, BoxedCheck)> =
            self.inner.checks.read().iter().map(|(n, c)| (n.clone(), c.clone())).collect();
        let draining = self.inner.draining.load(Relaxed);
        let timeout = self.inner.timeout;
        async move {
            let runs = checks.into_iter().map(|(name, check)| async move {
                let expired = async {
                    async_io::Timer::after(timeout).await;
                    CheckStatus::not_ready("timeout")
                };
                (name, check().or(expired).await)
            });
            let mut results: BTreeMap<String, String> = BTreeMap::new();
            let mut ready = !draining;
            for (name, status) in futures::future::join_all(runs).await {
                ready &= status.is_ok();
                results.insert(name, status.as_str().to_owned());
            }
            if draining {
                results.insert("shutdown".to_owned(), "draining".to_owned());
            }
            ReadyReport { ready, checks: results }
        }
    }
}

/// The outcome of all readiness checks, serialised as
/// `{"ready": bool, "checks": {"name": "ok" | reason}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyReport {
    /// Whether every check passed (and the process is not draining).
    pub ready: bool,
    /// Each check's status by name: `ok` or the reason it failed.
    pub checks: BTreeMap<String, String>,
}

impl ReadyReport {
    /// The HTTP status for `/readyz`: 200 when ready, else 503.
    pub fn status(&self) -> u16 {
        if self.ready {
            200
        } else {
            503
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        // A struct of a bool and string maps always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"ready":false}"#))
    }

    /// A complete `/readyz` response (status, JSON body, no-store); tide converts it with
    /// `tide::Response::from(report.into_response())`.
    pub fn into_response(self) -> Response {
        let code = if self.ready { StatusCode::Ok } else { StatusCode::ServiceUnavailable };
        let mut res = Response::new(code);
        res.set_body(self.to_json());
        res.set_content_type(http_types::mime::JSON);
        res.insert_header("cache-control", "no-store");
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    #[test]
    fn no_checks_is_ready() {
        let report = smol::block_on(Readiness::new().report());
        assert!(report.ready);
        assert_eq!(report.to_json(), r#"{"ready":true,"checks":{}}"#);
    }

    #[test]
    fn checks_run_on_every_report() {
        let readiness = Readiness::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        readiness.add_sync_check("broker", move || (c.fetch_add(1, Relaxed) > 0).into());
        let first = smol::block_on(readiness.report());
        let second = smol::block_on(readiness.report());
        assert_eq!((first.ready, first.checks["broker"].as_str()), (false, "not ready"));
        assert_eq!((second.ready, second.checks["broker"].as_str()), (true, "ok"));
        assert_eq!(calls.load(Relaxed), 2);
    }

    #[test]
    fn hung_check_reports_timeout() {
        let readiness = Readiness::with_timeout(Duration::from_millis(50));
        readiness.add_check("stuck", futures_lite::future::pending::<CheckStatus>);
        readiness.add_sync_check("fine", || CheckStatus::Ok);
        let started = Instant::now();
        let report = smol::block_on(readiness.report());
        assert!(started.elapsed() < Duration::from_secs(5), "the timeout did not fire");
        assert!(!report.ready);
        assert_eq!(report.checks["stuck"], "timeout");
        assert_eq!(report.checks["fine"], "ok");
    }

    #[test]
    fn draining_is_not_ready() {
        let readiness = Readiness::new();
        readiness.add_sync_check("broker", || CheckStatus::Ok);
        readiness.set_draining();
        let report = smol::block_on(readiness.report());
        assert_eq!(report.status(), 503);
        assert_eq!(report.checks["shutdown"], "draining");
    }

    #[test]
    fn replaced_and_removed_checks() {
        let readiness = Readiness::new();
        readiness.add_sync_check("breaker", || CheckStatus::not_ready("open"));
        assert_eq!(smol::block_on(readiness.report()).checks["breaker"], "open");
        readiness.add_sync_check("breaker", || CheckStatus::Ok);
        assert!(smol::block_on(readiness.report()).ready);
        assert!(readiness.remove_check("breaker"));
        assert!(smol::block_on(readiness.report()).checks.is_empty());
    }

    #[test]
    fn response_carries_status_and_json() {
        let report =
            ReadyReport { ready: false, checks: BTreeMap::from([("broker".to_owned(), "unreachable".to_owned())]) };
        let mut res = report.into_response();
        assert_eq!(res.status(), StatusCode::ServiceUnavailable);
        assert_eq!(res.content_type(), Some(http_types::mime::JSON));
        let body = smol::block_on(res.body_string()).unwrap();
        assert_eq!(body, r#"{"ready":false,"checks":{"broker":"unreachable"}}"#);
    }
}

//! The operations: list, show, redrive, purge, each over one pass per dead-letter queue.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use serde_json::{json, Value};
use switchboard_ports::{
    set_header, unix_millis, Browse, BrowsePass, Message, ATTEMPTS_HEADER, DEAD_LETTERED_HEADER, ERROR_HEADER,
    ORIGIN_HEADER, ORIGIN_OFFSET_HEADER, ORIGIN_PARTITION_HEADER, REDRIVES_HEADER,
};
use switchboard_proto::Envelope;

use crate::{Entry, Filter};

/// Which dead-letter queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// The requests' dead-letter topic (`switchboard.requests.dlq`).
    Requests,
    /// The jobs' dead-letter queue (`<jobs queue>.dlq`).
    Jobs,
}

impl SourceKind {
    /// `requests` or `jobs`.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Requests => "requests",
            SourceKind::Jobs => "jobs",
        }
    }

    /// Parses `requests`, `jobs`; `all` (or nothing) is `None`.
    pub fn parse_selection(s: &str) -> Result<Option<SourceKind>, crate::Error> {
        match s {
            "requests" => Ok(Some(SourceKind::Requests)),
            "jobs" => Ok(Some(SourceKind::Jobs)),
            "" | "all" => Ok(None),
            other => Err(crate::Error::Invalid(format!("unknown source `{other}`: requests, jobs or all"))),
        }
    }
}

/// One dead-letter queue and the port that reads it.
#[derive(Clone)]
pub struct Source {
    /// Which one.
    pub kind: SourceKind,
    /// Its topic or queue name.
    pub dlq: String,
    /// The broker behind it.
    pub browse: Arc<dyn Browse>,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source").field("kind", &self.kind).field("dlq", &self.dlq).finish_non_exhaustive()
    }
}

/// Limits and permissions of the operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// A dead letter already redriven this many times is refused and stays (default 3).
    pub max_redrives: u32,
    /// Redrive requests too (refused by default: their callers are gone; only side effects
    /// run again).
    pub allow_requests: bool,
    /// Most dead letters one operation reads per queue (default 10 000).
    pub scan_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { max_redrives: 3, allow_requests: false, scan_limit: 10_000 }
    }
}

/// What a redrive or purge applies to, and how.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// `None`: every source.
    pub source: Option<SourceKind>,
    /// Which dead letters.
    pub filter: Filter,
    /// At most this many redriven or purged (none: no limit).
    pub max: Option<usize>,
    /// At most this many per second (none or 0: no limit).
    pub rate: Option<f64>,
    /// Print what would happen, change nothing.
    pub dry_run: bool,
}

/// What a redrive or purge did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Redriven (or purged); with `dry_run`, those that would be.
    pub done: usize,
    /// Refused: past `max_redrives`, no origin, a request without `allow_requests`.
    pub refused: usize,
    /// One line per dead letter considered.
    pub details: Vec<Value>,
    /// Why the run stopped early, if it did (the dead letter it was on stays).
    pub error: Option<String>,
}

/// The dead letters found, newest first, with counts by reason.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Newest first.
    pub entries: Vec<Entry>,
    /// (source, reason, count), largest count first.
    pub by_reason: Vec<(SourceKind, String, usize)>,
}

impl Listing {
    /// The JSON of `GET /api/dead-letters` (at most `limit` items).
    pub fn to_json(&self, limit: usize) -> Value {
        let now = unix_millis();
        json!({
            "by_reason": self.by_reason.iter().map(|(s, r, c)| json!({"source": s.name(), "reason": r, "count": c})).collect::<Vec<_>>(),
            "items": self.entries.iter().take(limit).map(|e| e.item_json(now)).collect::<Vec<_>>(),
        })
    }
}

/// Dead letters you can act on, over the broker ports: one code path for Kafka, RabbitMQ and
/// the embedded brokers.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    sources: Vec<Source>,
    settings: Settings,
}

impl DeadLetters {
    /// The operations over `sources` within `settings`.
    pub fn new(sources: Vec<Source>, settings: Settings) -> Self {
        DeadLetters { sources, settings }
    }

    /// The settings in effect.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn selected(&self, source: Option<SourceKind>) -> impl Iterator<Item = &Source> {
        self.sources.iter().filter(move |s| source.is_none_or(|k| k == s.kind))
    }

    /// Reads the dead letters of `source` (all when `None`) passing `filter`, newest first;
    /// removes nothing.
    pub async fn list(&self, source: Option<SourceKind>, filter: &Filter) -> Result<Listing, crate::Error> {
        let mut entries = Vec::new();
        for s in self.selected(source) {
            let pass = s.browse.browse(&s.dlq, self.settings.scan_limit).await?;
            entries.extend(entries_of(s.kind, &pass).into_iter().filter(|e| filter.matches(e)));
            pass.finish().await?;
        }
        entries.sort_by(|a, b| b.failed_unix_ms.cmp(&a.failed_unix_ms).then_with(|| b.id.cmp(&a.id)));
        let mut counts: BTreeMap<(SourceKind, String), usize> = BTreeMap::new();
        for e in &entries {
            *counts.entry((e.source, e.reason.clone())).or_default() += 1;
        }
        let mut by_reason: Vec<_> = counts.into_iter().map(|((s, r), c)| (s, r, c)).collect();
        by_reason.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (a.0, &a.1).cmp(&(b.0, &b.1))));
        Ok(Listing { entries, by_reason })
    }

    /// How many dead letters each source holds (at most the scan limit each):
    /// `{"requests": n, "jobs": n}`, the console's overview and event shape.
    pub async fn counts(&self) -> Result<Value, crate::Error> {
        let mut counts = serde_json::Map::new();
        for s in &self.sources {
            let pass = s.browse.browse(&s.dlq, self.settings.scan_limit).await?;
            let n = pass.entries().len();
            pass.finish().await?;
            counts.insert(s.kind.name().to_owned(), Value::from(n));
        }
        Ok(Value::Object(counts))
    }

    /// The dead letter `id`, if it is there.
    pub async fn show(&self, id: &str) -> Result<Option<Entry>, crate::Error> {
        let filter = Filter { ids: vec![id.to_owned()], ..Filter::default() };
        Ok(self.list(source_of_id(id), &filter).await?.entries.into_iter().next())
    }

    /// Sends the dead letters of `run` back to their origin, each removed from its dead-letter
    /// queue only after the broker confirmed the copy. `actor` is logged with every one.
    pub async fn redrive(&self, run: &Run, actor: &str) -> Result<Report, crate::Error> {
        self.apply(run, actor, Action::Redrive).await
    }

    /// Removes the dead letters of `run` for good.
    pub async fn purge(&self, run: &Run, actor: &str) -> Result<Report, crate::Error> {
        self.apply(run, actor, Action::Purge).await
    }

    async fn apply(&self, run: &Run, actor: &str, action: Action) -> Result<Report, crate::Error> {
        let mut report = Report::default();
        let mut pace = Pace::new(run.rate);
        for s in self.selected(run.source) {
            if run.max.is_some_and(|m| report.done >= m) {
                break;
            }
            let mut pass = s.browse.browse(&s.dlq, self.settings.scan_limit).await?;
            let entries: Vec<Entry> = entries_of(s.kind, &pass).into_iter().filter(|e| run.filter.matches(e)).collect();
            let before = (report.done, report.refused);
            for e in entries {
                if run.max.is_some_and(|m| report.done >= m) {
                    break;
                }
                let outcome = match action {
                    Action::Redrive => self.redrive_one(&mut pass, s, &e, run, &mut pace).await,
                    Action::Purge => purge_one(&mut pass, &e, run, &mut pace).await,
                };
                match outcome {
                    Step::Done(detail) => {
                        report.done += 1;
                        if !run.dry_run {
                            info!(
                                "dead letters: {actor} {} {} ({}){}",
                                action.past(),
                                e.id,
                                e.reason,
                                detail["to"].as_str().map(|t| format!(" to {t}")).unwrap_or_default()
                            );
                        }
                        report.details.push(detail);
                    }
                    Step::Refused(detail) => {
                        report.refused += 1;
                        report.details.push(detail);
                    }
                    Step::Failed(detail, why) => {
                        warn!("dead letters: {actor} {} stopped at {}: {why}", action.name(), e.id);
                        report.details.push(detail);
                        report.error = Some(why);
                        break;
                    }
                }
            }
            pass.finish().await?;
            let verb = if run.dry_run { format!("would be {}", action.done()) } else { action.done().to_owned() };
            info!(
                "dead letters: {actor} {} on {}{}: {} {verb}, {} refused",
                action.name(),
                s.dlq,
                if run.dry_run { " (dry run)" } else { "" },
                report.done - before.0,
                report.refused - before.1,
            );
            if report.error.is_some() {
                break;
            }
        }
        Ok(report)
    }

    async fn redrive_one(&self, pass: &mut BrowsePass, source: &Source, e: &Entry, run: &Run, pace: &mut Pace) -> Step {
        let base = json!({"id": e.id, "source": e.source.name(), "reason": e.reason});
        let refuse = |why: String| Step::Refused(with(&base, json!({"outcome": "refused", "why": why})));
        if e.redrives >= self.settings.max_redrives {
            return refuse(format!(
                "redriven {} times already (--max-redrives {}): it stays",
                e.redrives, self.settings.max_redrives
            ));
        }
        if e.source == SourceKind::Requests && !self.settings.allow_requests {
            return refuse(
                "a request's caller is gone: redriving only re-runs its side effects (--allow-requests)".into(),
            );
        }
        let Some(origin) = e.origin.clone().filter(|o| !o.is_empty()) else {
            return refuse("no origin recorded (x-switchboard-origin)".into());
        };
        if origin == source.dlq || origin.ends_with(".dlq") {
            return refuse(format!("origin {origin} is a dead-letter queue"));
        }
        let done = with(&base, json!({"to": origin, "redrives": e.redrives + 1}));
        if run.dry_run {
            return Step::Done(with(&done, json!({"outcome": "would_redrive"})));
        }
        pace.wait().await;
        let copy = redriven_copy(e);
        if let Err(err) = pass.send(&origin, copy).await {
            return Step::Failed(
                with(&base, json!({"outcome": "failed", "why": err.error.to_string()})),
                format!("republish to {origin} failed: {}", err.error),
            );
        }
        if let Err(err) = pass.remove(e.index).await {
            // Sent but not removed: a later redrive sends it again (at-least-once).
            return Step::Failed(
                with(&base, json!({"outcome": "failed", "why": err.to_string()})),
                format!("redriven but not removed from {}: {err}", source.dlq),
            );
        }
        Step::Done(with(&done, json!({"outcome": "redriven"})))
    }
}

async fn purge_one(pass: &mut BrowsePass, e: &Entry, run: &Run, pace: &mut Pace) -> Step {
    let base = json!({"id": e.id, "source": e.source.name(), "reason": e.reason});
    if run.dry_run {
        return Step::Done(with(&base, json!({"outcome": "would_purge"})));
    }
    pace.wait().await;
    match pass.remove(e.index).await {
        Ok(()) => Step::Done(with(&base, json!({"outcome": "purged"}))),
        Err(err) => Step::Failed(with(&base, json!({"outcome": "failed", "why": err.to_string()})), err.to_string()),
    }
}

/// What goes back to the origin: the message without the dead-letter marks, the redrive count
/// one higher, the first failure's time kept (so a second dead-lettering keeps it). A request
/// gets a fresh budget (its deadline cleared: the relay gives it the default one), else it
/// would only be answered as expired.
fn redriven_copy(e: &Entry) -> Message {
    let mut m = e.message.clone();
    m.partition = None;
    for h in [
        ERROR_HEADER,
        ORIGIN_HEADER,
        ORIGIN_PARTITION_HEADER,
        ORIGIN_OFFSET_HEADER,
        ATTEMPTS_HEADER,
        DEAD_LETTERED_HEADER,
    ] {
        m.headers.retain(|(n, _)| n != h);
    }
    set_header(&mut m, REDRIVES_HEADER, (e.redrives + 1).to_string());
    if e.source == SourceKind::Requests {
        if let Ok(mut envelope) = Envelope::decode(&m.payload) {
            envelope.deadline_unix_ms = 0;
            m.payload = envelope.encode();
        }
    }
    m
}

fn entries_of(kind: SourceKind, pass: &BrowsePass) -> Vec<Entry> {
    pass.entries().iter().enumerate().map(|(i, b)| Entry::new(kind, i, b)).collect()
}

/// The source an id names (`requests:…`, `jobs:…`).
pub fn source_of_id(id: &str) -> Option<SourceKind> {
    match id.split_once(':').map(|(s, _)| s) {
        Some("requests") => Some(SourceKind::Requests),
        Some("jobs") => Some(SourceKind::Jobs),
        _ => None,
    }
}

fn with(base: &Value, more: Value) -> Value {
    let mut v = base.clone();
    if let (Some(o), Value::Object(m)) = (v.as_object_mut(), more) {
        o.extend(m);
    }
    v
}

#[derive(Clone, Copy)]
enum Action {
    Redrive,
    Purge,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Redrive => "redrive",
            Action::Purge => "purge",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Action::Redrive => "redrove",
            Action::Purge => "purged",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Action::Redrive => "redriven",
            Action::Purge => "purged",
        }
    }
}

enum Step {
    Done(Value),
    Refused(Value),
    Failed(Value, String),
}

/// At most `rate` operations per second.
struct Pace {
    every: Option<Duration>,
    next: Option<Instant>,
}

impl Pace {
    fn new(rate: Option<f64>) -> Self {
        let every = rate.filter(|r| r.is_finite() && *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
        Pace { every, next: None }
    }

    async fn wait(&mut self) {
        let Some(every) = self.every else { return };
        let now = Instant::now();
        if let Some(next) = self.next.filter(|n| *n > now) {
            async_io::Timer::at(next).await;
        }
        self.next = Some(self.next.map_or(now, |n| n.max(now)) + every);
    }
}

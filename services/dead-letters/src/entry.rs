//! One dead letter as the tool shows it: why, from where, when, how often, and what.

use serde_json::{json, Map, Value};
use switchboard_ports::{
    redrives, Browsed, Message, ATTEMPTS_HEADER, DEAD_LETTERED_HEADER, ERROR_HEADER, FIRST_FAILED_HEADER,
    ORIGIN_HEADER, ORIGIN_OFFSET_HEADER, ORIGIN_PARTITION_HEADER,
};
use switchboard_proto::{Envelope, Job, ProtoMessage};

use crate::SourceKind;

/// Bytes of payload (or decoded body) a list item previews.
pub const PREVIEW_BYTES: usize = 512;

/// A dead letter read from a dead-letter topic or queue.
#[derive(Clone, Debug)]
pub struct Entry {
    /// `requests:<partition>:<offset>` on a topic; `jobs:<job id>` on a queue (`jobs:@<n>`,
    /// its position, for a job without a readable id).
    pub id: String,
    /// Which dead-letter queue it is in.
    pub source: SourceKind,
    /// Its index in the pass that read it.
    pub(crate) index: usize,
    /// Why it was dead-lettered (`x-switchboard-error`), empty when unknown.
    pub reason: String,
    /// Where it came from (`x-switchboard-origin`), when recorded.
    pub origin: Option<String>,
    /// The origin with its partition and offset, as shown.
    pub origin_shown: String,
    /// First failure, Unix ms (0 when unknown).
    pub first_failed_unix_ms: u64,
    /// This dead-lettering, Unix ms (the first failure when unknown).
    pub failed_unix_ms: u64,
    /// Attempts spent (0 when unknown).
    pub attempts: u32,
    /// Times sent back already.
    pub redrives: u32,
    /// The message.
    pub message: Message,
}

fn header_u64(m: &Message, name: &str) -> Option<u64> {
    m.header_str(name).and_then(|v| v.trim().parse().ok())
}

impl Entry {
    pub(crate) fn new(source: SourceKind, index: usize, browsed: &Browsed) -> Self {
        let m = &browsed.message;
        let id = match (source, browsed.partition) {
            (SourceKind::Requests, p) => format!("requests:{}:{}", p.unwrap_or(0), browsed.offset),
            (SourceKind::Jobs, _) => match job_id(m) {
                Some(id) => format!("jobs:{id}"),
                None => format!("jobs:@{}", browsed.offset),
            },
        };
        let origin = m.header_str(ORIGIN_HEADER).map(str::to_owned);
        let partition = m.header_str(ORIGIN_PARTITION_HEADER);
        let offset = m.header_str(ORIGIN_OFFSET_HEADER);
        let origin_shown = match (&origin, partition, offset) {
            (Some(o), Some(p), Some(off)) => format!("{o}/{p}@{off}"),
            (Some(o), Some(p), None) => format!("{o}/{p}"),
            (Some(o), _, _) => o.clone(),
            (None, _, _) => String::new(),
        };
        let first = header_u64(m, FIRST_FAILED_HEADER).unwrap_or(0);
        Entry {
            id,
            source,
            index,
            reason: m.header_str(ERROR_HEADER).unwrap_or_default().to_owned(),
            origin,
            origin_shown,
            first_failed_unix_ms: first,
            failed_unix_ms: header_u64(m, DEAD_LETTERED_HEADER).unwrap_or(first),
            attempts: header_u64(m, ATTEMPTS_HEADER).map_or(0, |a| a.min(u64::from(u32::MAX)) as u32),
            redrives: redrives(m),
            message: m.clone(),
        }
    }

    /// Seconds since it was dead-lettered (0 when unknown).
    pub fn age_s(&self, now_ms: u64) -> u64 {
        if self.failed_unix_ms == 0 {
            0
        } else {
            now_ms.saturating_sub(self.failed_unix_ms) / 1000
        }
    }

    /// The headers, values as lossy UTF-8.
    pub fn headers_json(&self) -> Value {
        let mut map = Map::new();
        for (n, v) in &self.message.headers {
            map.insert(n.clone(), Value::String(String::from_utf8_lossy(v).into_owned()));
        }
        Value::Object(map)
    }

    /// The decoded body when the payload is an envelope or job, else the payload, lossy
    /// UTF-8, at most `max` bytes.
    pub fn preview(&self, max: usize) -> String {
        match envelope_of(self.source, &self.message.payload) {
            Some(e) => capped(e.body.as_bytes(), max),
            None => capped(&self.message.payload, max),
        }
    }

    /// The list item of the HTTP and `--json` output.
    pub fn item_json(&self, now_ms: u64) -> Value {
        json!({
            "id": self.id,
            "source": self.source.name(),
            "reason": self.reason,
            "origin": self.origin_shown,
            "first_failed_unix_ms": self.first_failed_unix_ms,
            "attempts": self.attempts,
            "redrives": self.redrives,
            "age_s": self.age_s(now_ms),
            "size": self.message.payload.len(),
            "preview": self.preview(PREVIEW_BYTES),
            "headers": self.headers_json(),
        })
    }

    /// Everything `show` prints: the list item, the decoded envelope or job, and the payload
    /// (lossy UTF-8) capped at `max_bytes`.
    pub fn detail_json(&self, now_ms: u64, max_bytes: usize) -> Value {
        let mut item = self.item_json(now_ms);
        item["decoded"] = decoded(self.source, &self.message.payload);
        item["payload"] = Value::String(capped(&self.message.payload, max_bytes));
        item["payload_truncated"] = Value::Bool(self.message.payload.len() > max_bytes);
        item["key"] = self.message.key.as_ref().map_or(Value::Null, |k| Value::String(capped(k, 256)));
        item
    }
}

/// The job id of a jobs-queue message: from the job, else its `job-id` header.
fn job_id(m: &Message) -> Option<String> {
    let from_job = envelope_of(SourceKind::Jobs, &m.payload).map(|e| e.id).filter(|id| !id.is_empty());
    from_job.or_else(|| m.header_str("job-id").filter(|id| !id.is_empty()).map(str::to_owned))
}

/// The envelope a dead letter carries: the message itself on the requests topic, the job's on
/// the jobs queue; none when the payload does not decode (or is a job without one).
fn envelope_of(source: SourceKind, payload: &[u8]) -> Option<Envelope> {
    match source {
        SourceKind::Requests => Envelope::decode(payload).ok(),
        SourceKind::Jobs => Job::parse_from_bytes(payload).ok().and_then(|j| j.envelope.into_option()),
    }
}

/// `bytes` as lossy UTF-8, cut at `max` bytes (on a character boundary).
pub fn capped(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    s.trim_end_matches('\u{fffd}').to_owned()
}

fn decoded(source: SourceKind, payload: &[u8]) -> Value {
    let (kind, envelope, created_unix_ms) = match source {
        SourceKind::Requests => match Envelope::decode(payload) {
            Ok(e) => ("envelope", e, None),
            Err(e) => return json!({"kind": "undecodable", "error": e.to_string()}),
        },
        SourceKind::Jobs => match Job::parse_from_bytes(payload) {
            Ok(j) => match j.envelope.into_option() {
                Some(e) => ("job", e, Some(j.created_unix_ms)),
                None => {
                    let why = "job without envelope (written in the format before jobs carried one)";
                    return json!({"kind": "job", "error": why, "created_unix_ms": j.created_unix_ms});
                }
            },
            Err(e) => return json!({"kind": "undecodable", "error": e.to_string()}),
        },
    };
    let mut doc = json!({
        "kind": kind,
        "id": envelope.id,
        "body": capped(envelope.body.as_bytes(), 4096),
        "reply_to": envelope.reply_to,
        "deadline_unix_ms": envelope.deadline_unix_ms,
        "traceparent": envelope.traceparent(),
        "failure": envelope.failure.as_ref().map(|f| f.message.clone()),
        "hops": envelope.hops.iter().map(|h| json!({"name": h.name, "service": h.service})).collect::<Value>(),
    });
    if let Some(ms) = created_unix_ms {
        doc["created_unix_ms"] = ms.into();
    }
    doc
}

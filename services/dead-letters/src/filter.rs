//! Which dead letters an operation applies to.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Entry;

/// The filters of `list`, `redrive` and `purge`; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only those whose reason contains this text.
    pub reason: Option<String>,
    /// Only those dead-lettered at or after this time (Unix ms).
    pub since_unix_ms: Option<u64>,
    /// Only those dead-lettered before this time (Unix ms).
    pub until_unix_ms: Option<u64>,
    /// Only these ids (none: any id).
    pub ids: Vec<String>,
}

impl Filter {
    /// Whether `entry` passes.
    pub fn matches(&self, entry: &Entry) -> bool {
        self.reason.as_ref().is_none_or(|r| entry.reason.contains(r.as_str()))
            && self.since_unix_ms.is_none_or(|s| entry.failed_unix_ms >= s)
            && self.until_unix_ms.is_none_or(|u| entry.failed_unix_ms < u)
            && (self.ids.is_empty() || self.ids.contains(&entry.id))
    }
}

/// A point in time given as a duration ago (`90s`, `10m`, `2h 30m`), an RFC 3339 time
/// (`2026-12-06T17:00:00Z`) or Unix milliseconds; as Unix milliseconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    if let Ok(ago) = humantime::parse_duration(s) {
        let at = SystemTime::now().checked_sub(ago).unwrap_or(UNIX_EPOCH);
        return Ok(unix_ms(at));
    }
    humantime::parse_rfc3339_weak(s).map(unix_ms).map_err(|_| {
        format!("`{s}` is not a time: give a duration ago (10m, 2h), an RFC 3339 time or Unix milliseconds")
    })
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_ago_rfc3339_or_millis() {
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        let ago = parse_time("10m").unwrap();
        let now = unix_ms(SystemTime::now());
        assert!(now >= ago + 600_000 && now - ago >= 600_000, "10 minutes before now");
        assert!(parse_time("yesterday-ish").unwrap_err().contains("not a time"));
    }
}

//! The log line's timestamp, `2026-11-21T10:58:48.123Z` (RFC 3339, UTC, milliseconds, as
//! env_logger's `timestamp_millis` printed it), rendered once per millisecond per thread: at
//! info level a busy process logs many lines per millisecond, and calendar arithmetic plus
//! `core::fmt` for each of them was most of what a hop line cost. The rendering itself is
//! jiff's, the library env_logger printed with, so the text is the same by construction.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes in a rendered timestamp: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) const LEN: usize = 24;

/// 0000-01-01T00:00:00.000Z and 9999-12-30T22:00:00.000Z (the last millisecond jiff takes): the four-digit
/// years jiff renders. A clock outside them is broken; its lines show the nearest end rather
/// than a differently shaped prefix.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_207_200_000;

/// The last timestamp rendered and the millisecond it belongs to.
#[derive(Debug)]
pub(crate) struct StampCache {
    ms: i64,
    text: [u8; LEN],
}

impl StampCache {
    pub(crate) const fn new() -> Self {
        // No real clock reads i64::MIN, so the first call always renders.
        StampCache { ms: i64::MIN, text: [0; LEN] }
    }

    /// `now` rendered; reuses the last rendering while the millisecond is the same.
    pub(crate) fn get(&mut self, now: SystemTime) -> &[u8; LEN] {
        let ms = unix_millis(now);
        if ms != self.ms {
            self.text = render(ms);
            self.ms = ms;
        }
        &self.text
    }
}

/// Milliseconds since the Unix epoch, rounded down (also before the epoch, as env_logger's
/// formatter truncated toward the past), clamped to the four-digit years.
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    let ms = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(e) => {
            let before = e.duration().as_nanos().div_ceil(1_000_000);
            i64::try_from(before).map_or(i64::MIN, |b| -b)
        }
    };
    ms.clamp(MIN_MS, MAX_MS)
}

/// `ms` (since the Unix epoch) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn render(ms: i64) -> [u8; LEN] {
    let mut out = *b"0000-01-01T00:00:00.000Z";
    // Within the four-digit years jiff always has the instant and the text is LEN bytes.
    if let Ok(t) = jiff::Timestamp::from_millisecond(ms.clamp(MIN_MS, MAX_MS)) {
        let _ = write!(&mut out[..], "{t:.3}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::{render, unix_millis, StampCache, MAX_MS};

    fn at(ms: i64) -> SystemTime {
        if ms >= 0 {
            UNIX_EPOCH + Duration::from_millis(ms as u64)
        } else {
            UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
        }
    }

    fn text(ms: i64) -> String {
        String::from_utf8(render(ms).to_vec()).unwrap()
    }

    /// What env_logger's `timestamp_millis` printed: jiff's RFC 3339 at 3 decimals.
    fn env_logger_shape(t: SystemTime) -> String {
        format!("{:.3}", jiff::Timestamp::try_from(t).unwrap())
    }

    #[test]
    fn renders_known_instants() {
        // Expected values from `date -u -d @SECONDS`.
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_258_728_123, "2026-11-21T10:58:48.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(text(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn second_and_day_boundaries() {
        let midnight = 1_795_219_200_000; // 2026-11-21T00:00:00Z
        let new_year = 1_798_761_600_000; // 2027-01-01T00:00:00Z
        for (ms, want) in [
            (midnight - 1, "2026-11-20T23:59:59.999Z"),
            (midnight, "2026-11-21T00:00:00.000Z"),
            (midnight + 999, "2026-11-21T00:00:00.999Z"),
            (midnight + 1000, "2026-11-21T00:00:01.000Z"),
            (new_year - 1, "2026-12-31T23:59:59.999Z"),
            (new_year, "2027-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(text(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn sub_millisecond_time_rounds_down_like_env_logger() {
        for t in [
            UNIX_EPOCH + Duration::from_nanos(1_795_258_728_123_999_999),
            UNIX_EPOCH + Duration::from_nanos(1_795_258_728_123_000_001),
            UNIX_EPOCH - Duration::from_nanos(500_000),
            UNIX_EPOCH - Duration::from_nanos(1_000_000),
            UNIX_EPOCH - Duration::from_nanos(1_000_001),
        ] {
            assert_eq!(text(unix_millis(t)), env_logger_shape(t), "{t:?}");
        }
    }

    #[test]
    fn clocks_beyond_four_digit_years_keep_the_shape() {
        assert_eq!(text(i64::MAX), "9999-12-30T22:00:00.000Z");
        assert_eq!(text(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_secs(u64::MAX / 2)), MAX_MS);
    }

    #[test]
    fn lines_in_the_same_millisecond_share_one_rendering() {
        let mut cache = StampCache::new();
        let first = at(1_795_258_728_123) + Duration::from_micros(100);
        let same_ms = at(1_795_258_728_123) + Duration::from_micros(900);
        assert_eq!(cache.get(first), b"2026-11-21T10:58:48.123Z");
        let rendered_at = cache.ms;
        // Scribble on the cached text: a second call in the same millisecond must not re-render.
        cache.text[23] = b'!';
        assert_eq!(cache.get(same_ms), b"2026-11-21T10:58:48.123!");
        assert_eq!(cache.ms, rendered_at);
    }

    #[test]
    fn a_new_millisecond_renders_a_new_timestamp() {
        let mut cache = StampCache::new();
        assert_eq!(cache.get(at(1_795_258_728_999)), b"2026-11-21T10:58:48.999Z");
        assert_eq!(cache.get(at(1_795_258_729_000)), b"2026-11-21T10:58:49.000Z");
        // A clock stepped back renders again too.
        assert_eq!(cache.get(at(1_795_258_728_999)), b"2026-11-21T10:58:48.999Z");
    }
}

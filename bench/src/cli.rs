use std::time::Duration;

use clap::Args;

/// Load flags shared by `loadgen` and `bench`; each has an environment fallback.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Closed loop: workers, each on its own keep-alive connection with one request in flight.
    /// Open loop (`--rate`): the connection pool.
    #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 32)]
    pub concurrency: usize,
    /// Open loop at this many requests per second (latency counted from each request's
    /// scheduled send time).
    #[arg(long, env = "LOADGEN_RATE")]
    pub rate: Option<f64>,
    /// Recorded time per phase (`3s`, `500ms`, `1m`, or seconds).
    #[arg(long, env = "LOADGEN_DURATION", default_value = "3s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unrecorded warm-up before each phase.
    #[arg(long, env = "LOADGEN_WARMUP", default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Characters in each request's `message`.
    #[arg(long, env = "LOADGEN_MESSAGE_SIZE", default_value_t = 64)]
    pub message_size: usize,
}

/// Parses `250ms`, `3s`, `2m`, or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("not a duration: {s:?} (try 3s or 500ms)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {s:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("not a usable duration: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_are_refused_with_a_reason() {
        assert!(parse_duration("fast").unwrap_err().contains("not a duration"));
        assert!(parse_duration("3h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
    }
}

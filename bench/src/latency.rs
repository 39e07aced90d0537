use std::time::Duration;

use hdrhistogram::Histogram;

/// Recorded latencies in nanoseconds, 3 significant digits, 1 ns to 60 s.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

/// Percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
}

const HIGHEST_NS: u64 = 60_000_000_000;

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty record.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds");
        Latencies { histogram }
    }

    /// Records one sample; beyond 60 s it counts as 60 s rather than being lost.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).clamp(1, HIGHEST_NS);
        self.histogram.saturating_record(ns);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Percentiles so far (all zero when empty).
    pub fn summary(&self) -> Summary {
        if self.histogram.is_empty() {
            return Summary::default();
        }
        let at = |q: f64| Duration::from_nanos(self.histogram.value_at_quantile(q));
        Summary {
            count: self.histogram.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: Duration::from_nanos(self.histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread_are_within_histogram_precision() {
        let mut l = Latencies::new();
        for us in 1..=1000u64 {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        let close =
            |d: Duration, us: u64| (d.as_nanos() as f64 - us as f64 * 1000.0).abs() <= us as f64 * 1000.0 * 0.001 + 1.0;
        assert!(close(s.p50, 500), "{s:?}");
        assert!(close(s.p90, 900), "{s:?}");
        assert!(close(s.p99, 990), "{s:?}");
        assert!(close(s.max, 1000), "{s:?}");
    }

    #[test]
    fn empty_and_out_of_range_samples_do_not_panic() {
        let mut l = Latencies::new();
        assert_eq!(l.summary(), Summary::default());
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(3600));
        let s = l.summary();
        assert_eq!(s.count, 2);
        assert!(s.max >= Duration::from_secs(59), "{s:?}");
    }
}

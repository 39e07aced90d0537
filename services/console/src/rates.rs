//! From two scrapes of one instance's metrics to its rate, error share and latency
//! percentiles. Which metrics count as "requests" depends on what the service does:
//!
//! | service | requests | errors | latency |
//! | --- | --- | --- | --- |
//! | gateway (and any other name) | `http_requests_total` but probes and `/metrics` | status ≥ 500 | `http_request_duration_seconds` (same routes) |
//! | relay | `hop_duration_seconds{hop="relay_grpc_call"}` calls | `grpc_calls_total` not `OK` | that histogram |
//! | processor | `grpc_calls_total` | not `OK` | — |
//! | worker | `jobs_total{status="running"}` | `jobs_total{status="failed"}` | — |
//!
//! Breakers come from `breaker_state` (0 closed, 1 open, 2 half-open); a service known by name
//! shows the breakers named after it (`relay_processor` at the relay), any other all of them.

use crate::promtext::Sample;

/// Routes that are not traffic: probes and scrapes.
const NOT_TRAFFIC: [&str; 4] = ["/healthz", "/readyz", "/metrics", "other"];

/// Totals read from one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    pub requests: f64,
    pub errors: f64,
    /// Cumulative latency buckets, (upper bound in seconds, count), ascending.
    pub buckets: Vec<(f64, f64)>,
    /// (breaker, state name).
    pub breakers: Vec<(String, &'static str)>,
}

/// What a service did between two scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Delta {
    pub seconds: f64,
    pub requests: f64,
    pub errors: f64,
    pub buckets: Vec<(f64, f64)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Gateway,
    Relay,
    Processor,
    Worker,
}

fn role(service: &str) -> Role {
    match service {
        "relay" => Role::Relay,
        "processor" => Role::Processor,
        "worker" => Role::Worker,
        _ => Role::Gateway,
    }
}

fn traffic(s: &Sample) -> bool {
    s.label("route").is_none_or(|r| !NOT_TRAFFIC.contains(&r))
}

fn grpc_failed(s: &Sample) -> bool {
    s.label("code").is_some_and(|c| c != "OK")
}

/// A histogram's sample name and which of its series count.
type Histogram<'a> = (&'a str, &'a dyn Fn(&Sample) -> bool);

/// Reads the totals of `service` from `samples`.
pub(crate) fn snapshot(service: &str, samples: &[Sample]) -> Snapshot {
    let sum = |keep: &dyn Fn(&Sample) -> bool| samples.iter().filter(|s| keep(s)).map(|s| s.value).sum::<f64>();
    let role = role(service);
    let relay_hop = |s: &Sample| s.label("hop") == Some("relay_grpc_call");
    let (requests, errors, histogram): (f64, f64, Option<Histogram<'_>>) = match role {
        Role::Gateway => (
            sum(&|s| s.name == "http_requests_total" && traffic(s)),
            sum(&|s| {
                s.name == "http_requests_total"
                    && traffic(s)
                    && s.label("status").and_then(|v| v.parse::<u16>().ok()).is_some_and(|v| v >= 500)
            }),
            Some(("http_request_duration_seconds_bucket", &traffic)),
        ),
        Role::Relay => (
            sum(&|s| s.name == "hop_duration_seconds_count" && relay_hop(s)),
            sum(&|s| s.name == "grpc_calls_total" && grpc_failed(s)),
            Some(("hop_duration_seconds_bucket", &relay_hop)),
        ),
        Role::Processor => {
            (sum(&|s| s.name == "grpc_calls_total"), sum(&|s| s.name == "grpc_calls_total" && grpc_failed(s)), None)
        }
        Role::Worker => (
            sum(&|s| s.name == "jobs_total" && s.label("status") == Some("running")),
            sum(&|s| s.name == "jobs_total" && s.label("status") == Some("failed")),
            None,
        ),
    };
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    if let Some((name, keep)) = histogram {
        for s in samples.iter().filter(|s| s.name == name && keep(s)) {
            let Some(le) =
                s.label("le").and_then(|le| if le == "+Inf" { Some(f64::INFINITY) } else { le.parse().ok() })
            else {
                continue;
            };
            match buckets.iter_mut().find(|(bound, _)| *bound == le) {
                Some((_, count)) => *count += s.value,
                None => buckets.push((le, s.value)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let prefix = match role {
        Role::Gateway if service == "gateway" => Some("gateway"),
        Role::Relay => Some("relay"),
        Role::Worker => Some("worker"),
        Role::Processor => Some("processor"),
        Role::Gateway => None,
    };
    let breakers = samples
        .iter()
        .filter(|s| s.name == "breaker_state")
        .filter_map(|s| Some((s.label("breaker")?.to_owned(), s.value)))
        .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
        .map(|(name, v)| {
            let state = match v as i64 {
                0 => "closed",
                1 => "open",
                _ => "half_open",
            };
            (name, state)
        })
        .collect();
    Snapshot { requests, errors, buckets, breakers }
}

/// What happened from `before` to `now`, `seconds` apart. A counter that went down (the
/// instance restarted) counts from zero.
pub(crate) fn delta(before: &Snapshot, now: &Snapshot, seconds: f64) -> Delta {
    let diff = |a: f64, b: f64| if b >= a { b - a } else { b };
    let restarted = now.requests < before.requests;
    let buckets = now
        .buckets
        .iter()
        .map(|&(le, count)| {
            let old = if restarted { 0.0 } else { before.buckets.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1) };
            (le, diff(old, count))
        })
        .collect();
    Delta {
        seconds,
        requests: diff(before.requests, now.requests),
        errors: if restarted { now.errors } else { diff(before.errors, now.errors) },
        buckets,
    }
}

impl Delta {
    /// Adds another instance's delta of the same service over the same tick.
    pub(crate) fn merge(&mut self, other: &Delta) {
        self.seconds = self.seconds.max(other.seconds);
        self.requests += other.requests;
        self.errors += other.errors;
        for &(le, count) in &other.buckets {
            match self.buckets.iter_mut().find(|b| b.0 == le) {
                Some(b) => b.1 += count,
                None => self.buckets.push((le, count)),
            }
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// Requests per second.
    pub(crate) fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests / self.seconds
        } else {
            0.0
        }
    }

    /// Errors as a percentage of requests (0 without requests).
    pub(crate) fn error_pct(&self) -> f64 {
        if self.requests > 0.0 {
            (self.errors / self.requests * 100.0).min(100.0)
        } else {
            0.0
        }
    }

    /// The `q` quantile of latency in milliseconds, interpolated within its bucket as
    /// Prometheus' `histogram_quantile` does; `None` without observations.
    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    // Beyond the last finite bound: that bound is all that can be said.
                    return Some(lower.0 * 1000.0);
                }
                let in_bucket = count - lower.1;
                let fraction = if in_bucket > 0.0 { (rank - lower.1) / in_bucket } else { 1.0 };
                return Some((lower.0 + (le - lower.0) * fraction) * 1000.0);
            }
            lower = (le, count);
        }
        None
    }
}

#[cfg(test)]
#[path = "rates_tests.rs"]
mod tests;

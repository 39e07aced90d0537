//! Which spans are exported: decided per process, yet the same for every process of a trace.
//!
//! The hops of one transaction run in different processes, so no process can wait to see the
//! whole trace before deciding (that is a collector's tail sampling). Each decides for its own
//! spans from what every process sees alike:
//! - the trace's first service decides by the trace id (a deterministic ratio, as OpenTelemetry's
//!   `TraceIdRatioBased`) and writes the answer into the sampled flag of the `traceparent` it
//!   sends on; every later service follows that flag (`parentbased`);
//! - whatever the flag says, a process exports its spans of a transaction that failed or was
//!   slow there, so no error and no slow hop is ever sampled away.

use std::time::Duration;

use switchboard_telemetry::{TraceContext, TraceId};

/// The OpenTelemetry sampler named by `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// `always_on`: every trace.
    AlwaysOn,
    /// `always_off`: none, errors and slow ones included.
    AlwaysOff,
    /// `traceidratio`: this fraction of trace ids, whatever the incoming flag says.
    TraceIdRatio(f64),
    /// `parentbased_always_on`: the caller's flag; new traces all sampled.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: the caller's flag; new traces not sampled.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: the caller's flag; new traces by trace-id ratio.
    ParentBasedTraceIdRatio(f64),
}

/// The ratio of the default sampler: one transaction in ten, besides every error and slow one.
pub const DEFAULT_RATIO: f64 = 0.1;

impl Default for Sampler {
    fn default() -> Self {
        Sampler::ParentBasedTraceIdRatio(DEFAULT_RATIO)
    }
}

/// A sampler name or argument that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SamplerError(String);

impl Sampler {
    /// The sampler of `OTEL_TRACES_SAMPLER` = `name` with `OTEL_TRACES_SAMPLER_ARG` = `arg`
    /// (the ratio, 0 to 1; default [`DEFAULT_RATIO`]).
    pub fn from_name(name: &str, arg: Option<&str>) -> Result<Self, SamplerError> {
        let ratio = || -> Result<f64, SamplerError> {
            let Some(arg) = arg.map(str::trim).filter(|a| !a.is_empty()) else { return Ok(DEFAULT_RATIO) };
            match arg.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(SamplerError(format!("OTEL_TRACES_SAMPLER_ARG {arg:?} is not a ratio between 0 and 1"))),
            }
        };
        Ok(match name.trim() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio()?),
            other => {
                return Err(SamplerError(format!(
                    "OTEL_TRACES_SAMPLER {other:?} is not one of always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                )))
            }
        })
    }

    /// The decision for a trace this process starts (no valid incoming `traceparent`).
    pub fn root(&self, trace_id: TraceId) -> bool {
        match *self {
            Sampler::AlwaysOn | Sampler::ParentBasedAlwaysOn => true,
            Sampler::AlwaysOff | Sampler::ParentBasedAlwaysOff => false,
            Sampler::TraceIdRatio(r) | Sampler::ParentBasedTraceIdRatio(r) => ratio_keeps(trace_id, r),
        }
    }

    /// The decision for a span whose trace came from a caller with context `parent`.
    pub fn continued(&self, parent: &TraceContext) -> bool {
        match *self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(r) => ratio_keeps(parent.trace_id(), r),
            Sampler::ParentBasedAlwaysOn | Sampler::ParentBasedAlwaysOff | Sampler::ParentBasedTraceIdRatio(_) => {
                parent.is_sampled()
            }
        }
    }

    /// Whether errors and slow spans are kept whatever the decision: every sampler but
    /// `always_off`, which means no export at all.
    pub fn keeps_failures(&self) -> bool {
        *self != Sampler::AlwaysOff
    }
}

/// The trace-id ratio test: the trace id's last 56 bits (random in W3C trace ids, level 2) read
/// as a number below `ratio` of their range. Every process with the same ratio agrees.
pub fn ratio_keeps(trace_id: TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low[1..].copy_from_slice(&bytes[9..]);
    let random = u64::from_be_bytes(low);
    let threshold = (ratio * (1u64 << 56) as f64) as u64;
    random < threshold
}

/// What decides whether this process exports its spans of one transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The sampler.
    pub sampler: Sampler,
    /// Spans at least this long are kept, whatever the sampler decided (but `always_off`).
    pub slow: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { sampler: Sampler::default(), slow: DEFAULT_SLOW }
    }
}

/// The default slow threshold: a transaction that takes a quarter second on a chain whose
/// hops take well under a millisecond is worth looking at.
pub const DEFAULT_SLOW: Duration = Duration::from_millis(250);

impl Policy {
    /// Whether a group of spans is exported: `sampled` (the flag this process sends or
    /// received, as decided by the sampler), or any of them failed, or lasted `slow` or more.
    pub fn keep(&self, sampled: bool, any_error: bool, longest: Duration) -> bool {
        if !self.sampler.keeps_failures() {
            return false;
        }
        sampled || any_error || longest >= self.slow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(hex: &str, flags: &str) -> TraceContext {
        TraceContext::parse(format!("00-{hex}-00f067aa0ba902b7-{flags}")).unwrap()
    }

    #[test]
    fn names_and_arguments_follow_the_opentelemetry_settings() {
        assert_eq!(Sampler::from_name("always_on", None), Ok(Sampler::AlwaysOn));
        assert_eq!(Sampler::from_name("traceidratio", Some("0.25")), Ok(Sampler::TraceIdRatio(0.25)));
        assert_eq!(Sampler::from_name("parentbased_traceidratio", None), Ok(Sampler::default()));
        assert!(Sampler::from_name("traceidratio", Some("2")).is_err());
        assert!(Sampler::from_name("traceidratio", Some("half")).is_err());
        assert!(Sampler::from_name("jaeger_remote", None).is_err());
    }

    #[test]
    fn the_ratio_decision_is_the_same_in_every_process_and_near_the_ratio() {
        // Each "process" is its own sampler value built from the same settings.
        let processes: Vec<Sampler> =
            (0..3).map(|_| Sampler::from_name("traceidratio", Some("0.3")).unwrap()).collect();
        let mut kept = 0;
        for _ in 0..20_000 {
            let ctx = TraceContext::new();
            let decisions: Vec<bool> = processes.iter().map(|s| s.continued(&ctx)).collect();
            assert!(decisions.windows(2).all(|w| w[0] == w[1]), "{ctx}: {decisions:?}");
            assert_eq!(processes[0].root(ctx.trace_id()), decisions[0]);
            kept += usize::from(decisions[0]);
        }
        let share = kept as f64 / 20_000.0;
        assert!((0.27..0.33).contains(&share), "{share}");
    }

    #[test]
    fn parent_based_samplers_follow_the_incoming_flag() {
        let on = trace("4bf92f3577b34da6a3ce929d0e0e4736", "01");
        let off = trace("4bf92f3577b34da6a3ce929d0e0e4736", "00");
        for s in [Sampler::ParentBasedAlwaysOn, Sampler::ParentBasedAlwaysOff, Sampler::ParentBasedTraceIdRatio(0.0)] {
            assert!(s.continued(&on), "{s:?}");
            assert!(!s.continued(&off), "{s:?}");
        }
        assert!(Sampler::ParentBasedAlwaysOn.root(on.trace_id()));
        assert!(!Sampler::ParentBasedAlwaysOff.root(on.trace_id()));
    }

    #[test]
    fn ratio_edges_are_all_or_nothing() {
        let low = trace("ffffffffffffffffff00000000000000", "01").trace_id();
        let high = trace("000000000000000000ffffffffffffff", "01").trace_id();
        assert!(ratio_keeps(low, 0.001), "the smallest random part is kept at any ratio above 0");
        assert!(!ratio_keeps(high, 0.999));
        assert!(ratio_keeps(high, 1.0));
        assert!(!ratio_keeps(low, 0.0));
    }

    #[test]
    fn errors_and_slow_groups_are_kept_unless_export_is_off() {
        let p = Policy { sampler: Sampler::ParentBasedTraceIdRatio(0.0), slow: Duration::from_millis(100) };
        assert!(!p.keep(false, false, Duration::from_millis(99)));
        assert!(p.keep(false, true, Duration::ZERO), "an error is always kept");
        assert!(p.keep(false, false, Duration::from_millis(100)), "a slow one is always kept");
        assert!(p.keep(true, false, Duration::ZERO));
        let off = Policy { sampler: Sampler::AlwaysOff, ..p };
        assert!(!off.keep(true, true, Duration::from_secs(9)));
    }
}

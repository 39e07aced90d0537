//! The handle a service records its spans through: cheap to clone, a no-op when export is off.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use switchboard_telemetry::{Metrics, SpanId, TraceContext};

use crate::encode::{span_message, ServiceResource};
use crate::sampler::Policy;
use crate::span::Span;

/// One span on its way to the exporter thread, with the service that recorded it.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) service: Arc<ServiceResource>,
    /// Its OTLP `Span` message.
    pub(crate) message: Vec<u8>,
}

/// Where one service's spans go. `Tracer::default()` is off: every method is a no-op (a
/// branch on `None`), so services hold one whether or not export is configured.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    service: Arc<ServiceResource>,
    queue: SyncSender<Queued>,
    policy: Policy,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Tracer(off)"),
            Some(inner) => write!(f, "Tracer({}, {:?})", inner.service.name(), inner.policy),
        }
    }
}

/// The trace position a service takes on when work arrives; from [`Tracer::enter`].
#[derive(Debug, Clone, Copy)]
pub struct Entered {
    /// This service's first span: its span id is new, its flags carry the sampling decision.
    pub ctx: TraceContext,
    /// The caller's span, when a valid `traceparent` came with the work; `None`: a new trace.
    pub parent: Option<SpanId>,
    /// Whether the sampler chose this trace (errors and slow spans are kept regardless).
    pub sampled: bool,
}

impl Tracer {
    pub(crate) fn new(service: Arc<ServiceResource>, queue: SyncSender<Queued>, policy: Policy) -> Self {
        Tracer { inner: Some(Arc::new(Inner { service, queue, policy })) }
    }

    /// Whether spans are recorded: false when no endpoint is configured.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The context of this service's first span for work that arrived with `incoming` (a
    /// `traceparent` from a header or an envelope): a child of the caller's span, or a new
    /// trace if there is none or it is invalid. With export on, the sampled flag sent on is the
    /// sampler's decision (the first service decides for the whole trace); with export off the
    /// flags pass through untouched.
    pub fn enter<V: AsRef<[u8]>>(&self, incoming: Option<V>) -> Entered {
        let Some(inner) = &self.inner else {
            return Entered { ctx: TraceContext::continue_or_new(incoming).child(), parent: None, sampled: false };
        };
        match incoming.map(|v| TraceContext::parse(v)) {
            Some(Ok(caller)) => {
                let sampled = inner.policy.sampler.continued(&caller);
                Entered { ctx: caller.child().with_sampled(sampled), parent: Some(caller.span_id()), sampled }
            }
            _ => {
                let ctx = TraceContext::new();
                let sampled = inner.policy.sampler.root(ctx.trace_id());
                Entered { ctx: ctx.with_sampled(sampled), parent: None, sampled }
            }
        }
    }

    /// Whether this service exports its spans of one transaction: the sampler chose it
    /// (`sampled`), or one of them failed, or the longest lasted the slow threshold or more.
    /// Call it before building the spans: a dropped transaction then costs nothing more.
    pub fn keep(&self, sampled: bool, any_error: bool, longest: Duration) -> bool {
        self.inner.as_ref().is_some_and(|inner| inner.policy.keep(sampled, any_error, longest))
    }

    /// Encodes finished spans, on this thread, and hands them to the exporter thread without
    /// waiting: a span that finds the queue full is dropped and counted
    /// (`otlp_spans_dropped_total{reason="queue_full"}`).
    pub fn export(&self, spans: impl IntoIterator<Item = Span>) {
        let Some(inner) = &self.inner else { return };
        for span in spans {
            let queued = Queued { service: inner.service.clone(), message: span_message(&span) };
            match inner.queue.try_send(queued) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => inner.service.metrics().spans_dropped("queue_full", 1),
                Err(TrySendError::Disconnected(_)) => inner.service.metrics().spans_dropped("stopped", 1),
            }
        }
    }

    /// The registry this tracer counts in (the service's own).
    pub fn metrics(&self) -> Option<&Metrics> {
        self.inner.as_ref().map(|i| i.service.metrics())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;
    use crate::sampler::Sampler;
    use crate::span::Kind;

    fn counted(metrics: &Metrics, line: &str) -> u64 {
        metrics.encode().lines().find_map(|l| l.strip_prefix(line)?.trim().parse().ok()).unwrap_or(0)
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let metrics = Metrics::new("relay");
        let service = Arc::new(ServiceResource::new("relay", "i", "1", &[], metrics.clone()));
        // Nobody reads this queue: the third span onwards finds it full.
        let (tx, rx) = sync_channel(2);
        let tracer = Tracer::new(service, tx, Policy::default());
        let ctx = TraceContext::new();
        tracer.export((0..5).map(|i| Span::new(&ctx.child(), Some(ctx.span_id()), Kind::Internal, "s", i, i + 1)));
        assert_eq!(rx.try_iter().count(), 2);
        assert_eq!(counted(&metrics, r#"otlp_spans_dropped_total{reason="queue_full"}"#), 3);
        drop(rx);
        tracer.export([Span::new(&ctx, None, Kind::Internal, "late", 0, 1)]);
        assert_eq!(counted(&metrics, r#"otlp_spans_dropped_total{reason="stopped"}"#), 1);
    }

    #[test]
    fn an_off_tracer_continues_the_trace_and_records_nothing() {
        let off = Tracer::default();
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let entered = off.enter(Some(incoming));
        assert_eq!(entered.ctx.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(!entered.ctx.is_sampled(), "flags pass through untouched");
        assert!(!off.keep(true, true, Duration::from_secs(60)));
        off.export([Span::new(&entered.ctx, None, Kind::Server, "x", 0, 1)]);
    }

    #[test]
    fn entering_writes_the_decision_into_the_flag_sent_on() {
        let metrics = Metrics::new("gateway");
        let service = Arc::new(ServiceResource::new("gateway", "i", "1", &[], metrics));
        let (tx, _rx) = sync_channel(1);
        let never = Tracer::new(
            service.clone(),
            tx.clone(),
            Policy { sampler: Sampler::ParentBasedTraceIdRatio(0.0), ..Policy::default() },
        );
        let root = never.enter(None::<&str>);
        assert!(root.parent.is_none() && !root.sampled && !root.ctx.is_sampled());
        let caller = TraceContext::new();
        let continued = never.enter(Some(caller.to_string()));
        assert_eq!(continued.parent, Some(caller.span_id()));
        assert_eq!(continued.ctx.trace_id(), caller.trace_id());
        assert!(continued.sampled, "a sampled caller's trace is followed");
        let always = Tracer::new(service, tx, Policy { sampler: Sampler::AlwaysOn, ..Policy::default() });
        let unsampled_caller = caller.with_sampled(false);
        assert!(always.enter(Some(unsampled_caller.to_string())).ctx.is_sampled());
        assert!(always.enter(Some("garbage")).parent.is_none(), "an invalid traceparent starts a new trace");
    }
}

//! Prometheus metrics of one service: the families operators expect, behind one-line helpers.
//!
//! Label cardinality is bounded by construction: labels that come from code (`hop`, `outcome`,
//! `status`, `reason_kind`, `code`) are `&'static str` or enums, so the binary fixes their set;
//! labels that come from configuration or traffic (`route`, `topic`, `queue`, `destination`,
//! `breaker`, gRPC `method`) pass through a [`LabelValues`] set that admits at most
//! [`MetricsBuilder::label_cap`] distinct values and collapses the rest to [`OTHER`]. Routes can be
//! an allow-list ([`MetricsBuilder::routes`]) so raw paths never become labels.

mod labels;
mod outcomes;

pub use labels::{LabelValues, DEFAULT_LABEL_CAP, OTHER};
pub use outcomes::{grpc_code_name, AckOutcome, BreakerCall, BreakerState};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use labels::*;

/// Content type of [`Metrics::encode`]'s output (OpenMetrics text 1.0.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, 0.5 ms to 30 s: the chain's hops are sub-millisecond on
/// loopback and seconds when a broker is slow, so both ends need resolution.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Debug)]
struct Inner {
    service: String,
    registry: Registry,
    routes: LabelValues,
    topics: LabelValues,
    queues: LabelValues,
    destinations: LabelValues,
    breakers: LabelValues,
    grpc_methods: LabelValues,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    http_in_flight: Gauge,
    hop_duration: HistogramFamily<HopLabels>,
    published: Family<TopicOutcomeLabels, Counter>,
    consumed: Family<TopicLabels, Counter>,
    offsets_committed: Family<TopicLabels, Counter>,
    republished: Family<TopicLabels, Counter>,
    amqp_acks: Family<QueueOutcomeLabels, Counter>,
    dead_lettered: Family<DeadLetterLabels, Counter>,
    breaker_state: Family<BreakerLabels, Gauge>,
    breaker_transitions: Family<TransitionLabels, Counter>,
    breaker_calls: Family<BreakerOutcomeLabels, Counter>,
    grpc_calls: Family<GrpcLabels, Counter>,
    jobs: Family<JobLabels, Counter>,
    spans_exported: Counter,
    spans_dropped: Family<SpanDropLabels, Counter>,
}

/// The metrics of one service: a Prometheus registry with the switchboard families.
///
/// Cheap to clone (an `Arc`); `Send + Sync`, so one instance is shared by every task and
/// thread of a process. Every helper is one call at the call site:
///
/// ```
/// use std::time::Duration;
/// use switchboard_telemetry::{BreakerState, Metrics};
///
/// let metrics = Metrics::builder("gateway")
///     .version(env!("CARGO_PKG_VERSION"))
///     .routes(["/messages", "/jobs", "/jobs/:id"])
///     .build();
///
/// metrics.http_request("/messages", "POST", 202, Duration::from_millis(3));
/// metrics.http_request("/wp-admin.php", "GET", 404, Duration::from_micros(80)); // route "other"
/// metrics.hop("rest_to_relay", Duration::from_millis(1));
/// metrics.published("requests", true);
/// metrics.breaker_transition("kafka", BreakerState::Closed, BreakerState::Open);
///
/// let text = metrics.encode();
/// assert!(text.contains(r#"http_requests_total{route="/messages",method="POST",status="202"} 1"#));
/// assert!(text.contains(r#"http_requests_total{route="other",method="GET",status="404"} 1"#));
/// assert!(text.contains(r#"breaker_state{breaker="kafka"} 1"#));
/// assert!(text.ends_with("# EOF\n"));
/// ```
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

type RegisterFn = Box<dyn FnOnce(&mut Registry)>;

/// Configures a [`Metrics`]; from [`Metrics::builder`].
#[derive(Debug)]
pub struct MetricsBuilder {
    service: String,
    version: String,
    routes: Option<Vec<String>>,
    label_cap: usize,
    extra: Extra,
}

/// The service's own registrations, run by `build`; Debug shows how many.
#[derive(Default)]
struct Extra(Vec<RegisterFn>);

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.len())
    }
}

impl MetricsBuilder {
    /// The `version` label of `build_info`; default this crate's version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The route templates (e.g. `/jobs/:id`) the `route` label may take; any other route is
    /// recorded as [`OTHER`]. Without this, routes are admitted up to the label cap.
    pub fn routes<I, S>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.routes = Some(routes.into_iter().map(Into::into).collect());
        self
    }

    /// How many distinct values each traffic-derived label admits before new values collapse
    /// to [`OTHER`]; default [`DEFAULT_LABEL_CAP`].
    pub fn label_cap(mut self, cap: usize) -> Self {
        self.label_cap = cap;
        self
    }

    /// Registers further service-specific metrics in the same registry, so they are served by
    /// the same `/metrics`.
    pub fn register(mut self, f: impl FnOnce(&mut Registry) + 'static) -> Self {
        self.extra.0.push(Box::new(f));
        self
    }

    /// Builds the registry and every family.
    pub fn build(self) -> Metrics {
        let mut registry = Registry::default();
        let cap = self.label_cap;
        let routes = match &self.routes {
            Some(list) => LabelValues::allow_list("route", list),
            None => LabelValues::capped("route", cap),
        };
        let inner = Inner {
            routes,
            topics: LabelValues::capped("topic", cap),
            queues: LabelValues::capped("queue", cap),
            destinations: LabelValues::capped("destination", cap),
            breakers: LabelValues::capped("breaker", cap),
            grpc_methods: LabelValues::capped("method", cap),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            http_in_flight: Gauge::default(),
            hop_duration: Family::new_with_constructor(latency_histogram),
            published: Family::default(),
            consumed: Family::default(),
            offsets_committed: Family::default(),
            republished: Family::default(),
            amqp_acks: Family::default(),
            dead_lettered: Family::default(),
            breaker_state: Family::default(),
            breaker_transitions: Family::default(),
            breaker_calls: Family::default(),
            grpc_calls: Family::default(),
            jobs: Family::default(),
            spans_exported: Counter::default(),
            spans_dropped: Family::default(),
            service: self.service,
            registry: Registry::default(),
        };
        let build_info =
            Info::new(vec![("version".to_owned(), self.version), ("service".to_owned(), inner.service.clone())]);
        let r = &mut registry;
        r.register("build", "Version and service of this process", build_info);
        r.register("http_requests", "HTTP requests answered", inner.http_requests.clone());
        r.register_with_unit(
            "http_request_duration",
            "HTTP request latency",
            Unit::Seconds,
            inner.http_duration.clone(),
        );
        r.register("http_requests_in_flight", "HTTP requests being served", inner.http_in_flight.clone());
        r.register_with_unit(
            "hop_duration",
            "Latency of one hop of the request chain",
            Unit::Seconds,
            inner.hop_duration.clone(),
        );
        r.register("messages_published", "Messages handed to a broker, by outcome", inner.published.clone());
        r.register("messages_consumed", "Messages received from a broker", inner.consumed.clone());
        r.register("offsets_committed", "Kafka offset commits", inner.offsets_committed.clone());
        r.register(
            "requests_republished",
            "Requests published a second time, to a partition that answers, because theirs had not",
            inner.republished.clone(),
        );
        r.register("amqp_acks", "AMQP deliveries settled, by outcome", inner.amqp_acks.clone());
        r.register("dead_lettered", "Messages sent to a dead-letter topic or queue", inner.dead_lettered.clone());
        r.register(
            "breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
            inner.breaker_state.clone(),
        );
        r.register("breaker_transitions", "Circuit breaker state changes", inner.breaker_transitions.clone());
        r.register("breaker_calls", "Calls through a circuit breaker, by outcome", inner.breaker_calls.clone());
        r.register("grpc_calls", "gRPC calls, by status code", inner.grpc_calls.clone());
        r.register("jobs", "Jobs, by status", inner.jobs.clone());
        r.register("otlp_spans_exported", "Trace spans accepted by the OTLP collector", inner.spans_exported.clone());
        r.register(
            "otlp_spans_dropped",
            "Trace spans dropped instead of waiting: queue full, collector failing, or backing off",
            inner.spans_dropped.clone(),
        );
        for f in self.extra.0 {
            f(r);
        }
        Metrics { inner: Arc::new(Inner { registry, ..inner }) }
    }
}

impl Metrics {
    /// Metrics of `service` with the defaults; see [`Metrics::builder`] for routes and caps.
    pub fn new(service: impl Into<String>) -> Self {
        Self::builder(service).build()
    }

    /// Starts configuring the metrics of `service` (the `service` label of `build_info`).
    pub fn builder(service: impl Into<String>) -> MetricsBuilder {
        MetricsBuilder {
            service: service.into(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            routes: None,
            label_cap: DEFAULT_LABEL_CAP,
            extra: Extra::default(),
        }
    }

    /// The service these metrics describe.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Counts an answered HTTP request and observes its latency. `route` is the template
    /// (`/jobs/:id`), never the raw path.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let route = self.inner.routes.admit(route);
        let labels = HttpLabels { route: route.clone(), method: method_label(method), status };
        self.inner.http_requests.get_or_create(&labels).inc();
        self.inner.http_duration.get_or_create(&RouteLabels { route }).observe(secs(elapsed));
    }

    /// Counts one request in flight until the returned guard is dropped.
    pub fn http_in_flight(&self) -> InFlight {
        self.inner.http_in_flight.inc();
        InFlight { gauge: self.inner.http_in_flight.clone() }
    }

    /// Observes the latency of one hop of the chain (`rest_to_relay`, `grpc_call`,
    /// `processor_publish`, `reply`, …).
    pub fn hop(&self, hop: &'static str, elapsed: Duration) {
        self.inner.hop_duration.get_or_create(&HopLabels { hop }).observe(secs(elapsed));
    }

    /// Counts a publish to `topic`: outcome `ok` if the broker accepted it, else `error`.
    pub fn published(&self, topic: &str, ok: bool) {
        let labels =
            TopicOutcomeLabels { topic: self.inner.topics.admit(topic), outcome: if ok { "ok" } else { "error" } };
        self.inner.published.get_or_create(&labels).inc();
    }

    /// Counts a message received from `topic`.
    pub fn consumed(&self, topic: &str) {
        let labels = TopicLabels { topic: self.inner.topics.admit(topic) };
        self.inner.consumed.get_or_create(&labels).inc();
    }

    /// Counts one offset commit on `topic`.
    pub fn offsets_committed(&self, topic: &str) {
        let labels = TopicLabels { topic: self.inner.topics.admit(topic) };
        self.inner.offsets_committed.get_or_create(&labels).inc();
    }

    /// Counts an AMQP delivery from `queue` settled with `outcome`.
    pub fn amqp_ack(&self, queue: &str, outcome: AckOutcome) {
        let labels = QueueOutcomeLabels { queue: self.inner.queues.admit(queue), outcome: outcome.as_str() };
        self.inner.amqp_acks.get_or_create(&labels).inc();
    }

    /// Counts a message sent to dead-letter `destination` because of `reason_kind` (an error
    /// kind such as `decode` or `too_many_retries`).
    pub fn dead_lettered(&self, destination: &str, reason_kind: &'static str) {
        let labels = DeadLetterLabels { destination: self.inner.destinations.admit(destination), reason_kind };
        self.inner.dead_lettered.get_or_create(&labels).inc();
    }

    /// Sets the `breaker_state` gauge of `breaker`, e.g. at start-up.
    pub fn breaker_state(&self, breaker: &str, state: BreakerState) {
        let labels = BreakerLabels { breaker: self.inner.breakers.admit(breaker) };
        self.inner.breaker_state.get_or_create(&labels).set(state.gauge_value());
    }

    /// Counts a transition of `breaker` and sets its state gauge to `to`.
    pub fn breaker_transition(&self, breaker: &str, from: BreakerState, to: BreakerState) {
        let breaker = self.inner.breakers.admit(breaker);
        let labels = TransitionLabels { breaker: breaker.clone(), from: from.as_str(), to: to.as_str() };
        self.inner.breaker_transitions.get_or_create(&labels).inc();
        self.inner.breaker_state.get_or_create(&BreakerLabels { breaker }).set(to.gauge_value());
    }

    /// Counts a call through `breaker` that ended with `outcome`.
    pub fn breaker_call(&self, breaker: &str, outcome: BreakerCall) {
        let labels = BreakerOutcomeLabels { breaker: self.inner.breakers.admit(breaker), outcome: outcome.as_str() };
        self.inner.breaker_calls.get_or_create(&labels).inc();
    }

    /// Counts a gRPC call to `method` (the full path, `/switchboard.v1.Processor/Process`)
    /// that ended with status `code` (grpcio's `RpcStatusCode` converts `into()` an `i32`).
    pub fn grpc_call(&self, method: &str, code: i32) {
        let labels = GrpcLabels { method: self.inner.grpc_methods.admit(method), code: grpc_code_name(code) };
        self.inner.grpc_calls.get_or_create(&labels).inc();
    }

    /// Counts a job reaching `status` (`accepted`, `succeeded`, `failed`, …).
    pub fn job(&self, status: &'static str) {
        self.inner.jobs.get_or_create(&JobLabels { status }).inc();
    }

    /// Counts `n` trace spans the OTLP collector accepted.
    pub fn spans_exported(&self, n: u64) {
        self.inner.spans_exported.inc_by(n);
    }

    /// Counts a request published a second time to `topic` (the gateway's second chance).
    pub fn republished(&self, topic: &str) {
        self.inner.republished.get_or_create(&TopicLabels { topic: self.inner.topics.admit(topic) }).inc();
    }

    /// Counts `n` trace spans dropped for `reason` (`queue_full`, `export_failed`, `backoff`, …).
    pub fn spans_dropped(&self, reason: &'static str, n: u64) {
        self.inner.spans_dropped.get_or_create(&SpanDropLabels { reason }).inc_by(n);
    }

    /// The registry in the OpenMetrics text format, ending with `# EOF`; serve it with
    /// [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail, and every registered metric encodes infallibly.
        if let Err(e) = encode(&mut out, &self.inner.registry) {
            log::error!("metrics encoding failed: {e}");
        }
        out
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Keeps `http_requests_in_flight` raised until dropped; from [`Metrics::http_in_flight`].
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when the guard is dropped"]
pub struct InFlight {
    gauge: Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, prefix: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
    }

    #[test]
    fn every_family_appears_with_its_labels_after_calls() {
        let m = Metrics::builder("relay").version("1.2.3").build();
        m.http_request("/messages", "post", 202, Duration::from_millis(2));
        let _guard = m.http_in_flight();
        m.hop("grpc_call", Duration::from_millis(4));
        m.published("requests", true);
        m.published("requests", false);
        m.consumed("requests");
        m.offsets_committed("requests");
        m.amqp_ack("jobs", AckOutcome::DeadLetter);
        m.dead_lettered("requests.dlq", "decode");
        m.breaker_call("processor", BreakerCall::Rejected);
        m.breaker_transition("processor", BreakerState::Open, BreakerState::HalfOpen);
        m.grpc_call("/switchboard.v1.Processor/Process", 14);
        m.job("succeeded");
        m.spans_exported(7);
        m.spans_dropped("queue_full", 2);
        let text = m.encode();
        for expected in [
            r#"build_info{version="1.2.3",service="relay"} 1"#,
            "otlp_spans_exported_total 7",
            r#"otlp_spans_dropped_total{reason="queue_full"} 2"#,
            r#"http_requests_total{route="/messages",method="POST",status="202"} 1"#,
            r#"http_request_duration_seconds_count{route="/messages"} 1"#,
            "http_requests_in_flight 1",
            r#"hop_duration_seconds_bucket{le="0.005",hop="grpc_call"} 1"#,
            r#"messages_published_total{topic="requests",outcome="ok"} 1"#,
            r#"messages_published_total{topic="requests",outcome="error"} 1"#,
            r#"messages_consumed_total{topic="requests"} 1"#,
            r#"offsets_committed_total{topic="requests"} 1"#,
            r#"amqp_acks_total{queue="jobs",outcome="dead_letter"} 1"#,
            r#"dead_lettered_total{destination="requests.dlq",reason_kind="decode"} 1"#,
            r#"breaker_calls_total{breaker="processor",outcome="rejected"} 1"#,
            r#"breaker_transitions_total{breaker="processor",from="open",to="half_open"} 1"#,
            r#"breaker_state{breaker="processor"} 2"#,
            r#"grpc_calls_total{method="/switchboard.v1.Processor/Process",code="UNAVAILABLE"} 1"#,
            r#"jobs_total{status="succeeded"} 1"#,
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(text.contains("# TYPE breaker_state gauge"));
        assert!(text.contains("# UNIT http_request_duration_seconds seconds"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn in_flight_guard_lowers_the_gauge_on_drop() {
        let m = Metrics::new("gateway");
        let a = m.http_in_flight();
        let b = m.http_in_flight();
        assert_eq!(line_value(&m.encode(), "http_requests_in_flight "), Some(2.0));
        drop(a);
        drop(b);
        assert_eq!(line_value(&m.encode(), "http_requests_in_flight "), Some(0.0));
    }

    #[test]
    fn unknown_routes_collapse_to_other() {
        let m = Metrics::builder("gateway").routes(["/messages"]).build();
        m.http_request("/messages", "GET", 200, Duration::ZERO);
        m.http_request("/messages/123", "GET", 404, Duration::ZERO);
        m.http_request("/etc/passwd", "BREW", 404, Duration::ZERO);
        let text = m.encode();
        assert!(text.contains(r#"http_requests_total{route="/messages",method="GET",status="200"} 1"#));
        assert!(text.contains(r#"http_requests_total{route="other",method="GET",status="404"} 1"#));
        assert!(text.contains(r#"http_requests_total{route="other",method="other",status="404"} 1"#));
        assert!(!text.contains("/etc/passwd"));
    }

    #[test]
    fn values_past_the_cap_collapse_to_other() {
        let m = Metrics::builder("relay").label_cap(2).build();
        for topic in ["a", "b", "c", "d", "a"] {
            m.consumed(topic);
        }
        let text = m.encode();
        assert_eq!(line_value(&text, r#"messages_consumed_total{topic="a"}"#), Some(2.0));
        assert_eq!(line_value(&text, r#"messages_consumed_total{topic="b"}"#), Some(1.0));
        assert_eq!(line_value(&text, r#"messages_consumed_total{topic="other"}"#), Some(2.0));
        assert!(!text.contains(r#"topic="c""#));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new("relay");
        m.consumed("evil\"}\nfake_metric 1");
        let text = m.encode();
        assert!(!text.lines().any(|l| l.starts_with("fake_metric")), "{text}");
    }

    #[test]
    fn metrics_are_shared_across_threads() {
        let m = Metrics::new("worker");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.amqp_ack("jobs", AckOutcome::Ack);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = m.encode();
        assert_eq!(line_value(&text, r#"amqp_acks_total{queue="jobs",outcome="ack"}"#), Some(4000.0));
    }

    #[test]
    fn extra_metrics_share_the_registry() {
        let pending: Gauge = Gauge::default();
        let g = pending.clone();
        let m = Metrics::builder("gateway")
            .register(move |r| r.register("replies_pending", "Requests awaiting a reply", g))
            .build();
        pending.set(7);
        assert_eq!(line_value(&m.encode(), "replies_pending "), Some(7.0));
    }
}

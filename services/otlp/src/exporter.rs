//! The exporter thread: a bounded queue in, batches of spans out over OTLP/HTTP (protobuf).
//!
//! Nothing here ever makes a service wait: services only `try_send` into the queue; the thread
//! alone talks to the collector, each request bounded by the timeout. A failed batch is dropped
//! and counted, and the thread backs off (1 s doubling to 30 s), dropping and counting what
//! arrives meanwhile rather than letting a dead collector pile spans up in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchboard_telemetry::Metrics;
use ureq::unversioned::transport::DefaultConnector;

use crate::config::{ConfigError, ExportConfig};
use crate::encode::{request, ServiceResource};
use crate::resolver::KeptResolver;
use crate::tracer::{Queued, Tracer};

/// First pause after a failed export; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest pause between two tries while the collector keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest sleep of the exporter thread between two looks at the queue.
const MAX_TICK: Duration = Duration::from_millis(50);
/// Most bytes of a collector's answer read (it is an empty message, or a short error).
const MAX_ANSWER: u64 = 64 * 1024;

/// The process's OTLP exporter: hands out a [`Tracer`] per service and runs the thread that
/// sends their spans. Off (no endpoint): its tracers are no-ops and no thread runs.
///
/// ```
/// use switchboard_otlp::{ExportConfig, Exporter};
/// use switchboard_telemetry::Metrics;
///
/// // No OTEL_EXPORTER_OTLP_ENDPOINT: nothing is recorded, nothing is sent.
/// let exporter = Exporter::start(ExportConfig::default()).unwrap();
/// let tracer = exporter.tracer("gateway", "1.0.0", &Metrics::new("gateway"));
/// assert!(!tracer.is_enabled());
/// exporter.shutdown();
/// ```
#[derive(Debug)]
pub struct Exporter {
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    queue: SyncSender<Queued>,
    config: ExportConfig,
    instance: String,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Exporter {
    /// Starts the exporter thread if `config` names an endpoint; otherwise an exporter that is
    /// off. Fails on a CA file that cannot be read.
    pub fn start(config: ExportConfig) -> Result<Exporter, ConfigError> {
        let Some(endpoint) = config.endpoint.clone() else { return Ok(Exporter { running: None }) };
        let client = Client::new(&endpoint, &config)?;
        let (queue, rx) = sync_channel(config.max_queue);
        let stop = Arc::new(AtomicBool::new(false));
        let batcher = Batcher { rx, client, max_batch: config.max_batch, delay: config.delay, stop: stop.clone() };
        let thread = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || batcher.run())
            .map_err(|e| ConfigError(format!("cannot start the OTLP exporter thread: {e}")))?;
        log::info!("exporting trace spans to {} ({:?})", redact(&endpoint), config.policy);
        let instance = uuid::Uuid::new_v4().to_string();
        Ok(Exporter { running: Some(Running { queue, config, instance, stop, thread: Mutex::new(Some(thread)) }) })
    }

    /// [`start`](Self::start) with [`ExportConfig::from_env`]: the OpenTelemetry variables.
    pub fn from_env() -> Result<Exporter, ConfigError> {
        Self::start(ExportConfig::from_env()?)
    }

    /// An exporter that is off.
    pub fn disabled() -> Exporter {
        Exporter { running: None }
    }

    /// Whether spans are exported.
    pub fn is_enabled(&self) -> bool {
        self.running.is_some()
    }

    /// The tracer of `service` (its `service.name`, unless `OTEL_SERVICE_NAME` names the
    /// process) at `version`, counting exported and dropped spans in `metrics`.
    pub fn tracer(&self, service: &str, version: &str, metrics: &Metrics) -> Tracer {
        let Some(r) = &self.running else { return Tracer::default() };
        let name = r.config.service_name.as_deref().unwrap_or(service);
        self.tracer_named(name, version, metrics)
    }

    /// The tracer of one of several services in this process: `service` is its `service.name`
    /// whatever `OTEL_SERVICE_NAME` says (the all-in-one keeps gateway, relay and processor
    /// apart in the trace viewer).
    pub fn tracer_named(&self, service: &str, version: &str, metrics: &Metrics) -> Tracer {
        let Some(r) = &self.running else { return Tracer::default() };
        let resource = ServiceResource::new(service, &r.instance, version, &r.config.resource, metrics.clone());
        Tracer::new(Arc::new(resource), r.queue.clone(), r.config.policy)
    }

    /// Sends what is queued (one last try, bounded by the timeout) and stops the thread.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let Some(r) = &self.running else { return };
        r.stop.store(true, Ordering::Release);
        let thread = r.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(thread) = thread {
            // It notices the flag within one batch delay.
            if thread.join().is_err() {
                log::warn!("the OTLP exporter thread panicked");
            }
        }
    }
}

/// The endpoint without any user:password part, for the log.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_and_path = rest.split_once('@').filter(|(user, _)| !user.contains('/')).map_or(rest, |(_, r)| r);
            format!("{scheme}://{host_and_path}")
        }
        None => url.to_owned(),
    }
}

struct Batcher {
    rx: Receiver<Queued>,
    client: Client,
    max_batch: usize,
    delay: Duration,
    stop: Arc<AtomicBool>,
}

impl Batcher {
    fn run(self) {
        // The thread wakes on a tick and drains the queue, never once per span: a span handed
        // over costs the chain's thread a push, not a wake-up of this one.
        let tick = self.delay.min(MAX_TICK);
        let mut batch: Vec<Queued> = Vec::with_capacity(self.max_batch);
        let mut due: Option<Instant> = None;
        let mut backoff = Backoff::default();
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            if !stopping {
                std::thread::sleep(tick);
            }
            let mut disconnected = false;
            loop {
                match self.rx.try_recv() {
                    Ok(q) => {
                        if backoff.active() {
                            q.service.metrics().spans_dropped("backoff", 1);
                            continue;
                        }
                        batch.push(q);
                        due.get_or_insert_with(|| Instant::now() + self.delay);
                        if batch.len() >= self.max_batch {
                            self.send(std::mem::take(&mut batch), &mut backoff);
                            due = None;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            let finishing = stopping || disconnected;
            if !batch.is_empty() && (finishing || due.is_some_and(|d| Instant::now() >= d)) {
                self.send(std::mem::take(&mut batch), &mut backoff);
                due = None;
            }
            if finishing {
                return;
            }
        }
    }

    fn send(&self, batch: Vec<Queued>, backoff: &mut Backoff) {
        let (body, counts) = request(batch);
        match self.client.post(body) {
            Ok(()) => {
                for (service, n) in counts {
                    service.metrics().spans_exported(n);
                }
                backoff.succeeded();
            }
            Err(e) => {
                for (service, n) in counts {
                    service.metrics().spans_dropped("export_failed", n);
                }
                backoff.failed(&e);
            }
        }
    }
}

/// When the next export may be tried, after failures.
#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
    pause: Duration,
}

impl Backoff {
    fn active(&mut self) -> bool {
        match self.until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                self.until = None;
                false
            }
            None => false,
        }
    }

    fn failed(&mut self, why: &str) {
        if self.pause.is_zero() {
            log::warn!("trace export failing, dropping spans until the collector answers: {why}");
        }
        self.pause = if self.pause.is_zero() { FIRST_BACKOFF } else { (self.pause * 2).min(MAX_BACKOFF) };
        self.until = Some(Instant::now() + self.pause);
    }

    fn succeeded(&mut self) {
        if !self.pause.is_zero() {
            log::info!("trace export recovered");
        }
        self.pause = Duration::ZERO;
        self.until = None;
    }
}

/// One HTTP/1.1 connection's worth of client, reused between batches.
struct Client {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
}

impl Client {
    fn new(url: &str, config: &ExportConfig) -> Result<Self, ConfigError> {
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            // Deterministic: the endpoint is reached directly, whatever *_PROXY variables say.
            .proxy(None)
            .user_agent(concat!("switchboard-otlp/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.certificate {
            builder = builder.tls_config(tls_with_ca(path)?);
        }
        // The collector's address is looked up every 30 s (resolver::KEEP), not before each batch.
        let agent = ureq::Agent::with_parts(builder.build(), DefaultConnector::new(), KeptResolver::default());
        Ok(Client { agent, url: url.to_owned(), headers: config.headers.clone() })
    }

    /// POSTs one request; `Err` says why it was not accepted (never a header value).
    fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let mut req = self.agent.post(&self.url).header("content-type", "application/x-protobuf");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = req.send(&body[..]).map_err(|e| e.to_string())?;
        let status = resp.status();
        // Read the (small) answer so the connection can carry the next batch.
        let _ = resp.body_mut().with_config().limit(MAX_ANSWER).read_to_vec();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    }
}

fn tls_with_ca(path: &std::path::Path) -> Result<ureq::tls::TlsConfig, ConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConfigError(format!("OTEL_EXPORTER_OTLP_CERTIFICATE {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError(format!("OTEL_EXPORTER_OTLP_CERTIFICATE {}: no certificate", path.display())));
    }
    let certs = certs.into_iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
    Ok(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs))).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_endpoint_has_no_credentials() {
        assert_eq!(redact("https://user:pw@collector:4318/v1/traces"), "https://collector:4318/v1/traces");
        assert_eq!(redact("http://127.0.0.1:4318/v1/traces"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(redact("http://h/p@q"), "http://h/p@q");
    }
}

#[cfg(test)]
mod dead_collector {
    use std::net::TcpListener;

    use switchboard_telemetry::TraceContext;

    use super::*;
    use crate::span::{Kind, Span};

    fn counted(metrics: &Metrics, prefix: &str) -> u64 {
        metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    fn export_through(endpoint: String) {
        let config = ExportConfig {
            endpoint: Some(endpoint),
            timeout: Duration::from_millis(300),
            max_queue: 64,
            max_batch: 16,
            delay: Duration::from_millis(5),
            ..ExportConfig::default()
        };
        let metrics = Metrics::new("gateway");
        let exporter = Exporter::start(config).unwrap();
        let tracer = exporter.tracer("gateway", "1", &metrics);
        let ctx = TraceContext::new();
        let sent = 5_000u64;
        // Every call returns at once: the collector never answering costs the caller nothing
        // but a dropped span (a blocking export would hang this loop).
        for i in 0..sent {
            tracer.export([Span::new(&ctx.child(), Some(ctx.span_id()), Kind::Internal, "hop", i, i + 1)]);
        }
        exporter.shutdown();
        assert_eq!(counted(&metrics, "otlp_spans_exported_total"), 0);
        let dropped = counted(&metrics, "otlp_spans_dropped_total");
        assert_eq!(dropped, sent, "{}", metrics.encode());
        assert!(counted(&metrics, r#"otlp_spans_dropped_total{reason="export_failed"}"#) >= 1);
    }

    #[test]
    fn a_refusing_collector_drops_and_counts_every_span() {
        // A port just released: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        export_through(format!("http://127.0.0.1:{port}/v1/traces"));
    }

    #[test]
    fn a_collector_that_never_answers_drops_and_counts_every_span() {
        // Accepts connections (the kernel's backlog) but never reads nor answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        export_through(format!("http://{}/v1/traces", silent.local_addr().unwrap()));
        drop(silent);
    }
}

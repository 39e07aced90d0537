//! The services view: every instance's `/readyz` and `/metrics` scraped each tick with a
//! bounded timeout, turned into rates (see `rates`), and a bounded history per service for
//! the metrics charts.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

use crate::client::ScrapeClient;
use crate::rates::{self, Delta, Snapshot};

/// One instance to scrape: the service it belongs to and its HTTP address (a gateway's own
/// port, or another service's admin port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The service name (`gateway`, `relay`, `processor`, `worker`, or any other).
    pub service: String,
    /// `host:port` serving `/readyz` and `/metrics`.
    pub addr: String,
    /// Scraped over HTTPS (the target was given as `name=https://host:port`).
    pub https: bool,
}

impl Target {
    /// The address as shown and in errors: `https://host:port` for HTTPS, `host:port` else.
    pub fn shown(&self) -> String {
        if self.https {
            format!("https://{}", self.addr)
        } else {
            self.addr.clone()
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    /// `name=host:port` (HTTP), `name=http://host:port` or `name=https://host:port`.
    fn from_str(s: &str) -> Result<Self, String> {
        let expected = || format!("{s:?}: expected NAME=HOST:PORT or NAME=https://HOST:PORT");
        let (service, addr) = s.split_once('=').ok_or_else(expected)?;
        let (service, addr) = (service.trim(), addr.trim());
        let (https, addr) = match addr.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some(_) => return Err(expected()),
            None => (false, addr),
        };
        // A trailing '/' is tolerated; any other path is not: the paths scraped are fixed.
        let addr = addr.strip_suffix('/').unwrap_or(addr);
        let port_ok = addr.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains(['/', '@', '?', '#']) && port.parse::<u16>().is_ok()
        });
        if service.is_empty() || !port_ok {
            return Err(expected());
        }
        Ok(Target { service: service.to_owned(), addr: addr.to_owned(), https })
    }
}

/// One instance as the overview shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InstanceView {
    pub addr: String,
    pub admin: String,
    pub up: bool,
    pub ready: bool,
    #[serde(flatten)]
    pub rates: Rates,
    pub breakers: Vec<BreakerView>,
    /// Why the last scrape failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BreakerView {
    pub name: String,
    pub state: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceView {
    pub name: String,
    pub instances: Vec<InstanceView>,
}

/// One point of a service's history.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Point {
    pub t_unix_ms: u64,
    #[serde(flatten)]
    pub rates: Rates,
}

/// Throughput, errors and latency over one tick (zero and none before two scrapes).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Rates {
    pub rps: f64,
    pub error_pct: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl From<&Delta> for Rates {
    fn from(d: &Delta) -> Self {
        Rates { rps: d.rps(), error_pct: d.error_pct(), p50_ms: d.quantile_ms(0.5), p99_ms: d.quantile_ms(0.99) }
    }
}

struct Instance {
    target: Target,
    last: Option<(Instant, Snapshot)>,
    view: InstanceView,
}

struct State {
    instances: Vec<Instance>,
    /// Per service, in target order: its points, oldest first.
    history: Vec<(String, VecDeque<Point>)>,
}

/// The scraped state of every target.
pub(crate) struct Scraper {
    client: ScrapeClient,
    timeout: Duration,
    max_points: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for Scraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scraper").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Scraper {
    /// Scrapes `targets` through `client` within `timeout` each, keeping `max_points` points
    /// per service.
    pub(crate) fn new(targets: Vec<Target>, client: ScrapeClient, timeout: Duration, max_points: usize) -> Self {
        let mut history: Vec<(String, VecDeque<Point>)> = Vec::new();
        for t in &targets {
            if !history.iter().any(|(name, _)| *name == t.service) {
                history.push((t.service.clone(), VecDeque::new()));
            }
        }
        let instances = targets
            .into_iter()
            .map(|target| Instance {
                view: InstanceView {
                    addr: target.shown(),
                    admin: target.shown(),
                    up: false,
                    ready: false,
                    rates: Rates::default(),
                    breakers: Vec::new(),
                    error: Some("not scraped yet".into()),
                },
                target,
                last: None,
            })
            .collect();
        Scraper { client, timeout, max_points: max_points.max(1), state: Mutex::new(State { instances, history }) }
    }

    /// Scrapes every target at once and records the tick.
    pub(crate) async fn tick(&self) {
        let targets: Vec<Target> = self.state.lock().instances.iter().map(|i| i.target.clone()).collect();
        let timeout = self.timeout;
        let scrapes: Vec<_> =
            targets.into_iter().map(|t| smol::spawn(scrape(self.client.clone(), t, timeout))).collect();
        let mut results = Vec::with_capacity(scrapes.len());
        for s in scrapes {
            results.push(s.await);
        }
        self.record(results, Instant::now(), unix_ms());
    }

    fn record(&self, results: Vec<Scraped>, now: Instant, t_unix_ms: u64) {
        let mut state = self.state.lock();
        let mut per_service: Vec<(String, Option<Delta>)> =
            state.history.iter().map(|(name, _)| (name.clone(), None)).collect();
        for (instance, scraped) in state.instances.iter_mut().zip(results) {
            let view = &mut instance.view;
            view.up = scraped.up;
            view.ready = scraped.ready;
            view.error = scraped.error;
            let Some(snapshot) = scraped.snapshot else {
                view.rates = Rates::default();
                instance.last = None;
                continue;
            };
            view.breakers =
                snapshot.breakers.iter().map(|(name, state)| BreakerView { name: name.clone(), state }).collect();
            if let Some((at, before)) = &instance.last {
                let d = rates::delta(before, &snapshot, now.duration_since(*at).as_secs_f64());
                view.rates = Rates::from(&d);
                if let Some((_, merged)) = per_service.iter_mut().find(|(name, _)| *name == instance.target.service) {
                    match merged {
                        Some(m) => m.merge(&d),
                        None => *merged = Some(d),
                    }
                }
            }
            instance.last = Some((now, snapshot));
        }
        let max_points = self.max_points;
        for ((_, points), (_, delta)) in state.history.iter_mut().zip(per_service) {
            let d = delta.unwrap_or_default();
            points.push_back(Point { t_unix_ms, rates: Rates::from(&d) });
            while points.len() > max_points {
                points.pop_front();
            }
        }
    }

    /// Every service with its instances, in target order.
    pub(crate) fn services(&self) -> Vec<ServiceView> {
        let state = self.state.lock();
        state
            .history
            .iter()
            .map(|(name, _)| ServiceView {
                name: name.clone(),
                instances: state
                    .instances
                    .iter()
                    .filter(|i| i.target.service == *name)
                    .map(|i| i.view.clone())
                    .collect(),
            })
            .collect()
    }

    /// Each service's points of the last `minutes`.
    pub(crate) fn history(&self, minutes: u64) -> Vec<(String, Vec<Point>)> {
        let since = unix_ms().saturating_sub(minutes.saturating_mul(60_000));
        let state = self.state.lock();
        state
            .history
            .iter()
            .map(|(name, points)| (name.clone(), points.iter().filter(|p| p.t_unix_ms >= since).copied().collect()))
            .collect()
    }
}

/// One target's scrape.
struct Scraped {
    up: bool,
    ready: bool,
    snapshot: Option<Snapshot>,
    error: Option<String>,
}

async fn scrape(client: ScrapeClient, target: Target, timeout: Duration) -> Scraped {
    let (ready, metrics) =
        futures_lite::future::zip(client.get(&target, "/readyz", timeout), client.get(&target, "/metrics", timeout))
            .await;
    let up = ready.is_ok() || metrics.is_ok();
    let is_ready = ready.as_ref().is_ok_and(|a| a.status == 200);
    match metrics {
        Ok(answer) if answer.status == 200 => Scraped {
            up,
            ready: is_ready,
            snapshot: Some(rates::snapshot(&target.service, &crate::promtext::parse(&answer.body))),
            error: ready.err(),
        },
        Ok(answer) => Scraped {
            up,
            ready: is_ready,
            snapshot: None,
            error: Some(format!("GET /metrics answered {}", answer.status)),
        },
        Err(e) => Scraped { up, ready: is_ready, snapshot: None, error: Some(e) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_name_equals_address() {
        let t: Target = "relay=127.0.0.1:9101".parse().unwrap();
        assert_eq!((t.service.as_str(), t.addr.as_str()), ("relay", "127.0.0.1:9101"));
        assert!("relay".parse::<Target>().is_err());
        assert!("=127.0.0.1:1".parse::<Target>().is_err());
        assert!("relay=127.0.0.1".parse::<Target>().is_err());
        assert!("relay=host:99999".parse::<Target>().is_err());
        assert!("gw=[::1]:8080".parse::<Target>().is_ok());
        assert!(!t.https);
        let t: Target = "gateway=https://localhost:8443".parse().unwrap();
        assert_eq!((t.addr.as_str(), t.https, t.shown().as_str()), ("localhost:8443", true, "https://localhost:8443"));
        let t: Target = "gateway=http://127.0.0.1:8080/".parse().unwrap();
        assert_eq!((t.addr.as_str(), t.https), ("127.0.0.1:8080", false));
        assert!("gateway=ftp://h:1".parse::<Target>().is_err());
        assert!("gateway=https://h:1/metrics".parse::<Target>().is_err());
        assert!("gateway=https://user@h:1".parse::<Target>().is_err());
        assert!("gateway=https://:1".parse::<Target>().is_err());
    }

    fn ok(requests: f64) -> Scraped {
        Scraped {
            up: true,
            ready: true,
            snapshot: Some(Snapshot {
                requests,
                errors: 0.0,
                buckets: vec![(f64::INFINITY, requests)],
                breakers: vec![],
            }),
            error: None,
        }
    }

    #[test]
    fn history_keeps_the_last_points_and_merges_instances() {
        let targets = vec!["gateway=a:1".parse().unwrap(), "gateway=b:1".parse().unwrap()];
        let scraper = Scraper::new(targets, ScrapeClient::load(None, None).unwrap(), Duration::from_secs(1), 3);
        let start = Instant::now();
        for tick in 0..5u32 {
            let n = f64::from(tick) * 10.0;
            scraper.record(vec![ok(n), ok(n)], start + Duration::from_secs(u64::from(tick)), 1000 * u64::from(tick));
        }
        let services = scraper.services();
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].instances.len(), 2);
        assert_eq!(services[0].instances[0].rates.rps, 10.0);
        let state = scraper.state.lock();
        let points: Vec<(u64, f64)> = state.history[0].1.iter().map(|p| (p.t_unix_ms, p.rates.rps)).collect();
        assert_eq!(points, [(2000, 20.0), (3000, 20.0), (4000, 20.0)]);
    }

    #[test]
    fn a_target_that_stops_answering_is_down_with_the_reason() {
        let scraper = Scraper::new(
            vec!["relay=a:1".parse().unwrap()],
            ScrapeClient::load(None, None).unwrap(),
            Duration::from_secs(1),
            10,
        );
        scraper.record(vec![ok(5.0)], Instant::now(), 1);
        let gone = Scraped { up: false, ready: false, snapshot: None, error: Some("connect a:1: refused".into()) };
        scraper.record(vec![gone], Instant::now(), 2);
        let view = &scraper.services()[0].instances[0];
        assert!(!view.up && !view.ready);
        assert_eq!(view.error.as_deref(), Some("connect a:1: refused"));
    }
}

use std::time::Duration;

use super::*;
use crate::promtext::parse;
use switchboard_telemetry::{BreakerState, Metrics};

fn gateway_after(ok: u32, failed: u32, millis: u64) -> Snapshot {
    let metrics = Metrics::builder("gateway").routes(["/messages", "/healthz"]).build();
    for _ in 0..ok {
        metrics.http_request("/messages", "POST", 200, Duration::from_millis(millis));
    }
    for _ in 0..failed {
        metrics.http_request("/messages", "POST", 503, Duration::from_millis(millis));
    }
    // Probes are not traffic.
    metrics.http_request("/healthz", "GET", 200, Duration::from_secs(1));
    metrics.breaker_state("gateway_publish", BreakerState::HalfOpen);
    snapshot("gateway", &parse(&metrics.encode()))
}

#[test]
fn the_gateway_counts_its_api_requests_and_5xx_from_real_output() {
    let s = gateway_after(90, 10, 2);
    assert_eq!((s.requests, s.errors), (100.0, 10.0));
    assert_eq!(s.breakers, [("gateway_publish".to_owned(), "half_open")]);
    assert_eq!(s.buckets.last().map(|b| b.1), Some(100.0));
}

#[test]
fn rates_and_percentiles_come_from_the_difference_of_two_scrapes() {
    let before = Snapshot {
        requests: 100.0,
        errors: 1.0,
        buckets: vec![(0.001, 50.0), (0.01, 100.0), (f64::INFINITY, 100.0)],
        breakers: vec![],
    };
    let now = Snapshot {
        requests: 300.0,
        errors: 11.0,
        buckets: vec![(0.001, 50.0), (0.01, 300.0), (f64::INFINITY, 300.0)],
        breakers: vec![],
    };
    let d = delta(&before, &now, 2.0);
    assert_eq!(d.rps(), 100.0);
    assert_eq!(d.error_pct(), 5.0);
    // All 200 new observations are in (1 ms, 10 ms]: the median is half way.
    assert!((d.quantile_ms(0.5).unwrap() - 5.5).abs() < 1e-9);
    assert!((d.quantile_ms(0.99).unwrap() - 9.91).abs() < 1e-9);
}

#[test]
fn no_traffic_has_no_percentiles_and_no_errors() {
    let s = gateway_after(3, 0, 2);
    let d = delta(&s, &s, 1.0);
    assert_eq!((d.rps(), d.error_pct(), d.quantile_ms(0.5)), (0.0, 0.0, None));
}

#[test]
fn a_restarted_instance_counts_from_zero() {
    let before = Snapshot { requests: 1000.0, errors: 5.0, buckets: vec![(f64::INFINITY, 1000.0)], breakers: vec![] };
    let now = Snapshot { requests: 10.0, errors: 1.0, buckets: vec![(f64::INFINITY, 10.0)], breakers: vec![] };
    let d = delta(&before, &now, 1.0);
    assert_eq!((d.requests, d.errors), (10.0, 1.0));
    assert_eq!(d.buckets, [(f64::INFINITY, 10.0)]);
}

#[test]
fn beyond_the_last_bound_the_bound_is_reported() {
    let d = Delta { seconds: 1.0, requests: 4.0, errors: 0.0, buckets: vec![(0.5, 1.0), (f64::INFINITY, 4.0)] };
    assert_eq!(d.quantile_ms(0.99), Some(500.0));
}

#[test]
fn instances_of_a_service_merge() {
    let mut a = Delta { seconds: 1.0, requests: 10.0, errors: 1.0, buckets: vec![(0.01, 10.0), (f64::INFINITY, 10.0)] };
    let b = Delta { seconds: 1.0, requests: 30.0, errors: 1.0, buckets: vec![(0.01, 30.0), (f64::INFINITY, 30.0)] };
    a.merge(&b);
    assert_eq!((a.rps(), a.error_pct()), (40.0, 5.0));
    assert_eq!(a.buckets, [(0.01, 40.0), (f64::INFINITY, 40.0)]);
}

#[test]
fn the_relay_processor_and_worker_read_their_own_metrics() {
    let metrics = Metrics::new("relay");
    metrics.hop("relay_grpc_call", Duration::from_millis(1));
    metrics.hop("relay_grpc_call", Duration::from_millis(1));
    metrics.grpc_call("Process", 0);
    metrics.grpc_call("Process", 14);
    metrics.job("running");
    metrics.job("failed");
    metrics.breaker_state("relay_processor", BreakerState::Open);
    metrics.breaker_state("worker_processor", BreakerState::Closed);
    let samples = parse(&metrics.encode());
    let relay = snapshot("relay", &samples);
    assert_eq!((relay.requests, relay.errors), (2.0, 1.0));
    assert_eq!(relay.breakers, [("relay_processor".to_owned(), "open")]);
    let processor = snapshot("processor", &samples);
    assert_eq!((processor.requests, processor.errors), (2.0, 1.0));
    let worker = snapshot("worker", &samples);
    assert_eq!((worker.requests, worker.errors), (1.0, 1.0));
    assert_eq!(worker.breakers, [("worker_processor".to_owned(), "closed")]);
    // A service of another name shows every breaker.
    assert_eq!(snapshot("edge", &samples).breakers.len(), 2);
}

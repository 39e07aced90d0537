//! The harness against the real chain on the embedded broker (short runs: these check that the
//! harness measures what it claims, not how fast the chain is).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use switchboard::{Chain, ChainConfig};
use switchboard_bench::{run_embedded, run_phase, run_verify, EmbeddedConfig, HttpTarget, Mode, Phase, VerifyConfig};
use switchboard_embedded::pubsub::MemoryBroker;

fn phase(mode: Mode) -> Phase {
    Phase { name: "test".into(), mode, warmup: Duration::from_millis(100), duration: Duration::from_millis(400) }
}

async fn chain() -> Chain {
    let mut c = ChainConfig::default();
    c.gateway.addr = "127.0.0.1:0".parse().unwrap();
    c.processor.addr = "127.0.0.1:0".parse().unwrap();
    let broker = MemoryBroker::new();
    Chain::start(c, Arc::new(broker.clone()), Arc::new(broker)).await.expect("chain starts")
}

#[test]
fn closed_loop_against_the_chain_completes_requests_without_errors() {
    smol::block_on(async {
        let chain = chain().await;
        let target = HttpTarget::post_messages(&format!("http://{}", chain.gateway_addr()), 32).unwrap();
        let r = run_phase(&phase(Mode::Closed { concurrency: 4 }), |_| target.worker()).await;
        assert!(r.ok > 10, "{r:?}");
        assert_eq!(r.error_count(), 0, "{r:?}");
        assert!(r.latency.p50 > Duration::ZERO && r.latency.p50 <= r.latency.p99 && r.latency.p99 <= r.latency.max);
        assert_eq!(chain.pending_requests(), 0, "every request got its reply");
        chain.stop().await;
    });
}

#[test]
fn open_loop_against_the_chain_holds_a_modest_rate() {
    smol::block_on(async {
        let chain = chain().await;
        let target = HttpTarget::post_messages(&format!("http://{}/messages", chain.gateway_addr()), 8).unwrap();
        let r = run_phase(&phase(Mode::Open { rate: 100.0, connections: 4 }), |_| target.worker()).await;
        assert_eq!(r.error_count(), 0, "{r:?}");
        assert!((60.0..=110.0).contains(&r.throughput), "about 100/s: {r:?}");
        assert!(r.send_lag_p99.is_some());
        chain.stop().await;
    });
}

#[test]
fn a_refused_connection_is_counted_as_an_io_error() {
    let unused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = HttpTarget::post_messages(&format!("http://{unused}"), 8).unwrap();
    let r = smol::block_on(run_phase(&phase(Mode::Closed { concurrency: 2 }), |_| target.worker()));
    assert_eq!(r.ok, 0);
    assert!(r.errors.get("io").copied().unwrap_or(0) > 0, "{r:?}");
}

#[test]
fn oversized_messages_show_up_as_errors_by_status() {
    smol::block_on(async {
        let chain = chain().await;
        // The gateway refuses bodies over 64 KiB with 413.
        let target = HttpTarget::post_messages(&format!("http://{}", chain.gateway_addr()), 70 * 1024).unwrap();
        let r = run_phase(&phase(Mode::Closed { concurrency: 1 }), |_| target.worker()).await;
        assert_eq!(r.ok, 0, "{r:?}");
        assert!(r.errors.get("http 413").copied().unwrap_or(0) > 0, "{r:?}");
        chain.stop().await;
    });
}

#[test]
fn the_embedded_run_measures_the_chain_and_every_floor() {
    let config = EmbeddedConfig {
        concurrency: 4,
        rate: Some(100.0),
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(300),
        message_size: 16,
    };
    let r = smol::block_on(run_embedded(config)).expect("embedded run");
    let phases = r.phases();
    for p in phases {
        assert!(p.ok > 0, "{p:?}");
        assert_eq!(p.error_count(), 0, "{p:?}");
    }
    // A chain transaction contains an HTTP round trip, a gRPC call and broker hops, so it cannot
    // beat any of those floors alone: a floor phase that measured something else fails here.
    assert!(r.chain_single.latency.p50 > r.http_single.latency.p50, "{r:?}");
    assert!(r.chain_single.latency.p50 > r.grpc_single.latency.p50, "{r:?}");
    assert!(r.chain_single.latency.p50 > r.broker_single.latency.p50, "{r:?}");
    assert!(r.single_ratio().is_finite() && r.single_ratio() > 0.0);
    assert!(r.envelope_bytes > 16);
}

#[test]
fn a_verified_run_against_the_chain_gets_every_reply_for_its_own_token() {
    smol::block_on(async {
        let chain = chain().await;
        let target = HttpTarget::post_messages(&format!("http://{}/messages", chain.gateway_addr()), 48).unwrap();
        let config = VerifyConfig {
            requests: 300,
            rate: 600.0,
            connections: 16,
            deadline: Duration::from_secs(5),
            margin: Duration::from_secs(2),
            message_size: 48,
            progress: None,
        };
        let r = run_verify(&target, &config).await;
        assert_eq!((r.sent, r.ok), (300, 300), "{}: {:?}", r.summary_line(), r.examples);
        assert!(r.passed(), "{}", r.summary_line());
        assert!(r.latency.p50 > Duration::ZERO);
        chain.stop().await;
    });
}

#[test]
fn a_verified_run_with_no_gateway_counts_every_request_as_a_fast_connection_error() {
    let unused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = HttpTarget::post_messages(&format!("http://{unused}"), 8).unwrap();
    let config = VerifyConfig {
        requests: 20,
        rate: 1000.0,
        connections: 4,
        deadline: Duration::from_millis(200),
        margin: Duration::from_millis(100),
        message_size: 8,
        progress: None,
    };
    let r = smol::block_on(run_verify(&target, &config));
    // Refused at once: a connection error (the gateway is gone), not a reply the chain lost.
    assert_eq!((r.sent, r.conn_errors, r.lost, r.ok), (20, 20, 0, 0), "{}", r.summary_line());
    assert!(r.conn_error_max < config.deadline, "refused connections fail fast: {:?}", r.conn_error_max);
    assert!(!r.passed(), "a run with connection errors does not pass");
}

//! The services view scrapes a real admin server (the one every service runs) and a gateway
//! over HTTPS with a token-protected /metrics, and the brokers view reads the embedded brokers
//! through their inspection ports.

mod support;

use std::sync::Arc;
use std::time::Duration;

use switchboard_console::{ConsoleConfig, Sources, Watched};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_embedded::queue::MemoryWorkQueue;
use switchboard_ports::{Fanout, Message, Publisher, QueueOptions, Subscriber, TopicAdmin, WorkQueue};
use switchboard_proto::{JobEvent, JobStatus, ProtoMessage};
use switchboard_service::AdminServer;
use switchboard_telemetry::{BreakerState, Metrics, Readiness};

use support::*;

/// Polls the overview until `ready` holds for it.
async fn overview_until(addr: std::net::SocketAddr, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    loop {
        let overview = get(addr, "/api/overview", &[]).await.json();
        if ready(&overview) {
            return overview;
        }
        async_io::Timer::after(Duration::from_millis(100)).await;
    }
}

#[test]
fn an_instance_shows_up_ready_with_its_breaker_and_rate() {
    run(async {
        let metrics = Metrics::new("relay");
        metrics.breaker_state("relay_processor", BreakerState::Open);
        let admin = AdminServer::bind("127.0.0.1:0", metrics.clone(), Readiness::new()).await.unwrap();
        let admin_addr = admin.local_addr();
        smol::spawn(admin.run(futures_lite::future::pending())).detach();
        let config = ConsoleConfig {
            targets: vec![format!("relay={admin_addr}").parse().unwrap(), "relay=127.0.0.1:1".parse().unwrap()],
            ..ConsoleConfig::default()
        };
        let addr = start(config, Sources::default()).await;
        let overview = overview_until(addr, |o| o["services"][0]["instances"][0]["up"] == true).await;
        let relay = &overview["services"][0];
        assert_eq!(relay["name"], "relay");
        let instance = &relay["instances"][0];
        assert_eq!(instance["ready"], true);
        assert_eq!(instance["breakers"], serde_json::json!([{"name": "relay_processor", "state": "open"}]));
        let dead = &relay["instances"][1];
        assert_eq!((dead["up"].as_bool(), dead["ready"].as_bool()), (Some(false), Some(false)));
        // Calls made between two scrapes show as a rate and latency.
        for _ in 0..50 {
            metrics.hop("relay_grpc_call", Duration::from_millis(2));
        }
        let overview = overview_until(addr, |o| o["services"][0]["instances"][0]["rps"].as_f64() > Some(0.0)).await;
        let p50 = overview["services"][0]["instances"][0]["p50_ms"].as_f64().expect("a median");
        assert!(p50 > 0.0 && p50 <= 2.5, "the 2 ms calls fall in the (1 ms, 2.5 ms] bucket: {p50}");
        let history = get(addr, "/api/metrics?minutes=1", &[]).await.json();
        assert_eq!(history["services"][0]["name"], "relay");
        assert!(history["services"][0]["points"].as_array().is_some_and(|p| !p.is_empty()));
    });
}

#[test]
fn lag_and_depths_of_the_embedded_brokers_show_on_the_overview() {
    run(async {
        let broker = MemoryBroker::new();
        let queue = MemoryWorkQueue::new();
        broker.ensure_topic("requests", 2).await.unwrap();
        broker.ensure_topic("requests.dlq", 1).await.unwrap();
        let _members = broker.subscribe("requests", "relays").await.unwrap();
        for i in 0..4u8 {
            broker.publish("requests", Message::new(vec![i]).to_partition(1)).await.unwrap();
        }
        queue.declare("jobs", &QueueOptions::default()).await.unwrap();
        queue.enqueue("jobs", Message::new(b"job".to_vec())).await.unwrap();
        let config = ConsoleConfig {
            watched: Watched {
                topics: vec![("requests".into(), "relays".into())],
                queues: vec!["jobs".into(), "jobs.dlq".into()],
                requests_dlq: "requests.dlq".into(),
                jobs_dlq: "jobs.dlq".into(),
            },
            ..ConsoleConfig::default()
        };
        let sources = Sources {
            topics: Some(Arc::new(broker.clone())),
            queues: Some(Arc::new(queue.clone())),
            fanout: Some(Arc::new(queue.clone())),
            dead_letters: None,
        };
        let addr = start(config, sources).await;
        let overview = overview_until(addr, |o| o["topics"][0]["lag"] == 4).await;
        assert_eq!(overview["topics"][0]["partitions"][1]["end_offset"], 4);
        assert_eq!(overview["queues"][0]["name"], "jobs");
        assert_eq!(overview["queues"][0]["messages"], 1);
        assert_eq!(overview["queues"][1]["messages"], 0);
        assert_eq!(overview["dead_letters"], serde_json::json!({"requests": 0, "jobs": 0}));

        // The jobs view follows the job-events fanout.
        let mut event = JobEvent::new();
        event.id = "job-1".into();
        event.status = JobStatus::JOB_STATUS_DONE.into();
        event.attempt = 1;
        event.result = "HELLO WORLD".into();
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let message = Message::new(event.write_to_bytes().unwrap()).with_header("traceparent", traceparent);
        queue.broadcast(switchboard_topology::JOB_EVENTS_EXCHANGE, message).await.unwrap();
        let jobs = loop {
            let jobs = get(addr, "/api/jobs", &[]).await.json();
            if jobs["jobs"].as_array().is_some_and(|j| !j.is_empty()) {
                break jobs;
            }
            async_io::Timer::after(Duration::from_millis(50)).await;
        };
        let job = &jobs["jobs"][0];
        assert_eq!((job["id"].as_str(), job["status"].as_str()), (Some("job-1"), Some("done")));
        assert_eq!(job["result"], "HELLO WORLD");
        assert_eq!(job["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    });
}

/// A gateway on HTTPS (the test CA's certificate) whose /metrics needs a bearer token; the
/// token's file for the console.
async fn https_gateway() -> (std::net::SocketAddr, std::path::PathBuf) {
    use sha2::{Digest, Sha256};
    const TOKEN: &str = "scrape-token-0123456789";
    let certs = switchboard_testkit::certs::test_certs();
    let hashes = certs.path("scrape-tokens.sha256");
    let hash: String = Sha256::digest(TOKEN).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&hashes, format!("{hash}\n")).unwrap();
    let token_file = certs.path("scrape-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let args = switchboard_gateway::EdgeSecurityArgs {
        gateway_tls_cert: Some(certs.path("server.pem")),
        gateway_tls_key: Some(certs.path("server.key")),
        gateway_tls_client_ca: None,
        auth_tokens_file: Some(hashes),
        auth_open_metrics: false,
    };
    let mut config = switchboard_gateway::GatewayConfig { addr: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    args.apply(&mut config).unwrap();
    let broker = MemoryBroker::new();
    let gateway = switchboard_gateway::Gateway::bind(config, Arc::new(broker.clone()), Arc::new(broker)).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    smol::spawn(gateway.serve(futures_lite::future::pending())).detach();
    (addr, token_file)
}

#[test]
fn an_https_target_is_scraped_with_the_token_and_refused_under_another_ca() {
    run(async {
        let certs = switchboard_testkit::certs::test_certs();
        let (gateway, token_file) = https_gateway().await;
        let target = || vec![format!("gateway=https://127.0.0.1:{}", gateway.port()).parse().unwrap()];
        let scraping = |ca: &str, token: Option<std::path::PathBuf>| ConsoleConfig {
            targets: target(),
            scrape_ca_file: Some(certs.path(ca)),
            scrape_token_file: token,
            ..ConsoleConfig::default()
        };
        let instance = |o: &serde_json::Value| o["services"][0]["instances"][0].clone();
        let scraped = |o: &serde_json::Value| instance(o)["error"].as_str() != Some("not scraped yet");

        // Trusting the CA that signed the gateway's certificate, with the token: ready, and
        // /metrics answered (no error).
        let trusted = start(scraping("ca.pem", Some(token_file.clone())), Sources::default()).await;
        let overview = overview_until(trusted, |o| instance(o)["ready"] == true).await;
        let gw = instance(&overview);
        assert_eq!(gw["addr"], format!("https://127.0.0.1:{}", gateway.port()));
        assert_eq!((gw["up"].as_bool(), gw["ready"].as_bool()), (Some(true), Some(true)), "{gw}");
        assert!(gw["error"].is_null(), "{gw}");

        // Without the token the probe passes and /metrics is refused: the reason is shown.
        let no_token = start(scraping("ca.pem", None), Sources::default()).await;
        let gw = instance(&overview_until(no_token, |o| scraped(o)).await);
        assert_eq!(gw["up"], true);
        assert_eq!(gw["error"], "GET /metrics answered 401", "{gw}");

        // Trusting another CA: no TLS session, so nothing is scraped, and the reason is shown.
        let other_ca = start(scraping("wrong-ca.pem", Some(token_file)), Sources::default()).await;
        let gw = instance(&overview_until(other_ca, |o| scraped(o)).await);
        assert_eq!((gw["up"].as_bool(), gw["ready"].as_bool()), (Some(false), Some(false)), "{gw}");
        let error = gw["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("TLS with https://127.0.0.1:") && error.contains("certificate"), "{gw}");
        assert!(!error.contains("scrape-token-0123456789"));
    });
}

#[test]
fn a_missing_scrape_ca_or_token_file_stops_the_console_naming_the_file() {
    run(async {
        for config in [
            ConsoleConfig { scrape_ca_file: Some("/nonexistent/ca.pem".into()), ..ConsoleConfig::default() },
            ConsoleConfig { scrape_token_file: Some("/nonexistent/token".into()), ..ConsoleConfig::default() },
        ] {
            let config = ConsoleConfig { addr: "127.0.0.1:0".parse().unwrap(), ..config };
            let e = switchboard_console::Console::bind(config, Sources::default()).await.unwrap_err().to_string();
            assert!(e.contains("/nonexistent/"), "{e}");
        }
    });
}

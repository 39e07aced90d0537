//! SIGTERM under load: the all-in-one binary stops taking new requests, finishes those in
//! flight (each gets its own 200), and exits 0 — no accepted request is lost.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::HttpClient;

fn free_addr() -> String {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    refused: AtomicUsize,
    failed: AtomicUsize,
    lost: AtomicUsize,
}

#[test]
fn sigterm_under_load_drains_in_flight_requests_and_exits_zero() {
    let (gateway, processor) = (free_addr(), free_addr());
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("run")
        .env("GATEWAY_ADDR", &gateway)
        .env("PROCESSOR_ADDR", &processor)
        .env("SWITCHBOARD_GRACE_MS", "10000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("switchboard binary starts");
    let addr = gateway.parse().unwrap();
    let tally = Arc::new(Tally::default());
    smol::block_on(async {
        let started = Instant::now();
        while HttpClient::new(addr).get("/healthz").await.map(|r| r.status).ok() != Some(200) {
            assert!(started.elapsed() < Duration::from_secs(30), "switchboard did not come up");
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
        let draining = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..16)
            .map(|c| {
                let (tally, draining) = (tally.clone(), draining.clone());
                smol::spawn(async move {
                    let mut client = HttpClient::new(addr);
                    for i in 0.. {
                        let text = format!("client {c} request {i}");
                        match client.post_json("/messages", &json!({ "message": text })).await {
                            Ok(r) if r.status == 200 => {
                                let expected = format!("{} FROM REST AND", text.to_uppercase());
                                assert!(r.json()["message"].as_str().unwrap().starts_with(&expected), "own reply");
                                tally.ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) if r.status == 503 && r.body.contains("shutting down") => {
                                tally.refused.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            Ok(r) => {
                                eprintln!("unexpected {}: {}", r.status, r.body);
                                tally.failed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) if draining.load(Ordering::Relaxed) && is_refused(&e) => {
                                tally.refused.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            Err(e) => {
                                eprintln!("request lost: {e:#}");
                                tally.lost.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        async_io::Timer::after(Duration::from_millis(500)).await;
        let before = tally.ok.load(Ordering::Relaxed);
        draining.store(true, Ordering::Relaxed);
        let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        for c in clients {
            c.await;
        }
        assert!(before > 0, "load was flowing before SIGTERM");
    });
    let status = wait_with_timeout(&mut child, Duration::from_secs(20));
    let (ok, refused) = (tally.ok.load(Ordering::Relaxed), tally.refused.load(Ordering::Relaxed));
    let (failed, lost) = (tally.failed.load(Ordering::Relaxed), tally.lost.load(Ordering::Relaxed));
    eprintln!("sigterm: ok={ok} refused={refused} failed={failed} lost={lost}");
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(lost, 0, "no accepted request lost");
    assert_eq!(failed, 0, "no request failed");
    assert_eq!(refused, 16, "every client was told the gateway is shutting down");
}

/// Connection refused or closed before a request was accepted (the listener is gone).
fn is_refused(e: &switchboard::ClientError) -> bool {
    matches!(e, switchboard::ClientError::Connect(io)
        if matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset))
}

fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("switchboard did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

//! The serve loop under a burst past RLIMIT_NOFILE: `accept` fails with EMFILE while the
//! burst lasts, and the server answers again once it is over.
//!
//! Alone in its test binary: it lowers the process's own descriptor limit.

use std::io;
use std::time::{Duration, Instant};

use async_std::net::{TcpListener, TcpStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use http_types::{Response, StatusCode};
use switchboard_http_server::{serve_http, HttpLimits};

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(16)
}

async fn get(addr: std::net::SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(b"GET /ping HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    Ok(raw)
}

#[test]
fn a_burst_past_the_descriptor_limit_does_not_stop_the_server() {
    smol::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Connection limit far above the descriptor limit: nothing but accept stands in the way.
        let limits = HttpLimits { max_connections: 100_000, ..HttpLimits::default() };
        let server = smol::spawn(async move {
            let endpoint = |_req| async {
                let mut res = Response::new(StatusCode::Ok);
                res.set_body("pong");
                Ok(res)
            };
            serve_http("test", &listener, &limits, |conn| smol::spawn(conn).detach(), endpoint).await
        });
        assert!(get(addr).await.unwrap().ends_with("pong"));

        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let low = open_fds() + 48;
        rlimit::setrlimit(rlimit::Resource::NOFILE, low, hard).unwrap();

        // Clients take descriptors until none is left; the server's accepts then fail too.
        let mut clients = Vec::new();
        let mut exhausted = false;
        for _ in 0..600 {
            match TcpStream::connect(addr).await {
                Ok(c) => clients.push(c),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                    exhausted = true;
                    break;
                }
                Err(e) => panic!("unexpected connect error: {e}"),
            }
        }
        assert!(exhausted, "{} connections without running out of descriptors", clients.len());
        // Let the server hit EMFILE on the connections waiting in its backlog for a while.
        async_io::Timer::after(Duration::from_millis(300)).await;
        drop(clients);

        // Still under the low limit: the server must accept and answer again.
        let started = Instant::now();
        let answer = loop {
            match get(addr).await {
                Ok(raw) => break raw,
                Err(e) => {
                    assert!(started.elapsed() < Duration::from_secs(20), "server never answered again: {e}");
                    async_io::Timer::after(Duration::from_millis(50)).await;
                }
            }
        };
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("pong"), "{answer}");
        rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard).unwrap();
        // The loop is still running (it returns only for a broken listener).
        assert!(!server.is_finished());
        server.cancel().await;
    });
}

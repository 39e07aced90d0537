//! Any server on the serve loop (the gateway, every admin port) refuses a request that repeats
//! a header which may come once, before its endpoint is called, and closes the connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_std::net::{TcpListener, TcpStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use http_types::{Response, StatusCode};
use switchboard_http_server::{serve_http, HttpLimits};

/// The headers a request may carry once.
const SINGLETONS: [&str; 4] = ["authorization", "content-length", "content-type", "idempotency-key"];

async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    // Read to the end: the refusal must also close the connection.
    stream.read_to_string(&mut raw).await.unwrap();
    raw
}

#[test]
fn a_repeated_singleton_header_never_reaches_the_endpoint() {
    smol::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let endpoint = move |_req| {
            seen.fetch_add(1, Ordering::SeqCst);
            async {
                let mut res = Response::new(StatusCode::Ok);
                res.set_body("pong");
                Ok(res)
            }
        };
        let limits = HttpLimits::default();
        let server = smol::spawn(async move {
            serve_http("test", &listener, &limits, |conn| smol::spawn(conn).detach(), endpoint).await
        });
        for name in SINGLETONS {
            let value = if name == "content-length" { "2" } else { "v" };
            // Keep-alive asked for: the server closes anyway.
            let request = format!(
                "POST /ping HTTP/1.1\r\nhost: t\r\n{name}: {value}\r\n{}: {value}\r\ncontent-length: 2\r\n\r\nhi",
                name.to_ascii_uppercase()
            );
            let request = if name == "content-length" {
                request.replacen("content-length: 2\r\n\r\n", "\r\n", 1)
            } else {
                request
            };
            let raw = exchange(addr, &request).await;
            assert!(raw.starts_with("HTTP/1.1 400 "), "{name}: {raw}");
            let lower = raw.to_ascii_lowercase();
            assert!(lower.contains("content-type: application/json"), "{name}: {raw}");
            assert!(lower.contains("connection: close"), "{name}: {raw}");
            assert!(raw.contains(r#""code":"duplicate_header""#), "{name}: {raw}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the endpoint saw a refused request");
        let raw = exchange(addr, "GET /ping HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n").await;
        assert!(raw.ends_with("pong"), "{raw}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(server);
    });
}

//! The HTTP edge under hostile connection patterns: a burst past the descriptor limit and a
//! slowloris past the connection limit leave the gateway up and answering.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use serde_json::json;
use switchboard::{Chain, ChainConfig, HttpClient};
use switchboard_embedded::pubsub::MemoryBroker;

const HELLO_RESULT: &str = "HELLO WORLD FROM REST AND KAFKA PUBLISHER AND KAFKA CONSUMER AND GRPC CLIENT AND GRPC SERVER AND KAFKA PUBLISHER AND KAFKA CONSUMER";

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// `fut`, or `None` after `limit`.
async fn within<T>(limit: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            async_io::Timer::after(limit).await;
            None
        })
        .await
}

async fn hello(addr: SocketAddr) -> anyhow::Result<String> {
    let reply = HttpClient::new(addr).post_json("/messages", &json!({"message": "hello world"})).await?;
    anyhow::ensure!(reply.status == 200, "{} {}", reply.status, reply.body);
    Ok(reply.json()["message"].as_str().unwrap_or_default().to_owned())
}

/// Kills the child if the test fails before it is stopped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_connection_burst_past_the_descriptor_limit_leaves_the_gateway_answering() {
    let (gateway, processor) = (free_addr(), free_addr());
    // `ulimit -n` sets the soft and hard limits: the gateway cannot raise them.
    let child = Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$0\" run", env!("CARGO_BIN_EXE_switchboard")])
        .env("GATEWAY_ADDR", gateway.to_string())
        .env("PROCESSOR_ADDR", processor.to_string())
        .env_remove("KAFKA_BROKERS")
        .env_remove("AMQP_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("switchboard starts");
    let mut child = Child(child);
    smol::block_on(async {
        let started = Instant::now();
        while HttpClient::new(gateway).get("/healthz").await.map(|r| r.status).ok() != Some(200) {
            assert!(started.elapsed() < Duration::from_secs(30), "switchboard did not come up");
            async_io::Timer::after(Duration::from_millis(50)).await;
        }
        // 600 connections at once, each held open: more than 256 descriptors' worth.
        let burst: Vec<_> =
            (0..600).map(|_| smol::spawn(within(Duration::from_secs(5), TcpStream::connect(gateway)))).collect();
        let mut held = Vec::new();
        for connect in burst {
            if let Some(Ok(stream)) = connect.await {
                held.push(stream);
            }
        }
        // More than the 128 the gateway can serve under 256 descriptors (the rest of the 600
        // may not fit the kernel's accept backlog and time out).
        assert!(held.len() > 128, "only {} connections made it", held.len());
        // Let the gateway work through its backlog while every connection stays open.
        async_io::Timer::after(Duration::from_millis(500)).await;
        drop(held);

        let started = Instant::now();
        let answer = loop {
            match within(Duration::from_secs(10), hello(gateway)).await {
                Some(Ok(text)) => break text,
                other => {
                    let waited = started.elapsed();
                    assert!(waited < Duration::from_secs(30), "no answer {waited:?} after the burst: {other:?}");
                    async_io::Timer::after(Duration::from_millis(100)).await;
                }
            }
        };
        assert_eq!(answer, HELLO_RESULT);
    });
    assert!(child.0.try_wait().unwrap().is_none(), "switchboard exited");
}

/// One slow client: connects, sends `head`, then `trickle` a byte every 100 ms until the
/// server closes the connection. Returns what the server sent, or `None` if it never closed.
async fn slow_client(addr: SocketAddr, head: &'static [u8], trickle: &'static [u8]) -> Option<String> {
    let stream = within(Duration::from_secs(30), TcpStream::connect(addr)).await?.ok()?;
    let mut writer = stream.clone();
    let mut reader = stream;
    let write = async move {
        let _ = writer.write_all(head).await;
        for byte in trickle.iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            async_io::Timer::after(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await;
    };
    let read = async move {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got).await;
        String::from_utf8_lossy(&got).into_owned()
    };
    within(
        Duration::from_secs(60),
        read.or(async {
            write.await;
            unreachable!()
        }),
    )
    .await
}

#[test]
fn a_slowloris_past_the_connection_limit_is_shed_after_the_timeouts() {
    smol::block_on(async {
        let mut config = ChainConfig::default();
        config.gateway.addr = "127.0.0.1:0".parse().unwrap();
        config.processor.addr = "127.0.0.1:0".parse().unwrap();
        config.gateway.max_connections = 16;
        config.gateway.header_timeout = Duration::from_millis(400);
        config.gateway.body_timeout = Duration::from_millis(400);
        let broker = MemoryBroker::new();
        let chain = Chain::start(config, Arc::new(broker.clone()), Arc::new(broker)).await.unwrap();
        let addr = chain.gateway_addr();

        // 200 clients for 16 slots: half never finish their head, half never finish their body.
        const HEAD: &[u8] = b"POST /messages HTTP/1.1\r\nhost: t\r\nx-slow: ";
        const BODY: &[u8] =
            b"POST /messages HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
        let clients: Vec<_> = (0..200)
            .map(|i| match i % 2 {
                0 => smol::spawn(slow_client(addr, HEAD, b"a")),
                _ => smol::spawn(slow_client(addr, BODY, b" ")),
            })
            .collect();
        let mut shed = Vec::new();
        for c in clients {
            shed.push(c.await);
        }
        let held = shed.iter().filter(|s| s.is_none()).count();
        assert_eq!(held, 0, "{held} slow clients kept their connection for a minute");
        // Those stuck in the body were told why.
        let timed_out = shed.iter().flatten().filter(|s| s.starts_with("HTTP/1.1 408")).count();
        assert!(
            timed_out >= 100,
            "{timed_out} of 100 slow bodies answered 408: {:?}",
            shed.iter().flatten().find(|s| !s.starts_with("HTTP/1.1 408"))
        );
        assert_eq!(hello(addr).await.unwrap(), HELLO_RESULT);
        chain.stop().await;
    });
}

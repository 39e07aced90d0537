//! The gateway on HTTPS with bearer tokens, in process on the embedded broker: a client that
//! trusts the CA and sends an accepted token gets through (on one keep-alive connection); a
//! missing or wrong token gets 401 with `WWW-Authenticate` and the JSON error; the probes stay
//! open; a client trusting another CA, or speaking plain HTTP, gets no HTTP answer at all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::TcpStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use futures_rustls::TlsConnector;
use rustls_pki_types::ServerName;
use sha2::{Digest, Sha256};
use switchboard_embedded::pubsub::MemoryBroker;
use switchboard_gateway::{EdgeSecurityArgs, Gateway, GatewayConfig};
use switchboard_testkit::certs::test_certs;

const TOKEN: &str = "test-token-0123456789";

fn tokens_file() -> std::path::PathBuf {
    let path = test_certs().path("tokens.sha256");
    let hash: String = Sha256::digest(TOKEN).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, format!("# test token\n{hash}\n")).unwrap();
    path
}

async fn start() -> (SocketAddr, async_channel::Sender<()>, smol::Task<std::io::Result<()>>) {
    let certs = test_certs();
    let args = EdgeSecurityArgs {
        gateway_tls_cert: Some(certs.path("server.pem")),
        gateway_tls_key: Some(certs.path("server.key")),
        gateway_tls_client_ca: None,
        auth_tokens_file: Some(tokens_file()),
        auth_open_metrics: false,
    };
    let mut config = GatewayConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        request_timeout: Duration::from_millis(300),
        ..GatewayConfig::default()
    };
    args.apply(&mut config).unwrap();
    let broker = MemoryBroker::new();
    let gateway = Gateway::bind(config, Arc::new(broker.clone()), Arc::new(broker)).await.unwrap();
    let addr = gateway.local_addr().unwrap();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let task = smol::spawn(gateway.serve(async move {
        let _ = stopped.recv().await;
    }));
    (addr, stop, task)
}

fn connector(ca: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in switchboard_http_server::load_certs(&test_certs().path(ca)).unwrap() {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Reads one response (head and a Content-Length body): status, lower-cased head, body.
async fn response(io: &mut (impl AsyncReadExt + Unpin)) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = io.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "connection closed mid-head: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await.unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

fn request(method: &str, path: &str, token: Option<&str>) -> String {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = if method == "POST" { r#"{"message":"hi"}"# } else { "" };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn https_with_bearer_tokens() {
    smol::block_on(async {
        let (addr, stop, task) = start().await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector("ca.pem").connect(name.clone(), tcp).await.expect("handshake with the right CA");

        // Keep-alive over TLS: every request below on the same connection.
        tls.write_all(request("GET", "/healthz", None).as_bytes()).await.unwrap();
        assert_eq!(response(&mut tls).await.0, 200, "/healthz needs no token");
        tls.write_all(request("GET", "/metrics", None).as_bytes()).await.unwrap();
        let (status, head, body) = response(&mut tls).await;
        assert_eq!(status, 401, "{body}");
        assert!(head.contains("www-authenticate: bearer realm=\"switchboard\""), "{head}");
        assert_eq!(body, r#"{"error":{"code":"unauthorized","message":"send Authorization: Bearer <token>"}}"#);
        tls.write_all(request("POST", "/messages", Some("wrong-token")).as_bytes()).await.unwrap();
        let (status, head, body) = response(&mut tls).await;
        assert_eq!(status, 401, "{body}");
        assert!(head.contains("error=\"invalid_token\""), "{head}");
        tls.write_all(request("GET", "/metrics", Some(TOKEN)).as_bytes()).await.unwrap();
        let (status, _, body) = response(&mut tls).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("http_requests_total"), "{body}");
        // A wrong and an accepted token together: ambiguous, so neither counts (a proxy
        // checking the first would see another credential than a server taking the last).
        for tokens in [["wrong-token", TOKEN], [TOKEN, "wrong-token"]] {
            let two = request("GET", "/metrics", Some(tokens[0])).replacen(
                "Authorization",
                &format!("Authorization: Bearer {}\r\nAuthorization", tokens[1]),
                1,
            );
            tls.write_all(two.as_bytes()).await.unwrap();
            let (status, head, body) = response(&mut tls).await;
            assert_eq!(status, 400, "{tokens:?}: {body}");
            assert_eq!(
                body,
                r#"{"error":{"code":"duplicate_header","message":"the authorization header is sent more than once; send it once"}}"#
            );
            assert!(head.contains("connection: close"), "{head}");
            // The refusal closes the connection: continue on a new one.
            let tcp = TcpStream::connect(addr).await.unwrap();
            tls = connector("ca.pem").connect(name.clone(), tcp).await.unwrap();
        }
        // Past authentication: no relay here, so the request times out (504), not 401.
        tls.write_all(request("POST", "/messages", Some(TOKEN)).as_bytes()).await.unwrap();
        assert_eq!(response(&mut tls).await.0, 504);

        // A client trusting another CA refuses the server.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let err = connector("wrong-ca.pem").connect(name, tcp).await.unwrap_err();
        assert!(err.to_string().contains("invalid peer certificate"), "{err}");

        // Plain HTTP on the HTTPS port: no HTTP answer.
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain.write_all(request("GET", "/healthz", None).as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer).await;
        assert!(!answer.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&answer));

        // The server still serves the good client after the refusals.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector("ca.pem").connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        tls.write_all(request("GET", "/readyz", None).as_bytes()).await.unwrap();
        assert_eq!(response(&mut tls).await.0, 200);

        stop.send(()).await.unwrap();
        task.await.unwrap();
    });
}

//! A small HTTP server for `/healthz`, `/readyz` and `/metrics`, for the services that have no
//! HTTP API of their own (relay, worker, the processor's side port).
//!
//! Connections are served by an executor owned by [`AdminServer::run`], so the server works
//! under smol and async-std alike, and stopping it drops every open connection.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::TcpListener;
use http_types::{Method, Request, Response, StatusCode};
use switchboard_telemetry::{Metrics, Readiness, CONTENT_TYPE};

use crate::shutdown::Shutdown;
use switchboard_http_server::{json_error, serve_until, HttpLimits};

/// Connections served at once; further clients wait in the kernel's accept backlog. Scrapers
/// and probes open a handful, so this only bounds misbehaving clients.
const MAX_CONNECTIONS: usize = 64;

/// Time for a probe or scraper to send its request (and for an idle connection to be kept),
/// and to take the response.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A `/metrics` response: the encoded registry with the OpenMetrics content type. Tide apps
/// convert it with `tide::Response::from(metrics_response(&metrics))`.
pub fn metrics_response(metrics: &Metrics) -> Response {
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(metrics.encode());
    res.insert_header("content-type", CONTENT_TYPE);
    res
}

/// The `/healthz` response: 200 `ok` for as long as the process can answer at all.
pub fn health_response() -> Response {
    let mut res = Response::new(StatusCode::Ok);
    res.set_body("ok\n");
    res
}

struct State {
    metrics: Metrics,
    readiness: Readiness,
}

/// The admin HTTP server, bound and ready to [`run`](AdminServer::run).
///
/// | path       | answer                                                              |
/// |------------|---------------------------------------------------------------------|
/// | `/healthz` | 200 `ok` while the process runs                                     |
/// | `/readyz`  | 200 or 503 with `{"ready": bool, "checks": {...}}` ([`Readiness`])  |
/// | `/metrics` | [`Metrics::encode`] as `application/openmetrics-text`               |
///
/// Other paths are 404, methods other than GET and HEAD 405 with `Allow`, both with the JSON
/// error body `{"error": {"code": "...", "message": "..."}}`.
///
/// ```
/// use switchboard_service::{AdminServer, Shutdown};
/// use switchboard_telemetry::{Metrics, Readiness};
/// use std::time::Duration;
///
/// smol::block_on(async {
///     let metrics = Metrics::new("relay");
///     let readiness = Readiness::new();
///     let shutdown = Shutdown::new(Duration::from_secs(10));
///     let admin = AdminServer::bind("127.0.0.1:0", metrics, readiness).await?;
///     println!("admin on http://{}", admin.local_addr());
///     let task = smol::spawn(admin.run(shutdown.wait()));
///     // ... the service runs; on SIGTERM (or here, by hand) the server stops:
///     shutdown.trigger();
///     task.await?;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<State>,
    tls: Option<switchboard_http_server::ServerTls>,
}

impl fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminServer")
            .field("local_addr", &self.local_addr)
            .field("service", &self.state.metrics.service())
            .field("readiness", &self.state.readiness)
            .finish()
    }
}

impl AdminServer {
    /// Binds `addr` (port 0 picks a free port; see [`local_addr`](AdminServer::local_addr)).
    pub async fn bind(
        addr: impl async_std::net::ToSocketAddrs,
        metrics: Metrics,
        readiness: Readiness,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(AdminServer { listener, local_addr, state: Arc::new(State { metrics, readiness }), tls: None })
    }

    /// Serves HTTPS with `tls` (`None`: plain HTTP, the default).
    pub fn with_tls(mut self, tls: Option<switchboard_http_server::ServerTls>) -> Self {
        self.tls = tls;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs the server on its own task until `shutdown`; if the listener breaks before, the
    /// task triggers `shutdown` (so the service drains and stops rather than staying up with a
    /// deaf admin port) and ends with the error, for the service to exit non-zero.
    pub fn spawn(self, shutdown: &Shutdown) -> smol::Task<io::Result<()>> {
        let shutdown = shutdown.clone();
        smol::spawn(async move {
            let outcome = self.run(shutdown.wait()).await;
            if let Err(e) = &outcome {
                log::error!("admin server stopped serving ({e}): shutting down");
                shutdown.trigger();
            }
            outcome
        })
    }

    /// Serves until `stop` completes, then closes the listener and every open connection.
    ///
    /// Accept errors that pass (EMFILE and the like) are logged and backed off; an `Err` means
    /// the listener broke before `stop`: the admin port is deaf, the service should exit.
    pub async fn run(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let executor = smol::Executor::new();
        let limits = HttpLimits {
            max_connections: switchboard_http_server::fit_connections("admin server", MAX_CONNECTIONS),
            header_timeout: TIMEOUT,
            body_timeout: TIMEOUT,
            allow: |path| matches!(path, "/healthz" | "/readyz" | "/metrics").then_some("GET, HEAD"),
            tls: self.tls.clone(),
        };
        let state = self.state.clone();
        let endpoint = move |req: Request| {
            let state = state.clone();
            async move { Ok(route(req, &state).await) }
        };
        let spawn = |conn| executor.spawn(conn).detach();
        let outcome = executor.run(serve_until("admin server", &self.listener, &limits, spawn, endpoint, stop)).await;
        log::debug!("admin server on {} stopped", self.local_addr);
        outcome
    }
}

async fn route(req: Request, state: &State) -> Response {
    let known = matches!(req.url().path(), "/healthz" | "/readyz" | "/metrics");
    if !known {
        return json_error(StatusCode::NotFound, "not_found", "no such endpoint: try /healthz, /readyz or /metrics");
    }
    if !matches!(req.method(), Method::Get | Method::Head) {
        let mut res = json_error(StatusCode::MethodNotAllowed, "method_not_allowed", "only GET and HEAD are served");
        res.insert_header("allow", "GET, HEAD");
        return res;
    }
    match req.url().path() {
        "/healthz" => health_response(),
        "/readyz" => state.readiness.report().await.into_response(),
        _ => metrics_response(&state.metrics),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;
    use async_std::net::TcpStream;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use switchboard_telemetry::CheckStatus;

    struct Reply {
        status: u16,
        head: String,
        body: String,
    }

    /// One GET over a fresh connection, read to EOF.
    async fn get(addr: SocketAddr, path: &str) -> Reply {
        send(addr, "GET", path).await
    }

    /// One bodiless request over a fresh connection, read to EOF.
    async fn send(addr: SocketAddr, method: &str, path: &str) -> Reply {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("{method} {path} HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("no end of headers");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("no status");
        Reply { status, head: head.to_ascii_lowercase(), body: body.to_owned() }
    }

    /// The `error` object of a JSON error reply.
    fn error_of(reply: &Reply) -> serde_json::Value {
        assert!(reply.head.contains("content-type: application/json"), "{}", reply.head);
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        body["error"].clone()
    }

    async fn start(metrics: Metrics, readiness: Readiness) -> (SocketAddr, Shutdown, smol::Task<io::Result<()>>) {
        let server = AdminServer::bind("127.0.0.1:0", metrics, readiness).await.unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let task = smol::spawn(server.run(shutdown.wait()));
        (addr, shutdown, task)
    }

    /// Runs `check` against a server on a free port, then stops the server.
    fn serving<F: Future<Output = ()>>(metrics: Metrics, readiness: Readiness, check: impl FnOnce(SocketAddr) -> F) {
        smol::block_on(async {
            let (addr, shutdown, task) = start(metrics, readiness).await;
            check(addr).await;
            shutdown.trigger();
            task.await.unwrap();
        });
    }

    #[test]
    fn answers_healthz_readyz_and_metrics_over_http() {
        let metrics = Metrics::new("relay");
        metrics.published("requests", true);
        let readiness = Readiness::new();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        readiness.add_sync_check("broker", move || flag.load(Relaxed).into());
        readiness.add_check("breaker", || async { CheckStatus::Ok });
        serving(metrics, readiness, |addr| async move {
            let health = get(addr, "/healthz").await;
            assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

            let ready = get(addr, "/readyz").await;
            assert_eq!(ready.status, 200);
            assert_eq!(ready.body, r#"{"ready":true,"checks":{"breaker":"ok","broker":"ok"}}"#);
            assert!(ready.head.contains("content-type: application/json"));

            up.store(false, Relaxed);
            let not_ready = get(addr, "/readyz").await;
            assert_eq!(not_ready.status, 503);
            assert_eq!(not_ready.body, r#"{"ready":false,"checks":{"breaker":"ok","broker":"not ready"}}"#);

            up.store(true, Relaxed);
            assert_eq!(get(addr, "/readyz").await.status, 200);

            let scrape = get(addr, "/metrics").await;
            assert_eq!(scrape.status, 200);
            assert!(scrape.head.contains("content-type: application/openmetrics-text; version=1.0.0"));
            assert!(scrape.body.contains(r#"messages_published_total{topic="requests",outcome="ok"} 1"#));
            assert!(scrape.body.contains(r#"build_info{version="#));

            let missing = get(addr, "/nope").await;
            assert_eq!(missing.status, 404);
            let error = error_of(&missing);
            assert_eq!(error["code"], "not_found");
            assert!(error["message"].is_string());
        });
    }

    #[test]
    fn rejects_other_methods() {
        serving(Metrics::new("worker"), Readiness::new(), |addr| async move {
            let refused = send(addr, "POST", "/healthz").await;
            assert_eq!(refused.status, 405);
            assert!(refused.head.contains("allow: get, head"), "{}", refused.head);
            assert_eq!(error_of(&refused)["code"], "method_not_allowed");
        });
    }

    #[test]
    fn stop_closes_the_listener_and_open_connections() {
        smol::block_on(async {
            let (addr, shutdown, task) = start(Metrics::new("worker"), Readiness::new()).await;
            // A keep-alive client that sent nothing yet holds a connection open.
            let mut idle = TcpStream::connect(addr).await.unwrap();
            assert_eq!(get(addr, "/healthz").await.status, 200);
            shutdown.trigger();
            task.await.unwrap();
            let mut buf = Vec::new();
            let read = idle.read_to_end(&mut buf).await;
            assert!(matches!(read, Ok(0)) || read.is_err(), "idle connection still open");
            assert!(TcpStream::connect(addr).await.is_err(), "listener still accepting");
        });
    }
}

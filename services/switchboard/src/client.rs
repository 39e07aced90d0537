use std::net::SocketAddr;

use async_std::net::TcpStream;
use http_types::{Method, Request, Url};

/// A reply as the client saw it.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After`, if sent.
    pub retry_after: Option<String>,
    /// `traceparent`, if sent.
    pub traceparent: Option<String>,
    /// The body, as text.
    pub body: String,
}

impl HttpReply {
    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A minimal keep-alive HTTP/1.1 client on one connection (demo, tests, benchmarks).
#[derive(Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    stream: Option<TcpStream>,
}

impl HttpClient {
    /// A client for the server at `addr`; connects on first use.
    pub fn new(addr: SocketAddr) -> Self {
        HttpClient { addr, stream: None }
    }

    /// Sends `body` with `content_type` to `path` with `method`.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> anyhow::Result<HttpReply> {
        self.send_with(method, path, content_type, &[], body).await
    }

    /// Like [`send`](HttpClient::send) with extra request headers.
    pub async fn send_with(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<HttpReply> {
        let url = Url::parse(&format!("http://{}{}", self.addr, path))?;
        let mut req = Request::new(method, url);
        if let Some(ct) = content_type {
            req.insert_header("Content-Type", ct);
        }
        for (name, value) in headers {
            req.insert_header(*name, *value);
        }
        req.set_body(body);
        let stream = match &self.stream {
            Some(s) => s.clone(),
            None => {
                let s = TcpStream::connect(self.addr).await?;
                s.set_nodelay(true)?;
                self.stream = Some(s.clone());
                s
            }
        };
        let mut res = match async_h1::connect(stream, req).await {
            Ok(res) => res,
            Err(e) => {
                self.stream = None;
                return Err(anyhow::anyhow!("{e}"));
            }
        };
        let declared = res.len();
        let body = res.body_string().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if declared.is_some_and(|n| n != body.len()) {
            // The server went away mid-response (async-h1 ends the body at EOF quietly).
            self.stream = None;
            anyhow::bail!("connection closed after {} of {} body bytes", body.len(), declared.unwrap_or(0));
        }
        if res.header("Connection").is_some_and(|v| v.as_str().eq_ignore_ascii_case("close")) {
            self.stream = None;
        }
        Ok(HttpReply {
            status: u16::from(res.status()),
            retry_after: res.header("Retry-After").map(|v| v.as_str().to_string()),
            traceparent: res.header("traceparent").map(|v| v.as_str().to_string()),
            body,
        })
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, body: &serde_json::Value) -> anyhow::Result<HttpReply> {
        self.send(Method::Post, path, Some("application/json"), serde_json::to_vec(body)?).await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<HttpReply> {
        self.send(Method::Get, path, None, Vec::new()).await
    }
}

use std::io;
use std::net::SocketAddr;

use async_std::net::TcpStream;
use http_types::{Method, Request, Url};

/// Why a request got no complete reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The path does not make a URL.
    #[error("bad request path")]
    Url(#[from] http_types::url::ParseError),
    /// The JSON body cannot be encoded.
    #[error("encoding the JSON body")]
    Json(#[from] serde_json::Error),
    /// Connecting to the server.
    #[error("connecting")]
    Connect(#[source] io::Error),
    /// The exchange itself: the request could not be sent or the reply not read.
    #[error("HTTP exchange: {0}")]
    Http(http_types::Error),
    /// The server went away mid-response.
    #[error("connection closed after {received} of {declared} body bytes")]
    Truncated {
        /// Body bytes read.
        received: usize,
        /// Body bytes announced by `Content-Length`.
        declared: usize,
    },
}

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
    ) -> Result<HttpReply, ClientError> {
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
    ) -> Result<HttpReply, ClientError> {
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
                let s = TcpStream::connect(self.addr).await.map_err(ClientError::Connect)?;
                s.set_nodelay(true).map_err(ClientError::Connect)?;
                self.stream = Some(s.clone());
                s
            }
        };
        let mut res = match async_h1::connect(stream, req).await {
            Ok(res) => res,
            Err(e) => {
                self.stream = None;
                return Err(ClientError::Http(e));
            }
        };
        let declared = res.len();
        let body = res.body_string().await.map_err(ClientError::Http)?;
        if declared.is_some_and(|n| n != body.len()) {
            // The server went away mid-response (async-h1 ends the body at EOF quietly).
            self.stream = None;
            return Err(ClientError::Truncated { received: body.len(), declared: declared.unwrap_or(0) });
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
    pub async fn post_json(&mut self, path: &str, body: &serde_json::Value) -> Result<HttpReply, ClientError> {
        self.send(Method::Post, path, Some("application/json"), serde_json::to_vec(body)?).await
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<HttpReply, ClientError> {
        self.send(Method::Get, path, None, Vec::new()).await
    }
}

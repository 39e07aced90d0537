use std::net::{SocketAddr, ToSocketAddrs};

use http_types::{Method, Url};
use switchboard::HttpClient;

use crate::drive::Call;
use crate::Error;

/// Where HTTP load goes and what it sends.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// Server address.
    pub addr: SocketAddr,
    /// Request path, e.g. `/messages`.
    pub path: String,
    /// `POST` with `body`, or `GET` without.
    pub method: Method,
    /// JSON body of each `POST`.
    pub body: Vec<u8>,
}

impl HttpTarget {
    /// `POST /messages`-style target from a URL (`http://host:port/path`); a URL without a path
    /// means `/messages`. The body is `{"message": "xxx…"}` with `message_size` characters.
    pub fn post_messages(url: &str, message_size: usize) -> Result<Self, Error> {
        let (addr, path) = resolve(url)?;
        let path = if path == "/" { "/messages".to_string() } else { path };
        Ok(HttpTarget { addr, path, method: Method::Post, body: message_body(message_size) })
    }

    /// `GET` of the URL (e.g. `/healthz`), no body.
    pub fn get(url: &str) -> Result<Self, Error> {
        let (addr, path) = resolve(url)?;
        Ok(HttpTarget { addr, path, method: Method::Get, body: Vec::new() })
    }

    /// A worker on its own keep-alive connection.
    pub fn worker(&self) -> HttpCall {
        HttpCall { client: HttpClient::new(self.addr), target: self.clone() }
    }
}

/// `{"message": "xxx…"}` with `size` characters of text (at least one: the gateway refuses an
/// empty message).
pub(crate) fn message_body(size: usize) -> Vec<u8> {
    let text: String = "benchmark message ".chars().cycle().take(size.max(1)).collect();
    serde_json::to_vec(&serde_json::json!({ "message": text })).expect("serializable")
}

fn resolve(url: &str) -> Result<(SocketAddr, String), Error> {
    let with_scheme = if url.contains("://") { url.to_string() } else { format!("http://{url}") };
    let parsed = Url::parse(&with_scheme).map_err(|e| Error::Target(format!("{url}: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(Error::Target(format!("{url}: only http:// is supported")));
    }
    let host = parsed.host_str().ok_or_else(|| Error::Target(format!("{url}: no host")))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Target(format!("{url}: {e}")))?
        .next()
        .ok_or_else(|| Error::Target(format!("{url}: resolves to no address")))?;
    Ok((addr, parsed.path().to_string()))
}

/// One HTTP worker: [`switchboard::HttpClient`] on one keep-alive connection.
#[derive(Debug)]
pub struct HttpCall {
    client: HttpClient,
    target: HttpTarget,
}

impl Call for HttpCall {
    async fn call(&mut self) -> Result<(), String> {
        let t = &self.target;
        let content_type = (t.method == Method::Post).then_some("application/json");
        match self.client.send(t.method, &t.path, content_type, t.body.clone()).await {
            Ok(reply) if reply.status == 200 => Ok(()),
            Ok(reply) => Err(format!("http {}", reply.status)),
            Err(_) => Err("io".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_to_address_and_path() {
        let t = HttpTarget::post_messages("http://127.0.0.1:8080", 10).unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.path, "/messages");
        let t = HttpTarget::get("127.0.0.1:9/healthz").unwrap();
        assert_eq!(t.path, "/healthz");
        assert_eq!(t.method, Method::Get);
        assert!(matches!(HttpTarget::get("https://127.0.0.1/"), Err(Error::Target(_))));
        assert!(matches!(HttpTarget::get("http://"), Err(Error::Target(_))));
    }

    #[test]
    fn the_body_carries_a_message_of_the_asked_size() {
        let v: serde_json::Value = serde_json::from_slice(&message_body(100)).unwrap();
        assert_eq!(v["message"].as_str().unwrap().chars().count(), 100);
        let v: serde_json::Value = serde_json::from_slice(&message_body(0)).unwrap();
        assert_eq!(v["message"].as_str().unwrap().len(), 1);
    }
}

//! A bounded HTTP GET for scraping: one connection per request, the whole exchange within a
//! timeout, the body capped.

use std::time::Duration;

use async_std::net::TcpStream;
use futures_lite::AsyncReadExt;
use http_types::{Method, Request, Url};

/// Largest body read from a scrape target.
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// What a GET answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

/// `GET http://{addr}{path}`, all of it within `timeout`.
pub(crate) async fn get(addr: &str, path: &str, timeout: Duration) -> Result<Answer, String> {
    let exchange = async {
        let url = Url::parse(&format!("http://{addr}{path}")).map_err(|e| format!("bad address {addr}: {e}"))?;
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut req = Request::new(Method::Get, url);
        req.insert_header("connection", "close");
        let mut res = async_h1::connect(stream, req).await.map_err(|e| format!("GET {path} from {addr}: {e}"))?;
        let mut body = Vec::new();
        res.take_body()
            .into_reader()
            .take(MAX_BODY)
            .read_to_end(&mut body)
            .await
            .map_err(|e| format!("GET {path} from {addr}: {e}"))?;
        Ok(Answer { status: u16::from(res.status()), body: String::from_utf8_lossy(&body).into_owned() })
    };
    futures_lite::future::or(exchange, async {
        async_io::Timer::after(timeout).await;
        Err(format!("GET {path} from {addr}: no answer within {timeout:?}"))
    })
    .await
}

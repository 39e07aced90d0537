//! `otlp-sink ADDR`: an OTLP/HTTP endpoint that reads each request's body and answers 200 with an
//! empty (valid) `ExportTraceServiceResponse`, decoding nothing. `scripts/cost.sh` exports to it
//! to price trace export as a collector on another host would see it: on a machine of few cores,
//! every cycle a local receiver takes slows the load generator and the chain alike, so the
//! stand-in has to be as cheap as the project's own HTTP server can make it (Python's
//! `http.server` takes more CPU than the exporter thread it measures). `GET` answers 200 for
//! health checks; a body over 16 MiB gets 413, unread.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use http_types::{Method, Request, Response, StatusCode};
use switchboard_http_server::{serve_http, HttpLimits};

/// Largest body read: the OTLP exporters' batches are far smaller.
const MAX_BODY: u64 = 16 * 1024 * 1024;

#[derive(Debug, Parser)]
#[command(version, about = "Answer OTLP/HTTP exports without decoding them (a collector stand-in for benchmarks)")]
struct Cli {
    /// Address to listen on.
    addr: SocketAddr,
}

async fn answer(mut req: Request) -> http_types::Result<Response> {
    if req.method() != Method::Post {
        return Ok(Response::new(StatusCode::Ok));
    }
    if req.len().is_some_and(|n| n as u64 > MAX_BODY) {
        return Ok(Response::new(StatusCode::PayloadTooLarge));
    }
    let body = futures_lite::AsyncReadExt::take(req.take_body(), MAX_BODY);
    futures_lite::io::copy(body, futures_lite::io::sink()).await?;
    let mut res = Response::new(StatusCode::Ok);
    res.insert_header("content-type", "application/x-protobuf");
    Ok(res)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    smol::block_on(async {
        let listener =
            async_std::net::TcpListener::bind(cli.addr).await.with_context(|| format!("binding {}", cli.addr))?;
        let spawn = |conn| smol::spawn(conn).detach();
        let err = serve_http("otlp-sink", &listener, &HttpLimits::default(), spawn, answer).await;
        Err(err).context("the listener failed")
    })
}

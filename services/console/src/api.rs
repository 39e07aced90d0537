//! The JSON API the pages read, and the event stream that keeps them live.

use serde::Serialize;
use tide::{Request, Response, StatusCode};

use crate::app::{error, json, State};
use crate::transaction::{self, Filter};

/// Transactions one list answers at most.
const MAX_LIMIT: usize = 1000;
/// Jobs one list answers at most.
const MAX_JOBS: usize = 1000;

pub(crate) fn routes(app: &mut tide::Server<State>) {
    app.at("/api/overview").get(|req: Request<State>| async move { Ok(json(StatusCode::Ok, &overview(req.state()))) });
    app.at("/api/transactions").get(transactions);
    app.at("/api/transactions/:id").get(one_transaction);
    app.at("/api/jobs").get(|req: Request<State>| async move {
        let limit = query(&req, "limit").and_then(|v| v.parse().ok()).unwrap_or(MAX_JOBS).min(MAX_JOBS);
        Ok(json(StatusCode::Ok, &serde_json::json!({ "jobs": req.state().jobs.list(limit) })))
    });
    app.at("/api/metrics").get(metrics);
    app.at("/api/events").get(events);
}

fn query(req: &Request<State>, key: &str) -> Option<String> {
    req.url().query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The overview: services, topics, queues, dead letters and the topology's edges.
pub(crate) fn overview(state: &State) -> serde_json::Value {
    let brokers = state.brokers.view();
    let (transactions, spans) = state.store.len();
    serde_json::json!({
        "console": {
            "transactions": transactions,
            "spans": spans,
            "spans_received": state.spans_received.load(std::sync::atomic::Ordering::Relaxed),
            "spans_refused": state.spans_refused.load(std::sync::atomic::Ordering::Relaxed),
        },
        "services": state.scraper.services(),
        "topics": brokers.topics,
        "queues": brokers.queues,
        "dead_letters": brokers.dead_letters,
        "edges": state.edges,
        "updated_unix_ms": crate::scrape::unix_ms(),
    })
}

async fn transactions(req: Request<State>) -> tide::Result {
    let flag = |key| query(&req, key).is_some_and(|v| v == "1" || v == "true");
    let slower_ms = match query(&req, "slower_ms").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms >= 0.0 => Some(ms),
            _ => return Ok(error(StatusCode::BadRequest, "bad_request", "slower_ms must be a number of milliseconds")),
        },
    };
    let limit = match query(&req, "limit").filter(|v| !v.is_empty()) {
        None => 200,
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n.min(MAX_LIMIT),
            Err(_) => return Ok(error(StatusCode::BadRequest, "bad_request", "limit must be a whole number")),
        },
    };
    let filter = Filter { failed: flag("failed"), slower_ms, q: query(&req, "q") };
    let mut out = Vec::new();
    req.state().store.newest_first(|tx| {
        let summary = transaction::summary(tx);
        if filter.matches(tx, &summary) {
            out.push(summary);
        }
        out.len() < limit
    });
    Ok(json(StatusCode::Ok, &serde_json::json!({ "transactions": out })))
}

async fn one_transaction(req: Request<State>) -> tide::Result {
    let text = req.param("id").unwrap_or_default();
    let Some(id) = crate::otlp::parse_trace_id(text) else {
        return Ok(error(StatusCode::NotFound, "not_found", "a trace id is 32 hex digits"));
    };
    Ok(match req.state().store.get(&id) {
        Some(tx) => json(StatusCode::Ok, &transaction::detail(&tx)),
        None => error(StatusCode::NotFound, "not_found", "no such transaction (unknown, or evicted)"),
    })
}

#[derive(Serialize)]
struct ServicePoints {
    name: String,
    points: Vec<crate::scrape::Point>,
}

async fn metrics(req: Request<State>) -> tide::Result {
    let minutes = match query(&req, "minutes").filter(|v| !v.is_empty()) {
        None => 5,
        Some(v) => match v.parse::<u64>() {
            Ok(m) if m >= 1 => m,
            _ => return Ok(error(StatusCode::BadRequest, "bad_request", "minutes must be a whole number ≥ 1")),
        },
    };
    let services: Vec<ServicePoints> =
        req.state().scraper.history(minutes).into_iter().map(|(name, points)| ServicePoints { name, points }).collect();
    Ok(json(StatusCode::Ok, &serde_json::json!({ "services": services })))
}

async fn events(req: Request<State>) -> tide::Result {
    let last_id = req.header("last-event-id").and_then(|v| v.last().as_str().trim().parse::<u64>().ok());
    let state = req.state();
    let Some(stream) = state.hub.subscribe(last_id, state.stream_lifetime) else {
        let mut res = error(StatusCode::ServiceUnavailable, "unavailable", "too many live pages; try again shortly");
        res.insert_header("retry-after", "5");
        return Ok(res);
    };
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(tide::Body::from_reader(futures_lite::io::BufReader::new(stream), None));
    res.insert_header("content-type", "text/event-stream");
    res.insert_header("cache-control", "no-store");
    res.insert_header("x-accel-buffering", "no");
    Ok(res)
}

//! The HTTP routes: pages and assets, login, the OTLP receiver, the JSON API and the event
//! stream, behind three layers every response passes: JSON errors, security headers and the
//! token check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::AsyncReadExt;
use switchboard_dead_letters::refuse_unauthenticated;
use switchboard_gateway::{BearerTokens, JsonErrors};
use tide::{Request, Response, StatusCode};

use crate::auth::{self, Verdict};
use crate::brokers::Brokers;
use crate::dead_letters::{DeadLetterRequest, DeadLetters};
use crate::events::Hub;
use crate::jobs::Jobs;
use crate::scrape::Scraper;
use crate::store::Store;

/// The Content-Security-Policy of every response: scripts and styles from the console only,
/// never inline; no frames, no plugins, no other origins.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Largest OTLP export request.
pub(crate) const MAX_OTLP_BODY: usize = 4 * 1024 * 1024;
/// Largest login form or redrive request.
const MAX_FORM_BODY: usize = 64 * 1024;

/// What every handler shares.
pub(crate) struct Shared {
    pub store: Store,
    pub scraper: Scraper,
    pub brokers: Brokers,
    pub jobs: Jobs,
    pub hub: Hub,
    pub tokens: Option<BearerTokens>,
    pub allow_redrive: bool,
    pub dead_letters: Arc<dyn DeadLetters>,
    pub edges: Vec<[String; 2]>,
    /// How long one event stream lasts before the page reconnects.
    pub stream_lifetime: Duration,
    pub spans_received: AtomicU64,
    pub spans_refused: AtomicU64,
}

pub(crate) type State = Arc<Shared>;

/// Whether the request carried an accepted token (set by [`Authenticate`]).
#[derive(Debug, Clone, Copy)]
struct Authenticated(bool);

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    Response::from(switchboard_http_server::json_error(status, code, message))
}

pub(crate) fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut res = Response::new(status);
    res.set_content_type(tide::http::mime::JSON);
    res.set_body(serde_json::to_string(body).unwrap_or_else(|_| "null".into()));
    res.insert_header("cache-control", "no-store");
    res
}

pub(crate) fn app(state: State) -> tide::Server<State> {
    let mut app = tide::with_state(state);
    app.with(SecurityHeaders);
    // The console's routes answer one method each, so a 405 names no `Allow`.
    app.with(JsonErrors { not_found: "no such page or endpoint", route_of: |_| None });
    app.with(Authenticate);
    app.at("/").get(|_| async { Ok(asset("index.html")) });
    app.at("/assets/*path").get(|req: Request<State>| async move { Ok(asset(req.param("path").unwrap_or_default())) });
    app.at("/login").get(login_page).post(login);
    app.at("/logout").post(|_| async {
        let mut res = Response::new(StatusCode::SeeOther);
        res.insert_header("location", "/login");
        res.insert_header("set-cookie", auth::expired_cookie());
        Ok(res)
    });
    app.at("/healthz").get(|_| async {
        let mut res = Response::new(StatusCode::Ok);
        res.set_body("ok");
        res.set_content_type(tide::http::mime::PLAIN);
        Ok(res)
    });
    app.at("/v1/traces").post(receive_traces);
    crate::api::routes(&mut app);
    app.at("/api/dead-letters").get(dead_letters);
    app.at("/api/dead-letters/redrive").post(dead_letters);
    app
}

fn asset(path: &str) -> Response {
    match crate::assets::get(path) {
        Some(bytes) => {
            let mut res = Response::new(StatusCode::Ok);
            res.set_body(bytes);
            res.insert_header("content-type", crate::assets::content_type(path));
            // Embedded in the binary: a new binary may change them, so check each time.
            res.insert_header("cache-control", "no-cache");
            res
        }
        None => error(StatusCode::NotFound, "not_found", "no such asset"),
    }
}

/// Reads the body, refusing one over `cap` bytes (413).
async fn body(req: &mut Request<State>, cap: usize) -> Result<Vec<u8>, Response> {
    if req.len().is_some_and(|len| len > cap) {
        return Err(error(StatusCode::PayloadTooLarge, "payload_too_large", &format!("body over {cap} bytes")));
    }
    let mut buf = Vec::new();
    let read = req.take_body().into_reader().take(cap as u64 + 1).read_to_end(&mut buf).await;
    match read {
        Err(e) => Err(error(StatusCode::BadRequest, "bad_request", &format!("cannot read the body: {e}"))),
        Ok(_) if buf.len() > cap => {
            Err(error(StatusCode::PayloadTooLarge, "payload_too_large", &format!("body over {cap} bytes")))
        }
        Ok(_) => Ok(buf),
    }
}

async fn login_page(req: Request<State>) -> tide::Result {
    if crate::assets::get("login.html").is_some() {
        return Ok(asset("login.html"));
    }
    let failed = req.url().query_pairs().any(|(k, v)| k == "failed" && v == "1");
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(auth::login_page(failed));
    res.insert_header("content-type", "text/html; charset=utf-8");
    Ok(res)
}

async fn login(mut req: Request<State>) -> tide::Result {
    let form = match body(&mut req, MAX_FORM_BODY).await {
        Ok(form) => form,
        Err(res) => return Ok(res),
    };
    let mut res = Response::new(StatusCode::SeeOther);
    match (&req.state().tokens, auth::form_token(&form)) {
        (None, _) => res.insert_header("location", "/"),
        (Some(tokens), Some(token)) if tokens.accepts(&token) => {
            res.insert_header("location", "/");
            res.insert_header("set-cookie", auth::session_cookie(&token));
        }
        (Some(_), _) => res.insert_header("location", "/login?failed=1"),
    }
    Ok(res)
}

async fn receive_traces(mut req: Request<State>) -> tide::Result {
    let media = req.content_type().map(|m| m.essence().to_owned()).unwrap_or_default();
    if media != "application/x-protobuf" && media != "application/protobuf" {
        let message = "send OTLP as application/x-protobuf (OTLP/JSON is not accepted)";
        return Ok(error(StatusCode::UnsupportedMediaType, "unsupported_media_type", message));
    }
    let bytes = match body(&mut req, MAX_OTLP_BODY).await {
        Ok(bytes) => bytes,
        Err(res) => return Ok(res),
    };
    let decoded = match crate::otlp::decode(&bytes) {
        Ok(decoded) => decoded,
        Err(e) => {
            let message = format!("not an OTLP ExportTraceServiceRequest: {e}");
            return Ok(error(StatusCode::BadRequest, "bad_request", &message));
        }
    };
    let state = req.state();
    state.spans_received.fetch_add(decoded.spans.len() as u64, Ordering::Relaxed);
    let refused = state.store.add(decoded.spans) as usize + decoded.rejected;
    state.spans_refused.fetch_add(refused as u64, Ordering::Relaxed);
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(crate::otlp::response(refused));
    res.insert_header("content-type", "application/x-protobuf");
    Ok(res)
}

async fn dead_letters(mut req: Request<State>) -> tide::Result {
    let authenticated = req.ext::<Authenticated>().is_some_and(|a| a.0);
    // Refused here too, before the body is read, whatever handler answers the rest.
    if req.url().path().ends_with("/redrive") {
        if let Some((status, body)) = refuse_unauthenticated(authenticated, req.state().allow_redrive) {
            return Ok(json(StatusCode::try_from(status).unwrap_or(StatusCode::Forbidden), &body));
        }
    }
    let bytes = match body(&mut req, MAX_FORM_BODY).await {
        Ok(bytes) => bytes,
        Err(res) => return Ok(res),
    };
    let path = match req.url().query() {
        Some(q) => format!("{}?{q}", req.url().path()),
        None => req.url().path().to_owned(),
    };
    let method = req.method().to_string();
    let request = DeadLetterRequest { method: &method, path: &path, body: &bytes, authenticated };
    let answer = req.state().dead_letters.handle(request).await;
    let status = StatusCode::try_from(answer.status).unwrap_or(StatusCode::InternalServerError);
    Ok(json(status, &answer.body))
}

/// The security headers on every response (see [`CSP`]).
struct SecurityHeaders;

#[tide::utils::async_trait]
impl tide::Middleware<State> for SecurityHeaders {
    async fn handle(&self, req: Request<State>, next: tide::Next<'_, State>) -> tide::Result {
        let mut res = next.run(req).await;
        res.insert_header("content-security-policy", CSP);
        res.insert_header("x-content-type-options", "nosniff");
        res.insert_header("referrer-policy", "no-referrer");
        res.insert_header("x-frame-options", "DENY");
        Ok(res)
    }
}

/// The token check (see [`auth`]).
struct Authenticate;

#[tide::utils::async_trait]
impl tide::Middleware<State> for Authenticate {
    async fn handle(&self, mut req: Request<State>, next: tide::Next<'_, State>) -> tide::Result {
        if auth::is_public(req.url().path()) {
            return Ok(next.run(req).await);
        }
        let verdict = {
            let authorization = req.header("authorization").map(|v| v.last().as_str());
            let cookie = req.header("cookie").map(|v| v.last().as_str());
            auth::verdict(req.state().tokens.as_ref(), authorization, cookie)
        };
        match verdict {
            Verdict::Open => {
                req.set_ext(Authenticated(false));
                Ok(next.run(req).await)
            }
            Verdict::Accepted => {
                req.set_ext(Authenticated(true));
                Ok(next.run(req).await)
            }
            // A browser opening the console goes to the login form.
            Verdict::Refused(..) if req.url().path() == "/" => {
                let mut res = Response::new(StatusCode::SeeOther);
                res.insert_header("location", "/login");
                Ok(res)
            }
            Verdict::Refused(challenge, message) => {
                let mut res = error(StatusCode::Unauthorized, "unauthorized", message);
                res.insert_header("www-authenticate", challenge);
                Ok(res)
            }
        }
    }
}

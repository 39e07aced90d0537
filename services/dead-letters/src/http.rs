//! The operations over HTTP, without an HTTP framework: the console mounts [`HttpApi::handle`]
//! under `/api/dead-letters` and answers with the status and JSON it returns.
//!
//! - `GET /api/dead-letters?source=requests|jobs|all&reason=&limit=` → `{"by_reason", "items"}`
//! - `GET /api/dead-letters/<id>` → one item with its headers, decoded envelope or job, payload
//! - `POST /api/dead-letters/redrive` `{"source", "ids": [...]}` or `{"source", "reason"}`
//!   (optional `"max"`, `"dry_run"`) → `{"redriven", "refused", "details"}`
//! - `POST /api/dead-letters/purge` the same with `"confirm": true` → `{"purged", "refused", "details"}`
//!
//! Redrive and purge change the brokers: they are refused (403) unless the caller was
//! authenticated with a bearer token, or the operator allowed them without authentication.
//! Every one is logged with who asked, what, and how many.

use serde_json::{json, Value};

use crate::{DeadLetters, Filter, Run, SourceKind};

/// Largest request body taken (a list of ids).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most items a list answers by default, and at most.
const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 10_000;

/// The one check before a redrive or a purge: `Some` 403 answer unless the caller
/// `authenticated` with a bearer token or the operator allowed changes without one.
pub fn refuse_unauthenticated(authenticated: bool, allow_unauthenticated: bool) -> Option<(u16, Value)> {
    let message =
        "redrive and purge need a bearer token (SWITCHBOARD_AUTH_TOKENS_FILE) or the console's --allow-redrive";
    (!authenticated && !allow_unauthenticated).then(|| error(403, "forbidden", message))
}

/// The HTTP face of [`DeadLetters`].
#[derive(Clone, Debug)]
pub struct HttpApi {
    ops: DeadLetters,
    allow_unauthenticated: bool,
}

impl HttpApi {
    /// Serves `ops`; with `allow_unauthenticated`, redrive and purge are allowed to callers
    /// without a token (for a console on loopback with authentication off).
    pub fn new(ops: DeadLetters, allow_unauthenticated: bool) -> Self {
        HttpApi { ops, allow_unauthenticated }
    }

    /// Answers one request. `path_and_query` starts with `/api/dead-letters`; `caller` is the
    /// authenticated caller (e.g. `token:<first 8 hex of its SHA-256>`), `None` when the
    /// request carried no valid token (or authentication is off).
    pub async fn handle(&self, method: &str, path_and_query: &str, body: &[u8], caller: Option<&str>) -> (u16, Value) {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let Some(rest) = path.strip_prefix("/api/dead-letters") else {
            return error(404, "not_found", "no such resource");
        };
        match (method, rest) {
            ("GET", "" | "/") => self.list(query).await,
            ("POST", "/redrive") => self.change(body, caller, Change::Redrive).await,
            ("POST", "/purge") => self.change(body, caller, Change::Purge).await,
            ("GET", id) if id.len() > 1 && !id[1..].contains('/') => self.show(&decode(&id[1..])).await,
            (_, "" | "/" | "/redrive" | "/purge") => error(405, "method_not_allowed", "method not allowed here"),
            _ => error(404, "not_found", "no such resource"),
        }
    }

    async fn list(&self, query: &str) -> (u16, Value) {
        let mut source = None;
        let mut filter = Filter::default();
        let mut limit = DEFAULT_LIMIT;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "source" => match SourceKind::parse_selection(&v) {
                    Ok(s) => source = s,
                    Err(e) => return error(400, "invalid_source", &e.to_string()),
                },
                "reason" if !v.is_empty() => filter.reason = Some(v.into_owned()),
                "limit" => match v.parse::<usize>() {
                    Ok(n) => limit = n.min(MAX_LIMIT),
                    Err(_) => return error(400, "invalid_limit", "limit must be a whole number"),
                },
                _ => {}
            }
        }
        match self.ops.list(source, &filter).await {
            Ok(listing) => (200, listing.to_json(limit)),
            Err(e) => broker_error(&e),
        }
    }

    async fn show(&self, id: &str) -> (u16, Value) {
        match self.ops.show(id).await {
            Ok(Some(e)) => (200, e.detail_json(switchboard_ports::unix_millis(), 64 * 1024)),
            Ok(None) => error(404, "not_found", "no such dead letter (redriven, purged, or never there)"),
            Err(e) => broker_error(&e),
        }
    }

    async fn change(&self, body: &[u8], caller: Option<&str>, change: Change) -> (u16, Value) {
        if let Some(refused) = refuse_unauthenticated(caller.is_some(), self.allow_unauthenticated) {
            return refused;
        }
        if body.len() > MAX_BODY_BYTES {
            return error(413, "payload_too_large", "request body too large");
        }
        let req: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return error(400, "invalid_json", "expected a JSON object"),
            Err(e) => return error(400, "invalid_json", &format!("invalid JSON: {e}")),
        };
        let source = match SourceKind::parse_selection(req["source"].as_str().unwrap_or("")) {
            Ok(s) => s,
            Err(e) => return error(400, "invalid_source", &e.to_string()),
        };
        let ids: Vec<String> = match &req["ids"] {
            Value::Null => Vec::new(),
            Value::Array(a) if a.iter().all(Value::is_string) => {
                a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
            }
            _ => return error(400, "invalid_ids", "ids must be an array of strings"),
        };
        let reason = req["reason"].as_str().filter(|r| !r.is_empty()).map(str::to_owned);
        if ids.is_empty() && reason.is_none() {
            return error(400, "missing_selection", "give ids or a reason");
        }
        if change == Change::Purge && req["confirm"] != Value::Bool(true) {
            return error(400, "confirmation_required", "purge removes for good: send \"confirm\": true");
        }
        let max = req["max"].as_u64().map(|m| m as usize);
        let run = Run {
            source,
            filter: Filter { reason, ids, ..Filter::default() },
            max,
            rate: None,
            dry_run: req["dry_run"].as_bool().unwrap_or(false),
        };
        let actor = match caller {
            Some(c) => format!("console caller {c}"),
            None => "unauthenticated console caller (allowed by flag)".to_owned(),
        };
        let done = match change {
            Change::Redrive => self.ops.redrive(&run, &actor).await,
            Change::Purge => self.ops.purge(&run, &actor).await,
        };
        match done {
            Ok(r) => {
                let key = if change == Change::Redrive { "redriven" } else { "purged" };
                let mut body = json!({"refused": r.refused, "details": r.details, "error": r.error});
                body[key] = json!(r.done);
                (200, body)
            }
            Err(e) => broker_error(&e),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Redrive,
    Purge,
}

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn broker_error(e: &crate::Error) -> (u16, Value) {
    match e {
        crate::Error::Invalid(m) => error(400, "invalid", m),
        crate::Error::Broker(p) if p.is_transient() => error(503, "unavailable", &p.to_string()),
        crate::Error::Broker(p) => error(502, "broker_error", &p.to_string()),
    }
}

/// The project's JSON error body.
fn error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({"error": {"code": code, "message": message}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_need_a_token_unless_the_operator_allowed_them() {
        let (status, body) = refuse_unauthenticated(false, false).expect("no token, not allowed");
        assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("--allow-redrive"), "{body}");
        assert_eq!(refuse_unauthenticated(true, false), None, "a token holder");
        assert_eq!(refuse_unauthenticated(false, true), None, "allowed without a token");
    }
}

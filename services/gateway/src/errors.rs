use serde::Serialize;
use tide::{Response, StatusCode};

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

/// A JSON error response: `{"error": {"code": "...", "message": "..."}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_string(&Body { error: Detail { code, message } }).expect("plain strings serialize");
    let mut res = Response::new(status);
    res.set_content_type(tide::http::mime::JSON);
    res.set_body(body);
    res
}

use tide::{Request, Response, StatusCode};

use crate::route_table::{route_of, Route};

/// A JSON error response: `{"error": {"code": "...", "message": "..."}}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    Response::from(switchboard_http_server::json_error(status, code, message))
}

/// The methods `path` answers, `None` for a path the gateway does not serve.
pub(crate) fn allowed_on(path: &str) -> Option<&'static str> {
    route_of(path).map(|r| r.methods)
}

/// Makes every error the JSON error object, whoever produced it: tide's router (404, 405),
/// a handler's `Err`, or a handler that answered an error status with no body. A 405 on a
/// known route carries `Allow`. Handlers' own JSON errors pass unchanged. The gateway and the
/// console each serve their app behind one, configured with their routes and 404 message.
#[derive(Debug, Clone, Copy)]
pub struct JsonErrors {
    /// The message of a 404 for a path no route serves.
    pub not_found: &'static str,
    /// The route serving a path, for a 405's `Allow` header and message.
    pub route_of: fn(&str) -> Option<&'static Route>,
}

impl JsonErrors {
    /// The gateway's: its [`route_table`](crate::route_table) and its OpenAPI document.
    pub const GATEWAY: JsonErrors =
        JsonErrors { not_found: "no such endpoint (see GET /openapi.json)", route_of: crate::route_table::route_of };
}

#[tide::utils::async_trait]
impl<S: Clone + Send + Sync + 'static> tide::Middleware<S> for JsonErrors {
    async fn handle(&self, req: Request<S>, next: tide::Next<'_, S>) -> tide::Result {
        let route = (self.route_of)(req.url().path());
        let mut res = next.run(req).await;
        let status = res.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return Ok(res);
        }
        if let (StatusCode::MethodNotAllowed, Some(route), None) = (status, route, res.header("Allow")) {
            res.insert_header("Allow", route.methods);
        }
        if res.is_empty() == Some(false) {
            return Ok(res);
        }
        let message = match (status, res.error()) {
            (StatusCode::NotFound, _) => self.not_found.to_owned(),
            (StatusCode::MethodNotAllowed, _) => match route {
                Some(r) => format!("{} answers {} only", r.path, r.methods),
                None => "this method is not served here".to_owned(),
            },
            // A handler's error: its message for a client error, nothing internal otherwise.
            (s, Some(e)) if s.is_client_error() => e.to_string(),
            (s, _) => s.canonical_reason().to_owned(),
        };
        let mut json = error(status, switchboard_http_server::error_code(status), &message);
        for (name, values) in res.iter() {
            if name != "content-type" && name != "content-length" {
                json.insert_header(name, values);
            }
        }
        Ok(json)
    }
}

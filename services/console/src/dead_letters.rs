//! The dead-letter routes (`GET /api/dead-letters`, `POST /api/dead-letters/redrive`) are
//! answered by a [`DeadLetters`] handler that knows the brokers; the console only checks the
//! caller and passes the request on.

use std::future::Future;
use std::pin::Pin;

/// A request to the dead-letter API, free of any HTTP framework.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The path and query, e.g. `/api/dead-letters?source=jobs&limit=50`.
    pub path: &'a str,
    /// The request body (JSON for a redrive), at most 64 KiB.
    pub body: &'a [u8],
    /// Whether the caller presented an accepted token (always `false` without a token file).
    pub authenticated: bool,
}

/// The answer: a status and a JSON body.
#[derive(Debug, Clone)]
pub struct DeadLetterAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body (the project's error object for errors).
    pub body: serde_json::Value,
}

/// Lists and redrives dead letters.
pub trait DeadLetters: Send + Sync {
    /// Answers one request to `/api/dead-letters` or `/api/dead-letters/redrive`.
    fn handle<'a>(
        &'a self,
        request: DeadLetterRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = DeadLetterAnswer> + Send + 'a>>;
}

/// The handler of a console started without dead-letter access: every request is a 503.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadLetters;

impl DeadLetters for NoDeadLetters {
    fn handle<'a>(&'a self, _: DeadLetterRequest<'a>) -> Pin<Box<dyn Future<Output = DeadLetterAnswer> + Send + 'a>> {
        Box::pin(async {
            DeadLetterAnswer {
                status: 503,
                body: serde_json::json!({"error": {"code": "unavailable", "message": "dead letters not configured"}}),
            }
        })
    }
}

/// The console's dead-letter API is the dead-letter crate's: the same operations as
/// `switchboard dlq`, on the brokers the console was started with.
impl DeadLetters for switchboard_dead_letters::HttpApi {
    fn handle<'a>(
        &'a self,
        request: DeadLetterRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = DeadLetterAnswer> + Send + 'a>> {
        Box::pin(async move {
            // Who acts, for the log of every redrive and purge: a token holder, or the console
            // started with --allow-redrive.
            let caller = request.authenticated.then_some("console (token)");
            let (status, body) = self.handle(request.method, request.path, request.body, caller).await;
            DeadLetterAnswer { status, body }
        })
    }
}

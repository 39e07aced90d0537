//! Caller authentication: bearer tokens checked against a file of accepted keys.
//!
//! The file holds the SHA-256 of each accepted token as 64 hex digits, one per line (`#`
//! comments and blank lines skipped), so a leaked file does not hand out tokens. Make a line
//! with `printf %s "$TOKEN" | sha256sum | cut -d' ' -f1`. A presented token is hashed and
//! compared with every accepted hash in constant time.
//!
//! The `Authorization` header is parsed here as a plain string: http-types' typed `auth`
//! headers must not be built from caller input (RUSTSEC-2026-0174).

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tide::{Request, StatusCode};

use crate::errors::error;

/// The hashes of the accepted tokens, and whether `/metrics` needs one too.
#[derive(Clone)]
pub struct BearerTokens {
    hashes: Vec<[u8; 32]>,
    protect_metrics: bool,
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes themselves.
        f.debug_struct("BearerTokens").field("accepted", &self.hashes.len()).finish_non_exhaustive()
    }
}

/// Why a token file cannot be used; never quotes the file's content.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TokenFileError {
    path: String,
    reason: String,
}

fn hex_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl BearerTokens {
    /// Reads the accepted hashes from `path`; an empty file or a malformed line is an error.
    pub fn from_file(path: &Path, protect_metrics: bool) -> Result<Self, TokenFileError> {
        let fail = |reason: String| TokenFileError { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        Self::parse(&text, protect_metrics).map_err(fail)
    }

    fn parse(text: &str, protect_metrics: bool) -> Result<Self, String> {
        let mut hashes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match hex_hash(line) {
                Some(h) => hashes.push(h),
                None => return Err(format!("line {}: expected a SHA-256 as 64 hex digits", n + 1)),
            }
        }
        if hashes.is_empty() {
            return Err("no accepted token hash in the file".into());
        }
        Ok(BearerTokens { hashes, protect_metrics })
    }

    /// Whether `token` is accepted: its hash against every accepted one, in constant time.
    pub fn accepts(&self, token: &str) -> bool {
        let presented = Sha256::digest(token.as_bytes());
        // No early exit: the time does not say which entry (or how much of one) matched.
        let found = self.hashes.iter().fold(subtle::Choice::from(0), |found, h| found | h[..].ct_eq(&presented[..]));
        found.into()
    }

    /// Whether `path` is served without a token: the probes and the API description always,
    /// `/metrics` unless configured otherwise.
    fn open(&self, path: &str) -> bool {
        use crate::route_table::{HEALTHZ, METRICS, OPENAPI, READYZ};
        [HEALTHZ, READYZ, OPENAPI].iter().any(|r| r.path == path) || (path == METRICS.path && !self.protect_metrics)
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Refuses requests without an accepted token: 401, `WWW-Authenticate`, the JSON error body.
pub(crate) struct Authenticate(pub BearerTokens);

#[tide::utils::async_trait]
impl<S: Clone + Send + Sync + 'static> tide::Middleware<S> for Authenticate {
    async fn handle(&self, req: Request<S>, next: tide::Next<'_, S>) -> tide::Result {
        if self.0.open(req.url().path()) {
            return Ok(next.run(req).await);
        }
        let presented = req.header("authorization").map(|v| v.last().as_str());
        let (challenge, message) = match presented.map(bearer) {
            None => (r#"Bearer realm="switchboard""#, "send Authorization: Bearer <token>"),
            Some(None) => (r#"Bearer realm="switchboard", error="invalid_request""#, "malformed Authorization header"),
            Some(Some(token)) if self.0.accepts(token) => return Ok(next.run(req).await),
            Some(Some(_)) => (r#"Bearer realm="switchboard", error="invalid_token""#, "token not accepted"),
        };
        let mut res = error(StatusCode::Unauthorized, "unauthorized", message);
        res.insert_header("WWW-Authenticate", challenge);
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "s3cret-token";

    fn tokens() -> BearerTokens {
        let hash: String = Sha256::digest(TOKEN).iter().map(|b| format!("{b:02x}")).collect();
        BearerTokens::parse(&format!("# accepted\n\n{hash}\n"), true).unwrap()
    }

    #[test]
    fn the_right_token_is_accepted_others_are_not() {
        let t = tokens();
        assert!(t.accepts(TOKEN));
        assert!(!t.accepts("s3cret-tokeN"));
        assert!(!t.accepts(""));
    }

    #[test]
    fn a_malformed_file_is_refused_without_quoting_it() {
        let err = BearerTokens::parse("not-a-hash-of-anything\n", false).unwrap_err();
        assert_eq!(err, "line 1: expected a SHA-256 as 64 hex digits");
        assert!(BearerTokens::parse("# only a comment\n", false).is_err());
    }

    #[test]
    fn bearer_headers_are_parsed_by_hand() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn probes_stay_open_and_metrics_follows_the_setting() {
        let t = tokens();
        assert!(t.open("/healthz") && t.open("/readyz"));
        assert!(!t.open("/metrics") && !t.open("/messages") && !t.open("/jobs/x"));
        let t = BearerTokens { protect_metrics: false, ..t };
        assert!(t.open("/metrics"));
    }
}

//! Who may look: with a token file (`SWITCHBOARD_AUTH_TOKENS_FILE`, the gateway's format and
//! check) every route but the login page, the assets and `/healthz` needs
//! `Authorization: Bearer <token>` or the `sb_console` cookie that `POST /login` sets
//! (HttpOnly, SameSite=Strict: page scripts cannot read it and other sites cannot send it).
//! The cookie holds the token hex-encoded, checked like a bearer token on every request.

use switchboard_gateway::BearerTokens;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "sb_console";

/// What a request presented.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No token file: everyone may look (the console binds to loopback by default).
    Open,
    /// An accepted token.
    Accepted,
    /// Nothing acceptable: the challenge and the reason.
    Refused(&'static str, &'static str),
}

/// Paths served without a token.
pub(crate) fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/logout" | "/healthz") || path.starts_with("/assets/")
}

/// Checks the `Authorization` header, else the cookie, against `tokens`.
pub(crate) fn verdict(tokens: Option<&BearerTokens>, authorization: Option<&str>, cookie: Option<&str>) -> Verdict {
    let Some(tokens) = tokens else { return Verdict::Open };
    if let Some(header) = authorization {
        return match bearer(header) {
            None => Verdict::Refused(
                r#"Bearer realm="switchboard", error="invalid_request""#,
                "malformed Authorization header",
            ),
            Some(token) if tokens.accepts(token) => Verdict::Accepted,
            Some(_) => Verdict::Refused(r#"Bearer realm="switchboard", error="invalid_token""#, "token not accepted"),
        };
    }
    match cookie.and_then(session_token) {
        Some(token) if tokens.accepts(&token) => Verdict::Accepted,
        Some(_) => Verdict::Refused(r#"Bearer realm="switchboard", error="invalid_token""#, "session not accepted"),
        None => Verdict::Refused(r#"Bearer realm="switchboard""#, "send Authorization: Bearer <token>, or log in"),
    }
}

/// The token of an `Authorization: Bearer <token>` value, parsed as a plain string.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The token in the session cookie of a `Cookie` header.
fn session_token(header: &str) -> Option<String> {
    let value = header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == COOKIE)?.1;
    if value.is_empty() || value.len() % 2 != 0 || value.len() > 2048 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..value.len()).step_by(2).map(|i| u8::from_str_radix(value.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// The `Set-Cookie` value of a session for `token`.
pub(crate) fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", crate::otlp::hex(token.as_bytes()))
}

/// The `Set-Cookie` value that ends a session.
pub(crate) fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The `token` field of a login form body (`application/x-www-form-urlencoded`).
pub(crate) fn form_token(body: &[u8]) -> Option<String> {
    // The form's encoding is a query string's: the URL parser decodes it.
    let url = http_types::Url::parse(&format!("http://form/?{}", String::from_utf8_lossy(body))).ok()?;
    url.query_pairs().find(|(k, _)| k == "token").map(|(_, v)| v.trim().to_owned())
}

/// The login page: a form and nothing else (no script, no inline style: the CSP holds).
pub(crate) fn login_page(failed: bool) -> String {
    let note = if failed { "<p class=\"error\">That token is not accepted.</p>\n" } else { "" };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>switchboard console: log in</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/app.css\">\n</head>\n<body>\n<main class=\"login\">\n<h1>switchboard console</h1>\n\
         {note}<form method=\"post\" action=\"/login\">\n<label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label>\n\
         <button type=\"submit\">Log in</button>\n</form>\n</main>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> BearerTokens {
        let file = std::env::temp_dir().join(format!("console-auth-{}", std::process::id()));
        std::fs::write(&file, format!("{}\n", sha256_hex("s3cret"))).unwrap();
        let tokens = BearerTokens::from_file(&file, true).unwrap();
        let _ = std::fs::remove_file(&file);
        tokens
    }

    fn sha256_hex(text: &str) -> String {
        use sha2::Digest;
        crate::otlp::hex(&sha2::Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn without_a_token_file_everything_is_open() {
        assert_eq!(verdict(None, None, None), Verdict::Open);
    }

    #[test]
    fn bearer_tokens_and_session_cookies_are_checked() {
        let t = tokens();
        assert_eq!(verdict(Some(&t), Some("Bearer s3cret"), None), Verdict::Accepted);
        assert!(matches!(verdict(Some(&t), Some("Bearer nope"), None), Verdict::Refused(_, "token not accepted")));
        assert!(matches!(verdict(Some(&t), None, None), Verdict::Refused(..)));
        let cookie = session_cookie("s3cret");
        let value = cookie.split(';').next().unwrap();
        assert_eq!(verdict(Some(&t), None, Some(&format!("other=1; {value}"))), Verdict::Accepted);
        assert!(matches!(verdict(Some(&t), None, Some("sb_console=zz")), Verdict::Refused(..)));
        assert!(matches!(verdict(Some(&t), None, Some(&session_cookie("wrong"))), Verdict::Refused(..)));
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let c = session_cookie("x");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.starts_with("sb_console=78;"));
    }

    #[test]
    fn login_forms_are_decoded() {
        assert_eq!(form_token(b"token=a%2Bb%20c&x=1").as_deref(), Some("a+b c"));
        assert_eq!(form_token(b"x=1"), None);
    }

    #[test]
    fn only_the_login_assets_and_health_are_public() {
        assert!(is_public("/login") && is_public("/assets/app.js") && is_public("/healthz"));
        assert!(!is_public("/") && !is_public("/api/overview") && !is_public("/v1/traces"));
    }
}

//! With a token file every page and API call needs a bearer token or the login cookie.

mod support;

use http_types::Method;
use sha2::Digest;
use switchboard_console::{ConsoleConfig, Sources};

use support::*;

const TOKEN: &str = "console-test-token";

fn config() -> ConsoleConfig {
    let hash: String = sha2::Sha256::digest(TOKEN).iter().map(|b| format!("{b:02x}")).collect();
    // One file per call: the tests run in parallel.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("console-tokens-{}-{n}", std::process::id()));
    std::fs::write(&file, format!("{hash}\n")).unwrap();
    let tokens = switchboard_gateway::BearerTokens::from_file(&file, true).unwrap();
    let _ = std::fs::remove_file(&file);
    ConsoleConfig { auth: Some(tokens), ..ConsoleConfig::default() }
}

#[test]
fn the_api_needs_a_token_the_probe_and_assets_do_not() {
    run(async {
        let addr = start(config(), Sources::default()).await;
        let refused = get(addr, "/api/overview", &[]).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.json()["error"]["code"], "unauthorized");
        assert!(refused.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")));
        let wrong = get(addr, "/api/overview", &[("authorization", "Bearer nope")]).await;
        assert_eq!(wrong.status, 401);
        let bearer = format!("Bearer {TOKEN}");
        let ok = get(addr, "/api/overview", &[("authorization", &bearer)]).await;
        assert_eq!(ok.status, 200);
        assert!(ok.json()["edges"].as_array().is_some_and(|e| e.len() == 8));
        assert_eq!(get(addr, "/healthz", &[]).await.status, 200);
        assert_eq!(get(addr, "/login", &[]).await.status, 200);
        // The exporters' endpoint is protected too.
        let export =
            send(addr, Method::Post, "/v1/traces", &[("content-type", "application/x-protobuf")], vec![]).await;
        assert_eq!(export.status, 401);
        let traces = request("gateway", gateway_spans([0x55; 16]));
        assert_eq!(support::export(addr, &traces, &[("authorization", &bearer)]).await.status, 200);
    });
}

#[test]
fn a_browser_logs_in_with_a_form_and_keeps_an_http_only_cookie() {
    run(async {
        let addr = start(config(), Sources::default()).await;
        let page = get(addr, "/", &[]).await;
        assert_eq!((page.status, page.header("location")), (303, Some("/login")));
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let wrong = send(addr, Method::Post, "/login", &form, b"token=nope".to_vec()).await;
        assert_eq!((wrong.status, wrong.header("location")), (303, Some("/login?failed=1")));
        assert!(wrong.header("set-cookie").is_none());
        let body = format!("token={TOKEN}").into_bytes();
        let login = send(addr, Method::Post, "/login", &form, body).await;
        assert_eq!((login.status, login.header("location")), (303, Some("/")));
        let cookie = login.header("set-cookie").expect("a session cookie").to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(!cookie.contains(TOKEN), "the token is not in the cookie as it is typed");
        let pair = cookie.split(';').next().unwrap();
        let index = get(addr, "/", &[("cookie", pair)]).await;
        assert_eq!(index.status, 200);
        assert_eq!(get(addr, "/api/transactions", &[("cookie", pair)]).await.status, 200);
        // The event stream (which a browser can only authenticate by cookie) too.
        let mut stream = open_stream(addr, "/api/events", &format!("cookie: {pair}\r\n")).await;
        let mut seen = String::new();
        read_stream_until(&mut stream, &mut seen, "retry: ").await;
        assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    });
}

//! Header fields a request may carry only once. Two values of one of them are ambiguous: a
//! proxy may act on the first while the server acts on the last (two `Authorization`s let a bad
//! credential travel in front of a good one; two `Content-Length`s are the classic request
//! smuggling), so such a request is refused with a 400 before any handler sees it.

use http_types::{Request, Response, StatusCode};

use crate::serve::json_error;

/// Fields of which a second occurrence makes a request a 400 (`duplicate_header`).
pub const SINGLETON_HEADERS: [&str; 4] = ["authorization", "content-length", "content-type", "idempotency-key"];

/// The 400 for a request that repeats a singleton header, `None` when it repeats none. The
/// connection closes after it: with two lengths, where the body ends is not known.
pub(crate) fn refuse_repeated(req: &Request) -> Option<Response> {
    let name = SINGLETON_HEADERS
        .iter()
        .find(|name| req.header(**name).is_some_and(|values| values.iter().nth(1).is_some()))?;
    let message = format!("the {name} header is sent more than once; send it once");
    let mut res = json_error(StatusCode::BadRequest, "duplicate_header", &message);
    res.insert_header("connection", "close");
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_types::{Method, Url};

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut req = Request::new(Method::Post, Url::parse("http://t/jobs").unwrap());
        for (name, value) in headers {
            req.append_header(*name, *value);
        }
        req
    }

    #[test]
    fn a_repeated_singleton_is_refused_whatever_the_case_other_repeats_pass() {
        for name in SINGLETON_HEADERS {
            let upper = name.to_ascii_uppercase();
            let res = refuse_repeated(&request(&[(name, "a"), (&upper, "b")])).expect(name);
            assert_eq!(res.status(), StatusCode::BadRequest);
            assert_eq!(res.header("connection").unwrap().as_str(), "close");
            assert!(refuse_repeated(&request(&[(name, "a")])).is_none(), "{name} once");
        }
        assert!(refuse_repeated(&request(&[("accept", "a"), ("accept", "b"), ("x-y", "1"), ("x-y", "2")])).is_none());
    }
}

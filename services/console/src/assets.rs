//! The pages, embedded at build time from `assets/` (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The bytes of the asset at `path` (relative to `assets/`).
pub(crate) fn get(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, bytes)| *bytes)
}

/// The content type of a file by its extension.
pub(crate) fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_page_is_embedded() {
        let index = get("index.html").expect("assets/index.html embedded");
        assert!(String::from_utf8_lossy(index).contains("<html"));
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("vendor/uPlot.iife.min.js"), "text/javascript; charset=utf-8");
        assert_eq!(get("../Cargo.toml"), None);
    }
}

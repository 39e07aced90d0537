//! A bounded HTTP or HTTPS GET for scraping: one connection per request, the whole exchange
//! (connect, TLS handshake, request, body) within a timeout, the body capped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_std::net::TcpStream;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use futures_rustls::TlsConnector;
use http_types::{Method, Request, Url};
use rustls_pki_types::ServerName;
use switchboard_http_server::SharedStream;

use crate::scrape::Target;

/// Largest body read from a scrape target.
const MAX_BODY: u64 = 4 * 1024 * 1024;
/// Longest bearer token accepted from the token file (a token is tens of bytes; a bigger file
/// is the wrong file).
const MAX_TOKEN: usize = 4096;

/// What a GET answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

/// How the scraper reaches its targets: the roots `https://` targets are checked against and
/// the bearer token sent with every scrape. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ScrapeClient {
    tls: TlsConnector,
    /// `Bearer …`, ready to send; never printed.
    authorization: Option<Arc<str>>,
}

impl std::fmt::Debug for ScrapeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeClient").field("token", &self.authorization.is_some()).finish_non_exhaustive()
    }
}

fn webpki_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

fn connector(roots: RootCertStore) -> Result<TlsConnector, String> {
    // The ring provider named explicitly, as the servers do (http-server's tls.rs): a
    // process-wide default would panic were two providers ever compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("scrape TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl ScrapeClient {
    /// Trusts the PEM CAs of `ca_file` (else the webpki roots) for `https://` targets and sends
    /// the token of `token_file` (its first line) with every scrape. Errors name the file,
    /// never the token.
    pub(crate) fn load(ca_file: Option<&Path>, token_file: Option<&Path>) -> Result<Self, String> {
        let roots = match ca_file {
            None => webpki_roots(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in switchboard_http_server::load_certs(path).map_err(|e| format!("scrape CA file {e}"))? {
                    roots.add(cert).map_err(|e| format!("scrape CA file {}: {e}", path.display()))?;
                }
                roots
            }
        };
        let authorization = match token_file {
            None => None,
            Some(path) => Some(Arc::from(format!("Bearer {}", read_token(path)?))),
        };
        Ok(ScrapeClient { tls: connector(roots)?, authorization })
    }

    /// `GET {path}` from `target`, all of it within `timeout`.
    pub(crate) async fn get(&self, target: &Target, path: &str, timeout: Duration) -> Result<Answer, String> {
        let shown = target.shown();
        let exchange = async {
            let scheme = if target.https { "https" } else { "http" };
            let url = Url::parse(&format!("{scheme}://{}{path}", target.addr))
                .map_err(|e| format!("bad address {shown}: {e}"))?;
            let tcp = TcpStream::connect(&target.addr).await.map_err(|e| format!("connect {shown}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let mut req = Request::new(Method::Get, url);
            req.insert_header("connection", "close");
            if let Some(authorization) = &self.authorization {
                req.insert_header("authorization", &**authorization);
            }
            if !target.https {
                return exchange(tcp, req, path, &shown).await;
            }
            let name = server_name(&target.addr).ok_or_else(|| format!("bad address {shown}: no host name"))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| format!("TLS with {shown}: {e}"))?;
            exchange(SharedStream::new(tls), req, path, &shown).await
        };
        futures_lite::future::or(exchange, async {
            async_io::Timer::after(timeout).await;
            Err(format!("GET {path} from {shown}: no answer within {timeout:?}"))
        })
        .await
    }
}

async fn exchange<S>(stream: S, req: Request, path: &str, shown: &str) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Clone + Send + Sync + Unpin + 'static,
{
    let mut res = async_h1::connect(stream, req).await.map_err(|e| format!("GET {path} from {shown}: {e}"))?;
    let mut body = Vec::new();
    res.take_body()
        .into_reader()
        .take(MAX_BODY)
        .read_to_end(&mut body)
        .await
        .map_err(|e| format!("GET {path} from {shown}: {e}"))?;
    Ok(Answer { status: u16::from(res.status()), body: String::from_utf8_lossy(&body).into_owned() })
}

/// The name the certificate must carry: the host of `host:port`, an IP address as such.
fn server_name(addr: &str) -> Option<ServerName<'static>> {
    let (host, _port) = addr.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(host.to_owned()).ok()
}

/// The first line of `path`, checked to fit in a header; errors never quote the file.
fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read(path).map_err(|e| format!("scrape token file {}: cannot read: {e}", path.display()))?;
    if text.len() > MAX_TOKEN {
        return Err(format!("scrape token file {}: larger than {MAX_TOKEN} bytes", path.display()));
    }
    let text = String::from_utf8(text).map_err(|_| format!("scrape token file {}: not UTF-8", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("scrape token file {}: empty", path.display()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("scrape token file {}: the token must be printable ASCII without spaces", path.display()));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_name_is_the_host_without_port_or_brackets() {
        assert_eq!(server_name("localhost:8443"), Some(ServerName::try_from("localhost").unwrap()));
        assert!(matches!(server_name("127.0.0.1:1"), Some(ServerName::IpAddress(_))));
        assert!(matches!(server_name("[::1]:8443"), Some(ServerName::IpAddress(_))));
        assert_eq!(server_name("no-port"), None);
    }

    #[test]
    fn a_token_file_gives_its_first_line_and_bad_ones_are_refused_without_quoting() {
        let dir = std::env::temp_dir().join(format!("console-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "s3cret-token\nignored\n").unwrap();
        assert_eq!(read_token(&good).unwrap(), "s3cret-token");
        let spaced = dir.join("spaced");
        std::fs::write(&spaced, "s3cret token\n").unwrap();
        let e = read_token(&spaced).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(read_token(&empty).unwrap_err().contains("empty"));
        assert!(read_token(&dir.join("missing")).is_err());
        let client = ScrapeClient::load(None, Some(&good)).unwrap();
        assert!(!format!("{client:?}").contains("s3cret"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

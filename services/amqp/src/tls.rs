//! `amqps://` with a CA bundle and an optional client certificate (native-tls on the system
//! OpenSSL), and the redaction that keeps the URL's password out of errors and logs.

use std::net::ToSocketAddrs;
use std::path::Path;
use std::time::Duration;

use amiquip::{Auth, Connection, ConnectionOptions, ConnectionTuning};
use switchboard_ports::{Error, ErrorKind};

/// TLS settings of `amqps://` connections. Default: the system's CA bundle, no client
/// certificate (what amiquip does by itself).
#[derive(Clone, Default)]
pub struct AmqpTls {
    ca: Option<native_tls::Certificate>,
    identity: Option<native_tls::Identity>,
}

impl std::fmt::Debug for AmqpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTls")
            .field("custom_ca", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl AmqpTls {
    /// Loads a PEM CA bundle and a PEM client certificate with its PKCS#8 key; errors name the
    /// file, never its content.
    pub fn load(ca: Option<&Path>, identity: Option<(&Path, &Path)>) -> Result<Self, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: cannot read: {e}", p.display()));
        let ca = match ca {
            Some(p) => Some(
                native_tls::Certificate::from_pem(&read(p)?)
                    .map_err(|e| format!("{}: not a PEM certificate: {e}", p.display()))?,
            ),
            None => None,
        };
        let identity = match identity {
            Some((cert, key)) => Some(native_tls::Identity::from_pkcs8(&read(cert)?, &read(key)?).map_err(|e| {
                format!("{} / {}: not a PEM certificate and PKCS#8 key: {e}", cert.display(), key.display())
            })?),
            None => None,
        };
        Ok(AmqpTls { ca, identity })
    }

    /// Whether anything differs from amiquip's own TLS (system roots, no client certificate).
    pub fn is_custom(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }

    fn connector(&self) -> Result<native_tls::TlsConnector, native_tls::Error> {
        let mut b = native_tls::TlsConnector::builder();
        if let Some(ca) = &self.ca {
            b.add_root_certificate(ca.clone());
        }
        if let Some(identity) = &self.identity {
            b.identity(identity.clone());
        }
        b.build()
    }
}

/// An error message with the password of every URL in it masked.
#[derive(Debug)]
pub(crate) struct Redacted(pub String);

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Redacted {}

/// `text` with `scheme://user:password@` turned into `scheme://user:***@` wherever it occurs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; a password at its last '@'.
        let end = tail.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@').and_then(|a| authority[..a].find(':').map(|c| (c, a))) {
            Some((colon, at)) => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::Invalid, message)
}

/// Opens `url`: amiquip's own path unless `tls` is custom, which needs an `amqps://` URL.
pub(crate) fn open(url: &str, tls: &AmqpTls) -> Result<Connection, Error> {
    let secure = url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("amqps://"));
    let opened = match (secure, tls.is_custom()) {
        (false, true) => return Err(invalid("AMQP TLS files are set but the URL is not amqps://".into())),
        (true, true) => return open_custom(url, tls),
        (true, false) => Connection::open(url),
        (false, false) => Connection::insecure_open(url),
    };
    opened.map_err(|e| crate::connection::broker_error("cannot connect to rabbitmq", e))
}

/// The connection options an `amqps://` URL describes (amiquip's own decoding is private):
/// user and password, vhost, `heartbeat`, `channel_max`, `connection_timeout` (ms).
fn options(url: &url::Url) -> Result<ConnectionOptions<Auth>, Error> {
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut options = ConnectionOptions::<Auth>::default();
    let mut segments = url.path_segments().into_iter().flatten();
    if let Some(vhost) = segments.next().filter(|v| !v.is_empty()) {
        options = options.virtual_host(decode(vhost));
    }
    if segments.next().is_some() {
        return Err(invalid("the AMQP URL has more than one path segment (the vhost)".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        let username = match url.username() {
            "" => "guest".to_owned(),
            u => decode(u),
        };
        options = options.auth(Auth::Plain { username, password: decode(url.password().unwrap_or("guest")) });
    }
    for (k, v) in url.query_pairs() {
        let bad = || invalid(format!("AMQP URL parameter {k}: `{v}` is not a number"));
        options = match k.as_ref() {
            "heartbeat" => options.heartbeat(v.parse().map_err(|_| bad())?),
            "channel_max" => options.channel_max(v.parse().map_err(|_| bad())?),
            "connection_timeout" => {
                options.connection_timeout(Some(Duration::from_millis(v.parse().map_err(|_| bad())?)))
            }
            other => return Err(invalid(format!("AMQP URL parameter `{other}` is not supported"))),
        };
    }
    Ok(options)
}

fn open_custom(raw: &str, tls: &AmqpTls) -> Result<Connection, Error> {
    // Parse errors of the url crate never quote the URL.
    let url = url::Url::parse(raw).map_err(|e| invalid(format!("AMQP URL: {e}")))?;
    let host = url.host_str().filter(|h| !h.is_empty()).unwrap_or("localhost").to_owned();
    let port = url.port().unwrap_or(5671);
    let options = options(&url)?;
    let connector = tls.connector().map_err(|e| invalid(format!("AMQP TLS setup: {e}")))?;
    let where_ = format!("amqps://{host}:{port}");
    let addrs = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("cannot resolve {where_}: {e}")))?;
    let mut last = None;
    for addr in addrs {
        let attempt = mio::net::TcpStream::connect(&addr)
            .map_err(|e| Error::new(ErrorKind::Unavailable, format!("cannot connect to {where_}: {e}")))
            .and_then(|stream| {
                Connection::open_tls_stream(
                    connector.clone(),
                    &host,
                    stream,
                    options.clone(),
                    ConnectionTuning::default(),
                )
                .map_err(|e| {
                    let why = redact(&e.to_string());
                    crate::connection::broker_error(&format!("TLS/AMQP handshake with {where_} failed: {why}"), e)
                })
            });
        match attempt {
            Ok(connection) => return Ok(connection),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(ErrorKind::Unavailable, format!("{where_} resolved to no address"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            redact("failed to connect to amqps://svc:s3cr%2Ft@mq:5671/v?x=1: refused"),
            "failed to connect to amqps://svc:***@mq:5671/v?x=1: refused"
        );
        assert_eq!(redact("amqp://mq:5672/%2f"), "amqp://mq:5672/%2f");
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(redact("a amqp://u:p@h b amqp://v:q@i"), "a amqp://u:***@h b amqp://v:***@i");
    }

    #[test]
    fn amqps_options_come_from_the_url() {
        let url = url::Url::parse("amqps://u:p%40ss@h/tls?heartbeat=5&connection_timeout=100").unwrap();
        assert!(options(&url).is_ok());
        let url = url::Url::parse("amqps://h/tls?frobnicate=1").unwrap();
        assert!(options(&url).unwrap_err().to_string().contains("frobnicate"));
    }

    #[test]
    fn tls_files_with_a_plain_url_are_refused() {
        let tls = AmqpTls { ca: None, identity: None };
        assert!(!tls.is_custom());
        let err = AmqpTls::load(Some(Path::new("/nonexistent/ca.pem")), None).unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}

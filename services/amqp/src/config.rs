use std::time::Duration;

/// URL used when `AMQP_URL` is not set: the local broker, guest account, default vhost.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Settings of an [`AmqpWorkQueue`](crate::AmqpWorkQueue).
#[derive(Clone)]
#[non_exhaustive]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost` (vhost percent-encoded, `%2f` is `/`); query
    /// parameters `heartbeat` and `connection_timeout` (ms) are understood; `amqps://` for
    /// TLS (see [`tls`](AmqpConfig::tls)). Default [`DEFAULT_URL`].
    pub url: String,
    /// Longest wait for one connection attempt (TCP connect and AMQP handshake): the
    /// connection thread is blocked meanwhile, so without it a broker host that drops packets
    /// stalls every caller for the OS connect timeout (minutes). A `connection_timeout` query
    /// parameter in the URL wins. Also the longest wait for any other answer of the broker
    /// (a channel opened, a queue declared, the connection closed): past it the connection
    /// is given up and opened again. Default 5 s.
    pub connect_timeout: Duration,
    /// How long an enqueue may wait for its confirm, reconnects included, before failing with
    /// `Timeout` (the job may then still have been stored). Default 30 s.
    pub publish_timeout: Duration,
    /// First delay between reconnect attempts; doubles with jitter up to `reconnect_max`.
    /// Default 100 ms.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts: how long a broker that is back may go unseen
    /// (publishes fail at once meanwhile). Default 1 s.
    pub reconnect_max: Duration,
    /// Commands waiting for the connection thread (enqueues beyond it wait). Default 1024.
    pub command_capacity: usize,
    /// Events a fanout listener's queue holds before the broker drops the oldest. Default 1024.
    pub listener_capacity: u32,
    /// CA bundle and client certificate of `amqps://` URLs (default: the system's CAs).
    pub tls: crate::AmqpTls,
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL carries the password.
        f.debug_struct("AmqpConfig")
            .field("url", &crate::redact(&self.url))
            .field("connect_timeout", &self.connect_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: DEFAULT_URL.to_owned(),
            connect_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(1),
            command_capacity: 1024,
            listener_capacity: 1024,
            tls: crate::AmqpTls::default(),
        }
    }
}

impl AmqpConfig {
    /// Defaults with `url`.
    pub fn new(url: impl Into<String>) -> Self {
        AmqpConfig { url: url.into(), ..Self::default() }
    }

    /// Defaults with the URL from `AMQP_URL`, else [`DEFAULT_URL`].
    pub fn from_env() -> Self {
        Self::new(std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned()))
    }

    /// Sets [`connect_timeout`](AmqpConfig::connect_timeout) (at least 1 ms).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The URL amiquip opens: [`url`](AmqpConfig::url) with `connection_timeout` added from
    /// [`connect_timeout`](AmqpConfig::connect_timeout) unless the URL sets it.
    pub(crate) fn connect_url(&self) -> String {
        let (base, fragment) = match self.url.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (self.url.as_str(), None),
        };
        let query = base.split_once('?').map(|(_, q)| q).unwrap_or("");
        if query.split('&').any(|p| p.split('=').next() == Some("connection_timeout")) {
            return self.url.clone();
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        let ms = self.connect_timeout.as_millis().max(1);
        let mut url = format!("{base}{sep}connection_timeout={ms}");
        if let Some(f) = fragment {
            url.push('#');
            url.push_str(f);
        }
        url
    }

    /// Sets [`tls`](AmqpConfig::tls).
    pub fn with_tls(mut self, tls: crate::AmqpTls) -> Self {
        self.tls = tls;
        self
    }

    /// Sets the reconnect delays ([`reconnect_min`](AmqpConfig::reconnect_min), max).
    pub fn with_reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_timeout_goes_into_the_url_unless_the_url_sets_one() {
        let c = AmqpConfig::new("amqp://u:p@h:5672/%2f").with_connect_timeout(Duration::from_millis(1500));
        assert_eq!(c.connect_url(), "amqp://u:p@h:5672/%2f?connection_timeout=1500");
        let c = AmqpConfig::new("amqp://h/%2f?heartbeat=10");
        assert_eq!(c.connect_url(), "amqp://h/%2f?heartbeat=10&connection_timeout=5000");
        let c = AmqpConfig::new("amqp://h/%2f?connection_timeout=42&heartbeat=10");
        assert_eq!(c.connect_url(), "amqp://h/%2f?connection_timeout=42&heartbeat=10");
    }
}

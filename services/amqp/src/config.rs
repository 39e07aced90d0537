use std::time::Duration;

/// URL used when `AMQP_URL` is not set: the local broker, guest account, default vhost.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Settings of an [`AmqpWorkQueue`](crate::AmqpWorkQueue).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost` (vhost percent-encoded, `%2f` is `/`); query
    /// parameters `heartbeat` and `connection_timeout` (ms) are understood. Only plain `amqp`:
    /// TLS is not built in. Default [`DEFAULT_URL`].
    pub url: String,
    /// How long an enqueue may wait for its confirm, reconnects included, before failing with
    /// `Timeout` (the job may then still have been stored). Default 30 s.
    pub publish_timeout: Duration,
    /// First delay between reconnect attempts; doubles with jitter up to `reconnect_max`.
    /// Default 100 ms.
    pub reconnect_min: Duration,
    /// Longest delay between reconnect attempts. Default 10 s.
    pub reconnect_max: Duration,
    /// Commands waiting for the connection thread (enqueues beyond it wait). Default 1024.
    pub command_capacity: usize,
    /// Events a fanout listener's queue holds before the broker drops the oldest. Default 1024.
    pub listener_capacity: u32,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: DEFAULT_URL.to_owned(),
            publish_timeout: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            command_capacity: 1024,
            listener_capacity: 1024,
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

    /// Sets [`publish_timeout`](AmqpConfig::publish_timeout).
    pub fn with_publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// Sets the reconnect delays ([`reconnect_min`](AmqpConfig::reconnect_min), max).
    pub fn with_reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }
}

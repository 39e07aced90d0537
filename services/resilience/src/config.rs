//! Breaker settings: builder, defaults, and reading them from environment variables.

use std::time::Duration;

use crate::error::{ConfigError, ConfigErrorKind};

/// Largest count-based window and largest time-based window in buckets (seconds).
///
/// Windows keep one byte per call (count) or one bucket per second (time); the bound keeps a
/// typo in a setting from allocating gigabytes.
pub const MAX_WINDOW: u32 = 1 << 20;

/// Largest number of probe calls in half-open (they are counted in 16-bit fields).
pub const MAX_HALF_OPEN_CALLS: u32 = u16::MAX as u32;

/// What the rates are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` recorded calls.
    Count(u32),
    /// Calls recorded in the last `n` seconds (in one-second buckets, like resilience4j).
    Time(u32),
}

/// Circuit breaker settings.
///
/// Built with [`Config::builder`], [`Config::default`] or [`Config::from_env`]. The defaults
/// follow resilience4j except where a service wants to react sooner (marked *changed*):
///
/// | setting | default | resilience4j |
/// |---|---|---|
/// | [`failure_rate`](ConfigBuilder::failure_rate) | 50 % | 50 % |
/// | [`slow_call_rate`](ConfigBuilder::slow_call_rate) | 100 % | 100 % |
/// | [`slow_call_duration`](ConfigBuilder::slow_call_duration) | 5 s (*changed*) | 60 s |
/// | [`window`](ConfigBuilder::window) | last 100 calls | last 100 calls |
/// | [`min_calls`](ConfigBuilder::min_calls) | 20 (*changed*) | 100 |
/// | [`wait_open`](ConfigBuilder::wait_open) | 5 s (*changed*) | 60 s |
/// | [`half_open_calls`](ConfigBuilder::half_open_calls) | 10 | 10 |
///
/// A 60 s slow-call duration is longer than most HTTP client timeouts, so slow calls would
/// never be seen; 100 minimum calls keeps a breaker on a low-traffic route closed for minutes
/// of errors; and on a request path whose budget is seconds, a 1 s outage should not cost
/// 30–60 s of fail-fast answers (half-open still lets only a few probes through).
///
/// ```
/// use std::time::Duration;
/// use switchboard_resilience::{Config, SlidingWindow};
///
/// let config = Config::builder()
///     .failure_rate(25.0)
///     .window(SlidingWindow::Time(10))
///     .wait_open(Duration::from_secs(5))
///     .build()?;
/// assert_eq!(config.min_calls(), 20);
/// # Ok::<(), switchboard_resilience::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    failure_rate: f32,
    slow_call_rate: f32,
    slow_call_duration: Duration,
    window: SlidingWindow,
    min_calls: u32,
    wait_open: Duration,
    half_open_calls: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_rate: 50.0,
            slow_call_rate: 100.0,
            slow_call_duration: Duration::from_secs(5),
            window: SlidingWindow::Count(100),
            min_calls: 20,
            wait_open: Duration::from_secs(5),
            half_open_calls: 10,
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder { config: Config::default() }
    }

    /// Reads settings from environment variables named `{prefix}_…`; unset ones keep their
    /// default.
    ///
    /// | variable | meaning | example |
    /// |---|---|---|
    /// | `{prefix}_FAILURE_RATE` | failure rate in percent that opens the breaker, `(0, 100]` | `50` |
    /// | `{prefix}_SLOW_CALL_RATE` | slow-call rate in percent that opens the breaker, `(0, 100]` | `100` |
    /// | `{prefix}_SLOW_CALL_MS` | a call taking longer than this many milliseconds is slow | `5000` |
    /// | `{prefix}_WINDOW` | window size: calls, or seconds when the kind is `time` | `100` |
    /// | `{prefix}_WINDOW_KIND` | `count` or `time` | `count` |
    /// | `{prefix}_MIN_CALLS` | calls in the window before the rates are looked at | `20` |
    /// | `{prefix}_WAIT_OPEN_MS` | milliseconds the breaker stays open before probing | `5000` |
    /// | `{prefix}_HALF_OPEN_CALLS` | probe calls allowed in half-open | `10` |
    ///
    /// A variable that is set but empty, not a number, or out of range is an error naming the
    /// variable; so is a combination [`ConfigBuilder::build`] rejects.
    ///
    /// ```
    /// # use switchboard_resilience::Config;
    /// let config = Config::from_env("GATEWAY_BREAKER")?;
    /// # Ok::<(), switchboard_resilience::ConfigError>(())
    /// ```
    pub fn from_env(prefix: &str) -> Result<Config, ConfigError> {
        Config::from_lookup(prefix, |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Like [`from_env`](Config::from_env) with variables looked up by `lookup` (tests, config
    /// files flattened to a map).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use switchboard_resilience::Config;
    ///
    /// let vars = HashMap::from([("CB_FAILURE_RATE".to_string(), "20".to_string())]);
    /// let config = Config::from_lookup("CB", |name| vars.get(name).cloned())?;
    /// assert_eq!(config.failure_rate(), 20.0);
    ///
    /// let bad = HashMap::from([("CB_WINDOW".to_string(), "lots".to_string())]);
    /// let err = Config::from_lookup("CB", |name| bad.get(name).cloned()).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid CB_WINDOW=\"lots\": not a whole number");
    /// # Ok::<(), switchboard_resilience::ConfigError>(())
    /// ```
    pub fn from_lookup(prefix: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut b = Config::builder();
        let mut var = |suffix: &str| {
            let name = format!("{prefix}_{suffix}");
            lookup(&name).map(|value| (name, value))
        };
        if let Some((name, v)) = var("FAILURE_RATE") {
            b = b.failure_rate(parse_percent(&name, &v)?);
        }
        if let Some((name, v)) = var("SLOW_CALL_RATE") {
            b = b.slow_call_rate(parse_percent(&name, &v)?);
        }
        if let Some((name, v)) = var("SLOW_CALL_MS") {
            b = b.slow_call_duration(Duration::from_millis(parse_u64(&name, &v)?));
        }
        if let Some((name, v)) = var("WAIT_OPEN_MS") {
            b = b.wait_open(Duration::from_millis(parse_u64(&name, &v)?));
        }
        if let Some((name, v)) = var("MIN_CALLS") {
            b = b.min_calls(parse_u32(&name, &v)?);
        }
        if let Some((name, v)) = var("HALF_OPEN_CALLS") {
            b = b.half_open_calls(parse_u32(&name, &v)?);
        }
        let size = match var("WINDOW") {
            Some((name, v)) => Some(parse_u32(&name, &v)?),
            None => None,
        };
        let window = match (var("WINDOW_KIND"), size) {
            (Some((name, kind)), size) => {
                let size = size.unwrap_or(match b.config.window {
                    SlidingWindow::Count(n) | SlidingWindow::Time(n) => n,
                });
                match kind.trim().to_ascii_lowercase().as_str() {
                    "count" => SlidingWindow::Count(size),
                    "time" => SlidingWindow::Time(size),
                    _ => return Err(invalid(&name, &kind, ConfigErrorKind::UnknownWindowKind)),
                }
            }
            (None, Some(size)) => SlidingWindow::Count(size),
            (None, None) => b.config.window,
        };
        b = b.window(window);
        b.build().map_err(|e| e.with_prefix(prefix))
    }

    /// Failure rate (percent) at or above which the breaker opens.
    pub fn failure_rate(&self) -> f32 {
        self.failure_rate
    }

    /// Slow-call rate (percent) at or above which the breaker opens.
    pub fn slow_call_rate(&self) -> f32 {
        self.slow_call_rate
    }

    /// A call taking longer than this is slow.
    pub fn slow_call_duration(&self) -> Duration {
        self.slow_call_duration
    }

    /// What the rates are computed over.
    pub fn window(&self) -> SlidingWindow {
        self.window
    }

    /// Calls recorded in the window before the rates count.
    pub fn min_calls(&self) -> u32 {
        self.min_calls
    }

    /// How long the breaker stays open before it lets probes through.
    pub fn wait_open(&self) -> Duration {
        self.wait_open
    }

    /// Probe calls allowed in half-open; their outcome decides between closed and open.
    pub fn half_open_calls(&self) -> u32 {
        self.half_open_calls
    }
}

/// Builds a [`Config`]; every setting starts at its default.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Failure rate in percent, `(0, 100]`, at or above which the breaker opens. Default 50.
    pub fn failure_rate(mut self, percent: f32) -> Self {
        self.config.failure_rate = percent;
        self
    }

    /// Slow-call rate in percent, `(0, 100]`, at or above which the breaker opens. Default 100
    /// (opens only when every call in the window was slow).
    pub fn slow_call_rate(mut self, percent: f32) -> Self {
        self.config.slow_call_rate = percent;
        self
    }

    /// A call (successful or not) taking longer than this is slow. Default 5 s.
    pub fn slow_call_duration(mut self, duration: Duration) -> Self {
        self.config.slow_call_duration = duration;
        self
    }

    /// The sliding window the rates are computed over, 1 to [`MAX_WINDOW`]. Default: the last
    /// 100 calls.
    pub fn window(mut self, window: SlidingWindow) -> Self {
        self.config.window = window;
        self
    }

    /// Calls recorded in the window before the rates are looked at, at least 1. Default 20.
    ///
    /// With a count window smaller than this, the window size is the minimum (as in
    /// resilience4j): a full window always counts.
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.config.min_calls = calls;
        self
    }

    /// How long the breaker stays open before probing. Default 5 s.
    pub fn wait_open(mut self, duration: Duration) -> Self {
        self.config.wait_open = duration;
        self
    }

    /// Probe calls let through in half-open, 1 to [`MAX_HALF_OPEN_CALLS`]. Default 10.
    pub fn half_open_calls(mut self, calls: u32) -> Self {
        self.config.half_open_calls = calls;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.config;
        let rate_ok = |r: f32| r > 0.0 && r <= 100.0;
        if !rate_ok(c.failure_rate) {
            return Err(ConfigError::new("failure_rate", c.failure_rate, ConfigErrorKind::OutOfRange));
        }
        if !rate_ok(c.slow_call_rate) {
            return Err(ConfigError::new("slow_call_rate", c.slow_call_rate, ConfigErrorKind::OutOfRange));
        }
        let (SlidingWindow::Count(size) | SlidingWindow::Time(size)) = c.window;
        if size == 0 || size > MAX_WINDOW {
            return Err(ConfigError::new("window", size, ConfigErrorKind::OutOfRange));
        }
        if c.min_calls == 0 {
            return Err(ConfigError::new("min_calls", c.min_calls, ConfigErrorKind::OutOfRange));
        }
        if c.half_open_calls == 0 || c.half_open_calls > MAX_HALF_OPEN_CALLS {
            return Err(ConfigError::new("half_open_calls", c.half_open_calls, ConfigErrorKind::OutOfRange));
        }
        Ok(c)
    }
}

fn invalid(name: &str, value: &str, kind: ConfigErrorKind) -> ConfigError {
    ConfigError::new(name, format!("{value:?}"), kind).named_var()
}

fn parse_u64(name: &str, value: &str) -> Result<u64, ConfigError> {
    value.trim().parse().map_err(|_| invalid(name, value, ConfigErrorKind::NotANumber))
}

fn parse_u32(name: &str, value: &str) -> Result<u32, ConfigError> {
    value.trim().parse().map_err(|_| invalid(name, value, ConfigErrorKind::NotANumber))
}

fn parse_percent(name: &str, value: &str) -> Result<f32, ConfigError> {
    let rate: f32 = value.trim().parse().map_err(|_| invalid(name, value, ConfigErrorKind::NotAPercent))?;
    if rate > 0.0 && rate <= 100.0 {
        Ok(rate)
    } else {
        Err(invalid(name, value, ConfigErrorKind::OutOfRange))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup("CB", |name| map.get(name).cloned())
    }

    #[test]
    fn no_variables_give_the_defaults() {
        assert_eq!(from(&[]).unwrap(), Config::default());
    }

    #[test]
    fn every_variable_is_read() {
        let c = from(&[
            ("CB_FAILURE_RATE", "25.5"),
            ("CB_SLOW_CALL_RATE", "80"),
            ("CB_SLOW_CALL_MS", "1500"),
            ("CB_WAIT_OPEN_MS", "2000"),
            ("CB_WINDOW", "30"),
            ("CB_WINDOW_KIND", "Time"),
            ("CB_MIN_CALLS", "7"),
            ("CB_HALF_OPEN_CALLS", "3"),
        ])
        .unwrap();
        assert_eq!(c.failure_rate(), 25.5);
        assert_eq!(c.slow_call_rate(), 80.0);
        assert_eq!(c.slow_call_duration(), Duration::from_millis(1500));
        assert_eq!(c.wait_open(), Duration::from_secs(2));
        assert_eq!(c.window(), SlidingWindow::Time(30));
        assert_eq!(c.min_calls(), 7);
        assert_eq!(c.half_open_calls(), 3);
    }

    #[test]
    fn window_without_kind_is_count_based() {
        assert_eq!(from(&[("CB_WINDOW", "50")]).unwrap().window(), SlidingWindow::Count(50));
        assert_eq!(from(&[("CB_WINDOW_KIND", "time")]).unwrap().window(), SlidingWindow::Time(100));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases = [
            (("CB_FAILURE_RATE", "abc"), "invalid CB_FAILURE_RATE=\"abc\": not a percentage"),
            (("CB_FAILURE_RATE", "0"), "invalid CB_FAILURE_RATE=\"0\": out of range"),
            (("CB_SLOW_CALL_RATE", "101"), "invalid CB_SLOW_CALL_RATE=\"101\": out of range"),
            (("CB_SLOW_CALL_MS", "-1"), "invalid CB_SLOW_CALL_MS=\"-1\": not a whole number"),
            (("CB_WAIT_OPEN_MS", ""), "invalid CB_WAIT_OPEN_MS=\"\": not a whole number"),
            (("CB_WINDOW", "0"), "invalid CB_WINDOW=0: out of range"),
            (("CB_WINDOW_KIND", "sliding"), "invalid CB_WINDOW_KIND=\"sliding\": unknown window kind"),
            (("CB_MIN_CALLS", "0"), "invalid CB_MIN_CALLS=0: out of range"),
            (("CB_HALF_OPEN_CALLS", "70000"), "invalid CB_HALF_OPEN_CALLS=70000: out of range"),
        ];
        for ((name, value), want) in cases {
            let err = from(&[(name, value)]).unwrap_err();
            assert_eq!(err.to_string(), want, "{name}={value}");
        }
    }

    #[test]
    fn builder_rejects_out_of_range_settings() {
        let err = Config::builder().failure_rate(f32::NAN).build().unwrap_err();
        assert_eq!(err.to_string(), "invalid failure_rate=NaN: out of range");
        assert_eq!(err.kind(), ConfigErrorKind::OutOfRange);
        assert!(Config::builder().window(SlidingWindow::Count(MAX_WINDOW + 1)).build().is_err());
        assert!(Config::builder().half_open_calls(0).build().is_err());
    }
}
